/*
 * panic.h — fatal kernel error: prints "*** PANIC: <msg>", a backtrace and
 * "FLUID-END fail panic: <msg>", then exits QEMU with EXIT_PANIC.
 */
#ifndef FLUID_PANIC_H
#define FLUID_PANIC_H

__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

#endif
