/*
 * test_interrupts.c — the IDT delivers software interrupts to registered
 * handlers with a live frame, and timer IRQs arrive while IF=1.
 */
#include <stdint.h>
#include "cpu.h"
#include "idt.h"
#include "ktest.h"
#include "pic.h"
#include "timer.h"

#define TEST_SOFT_VECTOR 0x40

static volatile unsigned bp_count;
static volatile uint32_t bp_eip;

static void on_breakpoint(struct int_frame *f)
{
	bp_count++;
	bp_eip = f->eip;
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
	f->eax = f->eax * 3 + f->vector;   /* the handler's write reaches the caller */
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
	uint32_t expect;
	bp_count = 0;
	interrupt_register(3, on_breakpoint);
	__asm__ volatile("int3\n\t"
			 "2:\n\t"
			 "movl $2b, %0" : "=r"(expect) : : "memory");
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
	KT_EQ_U(irq_spurious_count(), 0);
}
