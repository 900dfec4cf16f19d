/*
 * test_pad.c — with -DFLUID_PAD_KIB, the last byte of the .rodata padding
 * reads back as written (stage 2 loaded the whole kernel, not a prefix).
 */
#include <stdint.h>
#include "kernel.h"
#include "ktest.h"

#ifdef FLUID_PAD_KIB
KTEST(pad_tail_loaded)
{
	const volatile uint8_t *p = fluid_pad;
	KT_EQ_U(p[0], FLUID_PAD_FIRST);
	KT_EQ_U(p[FLUID_PAD_KIB * 1024 - 1], FLUID_PAD_LAST);
	KT_ASSERT((uintptr_t)&fluid_pad[FLUID_PAD_KIB * 1024 - 1] < (uintptr_t)__kernel_end);
}
#endif
