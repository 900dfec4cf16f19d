/*
 * gdt.c — the kernel's GDT: null, 64-bit ring-0 code (0x08), flat data
 * (0x10, the selector stage 2 already uses) and the 64-bit TSS (0x18, a
 * 16-byte descriptor) whose IST entries are the stacks of #DF, NMI and #MC
 * (see idt.c): they must work when the kernel stack is exhausted or
 * corrupt. Each IST stack sits above a guard page (page-aligned, in .bss;
 * kernel/mm/vm.c leaves the guards unmapped). The FS base points at a
 * block holding the stack-protector canary for precompiled x86_64 code.
 */
#include <stdint.h>
#include "console.h"
#include "cpu.h"
#include "gdt.h"

#define SSP_CANARY        0xF1D000A5F1D000A5ull /* fixed: builds stay reproducible */
#define TSS64_AVAILABLE   0x89  /* present, DPL 0, 64-bit available TSS */
#define PAGE              4096u

/* null, code64, data, TSS low, TSS high. Writable: ltr sets the busy bit. */
static uint64_t gdt[5] __attribute__((aligned(16))) = {
	0,
	0x00AF9A000000FFFFull, /* code: present, ring 0, exec/read, L = 1, G = 1 */
	0x00CF92000000FFFFull, /* data: present, ring 0, read/write, 4 GiB       */
	0, 0,                  /* GDT_TSS, filled by gdt_init                   */
};

struct gdt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* Not static: module_call (arch/modcall.asm) loads the FS base with it
 * again after every module. */
uint64_t gdt_fs_block[8] __attribute__((aligned(64))) = {
	[FS_SSP_CANARY_OFFSET / 8] = SSP_CANARY,
};
_Static_assert(FS_SSP_CANARY_OFFSET + 8 <= sizeof gdt_fs_block, "canary inside the FS block");

static struct tss64 tss __attribute__((aligned(16)));

/* Each IST stack: one guard page (unmapped by vm.c), then the stack. */
static uint8_t ist_mem[IST_COUNT][PAGE + IST_STACK_SIZE] __attribute__((aligned(PAGE)));
_Static_assert(IST_STACK_SIZE % PAGE == 0, "IST stacks keep the guards page-aligned");

void gdt_ist_stack(unsigned n, uintptr_t *lo, uintptr_t *hi)
{
	*lo = (uintptr_t)ist_mem[n - 1] + PAGE;
	*hi = (uintptr_t)ist_mem[n - 1] + PAGE + IST_STACK_SIZE;
}

/* Invariant: after gdt_init, tss.ist[n - 1] is the top of IST stack n for
 * n = 1..IST_COUNT, 16-byte aligned, and TR holds GDT_TSS. */
void gdt_init(void)
{
	for (unsigned n = 1; n <= IST_COUNT; n++) {
		uintptr_t lo, hi;
		gdt_ist_stack(n, &lo, &hi);
		tss.ist[n - 1] = hi;
	}
	tss.iomap = sizeof tss;   /* no I/O bitmap */
	uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof tss - 1;
	gdt[GDT_TSS / 8] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) |
			   ((uint64_t)TSS64_AVAILABLE << 40) | (((limit >> 16) & 0xF) << 48) |
			   (((base >> 24) & 0xFF) << 56);
	gdt[GDT_TSS / 8 + 1] = base >> 32;

	struct gdt_ptr p = { sizeof gdt - 1, (uint64_t)(uintptr_t)gdt };
	__asm__ volatile(
		"lgdt %0\n\t"
		"pushq %1\n\t"            /* reload CS with a far return */
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"mov %2, %%ax\n\t"
		"mov %%ax, %%ds\n\t"
		"mov %%ax, %%es\n\t"
		"mov %%ax, %%ss\n\t"
		"xor %%eax, %%eax\n\t"
		"mov %%ax, %%fs\n\t"
		"mov %%ax, %%gs\n\t"
		"mov %3, %%ax\n\t"
		"ltr %%ax\n\t"
		:
		: "m"(p), "i"(GDT_KERNEL_CODE), "i"(GDT_KERNEL_DATA), "i"(GDT_TSS)
		: "rax", "memory");
	wrmsr(MSR_FS_BASE, (uint64_t)(uintptr_t)gdt_fs_block);
	kprintf("gdt: code64 0x%02x, data 0x%02x, TSS 0x%02x with IST stacks for #DF, NMI, #MC "
		"(%u KiB each, guard page below)\n",
		GDT_KERNEL_CODE, GDT_KERNEL_DATA, GDT_TSS, IST_STACK_SIZE / 1024);
}
