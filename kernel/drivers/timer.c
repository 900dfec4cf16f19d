/*
 * timer.c — PIT channel 0 as the system tick (IRQ0, TIMER_HZ) and the TSC
 * frequency measured against it.
 */
#include <stdint.h>
#include "console.h"
#include "cpu.h"
#include "idt.h"
#include "panic.h"
#include "pic.h"
#include "timer.h"

#define PIT_CH0_DATA      0x40
#define PIT_COMMAND       0x43
#define PIT_INPUT_HZ      1193182u
/* Channel 0, access lobyte/hibyte, mode 2 (rate generator), binary. */
#define PIT_CMD_CH0_RATE  0x34
#define PIT_DIVISOR       ((PIT_INPUT_HZ + TIMER_HZ / 2) / TIMER_HZ)
#define TIMER_IRQ         0
#define CALIBRATE_TICKS   50u   /* 50 ms at 1000 Hz */
#define TICK_WAIT_TSC_MAX 4000000000ull /* give up waiting for IRQ0 */

static volatile uint64_t ticks;
static uint32_t khz;

static void timer_irq(struct int_frame *f)
{
	(void)f;
	ticks++;
}

uint64_t timer_ticks(void)
{
	uint32_t fl = irq_save();   /* 64-bit read must not tear */
	uint64_t t = ticks;
	irq_restore(fl);
	return t;
}

uint32_t tsc_khz(void)
{
	return khz;
}

/* Wait for the tick count to pass t; panics if IRQ0 never arrives. */
static uint64_t wait_tick_after(uint64_t t)
{
	uint64_t start = rdtsc();
	uint64_t now;
	while ((now = timer_ticks()) <= t) {
		if (rdtsc() - start > TICK_WAIT_TSC_MAX)
			panic("timer: no IRQ0 tick after %llu TSC cycles (PIT or PIC not delivering; IF=%u)",
			      (unsigned long long)TICK_WAIT_TSC_MAX,
			      (read_eflags() & EFLAGS_IF) ? 1u : 0u);
		cpu_pause();
	}
	return now;
}

void timer_sleep_ms(uint32_t ms)
{
	uint64_t end = timer_ticks() + ((uint64_t)ms * TIMER_HZ + 999) / 1000;
	while (timer_ticks() < end)
		hlt();
}

void timer_init(void)
{
	uint32_t a, b, c, d;
	cpuid(1, &a, &b, &c, &d);
	if (!(d & CPUID_EDX_TSC))
		panic("timer: CPU has no TSC (CPUID.1:EDX bit 4); Fluid OS needs rdtsc");

	interrupt_register(IRQ_BASE + TIMER_IRQ, timer_irq);
	outb(PIT_COMMAND, PIT_CMD_CH0_RATE);
	outb(PIT_CH0_DATA, PIT_DIVISOR & 0xFF);
	outb(PIT_CH0_DATA, (PIT_DIVISOR >> 8) & 0xFF);
	pic_unmask(TIMER_IRQ);
	sti();

	/* Start on a tick edge, count TSC cycles over CALIBRATE_TICKS ticks. */
	uint64_t t0 = wait_tick_after(timer_ticks());
	uint64_t tsc0 = rdtsc();
	uint64_t t1 = wait_tick_after(t0 + CALIBRATE_TICKS - 1);
	uint64_t tsc1 = rdtsc();
	uint64_t ms = (t1 - t0) * 1000 / TIMER_HZ;
	khz = (uint32_t)((tsc1 - tsc0) / ms);
	kprintf("timer: PIT %u Hz (divisor %u), TSC %u.%03u MHz (over %llu ms)\n",
		TIMER_HZ, PIT_DIVISOR, khz / 1000, khz % 1000, (unsigned long long)ms);
}
