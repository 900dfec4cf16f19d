/*
 * test_interrupts.c — the IDT delivers software interrupts to registered
 * handlers with a live frame, and timer IRQs arrive while IF=1; the NMI
 * and #MC gates switch to their own IST stacks (a gate's IST applies to
 * `int N` too, so software can check it; #DF's IST is the fault kernel
 * FLUID_FAULT=5's business: `int $8` would push no error code).
 */
#include <stdint.h>
#include "cpu.h"
#include "gdt.h"
#include "idt.h"
#include "ktest.h"
#include "pic.h"
#include "timer.h"

#define TEST_SOFT_VECTOR 0x40

static volatile unsigned bp_count;
static volatile uint64_t bp_eip;

static void on_breakpoint(struct int_frame *f)
{
	bp_count++;
	bp_eip = f->rip;
}

KTEST(interrupt_int3_handled_and_counted)
{
	bp_count = 0;
	interrupt_register(3, on_breakpoint);
	__asm__ volatile("int3" ::: "memory");
	__asm__ volatile("int3" ::: "memory");
	interrupt_register(3, 0);
	KT_EQ_U(bp_count, 2);
}

static void on_soft(struct int_frame *f)
{
	f->rax = f->rax * 3 + f->vector;   /* the handler's write reaches the caller */
}

KTEST(interrupt_software_vector_frame)
{
	uint32_t v = 14;
	interrupt_register(TEST_SOFT_VECTOR, on_soft);
	__asm__ volatile("int %1" : "+a"(v) : "i"(TEST_SOFT_VECTOR) : "memory");
	interrupt_register(TEST_SOFT_VECTOR, 0);
	KT_EQ_U(v, 14 * 3 + TEST_SOFT_VECTOR);
}

KTEST(interrupt_int3_eip_is_next_instruction)
{
	uint64_t expect;
	bp_count = 0;
	interrupt_register(3, on_breakpoint);
	__asm__ volatile("int3\n\t"
			 "2:\n\t"
			 "leaq 2b(%%rip), %0" : "=r"(expect) : : "memory");
	interrupt_register(3, 0);
	KT_EQ_U(bp_count, 1);
	KT_EQ_U(bp_eip, expect);
}

KTEST(interrupt_timer_irq_ticks)
{
	KT_ASSERT(read_eflags() & EFLAGS_IF);
	KT_EQ_U(pic_get_mask() & 1, 0);            /* IRQ0 unmasked */
	KT_EQ_U(pic_get_mask() & 0xFFFE, 0xFFFE); /* everything else masked */
	uint64_t t0 = timer_ticks();
	for (int i = 0; i < 20; i++)
		hlt();          /* each hlt returns on the next interrupt */
	uint64_t t1 = timer_ticks();
	KT_ASSERT(t1 - t0 >= 19);
	KT_ASSERT(t1 - t0 <= 40);
}

/* An IRQ 7 / IRQ 15 whose in-service bit is clear is spurious: counted, no
 * handler call, no EOI.  Dispatch synthesized frames with IF=0 (nothing is
 * in service outside an interrupt handler, so the PIC reports spurious). */
static volatile unsigned irq7_calls;
static void on_irq7(struct int_frame *f)
{
	(void)f;
	irq7_calls++;
}

KTEST(interrupt_spurious_irq7_irq15)
{
	struct int_frame f = { 0 };
	unsigned before = irq_spurious_count();
	irq7_calls = 0;
	interrupt_register(IRQ_BASE + 7, on_irq7);
	uint64_t fl = irq_save();
	f.vector = IRQ_BASE + 7;
	interrupt_dispatch(&f);
	f.vector = IRQ_SLAVE_BASE + 7;
	interrupt_dispatch(&f);
	irq_restore(fl);
	interrupt_register(IRQ_BASE + 7, 0);
	KT_EQ_U(irq_spurious_count() - before, 2);
	KT_EQ_U(irq7_calls, 0);
	/* The timer still ticks afterwards (no EOI was lost or doubled). */
	uint64_t t0 = timer_ticks();
	hlt();
	hlt();
	KT_ASSERT(timer_ticks() > t0);
}

static volatile uintptr_t ist_seen_sp;

static void on_ist_vector(struct int_frame *f)
{
	volatile uint8_t here;
	(void)f;
	ist_seen_sp = (uintptr_t)&here;
}

KTEST(nmi_and_mc_run_on_their_ist_stacks)
{
	static const struct {
		unsigned vector, ist;
	} gates[] = { { EXC_NMI, IST_NMI }, { EXC_MACHINE_CHECK, IST_MACHINE_CHECK } };
	for (unsigned i = 0; i < sizeof gates / sizeof gates[0]; i++) {
		uintptr_t lo, hi;
		gdt_ist_stack(gates[i].ist, &lo, &hi);
		ist_seen_sp = 0;
		interrupt_register(gates[i].vector, on_ist_vector);
		if (gates[i].vector == EXC_NMI)
			__asm__ volatile("int $2" ::: "memory");
		else
			__asm__ volatile("int $18" ::: "memory");
		interrupt_register(gates[i].vector, 0);
		if (ist_seen_sp < lo || ist_seen_sp >= hi)
			ktest_fail(__FILE__, __LINE__, "vector %u ran its handler at sp 0x%llx, not on IST %u [0x%llx, 0x%llx)",
				   gates[i].vector, (unsigned long long)ist_seen_sp, gates[i].ist,
				   (unsigned long long)lo, (unsigned long long)hi);
	}
}
