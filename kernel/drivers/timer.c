/*
 * timer.c — PIT channel 0 as the system tick (IRQ0, TIMER_HZ), and the TSC
 * frequency measured against PIT channel 2 in one-shot mode, polled through
 * port 0x61 (as Linux's pit_calibrate_tsc does).  Polling the counter's
 * output, not counting IRQ0 ticks, keeps the measurement right when timer
 * interrupts arrive late (QEMU TCG on a busy host coalesces them).
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
#define PIT_CH2_DATA      0x42
/* Channel 2, access lobyte/hibyte, mode 0 (interrupt on terminal count). */
#define PIT_CMD_CH2_ONESHOT 0xB0
#define PORT_B            0x61  /* system control port B */
#define PORTB_GATE2       0x01  /* channel 2 gate */
#define PORTB_SPEAKER     0x02  /* speaker data enable: keep off */
#define PORTB_OUT2        0x20  /* channel 2 output (read-only) */
#define TIMER_IRQ         0
#define CALIBRATE_MS      5u
#define CALIBRATE_RUNS    2     /* keep the shortest: delays only add cycles */
#define CALIBRATE_COUNT   ((PIT_INPUT_HZ * CALIBRATE_MS + 500) / 1000)
#define OUT2_SPIN_MAX     100000000u
#define TICK_WAIT_TSC_MAX 4000000000ull /* give up waiting for IRQ0 */

static volatile uint64_t ticks;
static uint32_t khz;
static timer_tick_hook tick_hook;

static void timer_irq(struct int_frame *f)
{
	ticks++;
	if (tick_hook)
		tick_hook(f, ticks);
}

void timer_set_tick_hook(timer_tick_hook fn)
{
	tick_hook = fn;
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
	if (!(read_eflags() & EFLAGS_IF))
		panic("timer_sleep_ms(%u) with interrupts disabled would never wake", ms);
	uint64_t end = timer_ticks() + ((uint64_t)ms * TIMER_HZ + 999) / 1000;
	while (timer_ticks() < end)
		hlt();
}

/* TSC cycles while PIT channel 2 counts CALIBRATE_COUNT input clocks. */
static uint64_t tsc_over_pit_oneshot(void)
{
	uint8_t portb = inb(PORT_B);
	outb(PORT_B, (uint8_t)((portb & ~PORTB_SPEAKER) | PORTB_GATE2));
	outb(PIT_COMMAND, PIT_CMD_CH2_ONESHOT);
	outb(PIT_CH2_DATA, CALIBRATE_COUNT & 0xFF);
	outb(PIT_CH2_DATA, (CALIBRATE_COUNT >> 8) & 0xFF);  /* OUT2 low, counting */
	uint64_t t0 = rdtsc();
	unsigned i;
	for (i = 0; i < OUT2_SPIN_MAX; i++)
		if (inb(PORT_B) & PORTB_OUT2)
			break;
	uint64_t t1 = rdtsc();
	outb(PORT_B, portb);
	if (i == OUT2_SPIN_MAX)
		panic("timer: PIT channel 2 output never went high (port 0x61 bit 5) after %u polls; "
		      "cannot calibrate the TSC", OUT2_SPIN_MAX);
	return t1 - t0;
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

	/* IRQ0 must actually arrive: wait for two ticks. */
	wait_tick_after(wait_tick_after(timer_ticks()));

	uint64_t best = ~0ull;
	for (int i = 0; i < CALIBRATE_RUNS; i++) {
		uint64_t c = tsc_over_pit_oneshot();
		if (c < best)
			best = c;
	}
	/* kHz = cycles / ms, with ms = CALIBRATE_COUNT / PIT_INPUT_HZ * 1000. */
	khz = (uint32_t)(best * PIT_INPUT_HZ / ((uint64_t)CALIBRATE_COUNT * 1000));
	kprintf("timer: PIT %u Hz (divisor %u) on IRQ0, TSC %u.%03u MHz (PIT channel 2, best of %u x %u ms)\n",
		TIMER_HZ, PIT_DIVISOR, khz / 1000, khz % 1000, CALIBRATE_RUNS, CALIBRATE_MS);
}
