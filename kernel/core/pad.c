/*
 * pad.c — with -DFLUID_PAD_KIB=<n>, n KiB of .rodata whose first and last
 * bytes are known, so a test can prove the kernel's tail was loaded.
 */
#include <stdint.h>
#include "kernel.h"

#ifdef FLUID_PAD_KIB
_Static_assert(FLUID_PAD_KIB > 0, "FLUID_PAD_KIB must be at least 1");
__attribute__((used)) const uint8_t fluid_pad[FLUID_PAD_KIB * 1024] = {
	[0] = FLUID_PAD_FIRST,
	[FLUID_PAD_KIB * 1024 - 1] = FLUID_PAD_LAST,
};
#endif
