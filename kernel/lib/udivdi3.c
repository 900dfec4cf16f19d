/*
 * udivdi3.c — the 64-bit division helpers clang calls on i686
 * (__udivdi3, __umoddi3, __divdi3, __moddi3, __udivmoddi4), since no
 * compiler runtime is linked. On x86_64 the compiler divides inline and
 * never calls them; they stay for code built for i686 against this kernel
 * API, and the fmt_udivdi3 test calls them directly.  No 64-bit '/' or '%' may appear in this file.
 */
#include <stdint.h>
#include "panic.h"

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t n, int64_t d);
int64_t __moddi3(int64_t n, int64_t d);

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem)
{
	uint64_t q;
	uint64_t r;

	if (d == 0)
		panic("64-bit division by zero (dividend %llu)", (unsigned long long)n);

	if ((d >> 32) == 0) {
		/* 32-bit divisor: two divl steps (high word, then remainder:low). */
		uint32_t dd = (uint32_t)d;
		uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n;
		uint32_t qhi = hi / dd;
		uint32_t r32 = hi % dd;  /* < dd, so the second divl cannot overflow */
		uint32_t qlo;
		__asm__("divl %4" : "=a"(qlo), "=d"(r32) : "a"(lo), "d"(r32), "rm"(dd));
		q = ((uint64_t)qhi << 32) | qlo;
		r = r32;
	} else if (d > n) {
		q = 0;
		r = n;
	} else {
		/* Shift-subtract: align d's top bit with n's, then one bit per step. */
		int shift = __builtin_clzll(d) - __builtin_clzll(n);
		d <<= shift;
		q = 0;
		r = n;
		for (int i = 0; i <= shift; i++) {
			q <<= 1;
			if (r >= d) {
				r -= d;
				q |= 1;
			}
			d >>= 1;
		}
	}
	if (rem)
		*rem = r;
	return q;
}

uint64_t __udivdi3(uint64_t n, uint64_t d)
{
	return __udivmoddi4(n, d, 0);
}

uint64_t __umoddi3(uint64_t n, uint64_t d)
{
	uint64_t r;
	__udivmoddi4(n, d, &r);
	return r;
}

int64_t __divdi3(int64_t n, int64_t d)
{
	uint64_t un = n < 0 ? -(uint64_t)n : (uint64_t)n;
	uint64_t ud = d < 0 ? -(uint64_t)d : (uint64_t)d;
	uint64_t q = __udivmoddi4(un, ud, 0);
	return (n < 0) != (d < 0) ? (int64_t)-q : (int64_t)q;
}

int64_t __moddi3(int64_t n, int64_t d)
{
	uint64_t un = n < 0 ? -(uint64_t)n : (uint64_t)n;
	uint64_t ud = d < 0 ? -(uint64_t)d : (uint64_t)d;
	uint64_t r;
	__udivmoddi4(un, ud, &r);
	return n < 0 ? (int64_t)-r : (int64_t)r;
}
