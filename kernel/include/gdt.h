/*
 * gdt.h — the kernel's x86_64 GDT: 64-bit ring-0 code and flat data (the
 * selectors stage 2 already uses for data), and the 64-bit TSS whose
 * interrupt stack table gives #DF, NMI and #MC stacks of their own, so a
 * kernel stack overflow (into the guard page) still gets a dump instead of
 * a silent triple fault.
 */
#ifndef FLUID_GDT_H
#define FLUID_GDT_H

#include <stdint.h>

#define GDT_KERNEL_CODE 0x08   /* 64-bit code (L = 1)                       */
#define GDT_KERNEL_DATA 0x10   /* flat data: DS, ES, SS                     */
#define GDT_TSS         0x18   /* 16-byte TSS descriptor (0x18 and 0x20)    */

/* IST slots (1-based, as in the IDT gate's IST field). */
#define IST_DOUBLE_FAULT 1
#define IST_NMI          2
#define IST_MACHINE_CHECK 3
#define IST_COUNT        3
#define IST_STACK_SIZE   8192

/* FS base: code built for the Linux x86_64 ABI with -fstack-protector (the
 * toolchain's precompiled compiler-rt, linked into instrumented modules)
 * reads its canary at %fs:0x28; FS_BASE points at a block holding one. */
#define FS_SSP_CANARY_OFFSET 0x28
extern uint64_t gdt_fs_block[8];   /* what FS_BASE points at */

/* 64-bit task-state segment (Intel SDM vol. 3, 8.7). */
struct tss64 {
	uint32_t r0;
	uint64_t rsp[3];
	uint64_t r1;
	uint64_t ist[7];
	uint64_t r2;
	uint16_t r3, iomap;
} __attribute__((packed));

void gdt_init(void);
/* [lo, hi) of IST stack n (1..IST_COUNT), for the guard pages (vm.c) and
 * the dump. */
void gdt_ist_stack(unsigned n, uintptr_t *lo, uintptr_t *hi);

#endif
