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
#include "idt.h"
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
