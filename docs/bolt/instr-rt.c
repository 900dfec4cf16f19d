/*
 * instr-rt.c — a freestanding stand-in for BOLT's instrumentation runtime
 * (libbolt_rt_instr.a), given to `llvm-bolt -instrument
 * --runtime-instrumentation-lib=instr-rt.a`. The real runtime makes Linux
 * system calls (mmap, open, write, getdents64 on /proc/self/map_files, fork,
 * signals, exit_group); this one makes none:
 *   __bolt_instr_start  (the hooked entry) only points the indirect-call
 *                       hooks at a no-op and jumps to the original entry;
 *   __bolt_instr_fini   (DT_FINI) is called like fluid_profile_dump(buf,cap):
 *                       it copies the raw 64-bit edge counters into buf and
 *                       returns the byte count (-1 when cap is too small).
 * Indirect-call targets are not recorded (the real runtime keeps them in
 * heap tables); the host turns the counters into an fdata file.
 */
#include <stdint.h>

/* hidden: RIP-relative references (BOLT links this in-process with JITLink,
 * which refuses GOT loads; absolute ones would not follow the module when
 * the loader moves it). */
#pragma GCC visibility push(hidden)

extern uint64_t __bolt_instr_locations[]; /* the counters, defined by BOLT */
extern uint64_t __bolt_num_counters;
extern void (*__bolt_ind_call_counter_func_pointer)(void);
extern void (*__bolt_ind_tailcall_counter_func_pointer)(void);
void __bolt_start_trampoline(void);
void __bolt_fini_trampoline(void);

/* BOLT calls these with its own convention; doing nothing is safe. */
__attribute__((naked)) void __bolt_instr_indirect_call(void) { __asm__ volatile("ret"); }
__attribute__((naked)) void __bolt_instr_indirect_tailcall(void) { __asm__ volatile("ret"); }

void __bolt_instr_setup(void)
{
	__bolt_ind_call_counter_func_pointer = __bolt_instr_indirect_call;
	__bolt_ind_tailcall_counter_func_pointer = __bolt_instr_indirect_tailcall;
}

/* The entry BOLT hooks: keep every argument register for the real entry. */
__attribute__((naked)) void __bolt_instr_start(void)
{
	__asm__ volatile("push %rdi\n push %rsi\n push %rdx\n push %rcx\n push %r8\n push %r9\n push %rax\n"
			 "call __bolt_instr_setup\n"
			 "pop %rax\n pop %r9\n pop %r8\n pop %rcx\n pop %rdx\n pop %rsi\n pop %rdi\n"
			 "jmp __bolt_start_trampoline\n");
}

int64_t __bolt_instr_fini(uint8_t *buf, uint64_t cap)
{
	uint64_t n = __bolt_num_counters * 8;
	if (n > cap)
		return -1;
	const uint8_t *src = (const uint8_t *)__bolt_instr_locations;
	for (uint64_t i = 0; i < n; i++)
		buf[i] = src[i];
	return (int64_t)n;
}

void __bolt_instr_clear_counters(void)
{
	for (uint64_t i = 0; i < __bolt_num_counters; i++)
		__bolt_instr_locations[i] = 0;
}

void __bolt_instr_data_dump(void) {}
