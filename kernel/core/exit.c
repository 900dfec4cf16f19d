/*
 * exit.c — ending a run: the FLUID-END line the host looks for, then the
 * isa-debug-exit write (QEMU exits with (code << 1) | 1).
 */
#include <stdarg.h>
#include "bootinfo.h"
#include "console.h"
#include "cpu.h"
#include "exit.h"
#include "fmt.h"
#include "string.h"
#include "timer.h"

void qemu_exit(uint32_t code)
{
	outl(DEBUG_EXIT_PORT, code);
	/* Still here: no debug-exit device (real hardware).  Stop for good. */
	for (;;) {
		cli();
		hlt();
	}
}

/* The TSC at the end of the run, just before the FLUID-END line: under
 * QEMU -icount the guest instructions of the whole run (bootbench). */
static void print_end_tsc(void)
{
	kprintf("boot: run ended at tsc=%llu\n", (unsigned long long)rdtsc());
}

void fluid_end_pass(void)
{
	print_end_tsc();
	kprintf("FLUID-END pass\n");
	qemu_exit(EXIT_PASS);
}

static uint32_t class_code(const char *cls)
{
	if (!strcmp(cls, "test"))
		return EXIT_TEST_FAIL;
	if (!strcmp(cls, "exception"))
		return EXIT_CPU_EXCEPTION;
	if (!strcmp(cls, "module"))
		return EXIT_MODULE_FAIL;
	return EXIT_PANIC;
}

void fluid_end_fail(const char *cls, const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	print_end_tsc();
	kprintf("FLUID-END fail %s: %s\n", cls, reason);
	qemu_exit(class_code(cls));
}
