/*
 * idt.h — the IDT (256 vectors, NASM stubs in arch/isr.asm), the interrupt
 * frame and the handler registry.
 *
 * Vectors 0..31 are CPU exceptions: with no registered handler they go to
 * the exception filter, if one is set (a module's fault is contained there),
 * else print a register dump and end the run (EXIT_CPU_EXCEPTION).  Vectors 32..47 are the
 * PIC's IRQ 0..15 (EOI is sent by the dispatcher).  Any other vector without
 * a handler panics.
 */
#ifndef FLUID_IDT_H
#define FLUID_IDT_H

#include <stdint.h>

#define IDT_VECTORS     256
#define EXC_VECTORS     32
#define IRQ_BASE        0x20   /* master PIC: vectors 0x20..0x27 */
#define IRQ_SLAVE_BASE  0x28   /* slave PIC:  vectors 0x28..0x2f */
#define IRQ_COUNT       16

#define EXC_NMI         2
#define EXC_DOUBLE_FAULT 8
#define EXC_PAGE_FAULT  14
#define EXC_MACHINE_CHECK 18

/* Layout pushed by isr.asm's common stub (lowest address first). In long
 * mode the CPU always pushes RSP and SS, so rsp is the stack pointer at
 * the interrupted instruction. */
struct int_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, err;
	uint64_t rip, cs, rflags, rsp, ss;   /* pushed by the CPU */
};
_Static_assert(sizeof(struct int_frame) == 22 * 8, "isr.asm pushes 22 qwords");

typedef void (*int_handler)(struct int_frame *f);
/* Looks at an exception nobody registered a handler for before the dump
 * (or at a software interrupt to an unhandled vector >= 48, before the
 * panic): returns 1 when it took the exception (and made *f safe to return to),
 * 0 to let the dump end the run. */
typedef int (*int_filter)(struct int_frame *f);

void idt_init(void);
/* Install h for vector (replaces any previous handler); NULL removes it. */
void interrupt_register(unsigned vector, int_handler h);
/* Called by isr.asm. */
void interrupt_dispatch(struct int_frame *f);
const char *exception_name(unsigned vector);
/* Install fn as the exception filter (kernel/module/guard.c while a module
 * runs); NULL removes it. */
void exception_set_filter(int_filter fn);
/* Spurious IRQ 7/15 seen so far. */
unsigned irq_spurious_count(void);

/* The exception dump (exceptions.c); does not return. */
__attribute__((noreturn)) void exception_dump(const struct int_frame *f);

#endif
