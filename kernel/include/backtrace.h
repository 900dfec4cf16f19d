/*
 * backtrace.h — frame-pointer backtrace (RBP chain), addresses only.
 * A frame is followed only while RBP is 8-byte aligned, inside the kernel
 * image (the stacks live in .bss) and increasing; at most BACKTRACE_MAX.
 */
#ifndef FLUID_BACKTRACE_H
#define FLUID_BACKTRACE_H

#include <stdint.h>

#define BACKTRACE_MAX 16

/* Print "  #0 0x................" lines starting with rip, then the callers. */
void backtrace_print(uint64_t rip, uint64_t rbp);
/* While a module runs (kernel/module/guard.c): name addresses in [lo, hi)
 * "module NAME+0xOFF" in backtrace_print; name NULL forgets it. */
void backtrace_set_module(uintptr_t lo, uintptr_t hi, const char *name);
/* Fill out[] with up to max return addresses; returns how many. */
unsigned backtrace_collect(uint64_t rbp, uint64_t *out, unsigned max);

#endif
