/*
 * gdt.h — flat 4 GiB code and data segments (same selectors as stage 2) and
 * two TSSs: the one the kernel runs in, and a double-fault task with its own
 * stack, so a #DF (e.g. a kernel stack overflow into the guard page) still
 * gets a dump instead of a silent triple fault.
 */
#ifndef FLUID_GDT_H
#define FLUID_GDT_H

#include <stdint.h>

#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10
#define GDT_TSS_MAIN    0x18   /* loaded in TR; the CPU saves state here on #DF */
#define GDT_TSS_DF      0x20   /* the task IDT vector 8 switches to             */
#define GDT_KERNEL_GS   0x28   /* GS: a small data segment whose offset 0x14 is
                                * the stack-protector canary that precompiled
                                * i386 objects (compiler-rt) read at %gs:0x14 */
#define GDT_SSP_CANARY_OFFSET 0x14

/* 32-bit task-state segment (Intel SDM vol. 3, 8.2.1). */
struct tss {
	uint16_t link, r0;
	uint32_t esp0;
	uint16_t ss0, r1;
	uint32_t esp1;
	uint16_t ss1, r2;
	uint32_t esp2;
	uint16_t ss2, r3;
	uint32_t cr3, eip, eflags;
	uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
	uint16_t es, r4, cs, r5, ss, r6, ds, r7, fs, r8, gs, r9;
	uint16_t ldt, r10, trap, iomap;
} __attribute__((packed));

void gdt_init(void);
/* The double-fault task must run with the kernel's page directory. */
void gdt_set_df_cr3(uint32_t cr3);
/* The state of the code that double-faulted (saved by the task switch). */
const struct tss *gdt_main_tss(void);
/* Make the kernel's task resume at f's EIP, CS, EFLAGS and data segments,
 * on SS = kernel data and ESP = esp, when the double-fault task returns to
 * it (iret). */
struct int_frame;
void gdt_main_tss_resume(const struct int_frame *f, uint32_t esp);

#endif
