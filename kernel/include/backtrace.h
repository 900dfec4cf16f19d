/*
 * backtrace.h — frame-pointer backtrace (EBP chain), addresses only.
 * A frame is followed only while EBP is 4-byte aligned, inside the kernel
 * image (the stack lives in .bss) and increasing; at most BACKTRACE_MAX.
 */
#ifndef FLUID_BACKTRACE_H
#define FLUID_BACKTRACE_H

#include <stdint.h>

#define BACKTRACE_MAX 16

/* Print "  #0 0x........" lines starting with eip, then the callers. */
void backtrace_print(uint32_t eip, uint32_t ebp);
/* While a module runs (kernel/module/guard.c): name addresses in [lo, hi)
 * "module NAME+0xOFF" in backtrace_print; name NULL forgets it. */
void backtrace_set_module(uint32_t lo, uint32_t hi, const char *name);
/* Fill out[] with up to max return addresses; returns how many. */
unsigned backtrace_collect(uint32_t ebp, uint32_t *out, unsigned max);

#endif
