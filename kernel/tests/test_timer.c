/*
 * test_timer.c — the PIT tick rate and the TSC calibration agree.
 */
#include <stdint.h>
#include "ktest.h"
#include "timer.h"

KTEST(timer_tsc_khz_plausible)
{
	/* Between 50 MHz and 20 GHz. */
	KT_ASSERT(tsc_khz() > 50000);
	KT_ASSERT(tsc_khz() < 20000000);
}

KTEST(timer_sleep_and_tsc_agree)
{
	uint64_t t0 = timer_ticks();
	uint64_t c0 = rdtsc();
	timer_sleep_ms(100);
	uint64_t c1 = rdtsc();
	uint64_t t1 = timer_ticks();
	KT_ASSERT(t1 - t0 >= 100 * TIMER_HZ / 1000);
	/* 100 ms of ticks by the TSC: 75..250 ms.  Late ticks (a busy TCG host)
	 * only make the sleep longer; a TSC calibration off by 4x fails. */
	uint64_t us = (c1 - c0) * 1000 / tsc_khz();
	if (us < 75000 || us > 250000)
		ktest_fail(__FILE__, __LINE__, "a 100 ms sleep took %llu us by the TSC (tsc_khz %u)",
			   (unsigned long long)us, tsc_khz());
}

KTEST(timer_rdtsc_monotonic)
{
	uint64_t a = rdtsc(), b = rdtsc();
	KT_ASSERT(b > a);
}
