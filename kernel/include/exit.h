/*
 * exit.h — ending a run: the FLUID-END line and the QEMU isa-debug-exit write.
 */
#ifndef FLUID_EXIT_H
#define FLUID_EXIT_H

#include <stdint.h>

/* Write code to DEBUG_EXIT_PORT (QEMU exits (code<<1)|1); if still running
 * (real hardware, no debug-exit device) disable interrupts and halt forever. */
__attribute__((noreturn)) void qemu_exit(uint32_t code);

/* Print "FLUID-END pass" and exit EXIT_PASS. */
__attribute__((noreturn)) void fluid_end_pass(void);

/* Print "FLUID-END fail <class>: <reason>" and exit with the code for the
 * class: "test" EXIT_TEST_FAIL, "panic" EXIT_PANIC, "exception"
 * EXIT_CPU_EXCEPTION, "module" EXIT_MODULE_FAIL; any other class EXIT_PANIC. */
__attribute__((noreturn, format(printf, 2, 3))) void fluid_end_fail(const char *cls, const char *fmt, ...);

#endif
