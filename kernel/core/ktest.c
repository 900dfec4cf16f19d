/*
 * ktest.c — the in-kernel test runner: every struct ktest between
 * __ktests_start and __ktests_end, one line each, a summary, FLUID-END.
 */
#include <stdarg.h>
#include "console.h"
#include "exit.h"
#include "fmt.h"
#include "heap.h"
#include "ktest.h"
#include "string.h"

extern const struct ktest __ktests_start[], __ktests_end[];

static int failed;
static char why[320];

void ktest_fail(const char *file, int line, const char *fmt, ...)
{
	if (failed)
		return;
	failed = 1;
	int n = ksnprintf(why, sizeof why, "%s:%d: ", file, line);
	if (n < 0 || (size_t)n >= sizeof why)
		return;
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(why + n, sizeof why - (size_t)n, fmt, ap);
	va_end(ap);
}

int ktest_failed(void)
{
	return failed;
}

int ktest_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

void ktest_run_all(void)
{
	unsigned pass = 0, fail = 0;
	unsigned total = (unsigned)(__ktests_end - __ktests_start);

	kprintf("[ktest] running %u tests\n", total);
	for (const struct ktest *t = __ktests_start; t < __ktests_end; t++) {
		failed = 0;
		why[0] = '\0';
		t->fn();
		if (failed) {
			fail++;
			kprintf("[ktest] FAIL %s: %s\n", t->name, why);
		} else {
			pass++;
			kprintf("[ktest] PASS %s\n", t->name);
		}
	}
	kprintf("[ktest] %u passed, %u failed\n", pass, fail);
	if (total == 0)
		fluid_end_fail("test", "no tests registered in .ktests (was the kernel built with kernel/tests/?)");
	if (fail)
		fluid_end_fail("test", "%u failed", fail);
	fluid_end_pass();
}
