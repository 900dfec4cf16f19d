/*
 * fpu.h — enable x87 and SSE for modules (the kernel itself is built with
 * -mgeneral-regs-only and never touches FPU/SSE registers).
 */
#ifndef FLUID_FPU_H
#define FLUID_FPU_H

#define FPU_HAS_X87   (1u << 0)
#define FPU_HAS_SSE   (1u << 1)
#define FPU_HAS_SSE2  (1u << 2)
#define FPU_HAS_SSE3  (1u << 3)

/* CR0.EM off, MP and NE on, TS off, fninit; with SSE also CR4.OSFXSR and
 * OSXMMEXCPT.  Panics if the CPU has no x87.  Returns FPU_HAS_* bits. */
unsigned fpu_init(void);
unsigned fpu_features(void);

#endif
