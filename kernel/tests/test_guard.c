/*
 * test_guard.c — in-kernel tests of the module guard (kernel/module/guard.c):
 * hand-assembled modules that spin, write through a NULL pointer or a
 * non-canonical address, execute
 * an invalid opcode, divide by zero or hit int3 are stopped with the right
 * reason and offset, their pool block and heap blocks are released, and
 * the next module still runs. Modules that return but break the calling
 * convention (RBP, segments, IF/DF), change the FPU's control state or
 * raise an unhandled software interrupt do not take the kernel down.
 */
#include "cpu.h"
#include "crc32.h"
#include "fpu.h"
#include "gdt.h"
#include "idt.h"
#include "heap.h"
#include "jit_allocator.h"
#include "kernel.h"
#include "ktest.h"
#include "module.h"
#include "string.h"
#include "timer.h"
#include "vm.h"
#include <stddef.h>

#define GUARD_POOL_BYTES (16u * 1024u)
#define GCODE            32u /* code bytes, nop-padded */
#define GMOD_BYTES       (FLUID_MOD_HDR_SIZE + GCODE)
#define SPIN_DEADLINE_MS 20u

static uint8_t *gpool_mem;
static struct jit_pool gpool;

/* A fresh test pool, from the heap like the workload's (the direct map,
 * below 4 GiB). */
static int gpool_reset(void)
{
	if (!gpool_mem) {
		uint8_t *raw = kmalloc(GUARD_POOL_BYTES + PAGE_SIZE);
		if (!raw)
			return -1;
		gpool_mem = (uint8_t *)(((uintptr_t)raw + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1));
	}
	return jit_pool_init(&gpool, gpool_mem, GUARD_POOL_BYTES);
}

/* The loader maps a module's code read-only and executable itself (W^X:
 * copy, relocate, then vm_protect(code, R|X)); these tests' modules are
 * code only, one page: 0 when that page is R+X and not writable, -1 if
 * the loader left it otherwise. */
static int gcode_is_rx(const struct module *m)
{
	unsigned prot = vm_prot((uintptr_t)m->mem);
	return ((prot & VM_X) && !(prot & VM_W)) ? 0 : -1;
}

static void gwr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A module named name whose code is code[0..n) (entry at 0), no data, no
 * relocations. */
static void make_code_module(uint8_t *m, const char *name, const uint8_t *code, uint32_t n)
{
	memset(m, 0, GMOD_BYTES);
	gwr32(m + FLUID_MOD_OFF_MAGIC, FLUID_MOD_MAGIC);
	m[FLUID_MOD_OFF_ABI_VERSION] = FLUID_MOD_ABI_VERSION;
	m[FLUID_MOD_OFF_HDR_SIZE] = FLUID_MOD_HDR_SIZE;
	gwr32(m + FLUID_MOD_OFF_FILE_SIZE, GMOD_BYTES);
	strncpy((char *)m + FLUID_MOD_OFF_NAME, name, FLUID_MOD_NAME_MAX - 1);
	gwr32(m + FLUID_MOD_OFF_VARIANT, FLUID_VARIANT_BASELINE);
	gwr32(m + FLUID_MOD_OFF_IMAGE_OFFSET, FLUID_MOD_HDR_SIZE);
	gwr32(m + FLUID_MOD_OFF_CODE_SIZE, GCODE);
	gwr32(m + FLUID_MOD_OFF_ALIGN, 16);
	gwr32(m + FLUID_MOD_OFF_ENTRY, 0);
	gwr32(m + FLUID_MOD_OFF_RELOC_OFFSET, GMOD_BYTES);
	gwr32(m + FLUID_MOD_OFF_PROFILE, FLUID_MOD_NO_OFFSET);
	gwr32(m + FLUID_MOD_OFF_SERVICES, FLUID_SERVICES_VERSION);
	uint8_t *img = m + FLUID_MOD_HDR_SIZE;
	memset(img, 0x90, GCODE);
	memcpy(img, code, n);
	gwr32(m + FLUID_MOD_OFF_CRC32, crc32_ieee(m + FLUID_MOD_CRC_START, GMOD_BYTES - FLUID_MOD_CRC_START));
}

static int ghas(const char *s, const char *sub)
{
	size_t n = strlen(sub);
	for (; *s; s++)
		if (strncmp(s, sub, n) == 0)
			return 1;
	return 0;
}

/* Load code as module name into the (fresh) test pool and run it once
 * with deadline_ms; returns its record. */
static struct module_record *run_code(const char *name, const uint8_t *code, uint32_t n, uint32_t deadline_ms,
				      int *rc)
{
	static uint8_t m[GMOD_BYTES];
	static char file[FLUID_MOD_NAME_MAX + 4];
	make_code_module(m, name, code, n);
	strncpy(file, name, FLUID_MOD_NAME_MAX - 1);
	strncpy(file + strlen(file), ".mod", 5);
	struct module_record *rec = module_record_new(file);
	if (!rec)
		return NULL;
	struct module mod;
	if (module_load(rec, m, GMOD_BYTES, &gpool, &mod) != 0 || gcode_is_rx(&mod) != 0) {
		*rc = -2;
		return rec;
	}
	mod.runs = 1;
	mod.deadline_ms = deadline_ms;
	*rc = module_execute(&mod);
	return rec;
}

static const uint8_t code_ok[] = { 0x31, 0xC0, 0xC3 }; /* xor eax, eax; ret */

/* The deadline is per entry call and covers all calls together: 3 calls
 * (the full run) get three times what 1 call (LIGHT=1) gets. */
KTEST(guard_deadline_scales_with_calls)
{
	static const uint8_t spin[] = { 0xEB, 0xFE };
	static uint8_t m[GMOD_BYTES];
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	make_code_module(m, "spin3", spin, sizeof spin);
	struct module_record *r = module_record_new("spin3.mod");
	struct module mod;
	KT_EQ_U(module_load(r, m, GMOD_BYTES, &gpool, &mod), 0);
	KT_EQ_U(gcode_is_rx(&mod), 0);
	KT_EQ_U(mod.deadline_ms, MODULE_DEADLINE_MS); /* header field 0: the default */
	mod.runs = MODULE_RUNS;
	mod.deadline_ms = SPIN_DEADLINE_MS;
	KT_ASSERT(module_execute(&mod) == -1);
	KT_EQ_U(r->result, MODULE_TIMEOUT);
	KT_EQ_U(r->deadline_ms, SPIN_DEADLINE_MS * MODULE_RUNS);
	KT_ASSERT(r->stop.ms >= SPIN_DEADLINE_MS * MODULE_RUNS);
	/* a deadline in the header is the module's own */
	gwr32(m + FLUID_MOD_OFF_DEADLINE, 7);
	gwr32(m + FLUID_MOD_OFF_CRC32, crc32_ieee(m + FLUID_MOD_CRC_START, GMOD_BYTES - FLUID_MOD_CRC_START));
	r = module_record_new("spin3.mod");
	KT_EQ_U(module_load(r, m, GMOD_BYTES, &gpool, &mod), 0);
	KT_EQ_U(mod.deadline_ms, 7);
}

KTEST(guard_spinning_module_times_out)
{
	static const uint8_t spin[] = { 0xEB, 0xFE }; /* jmp $ */
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = 0;
	struct module_record *r = run_code("spin", spin, sizeof spin, SPIN_DEADLINE_MS, &rc);
	KT_ASSERT(r != NULL);
	KT_ASSERT(rc == -1);
	KT_EQ_U(r->result, MODULE_TIMEOUT);
	KT_EQ_U(r->stop.rip - r->base, 0);
	KT_ASSERT(r->stop.ms >= SPIN_DEADLINE_MS);
	KT_ASSERT(r->stop.ms < SPIN_DEADLINE_MS + 500u);
	KT_EQ_U(r->calls, 0);
	KT_ASSERT(r->profile == NULL);
	if (!ghas(r->reason, "timed out after") || !ghas(r->reason, "at spin+0x0"))
		ktest_fail(__FILE__, __LINE__, "reason \"%s\"", r->reason);
	KT_EQ_STR(module_result_word(r->result), "TIMEOUT");
	struct jit_stats st;
	jit_stats(&gpool, &st);
	KT_EQ_U(st.used, 0); /* its block went back to the pool */
	/* the kernel goes on: the next module runs and passes */
	struct module_record *next = run_code("after", code_ok, sizeof code_ok, SPIN_DEADLINE_MS, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(next->result, MODULE_OK);
}

KTEST(guard_faulting_modules_are_crashed)
{
	static const struct {
		const char *name;
		uint8_t code[12];
		uint32_t n, vector, off;
	} cases[] = {
		/* mov dword [abs 0x10], 1 */
		{ "nullwrite", { 0xC7, 0x04, 0x25, 0x10, 0, 0, 0, 1, 0, 0, 0 }, 11, 14, 0 },
		/* nop; nop; ud2 */
		{ "badop", { 0x90, 0x90, 0x0F, 0x0B }, 4, 6, 2 },
		/* xor ecx, ecx; xor edx, edx; div ecx */
		{ "divzero", { 0x31, 0xC9, 0x31, 0xD2, 0xF7, 0xF1 }, 6, 0, 4 },
		/* nop; int3 (the CPU reports the address after it) */
		{ "brk", { 0x90, 0xCC }, 2, 3, 2 },
		/* movabs rax, 0x8000000000000000; mov [rax], eax: a
		 * non-canonical address is #GP (13), not #PF */
		{ "noncanon", { 0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x89, 0x00 }, 12, 13, 10 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		KT_EQ_U(gpool_reset(), 0);
		module_records_reset();
		int rc = 0;
		struct module_record *r = run_code(cases[i].name, cases[i].code, cases[i].n, 1000, &rc);
		KT_ASSERT(r != NULL);
		if (r->result != MODULE_CRASHED || r->stop.vector != cases[i].vector ||
		    r->stop.rip - r->base != cases[i].off)
			ktest_fail(__FILE__, __LINE__, "%s: result %s vector %u at +0x%x, want CRASHED %u at +0x%x",
				   cases[i].name, module_result_word(r->result), r->stop.vector,
				   (unsigned)(r->stop.rip - r->base), cases[i].vector, cases[i].off);
		KT_ASSERT(rc == -1);
		KT_EQ_U(r->result, MODULE_CRASHED);
		KT_EQ_U(r->stop.vector, cases[i].vector);
		KT_EQ_U(r->stop.rip - r->base, cases[i].off);
		KT_ASSERT(ghas(r->reason, "crashed: exception"));
		if (cases[i].vector == 14) {
			KT_EQ_U(r->stop.cr2, 0x10);
			KT_EQ_U(r->stop.err & 2u, 2u); /* a write */
		}
		struct jit_stats st;
		jit_stats(&gpool, &st);
		KT_EQ_U(st.used, 0);
		struct module_record *next = run_code("after", code_ok, sizeof code_ok, 1000, &rc);
		KT_EQ_U(rc, 0);
		KT_EQ_U(next->result, MODULE_OK);
	}
}

KTEST(guard_stopped_module_heap_is_freed)
{
	/* push rbx; mov rbx, rdi (svc); mov edi, 100; call [rbx+alloc];
	 * mov edi, 200; call [rbx+alloc]; ud2 */
	const uint8_t a = (uint8_t)offsetof(struct fluid_services, alloc);
	const uint8_t leak[] = { 0x53, 0x48, 0x89, 0xFB, 0xBF, 0x64, 0, 0, 0, 0xFF, 0x53, a,
				 0xBF, 0xC8, 0, 0, 0, 0xFF, 0x53, a, 0x0F, 0x0B };
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	struct heap_stats before, after;
	heap_stats(&before);
	int rc = 0;
	struct module_record *r = run_code("leak", leak, sizeof leak, 1000, &rc);
	KT_EQ_U(r->result, MODULE_CRASHED);
	KT_EQ_U(r->stop.vector, 6);
	KT_EQ_U(r->stop.rip - r->base, sizeof leak - 2);
	heap_stats(&after);
	KT_EQ_U(after.free, before.free);
	KT_EQ_U(after.blocks, before.blocks);
	heap_check();
}

KTEST(guard_overdue_module_in_services_times_out)
{
	/* push rbx; mov rbx, rdi (svc); again: call [rbx+rdtsc]; jmp again */
	const uint8_t t = (uint8_t)offsetof(struct fluid_services, rdtsc);
	const uint8_t busy[] = { 0x53, 0x48, 0x89, 0xFB, 0xFF, 0x53, t, 0xEB, 0xFB };
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = 0;
	struct module_record *r = run_code("busy", busy, sizeof busy, SPIN_DEADLINE_MS, &rc);
	KT_ASSERT(rc == -1);
	KT_EQ_U(r->result, MODULE_TIMEOUT);
	/* stopped in its own code, or at the service's return into it */
	KT_ASSERT(r->stop.rip - r->base < sizeof busy);
}

/* A module that returns normally but breaks the calling convention:
 * RBP cleared, null data segments (which clears the FS base, the
 * stack-protector canary block), IF and DF flipped. The kernel must get
 * back its own registers and flags (module_call keeps them, not the
 * module), and the module still counts as having returned. */
KTEST(guard_abi_breaking_return_is_undone)
{
	static const struct {
		const char *name;
		uint8_t code[16];
		uint32_t n;
	} cases[] = {
		/* xor ebp, ebp; xor eax, eax; ret */
		{ "ebpret", { 0x31, 0xED, 0x31, 0xC0, 0xC3 }, 5 },
		/* xor eax, eax; mov ds/es/fs/gs, ax; ret */
		{ "dsret", { 0x31, 0xC0, 0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xE0, 0x8E, 0xE8, 0xC3 }, 11 },
		/* cli; std; xor eax, eax; ret */
		{ "flagsret", { 0xFA, 0xFD, 0x31, 0xC0, 0xC3 }, 5 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		KT_EQ_U(gpool_reset(), 0);
		module_records_reset();
		uint64_t before = read_eflags();
		int rc = -3;
		struct module_record *r = run_code(cases[i].name, cases[i].code, cases[i].n, 1000, &rc);
		uint64_t after = read_eflags();
		uint16_t ds;
		__asm__ volatile("movw %%ds, %0" : "=r"(ds));
		if (rc != 0 || r->result != MODULE_OK || (after & (EFLAGS_IF | 0x400u)) != (before & (EFLAGS_IF | 0x400u)))
			ktest_fail(__FILE__, __LINE__, "%s: rc %d result %s rflags 0x%llx, before 0x%llx", cases[i].name, rc,
				   module_result_word(r->result), (unsigned long long)after, (unsigned long long)before);
		KT_EQ_U(ds, GDT_KERNEL_DATA);
		KT_EQ_U(rdmsr(MSR_FS_BASE), (uint64_t)(uintptr_t)gdt_fs_block);
		__asm__ volatile("sti; cld");
	}
}

/* A module that changes the x87 control word and MXCSR (round toward
 * zero, exceptions unmasked) and returns: the next module starts with the
 * defaults, or its floating-point results depend on who ran before. */
KTEST(guard_fpu_state_does_not_leak)
{
	/* push 0xC40; fldcw [rsp]; mov dword [rsp], 0x6000; ldmxcsr [rsp];
	 * pop rax; xor eax, eax; ret (the i386 bytes mean the same in 64-bit
	 * mode) */
	static const uint8_t fpuset[] = { 0x68, 0x40, 0x0C, 0, 0, 0xD9, 0x2C, 0x24, 0xC7, 0x04, 0x24, 0x00, 0x60,
					  0, 0, 0x0F, 0xAE, 0x14, 0x24, 0x58, 0x31, 0xC0, 0xC3 };
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = -3;
	struct module_record *r = run_code("fpuset", fpuset, sizeof fpuset, 1000, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(r->result, MODULE_OK);
	uint16_t cw = 0;
	uint32_t mxcsr = 0;
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	KT_EQ_U(cw, 0x37F);
	if (fpu_features() & FPU_HAS_SSE) {
		__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
		KT_EQ_U(mxcsr & 0xFFC0u, 0x1F80u);
	}
	module_guard_reset_cpu();
}

/* A software interrupt to a vector nobody handles (int 0x99) is the
 * module's fault, like an exception: crashed, not a kernel panic. */
KTEST(guard_unhandled_software_interrupt_is_crashed)
{
	static const uint8_t code[] = { 0x90, 0xCD, 0x99 }; /* nop; int 0x99 */
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = 0;
	struct module_record *r = run_code("softint", code, sizeof code, 1000, &rc);
	KT_ASSERT(rc == -1);
	KT_EQ_U(r->result, MODULE_CRASHED);
	KT_EQ_U(r->stop.vector, 0x99);
	KT_EQ_U(r->stop.rip - r->base, 3);
}

/* A module that runs its stack into unmapped memory: the CPU cannot push
 * the exception frame, a double fault (on its own IST stack). The guard takes it
 * like any exception in the module, and the kernel's stack comes back. */
KTEST(guard_module_stack_overflow_is_crashed)
{
	static const struct {
		const char *name;
		uint8_t code[8];
		uint32_t n, off;
	} cases[] = {
		/* mov esp, 0x1000 (RSP = 0x1000, just above the unmapped NULL
		 * page); nop; ud2 */
		{ "badesp", { 0xBC, 0x00, 0x10, 0, 0, 0x90, 0x0F, 0x0B }, 8, 6 },
		/* again: call again (recursion into the kernel stack's guard page) */
		{ "recurse", { 0xE8, 0xFB, 0xFF, 0xFF, 0xFF }, 5, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		KT_EQ_U(gpool_reset(), 0);
		module_records_reset();
		int rc = 0;
		struct module_record *r = run_code(cases[i].name, cases[i].code, cases[i].n, 1000, &rc);
		if (rc != -1 || r->result != MODULE_CRASHED || r->stop.vector != EXC_DOUBLE_FAULT ||
		    r->stop.rip - r->base != cases[i].off)
			ktest_fail(__FILE__, __LINE__, "%s: rc %d result %s vector %u at +0x%x, want CRASHED 8 at +0x%x",
				   cases[i].name, rc, module_result_word(r->result), r->stop.vector,
				   (unsigned)(r->stop.rip - r->base), cases[i].off);
		/* twice: the #DF IST stack is ready again */
		struct module_record *next = run_code("after", code_ok, sizeof code_ok, 1000, &rc);
		KT_EQ_U(rc, 0);
		KT_EQ_U(next->result, MODULE_OK);
	}
}

/* A module that returns keeping heap blocks does not keep them: the next
 * module must not find the heap short (hash, sort, lz and matrix allocate). */
KTEST(guard_finished_module_heap_is_freed)
{
	/* push rbx; mov rbx, rdi (svc); mov edi, 100; call [rbx+alloc];
	 * mov edi, 200; call [rbx+alloc]; pop rbx; xor eax, eax; ret */
	const uint8_t a = (uint8_t)offsetof(struct fluid_services, alloc);
	const uint8_t keep[] = { 0x53, 0x48, 0x89, 0xFB, 0xBF, 0x64, 0, 0, 0, 0xFF, 0x53, a,
				 0xBF, 0xC8, 0, 0, 0, 0xFF, 0x53, a, 0x5B, 0x31, 0xC0, 0xC3 };
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	struct heap_stats before, after;
	heap_stats(&before);
	int rc = -3;
	struct module_record *r = run_code("keep", keep, sizeof keep, 1000, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(r->result, MODULE_OK);
	heap_stats(&after);
	KT_EQ_U(after.free, before.free);
	KT_EQ_U(after.blocks, before.blocks);
	heap_check();
}

/* A module that sets the trap flag right before it returns: the
 * single-step trap comes after its ret, in the kernel, which is not a
 * kernel crash; the module returned, and passes. */
KTEST(guard_trap_flag_after_return_is_cleared)
{
	/* xor eax, eax; pushfq; or dword [rsp], 0x100; popfq; ret */
	static const uint8_t code[] = { 0x31, 0xC0, 0x9C, 0x81, 0x0C, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9D, 0xC3 };
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = -3;
	struct module_record *r = run_code("tfret", code, sizeof code, 1000, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(r->result, MODULE_OK);
	KT_EQ_U(read_eflags() & 0x100u, 0);
}

static volatile uint32_t bp_hits;
__attribute__((noinline)) static void bp_target(void)
{
	bp_hits++;
}

/* A module that arms a hardware breakpoint on kernel code and returns:
 * the kernel must not stop there later (after the guard is gone). */
KTEST(guard_debug_registers_are_disarmed)
{
	/* movabs rax, bp_target; mov dr0, rax; mov eax, 1 (L0, execute);
	 * mov dr7, rax; xor eax, eax; ret */
	static uint8_t code[] = { 0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0x0F, 0x23, 0xC0, 0xB8, 0x01, 0, 0, 0,
				  0x0F, 0x23, 0xF8, 0x31, 0xC0, 0xC3 };
	uint64_t a = (uint64_t)(uintptr_t)bp_target;
	memcpy(code + 2, &a, sizeof a);
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = -3;
	struct module_record *r = run_code("drset", code, sizeof code, 1000, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(r->result, MODULE_OK);
	bp_target(); /* would be a #DB in the kernel: the dump */
	KT_EQ_U(bp_hits, 1);
}

/* A module that sets CR0.TS (as a task switch would) and returns: the FPU
 * reset after it must not fault in the kernel (#NM). */
KTEST(guard_control_registers_are_restored)
{
	/* mov rax, cr0; or eax, 8 (TS); mov cr0, rax; xor eax, eax; ret */
	static const uint8_t code[] = { 0x0F, 0x20, 0xC0, 0x83, 0xC8, 0x08, 0x0F, 0x22, 0xC0, 0x31, 0xC0, 0xC3 };
	uint64_t before = read_cr0();
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = -3;
	struct module_record *r = run_code("tsset", code, sizeof code, 1000, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(r->result, MODULE_OK);
	KT_EQ_U(read_cr0(), before);
}

/* A module that points RBP at the kernel stack's guard page (not present)
 * and then faults: the guard's backtrace of the stopped module must not
 * follow it (that read would fault inside the guard); the module is
 * crashed with its own #UD and the kernel goes on. */
KTEST(guard_module_rbp_into_guard_page_is_crashed)
{
	uint8_t code[12] = { 0x48, 0xBD }; /* movabs rbp, imm64; ud2 */
	uint64_t bad = (uint64_t)(uintptr_t)kernel_stack_guard + 64;
	for (unsigned i = 0; i < 8; i++)
		code[2 + i] = (uint8_t)(bad >> (8 * i));
	code[10] = 0x0F;
	code[11] = 0x0B;
	KT_EQ_U(gpool_reset(), 0);
	module_records_reset();
	int rc = 0;
	struct module_record *r = run_code("badrbp", code, sizeof code, 1000, &rc);
	KT_ASSERT(r != NULL);
	KT_EQ_U(r->result, MODULE_CRASHED);
	KT_EQ_U(r->stop.vector, 6);
	KT_EQ_U(r->stop.rip - r->base, 10);
	struct module_record *next = run_code("after", code_ok, sizeof code_ok, 1000, &rc);
	KT_EQ_U(rc, 0);
	KT_EQ_U(next->result, MODULE_OK);
}

/* read_file's pause: every tick between module_guard_pause and
 * module_guard_resume moves the deadline on, the first one too. Driven
 * without a module: the guard watches an image nothing runs in (so a tick
 * past the deadline only marks it overdue), with module_call_rsp set as
 * while a module call is in progress. Armed at an even tick T with 2 ms,
 * paused at once, resumed at T + 5: the module has used none of its 2
 * ticks, so at T + 6 it has used 1 and is not overdue. */
extern volatile uint64_t module_call_rsp;

static uint64_t wait_tick_at_least(uint64_t t)
{
	uint64_t now;
	while ((now = timer_ticks()) < t)
		cpu_pause();
	return now;
}

KTEST(guard_pause_moves_deadline_by_every_tick)
{
	static struct module_record r;
	memset(&r, 0, sizeof(r));
	r.base = 0x1000; /* page 0..: never RIP */
	r.size = 16;
	KT_ASSERT(read_eflags() & EFLAGS_IF);
	uint64_t t;
	do
		t = wait_tick_at_least(timer_ticks() + 1);
	while (t & 1);
	module_call_rsp = 1;
	module_guard_arm(&r, 2);
	module_guard_pause();
	uint64_t armed_at = timer_ticks();
	wait_tick_at_least(t + 5);
	module_guard_resume();
	uint64_t resumed_at = timer_ticks();
	wait_tick_at_least(t + 6);
	int overdue = module_guard_overdue();
	uint64_t checked_at = timer_ticks();
	module_guard_disarm();
	module_call_rsp = 0;
	if (armed_at != t || resumed_at != t + 5 || checked_at != t + 6)
		return; /* the ticks did not fall as planned: nothing to conclude */
	KT_EQ_U(overdue, 0);
}
