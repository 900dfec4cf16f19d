/*
 * exceptions.c — the dump for a CPU exception nobody handled: vector, name,
 * error code, RIP/CS/RFLAGS/RSP/SS, every general register, CR0/CR2/CR3/
 * CR4 and EFER, and a backtrace (RBP chain), on COM1 and VGA; then
 * "FLUID-END fail exception: <name>". #DF, NMI and #MC arrive here on
 * their own IST stacks (gdt.c), so a kernel stack overflow is reported too.
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
#include "serial.h"
#include "vga.h"
#include "vm.h"

#define PF_PRESENT  0x1
#define PF_WRITE    0x2
#define PF_USER     0x4
#define PF_RSVD     0x8
#define PF_IFETCH   0x10

static int dumping;

typedef unsigned long long ull;

void exception_dump(const struct int_frame *f)
{
	cli();
	if (dumping++) {
		/* A fault while dumping: say so on the raw port and leave. */
		static const char msg[] = "*** CPU EXCEPTION during exception dump\nFLUID-END fail exception: nested\n";
		serial_write(msg, sizeof msg - 1);
		qemu_exit(EXIT_CPU_EXCEPTION);
	}
	const char *name = exception_name((unsigned)f->vector);
	uint64_t cr2 = read_cr2();

	vga_set_color(VGA_WHITE, VGA_RED);
	kprintf("\n*** CPU EXCEPTION %u (%s) err=0x%08llx\n", (unsigned)f->vector, name, (ull)f->err);
	vga_set_color(VGA_LIGHT_GREY, VGA_BLACK);
	if (f->vector == EXC_PAGE_FAULT) {
		kprintf("page fault at 0x%016llx: %s, %s access, %s mode%s\n", (ull)cr2,
			(f->err & PF_PRESENT) ? "protection violation" : "page not present",
			(f->err & PF_IFETCH) ? "instruction fetch" : (f->err & PF_WRITE) ? "write" : "read",
			(f->err & PF_USER) ? "user" : "kernel",
			(f->err & PF_RSVD) ? ", reserved bit set" : "");
		kprintf("page fault: %s\n", vm_describe(cr2));
		/* A fetch fault at a call target: nothing of the callee ran, so
		 * the return address on top of the stack names the caller (the
		 * RBP chain below starts one frame further out). */
		if ((f->err & PF_IFETCH) && f->rip == cr2 && !(f->rsp & 7) && (vm_prot(f->rsp) & VM_R) &&
		    (vm_prot(f->rsp + 7) & VM_R))
			kprintf("page fault: called from 0x%016llx (the return address at RSP)\n",
				(ull)*(const uint64_t *)(uintptr_t)f->rsp);
	}
	if (f->vector == EXC_PAGE_FAULT || f->vector == EXC_DOUBLE_FAULT) {
		uintptr_t guard = (uintptr_t)kernel_stack_guard;
		if ((cr2 >= guard && cr2 < guard + PAGE_SIZE) ||
		    (f->vector == EXC_DOUBLE_FAULT && f->rsp >= guard && f->rsp < guard + PAGE_SIZE + 256))
			kprintf("kernel stack overflow: the stack guard page 0x%016llx was hit "
				"(stack 0x%016llx-0x%016llx, %u KiB)\n", (ull)guard,
				(ull)(uintptr_t)kernel_stack_bottom, (ull)(uintptr_t)kernel_stack_top,
				(unsigned)((kernel_stack_top - kernel_stack_bottom) / 1024));
	}
	kprintf("RIP=%016llx CS=%04llx RFLAGS=%016llx\n", (ull)f->rip, (ull)(f->cs & 0xFFFF), (ull)f->rflags);
	kprintf("RSP=%016llx SS=%04llx RBP=%016llx\n", (ull)f->rsp, (ull)(f->ss & 0xFFFF), (ull)f->rbp);
	kprintf("RAX=%016llx RBX=%016llx RCX=%016llx\n", (ull)f->rax, (ull)f->rbx, (ull)f->rcx);
	kprintf("RDX=%016llx RSI=%016llx RDI=%016llx\n", (ull)f->rdx, (ull)f->rsi, (ull)f->rdi);
	kprintf("R8 =%016llx R9 =%016llx R10=%016llx\n", (ull)f->r8, (ull)f->r9, (ull)f->r10);
	kprintf("R11=%016llx R12=%016llx R13=%016llx\n", (ull)f->r11, (ull)f->r12, (ull)f->r13);
	kprintf("R14=%016llx R15=%016llx\n", (ull)f->r14, (ull)f->r15);
	kprintf("CR0=%016llx CR2=%016llx CR3=%016llx\n", (ull)read_cr0(), (ull)cr2, (ull)read_cr3());
	kprintf("CR4=%016llx EFER=%016llx\n", (ull)read_cr4(), (ull)rdmsr(MSR_EFER));
	backtrace_print(f->rip, f->rbp);
	fluid_end_fail("exception", "%s", name);
}
