/*
 * gdt.c — the kernel's GDT: null, flat 4 GiB ring-0 code (0x08) and data
 * (0x10) — the same selectors as stage 2, so loading it changes nothing but
 * where the table lives (stage 2's copy is in memory we may reuse) — and
 * the two TSS descriptors: the kernel's own task (TR) and the double-fault
 * task that IDT vector 8 switches to (see exceptions.c) — and the GS
 * segment: code built for the Linux i386 ABI with -fstack-protector (the
 * toolchain's precompiled compiler-rt, linked into instrumented modules)
 * reads its canary at %gs:0x14, so GS points at a block holding one.
 */
#include <stdint.h>
#include "console.h"
#include "cpu.h"
#include "gdt.h"
#include "idt.h"

#define ACCESS_PRESENT    0x80
#define ACCESS_CODE_DATA  0x10  /* S = 1: code/data, not system */
#define ACCESS_EXEC       0x08
#define ACCESS_RW         0x02  /* readable code / writable data */
#define FLAGS_4K_32BIT    0xC   /* G = 1 (4 KiB granularity), D/B = 1 (32-bit) */
#define FLAGS_BYTE_32BIT  0x4   /* G = 0 (byte granularity), D/B = 1 (32-bit) */
#define SSP_CANARY        0xF1D000A5u /* fixed: builds stay reproducible; a 0 byte stops string overruns */
#define ACCESS_TSS32      0x89  /* present, DPL 0, 32-bit available TSS */
#define EFLAGS_RESERVED1  0x2   /* bit 1 always set; IF = 0 in the #DF task */
#define DF_STACK_SIZE     8192

struct gdt_entry {
	uint16_t limit_lo;
	uint16_t base_lo;
	uint8_t base_mid;
	uint8_t access;
	uint8_t limit_hi_flags;
	uint8_t base_hi;
} __attribute__((packed));

struct gdt_ptr {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

#define FLAT(access) { 0xFFFF, 0, 0, (access), (FLAGS_4K_32BIT << 4) | 0xF, 0 }

/* Writable: ltr sets the busy bit in the TSS descriptor. */
static struct gdt_entry gdt[] __attribute__((aligned(8))) = {
	{ 0, 0, 0, 0, 0, 0 },
	FLAT(ACCESS_PRESENT | ACCESS_CODE_DATA | ACCESS_EXEC | ACCESS_RW),
	FLAT(ACCESS_PRESENT | ACCESS_CODE_DATA | ACCESS_RW),
	{ 0, 0, 0, 0, 0, 0 },   /* GDT_TSS_MAIN, filled by gdt_init */
	{ 0, 0, 0, 0, 0, 0 },   /* GDT_TSS_DF */
	{ 0, 0, 0, 0, 0, 0 },   /* GDT_KERNEL_GS, filled by gdt_init */
};

/* What GS addresses: the canary at GDT_SSP_CANARY_OFFSET. */
static uint32_t gs_block[8] __attribute__((aligned(32))) = {
	[GDT_SSP_CANARY_OFFSET / 4] = SSP_CANARY,
};
_Static_assert(GDT_SSP_CANARY_OFFSET + 4 <= sizeof gs_block, "canary inside the GS block");

static struct tss main_tss, df_tss;
static uint8_t df_stack[DF_STACK_SIZE] __attribute__((aligned(16)));

/* exceptions.c: entered by the #DF task switch, never returns. */
extern void double_fault_task(void);

static void set_tss_desc(unsigned sel, const struct tss *t)
{
	uint32_t base = (uint32_t)(uintptr_t)t;
	struct gdt_entry *e = &gdt[sel / 8];
	e->limit_lo = sizeof(struct tss) - 1;
	e->base_lo = (uint16_t)base;
	e->base_mid = (uint8_t)(base >> 16);
	e->access = ACCESS_TSS32;
	e->limit_hi_flags = 0;   /* byte granularity, limit < 64 KiB */
	e->base_hi = (uint8_t)(base >> 24);
}

void gdt_set_df_cr3(uint32_t cr3)
{
	df_tss.cr3 = cr3;
}

const struct tss *gdt_main_tss(void)
{
	return &main_tss;
}

/* Invariant: called only in the double-fault task, so the main task is
 * suspended and its TSS is not in use; the task switch back loads CR3 from
 * it (a switch out of a task never saves CR3), hence the one we run on. */
void gdt_main_tss_resume(const struct int_frame *f, uint32_t esp)
{
	main_tss.eip = f->eip;
	main_tss.cs = (uint16_t)f->cs;
	main_tss.eflags = f->eflags;
	main_tss.ds = (uint16_t)f->ds;
	main_tss.es = (uint16_t)f->es;
	main_tss.fs = (uint16_t)f->fs;
	main_tss.gs = (uint16_t)f->gs;
	main_tss.ss = GDT_KERNEL_DATA;
	main_tss.esp = esp;
	main_tss.cr3 = read_cr3();
}

void gdt_init(void)
{
	df_tss.eip = (uint32_t)(uintptr_t)double_fault_task;
	df_tss.esp = (uint32_t)(uintptr_t)(df_stack + sizeof df_stack);
	df_tss.eflags = EFLAGS_RESERVED1;
	df_tss.cs = GDT_KERNEL_CODE;
	df_tss.ds = df_tss.es = df_tss.fs = df_tss.ss = GDT_KERNEL_DATA;
	df_tss.gs = GDT_KERNEL_GS;
	df_tss.cr3 = read_cr3();
	main_tss.iomap = df_tss.iomap = sizeof(struct tss);   /* no I/O bitmap */
	set_tss_desc(GDT_TSS_MAIN, &main_tss);
	set_tss_desc(GDT_TSS_DF, &df_tss);
	{
		uint32_t base = (uint32_t)(uintptr_t)gs_block;
		struct gdt_entry *e = &gdt[GDT_KERNEL_GS / 8];
		e->limit_lo = sizeof gs_block - 1;
		e->base_lo = (uint16_t)base;
		e->base_mid = (uint8_t)(base >> 16);
		e->access = ACCESS_PRESENT | ACCESS_CODE_DATA | ACCESS_RW;
		e->limit_hi_flags = FLAGS_BYTE_32BIT << 4;
		e->base_hi = (uint8_t)(base >> 24);
	}

	struct gdt_ptr p = { sizeof gdt - 1, (uint32_t)(uintptr_t)gdt };
	__asm__ volatile(
		"lgdt %0\n\t"
		"ljmp %1, $1f\n"          /* reload CS */
		"1:\n\t"
		"mov %2, %%ax\n\t"
		"mov %%ax, %%ds\n\t"
		"mov %%ax, %%es\n\t"
		"mov %%ax, %%fs\n\t"
		"mov %%ax, %%ss\n\t"
		"mov %4, %%ax\n\t"
		"mov %%ax, %%gs\n\t"
		"mov %3, %%ax\n\t"
		"ltr %%ax\n\t"
		:
		: "m"(p), "i"(GDT_KERNEL_CODE), "i"(GDT_KERNEL_DATA), "i"(GDT_TSS_MAIN), "i"(GDT_KERNEL_GS)
		: "eax", "memory");
	kprintf("gdt: flat code 0x%02x, data 0x%02x, TSS 0x%02x, double-fault task 0x%02x, GS (canary block) 0x%02x\n",
		GDT_KERNEL_CODE, GDT_KERNEL_DATA, GDT_TSS_MAIN, GDT_TSS_DF, GDT_KERNEL_GS);
}
