/*
 * exceptions.c — the dump for a CPU exception nobody handled: vector, name,
 * error code, EIP/CS/EFLAGS, control registers, general registers and a
 * backtrace, on COM1 and VGA; then "FLUID-END fail exception: <name>".
 */
#include <stdint.h>
#include "backtrace.h"
#include "bootinfo.h"
#include "console.h"
#include "cpu.h"
#include "exit.h"
#include "gdt.h"
#include "idt.h"
#include "kernel.h"
#include "paging.h"
#include "serial.h"
#include "vga.h"

#define PF_PRESENT  0x1
#define PF_WRITE    0x2
#define PF_USER     0x4
#define PF_RSVD     0x8
#define PF_IFETCH   0x10

static int dumping;

void exception_dump(const struct int_frame *f)
{
	cli();
	if (dumping++) {
		/* A fault while dumping: say so on the raw port and leave. */
		static const char msg[] = "*** CPU EXCEPTION during exception dump\nFLUID-END fail exception: nested\n";
		serial_write(msg, sizeof msg - 1);
		qemu_exit(EXIT_CPU_EXCEPTION);
	}
	const char *name = exception_name(f->vector);
	uint32_t cr2 = read_cr2();

	vga_set_color(VGA_WHITE, VGA_RED);
	kprintf("\n*** CPU EXCEPTION %u (%s) err=0x%08x\n", f->vector, name, f->err);
	vga_set_color(VGA_LIGHT_GREY, VGA_BLACK);
	if (f->vector == EXC_PAGE_FAULT)
		kprintf("page fault at 0x%08x: %s, %s access, %s mode%s%s\n", cr2,
			(f->err & PF_PRESENT) ? "protection violation" : "page not present",
			(f->err & PF_WRITE) ? "write" : "read",
			(f->err & PF_USER) ? "user" : "kernel",
			(f->err & PF_IFETCH) ? ", instruction fetch" : "",
			(f->err & PF_RSVD) ? ", reserved bit set" : "");
	if (f->vector == EXC_PAGE_FAULT || f->vector == EXC_DOUBLE_FAULT) {
		uint32_t guard = (uint32_t)(uintptr_t)kernel_stack_guard;
		if (cr2 >= guard && cr2 < guard + PAGE_SIZE)
			kprintf("kernel stack overflow: CR2 0x%08x is in the stack guard page 0x%08x "
				"(stack 0x%08x-0x%08x, %u KiB)\n", cr2, guard,
				(unsigned)(uintptr_t)kernel_stack_bottom, (unsigned)(uintptr_t)kernel_stack_top,
				(unsigned)((kernel_stack_top - kernel_stack_bottom) / 1024));
	}
	kprintf("EIP=%08x CS=%04x EFLAGS=%08x\n", f->eip, f->cs & 0xFFFF, f->eflags);
	kprintf("CR0=%08x CR2=%08x CR3=%08x CR4=%08x\n", read_cr0(), cr2, read_cr3(), read_cr4());
	kprintf("EAX=%08x EBX=%08x ECX=%08x EDX=%08x\n", f->eax, f->ebx, f->ecx, f->edx);
	/* The CPU pushed EIP/CS/EFLAGS (12 bytes) before our stub: ESP at the fault. */
	kprintf("ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n", f->esi, f->edi, f->ebp,
		f->esp_at_pusha + 5 * 4);
	kprintf("DS=%04x ES=%04x FS=%04x GS=%04x\n", f->ds & 0xFFFF, f->es & 0xFFFF,
		f->fs & 0xFFFF, f->gs & 0xFFFF);
	backtrace_print(f->eip, f->ebp);
	fluid_end_fail("exception", "%s", name);
}

/* module_call's saved kernel stack pointer (arch/modcall.asm), nonzero
 * while a module runs. */
extern volatile uint32_t module_call_esp;

/*
 * The double-fault task (GDT_TSS_DF, reached through the task gate at IDT
 * vector 8).  The task switch saved the faulting code's registers in the
 * main TSS; turn them into an int_frame and offer it to the exception
 * filter: a module that ran its stack into an unmapped page (deep
 * recursion into the kernel stack's guard page, or ESP loaded with
 * garbage) faults while the CPU pushes the exception frame, which is a
 * double fault whose EIP is in the module. If the filter (the module
 * guard) takes it, the main task resumes where the filter said
 * (module_call_abort) on the stack module_call saved, and iret returns to
 * it. Otherwise dump as for any exception.
 *
 * Invariant: the loop body starts with the error code the CPU pushed on
 * this task's stack on top; it is popped right after the iret, where this
 * task resumes at its next double fault, so the stack does not grow.
 */
__attribute__((noreturn)) void double_fault_task(void);
void double_fault_task(void)
{
	for (;;) {
		const struct tss *t = gdt_main_tss();
		struct int_frame f = {
			.gs = t->gs, .fs = t->fs, .es = t->es, .ds = t->ds,
			.edi = t->edi, .esi = t->esi, .ebp = t->ebp,
			.esp_at_pusha = t->esp - 5 * 4,   /* exception_dump adds 20 back */
			.ebx = t->ebx, .edx = t->edx, .ecx = t->ecx, .eax = t->eax,
			.vector = EXC_DOUBLE_FAULT, .err = 0,
			.eip = t->eip, .cs = t->cs, .eflags = t->eflags,
		};
		if (!module_call_esp || !exception_filter_take(&f))
			exception_dump(&f);
		gdt_main_tss_resume(&f, module_call_esp);
		__asm__ volatile("iret\n\taddl $4, %%esp" ::: "memory");
	}
}
