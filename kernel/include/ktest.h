/*
 * ktest.h — in-kernel tests.  KTEST(name) { ... } defines a test and
 * registers it in section .ktests (the linker script exports
 * __ktests_start/__ktests_end); the test kernel (FLUID_KTEST=1) runs them all.
 *
 * The assertions record the first failure (file:line, expression, values)
 * and return from the test function, so use them only in the KTEST body.
 */
#ifndef FLUID_KTEST_H
#define FLUID_KTEST_H

#include <stdint.h>

struct ktest {
	const char *name;
	void (*fn)(void);
	const char *file;
	int line;
};

#define KTEST(tname)                                                          \
	static void ktest_fn_##tname(void);                                   \
	static const struct ktest ktest_desc_##tname                           \
		__attribute__((section(".ktests"), used, aligned(4))) = {      \
			#tname, ktest_fn_##tname, __FILE__, __LINE__ };        \
	static void ktest_fn_##tname(void)

/* Record a failure of the running test (only the first one is kept). */
void ktest_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 1 if the running test has already failed. */
int ktest_failed(void);
int ktest_str_eq(const char *a, const char *b);

#define KT_ASSERT(cond)                                                       \
	do {                                                                  \
		if (!(cond)) {                                                \
			ktest_fail(__FILE__, __LINE__, "KT_ASSERT(%s)", #cond); \
			return;                                               \
		}                                                             \
	} while (0)

#define KT_EQ_U(a, b)                                                         \
	do {                                                                  \
		uint64_t kt_a_ = (uint64_t)(a), kt_b_ = (uint64_t)(b);        \
		if (kt_a_ != kt_b_) {                                         \
			ktest_fail(__FILE__, __LINE__,                        \
				   "KT_EQ_U(%s, %s): %llu (0x%llx) != %llu (0x%llx)", \
				   #a, #b, (unsigned long long)kt_a_,         \
				   (unsigned long long)kt_a_,                 \
				   (unsigned long long)kt_b_,                 \
				   (unsigned long long)kt_b_);                \
			return;                                               \
		}                                                             \
	} while (0)

#define KT_EQ_STR(a, b)                                                       \
	do {                                                                  \
		const char *kt_a_ = (a), *kt_b_ = (b);                        \
		if (!ktest_str_eq(kt_a_, kt_b_)) {                            \
			ktest_fail(__FILE__, __LINE__,                        \
				   "KT_EQ_STR(%s, %s): \"%s\" != \"%s\"",     \
				   #a, #b, kt_a_, kt_b_);                     \
			return;                                               \
		}                                                             \
	} while (0)

/* Run every registered test, print the summary and the FLUID-END line, exit. */
__attribute__((noreturn)) void ktest_run_all(void);

#endif
