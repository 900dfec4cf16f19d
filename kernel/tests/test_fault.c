/*
 * test_fault.c — with -DFLUID_FAULT=4 the test kernel has one test that
 * must fail, so the harness can check that a failing test ends the run
 * with "FLUID-END fail test: 1 failed" and exit status 35.
 */
#include "ktest.h"

#if defined(FLUID_FAULT) && FLUID_FAULT == 4
KTEST(deliberate_failure)
{
	volatile unsigned two = 2;
	KT_EQ_U(two + 2, 5);
}
#endif
