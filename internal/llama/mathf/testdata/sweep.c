/* sweep: compares modules/llama/mathf.c (linked in as an object built with
 * the module flags) with the host's libm (glibc) over sweeps of inputs.
 *
 * For every input x it computes mine = fl_f(x) and ref = f(x) and their
 * distance in ulps on the float bit patterns (the patterns ordered as
 * integers: FLT_MAX and +inf 1 apart). NaN must map to NaN, and where libm
 * gives a zero ours must be the same zero, sign included: either miss
 * counts as a distance of 2^32.
 *
 * It also rounds glibc's long double function (expl, logl, sinl, cosl, sqrtl:
 * 64-bit significands, errors near 2^-63) to float, which is the correctly
 * rounded result unless the exact value lies within ~2^-39 ulp of a float
 * midpoint, and counts the inputs where mine differs from that (crmiss),
 * giving the first such input (crfirst). glibc's float functions are not
 * correctly rounded (expf, sinf, cosf miss by up to ~0.53 ulp); this says
 * whether ours are.
 *
 * Output, one line per checked set (the Go test parses it):
 *   fn <name> n=<inputs> maxulp=<u> inexact=<count with u > 0> worst=0x<x> mine=0x<..> ref=0x<..>
 *      crmiss=<count> crfirst=0x<x>   (on the same line)
 * Sets: expf, logf, sinf, cosf (|x| <= 1e5: the contract), sinf_wide, cosf_wide
 * (1e5 < |x| <= FLT_MAX), sqrtf. Exit 0 whatever the distances: judging is
 * the test's job.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mathf.h"

struct set {
	const char *name;
	float (*mine)(float);
	float (*ref)(float);
	long double (*exact)(long double);
	uint64_t n, inexact, maxulp, crmiss;
	uint32_t worst, worst_mine, worst_ref, crfirst;
};

static uint32_t bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float fbits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static int64_t key(uint32_t u)
{
	return (u >> 31) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

static uint64_t ulps(float mine, float ref)
{
	if (isnan(mine) || isnan(ref))
		return (isnan(mine) && isnan(ref)) ? 0 : (1ull << 32);
	if (ref == 0 && bits(mine) != bits(ref))
		return 1ull << 32; /* a zero must carry libm's sign (sin -0 = -0) */
	int64_t d = key(bits(mine)) - key(bits(ref));
	return (uint64_t)(d < 0 ? -d : d);
}

static void check(struct set *s, float x)
{
	float m = s->mine(x), r = s->ref(x);
	float c = (float)s->exact(x);
	uint64_t u = ulps(m, r);
	if (ulps(m, c) != 0 && s->crmiss++ == 0)
		s->crfirst = bits(x);
	s->n++;
	if (u)
		s->inexact++;
	if (u > s->maxulp || s->n == 1) {
		s->maxulp = u;
		s->worst = bits(x);
		s->worst_mine = bits(m);
		s->worst_ref = bits(r);
	}
}

/* Every stride-th bit pattern from lo to hi (inclusive), and hi itself. */
static void by_bits(struct set *s, uint32_t lo, uint32_t hi, uint32_t stride)
{
	for (uint64_t u = lo; u < hi; u += stride)
		check(s, fbits((uint32_t)u));
	check(s, fbits(hi));
}

/* n floats evenly spaced in value over [a, b]. */
static void by_value(struct set *s, double a, double b, uint32_t n)
{
	for (uint32_t i = 0; i <= n; i++)
		check(s, (float)(a + (b - a) * i / n));
}

static void specials(struct set *s)
{
	static const uint32_t v[] = {
	    0x00000000, 0x80000000, 0x7f800000, 0xff800000, /* +-0, +-inf */
	    0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, /* NaNs, signalling too */
	    0x00000001, 0x80000001, 0x007fffff, 0x807fffff, /* subnormals */
	    0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, /* FLT_MIN, FLT_MAX */
	    0x3f800000, 0xbf800000, 0x33800000, 0xb3800000, /* +-1, +-2^-24 */
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		check(s, fbits(v[i]));
}

static void report(const struct set *s)
{
	printf("fn %s n=%llu maxulp=%llu inexact=%llu worst=0x%08x mine=0x%08x ref=0x%08x crmiss=%llu crfirst=0x%08x\n",
	       s->name, (unsigned long long)s->n, (unsigned long long)s->maxulp,
	       (unsigned long long)s->inexact, s->worst, s->worst_mine, s->worst_ref,
	       (unsigned long long)s->crmiss, s->crfirst);
}

static float ref_expf(float x) { return expf(x); }
static float ref_logf(float x) { return logf(x); }
static float ref_sinf(float x) { return sinf(x); }
static float ref_cosf(float x) { return cosf(x); }
static float ref_sqrtf(float x) { return sqrtf(x); }

/* The angles the llama module feeds sinf/cosf: pos * freq_i with freq_i =
 * expf(-((2i/d) * logf(base))) in float32 as llama_rope_table computes it
 * (here with glibc's expf and logf),
 * for rope dims 8, 64 and 128 and the two bases of TinyLlama-style files,
 * pos < 4096. */
static void rope(struct set *s)
{
	static const float bases[] = {10000.0f, 500000.0f};
	static const int dims[] = {8, 64, 128};
	for (int b = 0; b < 2; b++)
		for (int d = 0; d < 3; d++)
			for (int i = 0; i < dims[d] / 2; i++) {
				float a = (float)(2 * i) / (float)dims[d];
				float freq = expf(-(a * logf(bases[b])));
				for (int pos = 0; pos < 4096; pos++)
					check(s, (float)pos * freq);
			}
}

static void trig(struct set *s, struct set *wide)
{
	/* |x| <= 1e5 (0x47c35000): bit patterns, values, [-4, 4] densely. */
	by_bits(s, 0x00000000u, 0x47c35000u, 1009);
	by_bits(s, 0x80000000u, 0xc7c35000u, 1009);
	by_value(s, -1e5, 1e5, 2000000);
	by_bits(s, 0x00000000u, 0x40800000u, 211);
	by_bits(s, 0x80000000u, 0xc0800000u, 211);
	/* Floats nearest the multiples of pi/2 (and their neighbours). */
	for (int k = -63662; k <= 63662; k++) {
		float x = (float)(k * 1.5707963267948966);
		check(s, x);
		check(s, nextafterf(x, INFINITY));
		check(s, nextafterf(x, -INFINITY));
	}
	rope(s);
	specials(s);
	/* Beyond the contract: 1e5 < |x| <= FLT_MAX. */
	by_bits(wide, 0x47c35001u, 0x7f7fffffu, 401);
	by_bits(wide, 0xc7c35001u, 0xff7fffffu, 401);
	specials(wide);
}

int main(void)
{
	struct set e = {.name = "expf", .mine = fl_expf, .ref = ref_expf, .exact = expl};
	/* [-104, 89] by bit patterns, then every float near the overflow edge
	 * [88, 89] and the underflow/subnormal range [-104, -87]. */
	by_bits(&e, 0x00000000u, 0x42b20000u, 521);
	by_bits(&e, 0x80000000u, 0xc2d00000u, 521);
	by_bits(&e, 0x42b00000u, 0x42b20000u, 1);
	by_bits(&e, 0xc2ae0000u, 0xc2d00000u, 1);
	by_value(&e, -104.0, 89.0, 2000000);
	by_bits(&e, 0x42b20000u, 0x7f800000u, 997);  /* beyond: +inf */
	by_bits(&e, 0xc2d00000u, 0xff800000u, 997);  /* beyond: 0 */
	specials(&e);
	report(&e);

	struct set l = {.name = "logf", .mine = fl_logf, .ref = ref_logf, .exact = logl};
	/* Every positive float by bit patterns (subnormals, normals, +inf), every
	 * float in [1 - 2^-6, 1 + 2^-6] (the cancellation near 1), every 31st
	 * subnormal, 2^-149..2^127 exactly and their neighbours, the RoPE
	 * bases, and negatives (NaN, -0 -> -inf). */
	by_bits(&l, 0x00000001u, 0x7f800000u, 1021);
	by_bits(&l, 0x3f7c0000u, 0x3f820000u, 1);
	by_bits(&l, 0x00000001u, 0x00800000u, 31);
	for (int k = -149; k <= 127; k++) {
		float x = ldexpf(1.0f, k);
		check(&l, x);
		check(&l, nextafterf(x, INFINITY));
		check(&l, nextafterf(x, 0.0f));
	}
	static const float bases[] = {10000.0f, 500000.0f, 1000000.0f, 10000000.0f, 2.0f, 10.0f, 0.5f, 3.0f};
	for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
		check(&l, bases[i]);
	by_bits(&l, 0x80000000u, 0xff800000u, 100003);
	specials(&l);
	report(&l);

	struct set sn = {.name = "sinf", .mine = fl_sinf, .ref = ref_sinf, .exact = sinl}, snw = {.name = "sinf_wide", .mine = fl_sinf, .ref = ref_sinf, .exact = sinl};
	trig(&sn, &snw);
	report(&sn);
	report(&snw);
	struct set cs = {.name = "cosf", .mine = fl_cosf, .ref = ref_cosf, .exact = cosl}, csw = {.name = "cosf_wide", .mine = fl_cosf, .ref = ref_cosf, .exact = cosl};
	trig(&cs, &csw);
	report(&cs);
	report(&csw);

	struct set q = {.name = "sqrtf", .mine = fl_sqrtf, .ref = ref_sqrtf, .exact = sqrtl};
	by_bits(&q, 0x00000000u, 0x7f800000u, 1013); /* every positive exponent, +inf */
	by_bits(&q, 0x00000000u, 0x00800000u, 1);    /* every subnormal */
	by_bits(&q, 0x80000000u, 0xff800000u, 100003); /* negative: NaN (and -0 -> -0) */
	specials(&q);
	report(&q);
	return 0;
}
