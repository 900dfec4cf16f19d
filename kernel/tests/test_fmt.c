/*
 * test_fmt.c — every conversion, size, flag, width and precision of
 * ksnprintf, edge values, truncation and the return value.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include "fmt.h"
#include "ktest.h"
#include "string.h"

/*
 * FMT_WITH(fn, want, fmt, ...): format with fn into a buffer larger than
 * any want, compare with want, and check that fn returned its length.
 */
#define FMT_WITH(fn, want, ...)                                         \
	do {                                                            \
		char fbuf_[128];                                        \
		int fn_ = fn(fbuf_, sizeof fbuf_, __VA_ARGS__);         \
		KT_EQ_STR(fbuf_, want);                                 \
		KT_EQ_U(fn_, strlen(want));                             \
	} while (0)

/* Format with ksnprintf (so -Wformat checks the directives). */
#define FMT(want, ...) FMT_WITH(ksnprintf, want, __VA_ARGS__)

KTEST(fmt_signed)
{
	FMT("0", "%d", 0);
	FMT("42", "%d", 42);
	FMT("-1", "%i", -1);
	FMT("2147483647", "%d", INT_MAX);
	FMT("-2147483648", "%d", INT_MIN);
	FMT("-9223372036854775808", "%ld", LONG_MIN); /* LP64: long is 64-bit */
	FMT("9223372036854775807", "%lld", LLONG_MAX);
	FMT("-9223372036854775808", "%lld", LLONG_MIN);
	FMT("-5", "%zd", (size_t)-5);
}

KTEST(fmt_unsigned_hex)
{
	FMT("0", "%u", 0u);
	FMT("4294967295", "%u", UINT_MAX);
	FMT("18446744073709551615", "%lu", ULONG_MAX);
	FMT("18446744073709551615", "%llu", (unsigned long long)UINT64_MAX);
	FMT("4294967296", "%llu", 0x100000000ull);
	FMT("deadbeef", "%x", 0xdeadbeefu);
	FMT("DEADBEEF", "%X", 0xdeadbeefu);
	FMT("0", "%x", 0u);
	FMT("ffffffffffffffff", "%llx", (unsigned long long)UINT64_MAX);
	FMT("123456789ABCDEF0", "%llX", 0x123456789abcdef0ull);
	FMT("4096", "%zu", (size_t)4096);
	FMT("1000", "%zx", (size_t)4096);
}

KTEST(fmt_width_flags)
{
	FMT("   42", "%5d", 42);
	FMT("42   |", "%-5d|", 42);
	FMT("00042", "%05d", 42);
	FMT("-0042", "%05d", -42);
	FMT("  -42", "%5d", -42);
	FMT("0000beef", "%08x", 0xbeefu);
	FMT("42", "%1d", 42);                /* width smaller than the number */
	FMT("   7", "%*d", 4, 7);
	FMT("7   |", "%*d|", -4, 7);         /* negative '*' width = left */
	FMT("-2147483648", "%011d", INT_MIN);
	FMT("-02147483648", "%012d", INT_MIN);
}

KTEST(fmt_precision)
{
	FMT("005", "%.3d", 5);
	FMT("-005", "%.3d", -5);
	FMT("  005", "%5.3d", 5);            /* '0' ignored with a precision */
	FMT("  005", "%05.3d", 5);
	FMT("", "%.0d", 0);
	FMT("ab", "%.2s", "abcdef");
	FMT("abc", "%.10s", "abc");
	FMT("abc", "%.*s", 3, "abcdef");
	FMT("   ab|", "%5.2s|", "abcdef");
}

KTEST(fmt_pointer_string_char)
{
	FMT("0x00001234", "%p", (void *)0x1234);
	FMT("0x00000000", "%p", (void *)0);
	FMT("0xffffffff", "%p", (void *)0xffffffffu);
	FMT("  0x00001234", "%12p", (void *)0x1234);
	FMT("0x00001234  |", "%-12p|", (void *)0x1234);
	FMT("hello", "%s", "hello");
	FMT("(null)", "%s", (char *)0);
	FMT("  abc", "%5s", "abc");
	FMT("abc  |", "%-5s|", "abc");
	FMT("", "%s", "");
	FMT("x", "%c", 'x');
	FMT("  x", "%3c", 'x');
	FMT("x  |", "%-3c|", 'x');
	FMT("100%", "100%%");
	FMT("a1b2c", "a%db%uc", 1, 2u);
}

/* No format attribute: lets the tests pass directives -Wformat rejects. */
static int fmt_raw(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = kvsnprintf(buf, size, f, ap);
	va_end(ap);
	return n;
}

#define FMT_RAW(want, ...) FMT_WITH(fmt_raw, want, __VA_ARGS__)

KTEST(fmt_odd_directives)
{
	FMT_RAW("%q", "%q");                 /* unknown: copied verbatim */
	FMT_RAW("x%", "x%");                 /* lone % at the end */
	FMT_RAW("%5q", "%5q");
	FMT_RAW("-42  |", "%-05d|", -42);    /* '-' overrides '0' */
}

KTEST(fmt_truncation)
{
	char buf[8];
	memset(buf, 'Z', sizeof buf);
	KT_EQ_U(ksnprintf(buf, 4, "abcdef"), 6);   /* would-be length */
	KT_EQ_STR(buf, "abc");
	KT_EQ_U(buf[4], 'Z');                      /* nothing past size */
	memset(buf, 'Z', sizeof buf);
	KT_EQ_U(ksnprintf(buf, 0, "abc"), 3);      /* size 0: no write */
	KT_EQ_U(buf[0], 'Z');
	KT_EQ_U(ksnprintf(buf, 1, "abc"), 3);
	KT_EQ_STR(buf, "");
	KT_EQ_U(ksnprintf(buf, sizeof buf, "%d", 1234567), 7);
	KT_EQ_STR(buf, "1234567");
	KT_EQ_U(ksnprintf(buf, sizeof buf, "%d", 12345678), 8);
	KT_EQ_STR(buf, "1234567");
}

KTEST(fmt_div64) /* 64-bit division, inline on x86_64 (no compiler runtime) */
{
	volatile uint64_t big = UINT64_MAX, ten = 10, odd = 0x100000001ull, zero_hi = 0xfffffffbull;
	volatile int64_t neg = -1000000000007ll, seven = 7;
	KT_EQ_U(big / ten, 1844674407370955161ull);
	KT_EQ_U(big % ten, 5);
	KT_EQ_U(big / odd, 0xffffffffull);
	KT_EQ_U(big % odd, 0);
	KT_EQ_U(zero_hi / ten, 429496729);
	KT_EQ_U(odd / big, 0);
	KT_EQ_U(odd % big, 0x100000001ull);
	KT_ASSERT(neg / seven == -142857142858ll);
	KT_ASSERT(neg % seven == -1ll);
	KT_ASSERT(-neg / -seven == -142857142858ll);
}
