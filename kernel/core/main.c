/*
 * main.c — kernel_main: console first, the banner and boot-info summary,
 * then each subsystem with one line, then the tests (test kernel) or the
 * workload, then the FLUID-END line and the QEMU exit.
 */
#include <stdint.h>
#include "bootinfo.h"
#include "console.h"
#include "cpu.h"
#include "exit.h"
#include "fpu.h"
#include "gdt.h"
#include "heap.h"
#include "idt.h"
#include "kernel.h"
#include "ktest.h"
#include "panic.h"
#include "pic.h"
#include "serial.h"
#include "timer.h"
#include "vga.h"
#include "vm.h"
#include "workload.h"

static const char *a20_name(uint32_t m)
{
	switch (m) {
	case A20_ALREADY_ON: return "already on";
	case A20_BIOS:       return "BIOS int 15h";
	case A20_KBC:        return "keyboard controller";
	case A20_FAST:       return "fast A20 (port 0x92)";
	default:             return "unknown";
	}
}

static const char *e820_name(uint32_t t)
{
	switch (t) {
	case E820_USABLE:       return "usable";
	case E820_RESERVED:     return "reserved";
	case E820_ACPI_RECLAIM: return "ACPI reclaimable";
	case E820_ACPI_NVS:     return "ACPI NVS";
	case E820_BAD:          return "bad";
	default:                return "unknown";
	}
}

static void print_boot_info(const struct boot_info *bi)
{
	uint32_t n = bi->e820_count;
	uint64_t usable = 0;

	kprintf("boot: drive 0x%02x, A20 %s, boot_info v%u at %p\n", bi->boot_drive,
		a20_name(bi->a20_method), bi->version, (const void *)bi);
	if (n > BOOTINFO_E820_MAX) {
		kprintf("boot: E820 count %u exceeds %u; using the first %u\n", n,
			BOOTINFO_E820_MAX, BOOTINFO_E820_MAX);
		n = BOOTINFO_E820_MAX;
	}
	kprintf("e820: %u entries\n", n);
	for (uint32_t i = 0; i < n; i++) {
		const struct e820_entry *e = &bi->e820[i];
		kprintf("  %016llx %016llx %u %s\n", (unsigned long long)e->base,
			(unsigned long long)e->length, e->type, e820_name(e->type));
		if (e->type == E820_USABLE)
			usable += e->length;
	}
	kprintf("e820: %u MiB usable\n", (unsigned)(usable >> 20));
	kprintf("kernel: load 0x%08x entry 0x%08x (physical), payload %u bytes, mem %u bytes\n",
		bi->kernel_load, bi->kernel_entry, bi->kernel_size, bi->kernel_mem);
	kprintf("kernel: header at LBA %u, %u payload sectors\n", bi->kernel_lba, bi->kernel_sectors);
	kprintf("kernel: linked 0x%016llx-0x%016llx, .bss 0x%016llx-0x%016llx\n",
		(unsigned long long)(uintptr_t)__kernel_start, (unsigned long long)(uintptr_t)__kernel_end,
		(unsigned long long)(uintptr_t)__bss_start, (unsigned long long)(uintptr_t)__bss_end);
	kprintf("part1: LBA %u, %u sectors (%u MiB)\n", bi->part1_lba, bi->part1_sectors,
		bi->part1_sectors / 2048);
	if (bi->kernel_load != (uint64_t)(uintptr_t)__kernel_start - KERNEL_VMA)
		panic("kernel loaded at 0x%08x but linked for physical 0x%016llx (KERNEL_VMA + load): "
		      "the image's kernel header is wrong", bi->kernel_load,
		      (unsigned long long)((uintptr_t)__kernel_start - KERNEL_VMA));
}

/* With RAM above 4 GiB (vm.h): take 1 MiB there, write a pattern that
 * depends on each qword's address, read it back, and say so on one line
 * (the 6 GiB boot test asserts it). */
static void check_high_memory(void)
{
	uint64_t base, end;
	vm_high_range(&base, &end);
	if (base == end)
		return;
	const size_t bytes = 1u << 20;
	volatile uint64_t *p = vm_high_alloc(bytes);
	if (!p)
		panic("vm: %llu MiB above 4 GiB reported, but vm_high_alloc(%u) failed",
		      (unsigned long long)((end - base) >> 20), (unsigned)bytes);
	for (size_t i = 0; i < bytes / 8; i++)
		p[i] = (uint64_t)(uintptr_t)&p[i] ^ 0x5A5AA5A5F00DCAFEull;
	for (size_t i = 0; i < bytes / 8; i++)
		if (p[i] != ((uint64_t)(uintptr_t)&p[i] ^ 0x5A5AA5A5F00DCAFEull))
			panic("vm: RAM above 4 GiB at %p read back 0x%016llx", (void *)&p[i],
			      (unsigned long long)p[i]);
	kprintf("vm: high memory: wrote and read back %u KiB at 0x%016llx\n", (unsigned)(bytes >> 10),
		(unsigned long long)(uintptr_t)p);
}

#ifdef FLUID_PAD_KIB
static void check_pad(void)
{
	const volatile uint8_t *p = fluid_pad;
	uint8_t first = p[0], last = p[sizeof fluid_pad - 1];
	if (first != FLUID_PAD_FIRST || last != FLUID_PAD_LAST)
		panic("pad: .rodata padding at %p reads 0x%02x..0x%02x, expected 0x%02x..0x%02x: "
		      "the kernel's tail was not loaded", (const void *)fluid_pad, first, last,
		      FLUID_PAD_FIRST, FLUID_PAD_LAST);
	kprintf("pad: %u KiB of .rodata at %p, last byte 0x%02x at %p ok\n", FLUID_PAD_KIB,
		(const void *)fluid_pad, last, (const void *)&fluid_pad[sizeof fluid_pad - 1]);
}
#endif

#if defined(FLUID_FAULT) && FLUID_FAULT == 1
/* Triple fault: with an empty IDT, int3 cannot be delivered (#GP), nor can
 * the #GP (#DF), nor the #DF: the CPU resets (QEMU -no-reboot exits 0). */
static void fault_triple(void)
{
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } null_idt = { 0, 0 };
	__asm__ volatile("lidt %0\n\tint3" : : "m"(null_idt) : "memory");
}
#endif

#if defined(FLUID_FAULT) && FLUID_FAULT == 5
/* Kernel stack overflow: recurse into the guard page (#PF, then #DF while
 * pushing the #PF frame, delivered on its own IST stack). */
static volatile int overflow_stop;
static unsigned fault_stack_overflow(unsigned depth)
{
	volatile uint8_t frame[512];
	frame[0] = (uint8_t)depth;
	if (overflow_stop)
		return 0;
	return fault_stack_overflow(depth + 1) + frame[0];
}
#endif

#if defined(FLUID_FAULT) && FLUID_FAULT >= 6 && FLUID_FAULT <= 8
/* W^X faults (vm.h): 6 writes to kernel .text (read-only), 7 calls into a
 * heap block holding a ret, 8 calls into a stack buffer holding a ret
 * (both no-execute). Each must end in a #PF dump naming the address. */
static void fault_wx(void)
{
	volatile uint8_t buf[64];
	volatile uint8_t *target;
	if (FLUID_FAULT == 6) {
		target = (volatile uint8_t *)(uintptr_t)kernel_main;
		kprintf("fault: writing to kernel .text at 0x%016llx\n", (unsigned long long)(uintptr_t)target);
		*target = 0xC3;
	} else {
		target = FLUID_FAULT == 7 ? (volatile uint8_t *)kmalloc(64) : buf;
		target[0] = 0xC3; /* ret */
		kprintf("fault: calling %s data at 0x%016llx\n", FLUID_FAULT == 7 ? "heap" : "stack",
			(unsigned long long)(uintptr_t)target);
		((void (*)(void))(uintptr_t)target)();
	}
}
#endif

#if defined(FLUID_FAULT) && FLUID_FAULT == 2
/* Page fault: write to address 0 (page 0 is not present). */
static void fault_null_write(void)
{
	uintptr_t addr = 0;
	__asm__ volatile("" : "+r"(addr));   /* hide the NULL from the optimizer */
	*(volatile uint32_t *)addr = 0xDEADBEEF;
}
#endif

void kernel_main(uint32_t magic, const struct boot_info *bi)
{
	/* First thing: under QEMU -icount the TSC counts guest instructions,
	 * so this is the cost of the whole boot path from reset (bootbench). */
	uint64_t tsc_at_main = rdtsc();

	serial_init();
	vga_init();
	kprintf("Fluid OS %s (BareFlow-LLVM)\n", FLUID_VERSION);
	vga_pin_rows(1);        /* the banner stays on top of the screen */
	if (magic != BOOTINFO_MAGIC)
		panic("bad boot magic 0x%08x in ESI (expected 0x%08x): not started by Fluid stage 2",
		      magic, BOOTINFO_MAGIC);
	if (bi->magic != BOOTINFO_MAGIC || bi->version != BOOTINFO_VERSION)
		panic("boot_info at %p: magic 0x%08x version %u, expected 0x%08x version %u",
		      (const void *)bi, bi->magic, bi->version, BOOTINFO_MAGIC, BOOTINFO_VERSION);
	kprintf("boot: kernel_main reached at tsc=%llu\n", (unsigned long long)tsc_at_main);
	kprintf("serial: COM1 %s\n", serial_status());
	print_boot_info(bi);

	gdt_init();
	idt_init();
	pic_init();
	vm_init(bi);
	timer_init();
	fpu_init();
	heap_init(bi);
	check_high_memory();
#ifdef FLUID_PAD_KIB
	check_pad();
#endif

#if defined(FLUID_FAULT) && FLUID_FAULT == 1
	fault_triple();
#elif defined(FLUID_FAULT) && FLUID_FAULT == 2
	fault_null_write();
#elif defined(FLUID_FAULT) && FLUID_FAULT == 5
	fault_stack_overflow(0);
#elif defined(FLUID_FAULT) && FLUID_FAULT >= 6 && FLUID_FAULT <= 8
	fault_wx();
#elif defined(FLUID_FAULT) && FLUID_FAULT == 3
	for (;;)
		cpu_pause();    /* a hung workload: interrupts on, no more output */
#endif

#ifdef FLUID_KTEST
	ktest_run_all();
#else
	char why[200] = "";
	int rc = workload_run(bi, why, sizeof why);
	if (rc != 0 && why[0])
		fluid_end_fail("module", "%s", why);
	if (rc != 0)
		fluid_end_fail("module", "workload returned %d", rc);
	fluid_end_pass();
#endif
}
