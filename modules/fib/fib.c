/*
 * fib — naive doubly recursive Fibonacci. Its call count is known in closed
 * form, which makes it the reference for profile capture: computing fib(n)
 * enters fib() exactly 2*F(n+1) - 1 times.
 *
 *   default: n = 27 -> fib(27) = 196418, calls = 2*F(28) - 1 = 2*317811 - 1 = 635621
 *   LIGHT=1: n = 18 -> fib(18) = 2584,   calls = 2*F(19) - 1 = 2*4181  - 1 = 8361
 * (F values from the recurrence F(0)=0, F(1)=1; cross-checked by the
 * iterative loop below and by Python: [fib(k) for k in (18, 19, 27, 28)].)
 */
#include "fluid_module.h"

#define FIB_N_DEFAULT      27u
#define FIB_N_LIGHT        18u
#define FIB_27             196418u
#define FIB_18             2584u

__attribute__((noinline)) uint32_t fib(uint32_t n)
{
	if (n < 2)
		return n;
	return fib(n - 1) + fib(n - 2);
}

static uint32_t fib_iter(uint32_t n)
{
	uint32_t a = 0, b = 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	/* volatile: keep the compiler from folding fib(n) at build time. */
	volatile uint32_t n = svc->light ? FIB_N_LIGHT : FIB_N_DEFAULT;
	uint32_t want = svc->light ? FIB_18 : FIB_27;
	uint32_t got = fib(n);
	int ok = svc->check("fib(n)", got, want);
	ok &= svc->check("fib_iter(n)", fib_iter(n), want);
	return ok ? FLUID_OK : FLUID_FAIL;
}
