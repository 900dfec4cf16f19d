/*
 * cpu.h — port I/O, interrupt-flag control, control registers, MSRs and
 * CPUID (x86_64).
 * Thin inline wrappers around single instructions; no state.
 */
#ifndef FLUID_CPU_H
#define FLUID_CPU_H

#include <stddef.h>
#include <stdint.h>

#define EFLAGS_IF        (1u << 9)

#define CR0_PE           (1u << 0)
#define CR0_MP           (1u << 1)  /* monitor coprocessor (WAIT honours TS)  */
#define CR0_EM           (1u << 2)  /* emulate FPU: must be 0 to use x87/SSE */
#define CR0_TS           (1u << 3)
#define CR0_NE           (1u << 5)  /* native x87 error reporting (#MF)      */
#define CR0_WP           (1u << 16)
#define CR0_PG           (1u << 31)

#define CR4_PSE          (1u << 4)  /* 4 MiB pages (legacy paging only)      */
#define CR4_PAE          (1u << 5)  /* PAE: required by long mode             */
#define CR4_OSFXSR       (1u << 9)  /* OS supports FXSAVE/SSE                 */
#define CR4_OSXMMEXCPT   (1u << 10) /* OS handles #XM (SIMD FP exception)     */

/*
 * inb/outb, inw/outw, inl/outl: read or write a byte, word or dword at an
 * I/O port. The value travels in AL/AX/EAX; the port is an immediate when
 * it is 0..255 ("N"), else in DX.
 */
#define DEFINE_PORT_IO(sfx, type)                                              \
	static inline type in##sfx(uint16_t port)                              \
	{                                                                      \
		type v;                                                        \
		__asm__ volatile("in" #sfx " %1, %0" : "=a"(v) : "Nd"(port));  \
		return v;                                                      \
	}                                                                      \
	static inline void out##sfx(uint16_t port, type v)                     \
	{                                                                      \
		__asm__ volatile("out" #sfx " %0, %1" : : "a"(v), "Nd"(port)); \
	}
DEFINE_PORT_IO(b, uint8_t)
DEFINE_PORT_IO(w, uint16_t)
DEFINE_PORT_IO(l, uint32_t)
#undef DEFINE_PORT_IO

/* rep insw: words 16-bit reads of port into dst (a data block from a
 * device FIFO such as the ATA data register). cld first: the direction
 * flag must be clear for ascending stores, whatever the caller left. */
static inline void insw(uint16_t port, void *dst, size_t words)
{
	__asm__ volatile("cld; rep insw" : "+D"(dst), "+c"(words) : "d"(port) : "memory");
}

/* rep insl: dwords 32-bit reads of port into dst, as insw. */
static inline void insl(uint16_t port, void *dst, size_t dwords)
{
	__asm__ volatile("cld; rep insl" : "+D"(dst), "+c"(dwords) : "d"(port) : "memory");
}

/* A write to an unused port: ~1 µs delay for slow devices (PIC). */
static inline void io_wait(void)
{
	outb(0x80, 0);
}

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
static inline void cpu_pause(void) { __asm__ volatile("pause" ::: "memory"); }

static inline uint64_t read_eflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v));
	return v;
}

/* Disable interrupts and return the previous RFLAGS for irq_restore(). */
static inline uint64_t irq_save(void)
{
	uint64_t f = read_eflags();
	cli();
	return f;
}

static inline void irq_restore(uint64_t flags)
{
	if (flags & EFLAGS_IF)
		sti();
}

#define DEFINE_CR(n)                                                   \
	static inline uint64_t read_cr##n(void)                        \
	{                                                              \
		uint64_t v;                                            \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));      \
		return v;                                              \
	}                                                              \
	static inline void write_cr##n(uint64_t v)                     \
	{                                                              \
		__asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); \
	}
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

/* Model-specific registers (EDX:EAX). */
#define MSR_EFER         0xC0000080u
#define MSR_FS_BASE      0xC0000100u
#define EFER_LME         (1u << 8)
#define EFER_LMA         (1u << 10)
#define EFER_NXE         (1u << 11)

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void invlpg(const void *va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

#define CPUID_EDX_FPU    (1u << 0)
#define CPUID_EDX_TSC    (1u << 4)
#define CPUID_EDX_PSE    (1u << 3)
#define CPUID_EDX_FXSR   (1u << 24)
#define CPUID_EDX_SSE    (1u << 25)
#define CPUID_EDX_SSE2   (1u << 26)
#define CPUID_ECX_SSE3   (1u << 0)

#endif /* FLUID_CPU_H */
