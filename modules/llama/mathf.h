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

#endif
