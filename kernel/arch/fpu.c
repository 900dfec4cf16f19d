/*
 * fpu.c — turn on x87 and SSE for modules.  The kernel is compiled with
 * -mgeneral-regs-only; the only FP instructions here are in inline asm.
 * Modules run on the one kernel thread, so there is no FPU state to switch.
 *
 * Invariant: when fpu_init returns, SSE and SSE2 are on (FXSR, CR4.OSFXSR):
 * modules are x86_64 code, and the x86_64 baseline (and the SysV ABI they
 * follow) has SSE2; a CPU model without it (e.g. qemu64,-fxsr) is refused
 * with a panic that says so, not left to crash every module with #UD.
 */
#include <stdint.h>
#include "console.h"
#include "cpu.h"
#include "fpu.h"
#include "panic.h"

static unsigned features;

unsigned fpu_features(void)
{
	return features;
}

unsigned fpu_init(void)
{
	uint32_t a, b, c, d;
	cpuid(1, &a, &b, &c, &d);
	if (!(d & CPUID_EDX_FPU))
		panic("fpu: CPU has no x87 FPU (CPUID.1:EDX bit 0); modules need floating point");

	features = FPU_HAS_X87;
	uint32_t cr0 = read_cr0();
	cr0 &= ~(CR0_EM | CR0_TS);
	cr0 |= CR0_MP | CR0_NE;
	write_cr0(cr0);
	__asm__ volatile("fninit");

	if ((d & CPUID_EDX_SSE) && (d & CPUID_EDX_FXSR)) {
		write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
		features |= FPU_HAS_SSE;
		if (d & CPUID_EDX_SSE2)
			features |= FPU_HAS_SSE2;
		if (c & CPUID_ECX_SSE3)
			features |= FPU_HAS_SSE3;
		uint32_t mxcsr = 0x1F80;   /* all SIMD exceptions masked, round-to-nearest */
		__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	}
	if (!(features & FPU_HAS_SSE2))
		panic("fpu: CPU has no SSE2 with FXSR (CPUID.1:EDX bits 24, 25, 26): x86_64 modules are compiled "
		      "for SSE2, the x86_64 baseline; Fluid OS needs an x86_64 CPU that has it");
	kprintf("fpu: x87%s%s%s enabled (CR0.EM=0 MP=1 NE=1%s)\n",
		(features & FPU_HAS_SSE) ? " SSE" : "",
		(features & FPU_HAS_SSE2) ? " SSE2" : "",
		(features & FPU_HAS_SSE3) ? " SSE3" : "",
		(features & FPU_HAS_SSE) ? ", CR4.OSFXSR OSXMMEXCPT" : "; no SSE: modules must not use it");
	return features;
}
