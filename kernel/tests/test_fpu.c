/*
 * test_fpu.c — x87 and SSE work after fpu_init (the kernel is built with
 * -mgeneral-regs-only, so the arithmetic is in inline asm on bit patterns).
 */
#include <stdint.h>
#include "cpu.h"
#include "fpu.h"
#include "ktest.h"

#define F32_2_0   0x40000000u
#define F32_3_0   0x40400000u
#define F32_6_0   0x40C00000u
#define F32_16_0  0x41800000u
#define F32_4_0   0x40800000u
#define F64_1_5   0x3FF8000000000000ull
#define F64_2_25  0x4002000000000000ull

KTEST(fpu_control_registers)
{
	KT_EQ_U(read_cr0() & CR0_EM, 0);
	KT_EQ_U(read_cr0() & CR0_MP, CR0_MP);
	KT_EQ_U(read_cr0() & CR0_TS, 0);
	KT_ASSERT(fpu_features() & FPU_HAS_X87);
	KT_ASSERT(fpu_features() & FPU_HAS_SSE);
	KT_EQ_U(read_cr4() & (CR4_OSFXSR | CR4_OSXMMEXCPT), CR4_OSFXSR | CR4_OSXMMEXCPT);
}

KTEST(fpu_x87_arithmetic)
{
	int32_t a = 7, b = 6, r = 0;
	uint16_t cw = 0;
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	KT_EQ_U(cw, 0x037F);      /* fninit's control word */
	__asm__ volatile("fildl %1\n\t"
			 "fimull %2\n\t"
			 "fsqrt\n\t"          /* sqrt(42) = 6.48... */
			 "fistpl %0"          /* round to nearest: 6 */
			 : "=m"(r) : "m"(a), "m"(b) : "memory");
	KT_EQ_U(r, 6);
}

KTEST(fpu_sse_single)
{
	uint32_t a = F32_3_0, b = F32_2_0, prod = 0, root = 0, sixteen = F32_16_0;
	int32_t i = 0;
	uint32_t mxcsr = 0;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	KT_EQ_U(mxcsr & 0xFFBF, 0x1F80);   /* masked exceptions, round-to-nearest */
	__asm__ volatile("movss %3, %%xmm0\n\t"
			 "mulss %4, %%xmm0\n\t"
			 "movss %%xmm0, %0\n\t"
			 "cvttss2si %%xmm0, %%eax\n\t"
			 "movl %%eax, %2\n\t"
			 "sqrtss %5, %%xmm1\n\t"
			 "movss %%xmm1, %1"
			 : "=m"(prod), "=m"(root), "=m"(i)
			 : "m"(a), "m"(b), "m"(sixteen)
			 : "eax", "xmm0", "xmm1", "memory");
	KT_EQ_U(prod, F32_6_0);
	KT_EQ_U(i, 6);
	KT_EQ_U(root, F32_4_0);
}

KTEST(fpu_sse2_double)
{
	uint64_t a = F64_1_5, r = 0;
	KT_ASSERT(fpu_features() & FPU_HAS_SSE2);
	__asm__ volatile("movsd %1, %%xmm2\n\t"
			 "mulsd %%xmm2, %%xmm2\n\t"
			 "movsd %%xmm2, %0"
			 : "=m"(r) : "m"(a) : "xmm2", "memory");
	KT_EQ_U(r, F64_2_25);
}
