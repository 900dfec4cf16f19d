/*
 * fluid_profile_rt.c — linked into instrumented modules only (the build adds
 * it, compiled with the module's flags, and links libclang_rt.profile-x86_64.a
 * after the module's objects). It gives the kernel the module's profile hook
 * fluid_profile_dump() (contract in modules/include/fluid_module.h) on top of
 * compiler-rt's freestanding buffer writer, so the raw profile bytes are
 * always in the format of the toolchain that compiled the module — nothing
 * here knows that format.
 *
 * compiler-rt's x86_64 archive is built for Linux, so this file also supplies
 * what its Linux platform file would: the __llvm_prf_* section bounds (from
 * the linker's __start_/__stop_ symbols; absent sections give empty ranges),
 * no binary IDs (a module has no ELF header in memory), the runtime hook
 * symbol and __stack_chk_fail. ld.lld pulls only the archive members whose
 * symbols are still undefined after this file, i.e. the writer itself.
 *
 * The archive's objects are -fPIC; linked -pie at address 0 into the module
 * they reach everything RIP-relative and add no relocation.
 *
 * Stack protector: the archive was built with -fstack-protector, which reads
 * the canary at %fs:0x28 (the Linux TLS slot). In long mode FS's base is the
 * FS_BASE MSR, 0 in the kernel, and page 0 is unmapped, so the writer's
 * first prologue would fault. fluid_profile_dump therefore points FS_BASE at
 * a block of its own (fs_block) for the duration of the writer's calls and
 * puts the kernel's value back before it returns: the canary every prologue
 * and epilogue reads is fs_block's word at 0x28, which nothing writes
 * during the dump. Modules run in ring 0, so rdmsr/wrmsr are allowed; the
 * kernel does not use FS (no TLS, no stack protector), so an interrupt in
 * between sees nothing different.
 *
 * Nothing in this file is instrumented: its counters would move while they
 * are being copied.
 */
#include "fluid_module.h"

#if defined(__LLVM_INSTR_PROFILE_GENERATE)

#define NOPROF __attribute__((no_profile_instrument_function, used))
#define SECTION_BOUNDS(sec)                                                    \
	extern char __start_##sec[] __attribute__((weak, visibility("hidden")));  \
	extern char __stop_##sec[] __attribute__((weak, visibility("hidden")))

SECTION_BOUNDS(__llvm_prf_data);
SECTION_BOUNDS(__llvm_prf_cnts);
SECTION_BOUNDS(__llvm_prf_bits);
SECTION_BOUNDS(__llvm_prf_names);
SECTION_BOUNDS(__llvm_prf_vns);
SECTION_BOUNDS(__llvm_prf_vtab);
SECTION_BOUNDS(__llvm_prf_vnds);
SECTION_BOUNDS(__llvm_orderfile);

/* compiler-rt's writer (libclang_rt.profile). */
uint64_t __llvm_profile_get_size_for_buffer(void);
int __llvm_profile_write_buffer(char *buffer);

/* The runtime hook: instrumented objects reference it so that a driver link
 * pulls in the runtime; defining it here keeps the Linux one out. */
int __llvm_profile_runtime;

/* Section bounds. A weak undefined hidden symbol resolves to 0, so an
 * absent section yields begin == end == 0, an empty range. */
#define BOUNDS(fn, sec)                                                        \
	NOPROF const void *__llvm_profile_begin_##fn(void) { return __start_##sec; } \
	NOPROF const void *__llvm_profile_end_##fn(void) { return __stop_##sec; }

BOUNDS(data, __llvm_prf_data)
BOUNDS(counters, __llvm_prf_cnts)
BOUNDS(bitmap, __llvm_prf_bits)
BOUNDS(names, __llvm_prf_names)
BOUNDS(vnodes, __llvm_prf_vnds)
BOUNDS(vtables, __llvm_prf_vtab)
BOUNDS(vtabnames, __llvm_prf_vns)

NOPROF void *__llvm_profile_begin_orderfile(void) { return __start___llvm_orderfile; }

/* No binary IDs: return "0 bytes written". */
struct ProfDataWriter;
NOPROF int __llvm_write_binary_ids(struct ProfDataWriter *writer)
{
	(void)writer;
	return 0;
}

/* A canary mismatch inside compiler-rt: nothing sane to return to. */
NOPROF __attribute__((noreturn)) void __stack_chk_fail(void)
{
	for (;;)
		__asm__ volatile("ud2");
}

#define MSR_FS_BASE 0xC0000100u
#define FS_CANARY_OFFSET 0x28u /* where -fstack-protector reads on x86_64 */

/* FS's segment while compiler-rt runs: the canary at FS_CANARY_OFFSET. */
static uint64_t fs_block[FS_CANARY_OFFSET / 8u + 1u] __attribute__((aligned(64)));

#define NOPROF_INLINE __attribute__((no_profile_instrument_function, always_inline))

NOPROF_INLINE static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

NOPROF_INLINE static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* The dump itself, with FS_BASE at fs_block (see the top of the file). */
NOPROF static int32_t dump(uint8_t *buf, uint32_t cap)
{
	uint64_t need = __llvm_profile_get_size_for_buffer();
	if (need > 0x7fffffffu)
		return -1;
	if (buf == NULL)
		return (int32_t)need;
	if (cap < need)
		return -2;
	if (__llvm_profile_write_buffer((char *)buf) != 0)
		return -3;
	return (int32_t)need;
}

/* The profile hook (fluid_module.h): buf == NULL asks for the size.
 * Invariant: FS_BASE is the caller's again whenever this returns. */
NOPROF int32_t fluid_profile_dump(uint8_t *buf, uint32_t cap)
{
	uint64_t saved = rdmsr(MSR_FS_BASE);
	fs_block[FS_CANARY_OFFSET / 8u] = 0x466c7569645f7270ull; /* "pr_diulF": any fixed value */
	wrmsr(MSR_FS_BASE, (uint64_t)(uintptr_t)fs_block);
	int32_t n = dump(buf, cap);
	wrmsr(MSR_FS_BASE, saved);
	return n;
}

#endif /* __LLVM_INSTR_PROFILE_GENERATE */
