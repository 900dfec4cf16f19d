/* Float math for the llama module: expf, logf, sinf, cosf, sqrtf of our own.
 *
 * Why not llvm-libc: the issue asks for llvm-libc's implementations from the
 * pinned LLVM 18 where they link freestanding. They do not reach us: the
 * pinned rootfs (toolchain/definition.json includes clang-18, lld-18,
 * llvm-18, libclang-rt-18-dev and nasm; toolchain/lock.json) carries no
 * libllvmlibc-18-dev, so there is no libllvmlibc.a or llvm-libc source in
 * the toolchain, and adding the package would change the toolchain lock.
 * llvm-libc's documentation describes that archive as the "overlay mode"
 * build: a static archive for a hosted system, used with the system libc's
 * headers and ABI. A module is a freestanding -fpie image whose packer
 * accepts only R_X86_64_RELATIVE relocations and which links no archive but
 * compiler-rt's profile runtime; a prebuilt host archive is not made for
 * that, and we have not been able to check its objects here. So the five
 * functions below are ours, and internal/llama/mathf checks them against
 * glibc's libm (within 1 ulp) over a sweep of inputs.
 *
 * How: the float argument is widened to double (SSE2), reduced and fed to a
 * double polynomial. The relative error before the last rounding is below
 * about 2^-50 for expf and logf, and for sinf/cosf below 2^-38 even at the float
 * nearest a multiple of pi/2 with |x| <= 1e5 (x = 252.898208..., 161 pi/2
 * away by 2^-27.8; the reduction's absolute error is below 2^-66): far under
 * a float's half ulp (2^-25 relative), so the one rounding back to float
 * gives the correctly rounded result unless the exact value lies that close
 * to a float midpoint, and never more than 1 ulp from it. The sweep found
 * every one of its inputs correctly rounded.
 *
 * No libm builtins are used (__builtin_rint and friends may become calls to
 * rint etc. on baseline x86_64): rounding to an integer uses the 1.5*2^52
 * shift, bit casts go through a union, and sqrt is the sqrtss instruction.
 * The tests fail if the object has any undefined symbol. The tables are
 * const data read RIP-relative: the linked module carries no relocation.
 * All of it assumes MXCSR's round-to-nearest, as the kernel sets it.
 */
#include <stdint.h>

#include "mathf.h"

/* f2u, u2f, u2d, ROUND_SHIFT, the expf constants and table and the body of
 * fl_expf are in mathf.h (fl_expf_inline), so model.c can inline it. */
float fl_expf(float x) { return fl_expf_inline(x); }

/* ---- sinf, cosf ------------------------------------------------------- */

#define INV_PIO2 0x1.45f306dc9c883p-1 /* 2/pi */
#define PIO2 0x1.921fb54442d18p+0     /* pi/2 rounded to double */
/* pi/2 = PIO2_1 + PIO2_1T + O(2^-87); PIO2_1 has 33 significant bits, so for
 * |n| < 2^20 n*PIO2_1 and x - n*PIO2_1 are exact. */
#define PIO2_1 0x1.921fb54400000p+0
#define PIO2_1T 0x1.0b4611a626331p-34

/* The bits of 2/pi after the binary point, 64 to a word, most significant
 * first, behind one zero word (so a window may start before the point). */
static const uint64_t two_over_pi[5] = {
	0,
	0xa2f9836e4e441529ull,
	0xfc2757d1f534ddc0ull,
	0xdb6295993c439041ull,
	0xfe5163abdebbc561ull,
};

/* reduce_large: for a float |x| >= 2^20 (ax = its bits without the sign),
 * returns r in [-pi/4, pi/4] (within rounding) and *q in 0..3 with
 * |x| = (4j + *q) * pi/2 + r for an integer j.
 * |x| = m * 2^e with m < 2^24 an integer and e >= -3. Only the bits of 2/pi
 * from 2^-(e-1) down matter to |x|*(2/pi) mod 4 (earlier ones give multiples
 * of 4): a 128-bit window W of them gives F = m*W mod 2^128, and F/2^126 is
 * |x|*(2/pi) mod 4 with error below 2^-100. The nearest integer of that is
 * the quadrant; the rest, a signed fraction of a quadrant, times pi/2 is r.
 * Needs e + 62 + 128 <= 5*64 bits of table: e <= 104 covers every finite
 * float. */
static double reduce_large(uint32_t ax, int *q)
{
	uint64_t m = (ax & 0x7fffffu) | 0x800000u;
	int e = (int)(ax >> 23) - 150;
	int p = e + 62; /* window start, in bits of two_over_pi[] */
	int w = p >> 6, b = p & 63;
	uint64_t hi = two_over_pi[w], mid = two_over_pi[w + 1];
	if (b) {
		hi = hi << b | mid >> (64 - b);
		mid = mid << b | two_over_pi[w + 2] >> (64 - b);
	}
	unsigned __int128 lo_prod = (unsigned __int128)m * mid;
	uint64_t f_hi = m * hi + (uint64_t)(lo_prod >> 64);
	uint64_t f_lo = (uint64_t)lo_prod;
	uint64_t n = (f_hi + (1ull << 61)) >> 62;
	f_hi -= n << 62; /* (f_hi:f_lo) is now a signed 128-bit fraction */
	*q = (int)(n & 3);
	double f = (double)(int64_t)f_hi * 0x1p-62 + (double)f_lo * 0x1p-126;
	return f * PIO2;
}

/* reduce: x finite; returns r with x = (4j + *q) * pi/2 + r, |r| <= pi/4
 * (within rounding). Absolute error: for |x| < 2^20, below 2^-66 + 2^-53 |r|
 * (pi/2 - PIO2_1 - PIO2_1T < 2^-87 times n < 2^19.4, plus the roundings of
 * n*PIO2_1T and of the last subtraction); beyond, below 2^-52 |r| + 2^-100. */
static double reduce(float x, int *q)
{
	uint32_t ax = f2u(x) & 0x7fffffffu;
	if (ax < 0x49800000u) { /* |x| < 2^20 */
		double xd = x;
		double nd = xd * INV_PIO2 + ROUND_SHIFT;
		nd -= ROUND_SHIFT;
		*q = (int)nd & 3;
		return (xd - nd * PIO2_1) - nd * PIO2_1T;
	}
	double r = reduce_large(ax, q);
	if (f2u(x) >> 31) { /* -x = -(4j+q)pi/2 - r = (4j'+(-q&3))pi/2 - r */
		*q = -*q & 3;
		r = -r;
	}
	return r;
}

/* sin r for |r| <= pi/4 + 2^-20: Taylor series to r^17 (truncation below
 * 2^-62 of |sin r|): r + r z p(z), z = r^2, with p's eight coefficients
 * evaluated pairwise (Estrin: four independent chains, not one of eight).
 * r is never zero here (fl_sinf returns a tiny x itself, and x - n pi/2 is
 * not 0 for n != 0), so the sign of a zero result needs no care. */
static double sin_poly(double r)
{
	double z = r * r, z2 = z * z;
	double a = -1.0 / 6.0 + z * (1.0 / 120.0);                     /* 3!, 5! */
	double b = -1.0 / 5040.0 + z * (1.0 / 362880.0);               /* 7!, 9! */
	double c = -1.0 / 39916800.0 + z * (1.0 / 6227020800.0);       /* 11!, 13! */
	double d = -1.0 / 1307674368000.0 + z * (1.0 / 355687428096000.0); /* 15!, 17! */
	double p = a + z2 * (b + z2 * (c + z2 * d));
	return r + r * z * p;
}

/* cos r for |r| <= pi/4 + 2^-20: Taylor series to r^16 (truncation below
 * 2^-58), evaluated pairwise like sin_poly. */
static double cos_poly(double r)
{
	double z = r * r, z2 = z * z;
	double a = -0.5 + z * (1.0 / 24.0);                             /* 2!, 4! */
	double b = -1.0 / 720.0 + z * (1.0 / 40320.0);                  /* 6!, 8! */
	double c = -1.0 / 3628800.0 + z * (1.0 / 479001600.0);          /* 10!, 12! */
	double d = -1.0 / 87178291200.0 + z * (1.0 / 20922789888000.0); /* 14!, 16! */
	double p = a + z2 * (b + z2 * (c + z2 * d));
	return 1.0 + z * p;
}

/* fl_sinf: sin x rounded to float. NaN -> NaN, +-inf -> NaN; +-0 -> +-0.
 * Within 1 ulp of libm for |x| <= 1e5 (the contract); the reduction is exact
 * enough for every finite float (see reduce), and the sweep checks the whole
 * float range too.
 * |x| < 2^-12 returns x: sin x = x (1 - x^2/6 + ...) lies less than 2^-26.5
 * relative below x, inside half the gap to the next float toward zero
 * (2^-25 relative at worst, when x is a power of 2), so x is the correctly
 * rounded result. This also keeps -0 (the polynomial would give +0: -0 plus
 * the +0 of -0 * z * p with p < 0). */
float fl_sinf(float x)
{
	uint32_t ax = f2u(x) & 0x7fffffffu;
	if (ax >= 0x7f800000u)
		return x - x;
	if (ax < 0x39800000u) /* |x| < 2^-12 */
		return x;
	int q;
	double r = reduce(x, &q);
	double s;
	switch (q) {
	case 0:
		s = sin_poly(r);
		break;
	case 1:
		s = cos_poly(r);
		break;
	case 2:
		s = -sin_poly(r);
		break;
	default:
		s = -cos_poly(r);
		break;
	}
	return (float)s;
}

/* fl_cosf: cos x rounded to float. NaN -> NaN, +-inf -> NaN; cos(+-0) = 1.
 * Same accuracy and range as fl_sinf. */
float fl_cosf(float x)
{
	if ((f2u(x) & 0x7fffffffu) >= 0x7f800000u)
		return x - x;
	int q;
	double r = reduce(x, &q);
	double c;
	switch (q) {
	case 0:
		c = cos_poly(r);
		break;
	case 1:
		c = -sin_poly(r);
		break;
	case 2:
		c = -cos_poly(r);
		break;
	default:
		c = sin_poly(r);
		break;
	}
	return (float)c;
}

/* ---- logf ------------------------------------------------------------- */

/* ln 2 = LN2_HI + LN2_LO; LN2_HI has 32 significant bits, so k*LN2_HI is
 * exact for |k| < 2^21 (here -149 <= k <= 128). */
#define LN2_HI 0x1.62e42fee00000p-1
#define LN2_LO 0x1.a39ef35793c76p-33
#define SQRT2 0x1.6a09e667f3bcdp+0

/* fl_logf: ln x rounded to float.
 * - NaN -> NaN (quiet); +-0 -> -inf; x < 0 (and -inf) -> NaN; +inf -> +inf.
 * - Otherwise x, widened to double (exact, and normal even for a float
 *   subnormal), is 2^k * m with m in [sqrt(2)/2, sqrt(2)]; f = m - 1 is
 *   exact (Sterbenz), and so is hfsq = f^2/2 (f has at most 24 significant
 *   bits). With s = f/(2+f) (one rounding), ln(1+f) = 2 atanh(s)
 *   = 2s + s*R = f - (hfsq - s*(hfsq + R)), R = sum_{n>=1} 2 s^(2n)/(2n+1)
 *   (s (2+f) = f gives 2s = f - s*f and s*f = hfsq (1 - s)). |s| <= 3 - 2 sqrt 2 < 0.1716, so z = s^2 <
 *   2^-5.08: R is summed to z^10 (the rest, below 2 z^11/23 < 2^-59, enters
 *   as s*R against ln(1+f) ~ 2s: below 2^-60 relative), its ten Taylor
 *   coefficients 2/(2n+1) evaluated pairwise like the sin/cos series.
 * - ln x = k*LN2_HI + (ln m + k*LN2_LO): for k != 0, |ln x| >= ln2/2 >=
 *   |ln m|, so no cancellation beyond a factor 2. The relative error before
 *   the last rounding stays below about 2^-51, the one rounding to float
 *   gives the correctly rounded result unless ln x lies within ~2^-27 ulp
 *   of a float midpoint, and never more than 1 ulp from it. ln x is exact
 *   only at x = 1, where f = s = 0 give +0.
 */
float fl_logf(float x)
{
	uint32_t ux = f2u(x);
	if ((ux & 0x7fffffffu) > 0x7f800000u)
		return x + x;             /* NaN */
	if ((ux & 0x7fffffffu) == 0)
		return u2f(0xff800000u);  /* +-0: -inf */
	if (ux >> 31)
		return u2f(0x7fc00000u);  /* x < 0, -inf: NaN */
	if (ux == 0x7f800000u)
		return x;                 /* +inf */
	union dbits b = {.d = (double)x};
	int k = (int)(b.u >> 52) - 1023;
	b.u = (b.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
	double m = b.d;
	if (m > SQRT2) {
		m *= 0.5;
		k++;
	}
	double f = m - 1.0;
	double hfsq = 0.5 * f * f;
	double s = f / (2.0 + f);
	double z = s * s, z2 = z * z, z4 = z2 * z2;
	double a = 2.0 / 3 + z * (2.0 / 5);   /* z, z^2 */
	double c = 2.0 / 7 + z * (2.0 / 9);   /* z^3, z^4 */
	double d = 2.0 / 11 + z * (2.0 / 13); /* z^5, z^6 */
	double e = 2.0 / 15 + z * (2.0 / 17); /* z^7, z^8 */
	double g = 2.0 / 19 + z * (2.0 / 21); /* z^9, z^10 */
	double R = z * ((a + z2 * c) + z4 * (d + z2 * (e + z2 * g)));
	double lnm = f - (hfsq - s * (hfsq + R));
	double kd = (double)k;
	return (float)(kd * LN2_HI + (lnm + kd * LN2_LO)); /* the one rounding */
}

/* ---- sqrtf ------------------------------------------------------------ */

/* fl_sqrtf: the sqrtss instruction, correctly rounded (IEEE 754): +-0 ->
 * +-0, +inf -> +inf, x < 0 and NaN -> NaN, subnormals handled exactly
 * (the kernel loads MXCSR = 0x1F80, kernel/arch/fpu.c: round to nearest, no
 * FTZ/DAZ; the same as a host process starts with). Inline asm, not
 * __builtin_sqrtf, which may call sqrtf to set errno for x < 0. */
float fl_sqrtf(float x) { return fl_sqrtf_inline(x); }
