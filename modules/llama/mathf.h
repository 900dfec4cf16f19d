/* Float math for the llama module: exp, log, sin, cos and sqrt without libc.
 *
 * Contract (tested by internal/llama/mathf against glibc's libm over a sweep
 * of inputs): results are within 1 ulp of the host's libm; NaN in gives NaN
 * out. The code is freestanding (no libc, no libcalls) and compiles under
 * the module flags (modfmt.CFlags) at -O2, -O3 and -fprofile-instr-generate.
 */
#ifndef FLUID_LLAMA_MATHF_H
#define FLUID_LLAMA_MATHF_H

float fl_expf(float x);   /* within 1 ulp of libm expf; +inf/0 on overflow/underflow, NaN -> NaN */
float fl_logf(float x);   /* within 1 ulp of libm logf; -inf at +-0, NaN for x < 0, +inf at +inf, NaN -> NaN */
float fl_sinf(float x);   /* within 1 ulp of libm sinf for |x| <= 1e5 (the RoPE angles are pos*freq, pos < 4096) */
float fl_cosf(float x);   /* same range */
float fl_sqrtf(float x);  /* SSE sqrtss: correctly rounded */

/* expf and sqrtf also as static inline, for model.c: otherwise every
 * softmax score and every SwiGLU element is a call (about 1200 per token of
 * the test model) with its register spills around it. mathf.c's fl_expf and
 * fl_sqrtf are these same bodies, so the sweep tests what model.c runs.
 * The notes at the top of mathf.c hold for these too. */
#include <stdint.h>

union fbits {
	float f;
	uint32_t u;
};

union dbits {
	double d;
	uint64_t u;
};

static inline uint32_t f2u(float f)
{
	union fbits b = {.f = f};
	return b.u;
}

static inline float u2f(uint32_t u)
{
	union fbits b = {.u = u};
	return b.f;
}

static inline double u2d(uint64_t u)
{
	union dbits b = {.u = u};
	return b.d;
}

/* Adding then subtracting 1.5*2^52 rounds a double of magnitude below 2^51
 * to the nearest integer (ties to even) in the default rounding mode. */
#define ROUND_SHIFT 0x1.8p52

/* ---- expf ------------------------------------------------------------- */

#define INV_LN2_32 0x1.71547652b82fep+5 /* 32/ln 2 */
/* ln2/32 = LN2_32_HI + LN2_32_LO; LN2_32_HI has 32 significant bits, so
 * k*LN2_32_HI is exact for |k| < 2^21 (here |k| <= 5120), and x - k*LN2_32_HI
 * is exact: both are multiples of 2^-37 once k != 0 (|x| >= ln2/64), and the
 * difference is below ln2/64. */
#define LN2_32_HI 0x1.62e42fee00000p-6
#define LN2_32_LO 0x1.a39ef35793c76p-38

/* exp2_32[j] = 2^(j/32) rounded to double (mpmath, 300 bits; 2^(16/32) is
 * sqrt 2 = 0x1.6a09e667f3bcdp+0). Read RIP-relative: no relocation. */
static const double exp2_32[32] = {
	0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
	0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
	0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
	0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
	0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
	0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
	0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
	0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};

/* fl_expf: e^x rounded to float.
 * - NaN -> NaN (quiet); +inf -> +inf; -inf -> +0.
 * - x > 89: +inf (e^x > FLT_MAX from x = 88.7228...); x < -110: +0 (e^x is
 *   below half the smallest subnormal from x = -103.97...). In between the
 *   double result is rounded to float once, so overflow to +inf, subnormal
 *   results and underflow to 0 fall out of that rounding.
 * - Otherwise x = (32m + j) ln2/32 + r with |r| <= ln2/64 (+ rounding):
 *   e^x = 2^m * 2^(j/32) * e^r, 2^(j/32) from the table (error 2^-53),
 *   2^m from its exponent bits (m in [-159, 129]: a normal double), and
 *   e^r - 1 = r + r^2/2 + ... + r^6/6! (truncation below 2^-58, evaluated
 *   in two independent halves). Relative error before the last rounding
 *   below 2^-51.
 */
static inline float fl_expf_inline(float x)
{
	uint32_t ax = f2u(x) & 0x7fffffffu;
	if (ax > 0x7f800000u)
		return x + x;
	if (x > 89.0f)
		return u2f(0x7f800000u);
	if (x < -110.0f)
		return 0.0f;
	double xd = x;
	double kd = xd * INV_LN2_32 + ROUND_SHIFT;
	kd -= ROUND_SHIFT;
	int k = (int)kd;
	int j = k & 31;
	int m = (k - j) / 32;
	double r = (xd - kd * LN2_32_HI) - kd * LN2_32_LO;
	double r2 = r * r;
	double hi = 0.5 + r * (1.0 / 6.0);
	double lo = 1.0 / 24.0 + r * (1.0 / 120.0) + r2 * (1.0 / 720.0);
	double q = r + r2 * (hi + r2 * lo); /* e^r - 1 */
	double t = exp2_32[j] * u2d((uint64_t)(m + 1023) << 52);
	return (float)(t + t * q); /* the one rounding, in MXCSR's mode */
}

/* fl_sqrtf (mathf.c says why inline asm). */
static inline float fl_sqrtf_inline(float x)
{
	float r;
	__asm__("sqrtss %1, %0" : "=x"(r) : "x"(x));
	return r;
}

#endif
