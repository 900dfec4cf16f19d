/*
 * fluid_profile_rt.c — linked into instrumented modules only (the build adds
 * it, compiled with the module's flags, and links libclang_rt.profile-i386.a
 * after the module's objects). It gives the kernel the module's profile hook
 * fluid_profile_dump() (contract in modules/include/fluid_module.h) on top of
 * compiler-rt's freestanding buffer writer, so the raw profile bytes are
 * always in the format of the toolchain that compiled the module — nothing
 * here knows that format.
 *
 * compiler-rt's i386 archive is built for Linux, so this file also supplies
 * what its Linux platform file would: the __llvm_prf_* section bounds (from
 * the linker's __start_/__stop_ symbols; absent sections give empty ranges),
 * no binary IDs (a module has no ELF header in memory), the runtime hook
 * symbol and __stack_chk_fail. ld.lld pulls only the archive members whose
 * symbols are still undefined after this file, i.e. the writer itself.
 *
 * Stack protector: the archive was built with -fstack-protector, which reads
 * the canary at %gs:0x14. Fluid keeps GS a flat data selector, so that is
 * linear address 0x14 — readable ring-0 memory that nothing writes while a
 * dump runs, so prologue and epilogue agree. The kernel must keep linear
 * 0x14..0x17 mapped and readable (or give GS a base that points at a canary).
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

/* The profile hook (fluid_module.h): buf == NULL asks for the size. */
NOPROF int32_t fluid_profile_dump(uint8_t *buf, uint32_t cap)
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

#endif /* __LLVM_INSTR_PROFILE_GENERATE */
