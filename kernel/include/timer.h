/*
 * timer.h — PIT channel 0 at TIMER_HZ on IRQ0, and the TSC calibrated against it.
 */
#ifndef FLUID_TIMER_H
#define FLUID_TIMER_H

#include <stdint.h>

#define TIMER_HZ 1000u

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Program the PIT, install the IRQ0 handler, enable interrupts (sti) and
 * calibrate the TSC.  Needs idt_init() and pic_init() first. */
void timer_init(void);
/* Timer interrupts since timer_init (1 tick = 1000/TIMER_HZ ms). */
uint64_t timer_ticks(void);
/* TSC frequency in kHz measured against the PIT (0 before timer_init). */
uint32_t tsc_khz(void);
/* Called from IRQ0 after the count went up, with the interrupted frame
 * (it may rewrite f to resume elsewhere) and the new tick count. */
struct int_frame;
typedef void (*timer_tick_hook)(struct int_frame *f, uint64_t now);
/* Install fn (kernel/module/guard.c while a module runs); NULL removes it. */
void timer_set_tick_hook(timer_tick_hook fn);
/* Wait (hlt between ticks) for at least ms milliseconds; needs IF=1
 * (panics otherwise, since no tick could wake it). */
void timer_sleep_ms(uint32_t ms);

#endif
