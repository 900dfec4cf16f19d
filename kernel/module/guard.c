/*
 * guard.c — a module's deadline and fault containment. While module_execute
 * runs a module, a CPU exception raised by the module's own code, or a
 * timer tick past its deadline that lands in the module's code, ends that
 * module and not the run: the guard records what happened in the module's
 * record and resumes the kernel where it entered the module (module_call in
 * arch/modcall.asm returns 1). module_execute (loader.c) reports it.
 *
 * A fault whose RIP is not in the module's image (the kernel itself, or a
 * kernel service the module called) is a kernel crash: the filter declines
 * it and the exception dump ends the run as before. The one exception is
 * a debug trap (#DB) in the kernel while a module runs: only the module
 * can have set TF or DR7, so the filter clears them and the kernel goes
 * on. A double fault in the module (its stack ran into an unmapped page)
 * reaches the filter like any exception: #DF runs on its own IST stack
 * (arch/gdt.c), and the filter's iretq to module_call_abort leaves it.
 */
#include <stdint.h>
#include "backtrace.h"
#include "cpu.h"
#include "fpu.h"
#include "gdt.h"
#include "idt.h"
#include "module.h"
#include "timer.h"

#define EFLAGS_RESERVED1   0x2u
#define EXC_DEBUG          1u
#define EFLAGS_TF          0x100u
#define MXCSR_DEFAULT      0x1F80u

/* Set by module_call (arch/modcall.asm): nonzero while a module runs. */
extern volatile uint64_t module_call_rsp;
extern char module_call_abort[];

/*
 * The guarded module, between module_guard_arm and module_guard_disarm.
 * Invariants: the hooks are installed only while stop != NULL, and the
 * fields are written before the hooks are installed and after they are
 * removed, so an interrupt sees either no guard or a whole one. The guard
 * takes control back only when RIP is inside [lo, hi): then no kernel code
 * is half-way through anything (a module holds no kernel lock and is not
 * called from an interrupt), so resuming at module_call is safe.
 */
static struct {
	uintptr_t lo, hi;          /* the module's image: code, data and bss */
	uint64_t start, deadline;  /* ticks: when it started, when it is overdue */
	uint64_t paused_at;        /* ticks at module_guard_pause (when paused) */
	int paused;                /* between module_guard_pause and resume */
	volatile int overdue;      /* the deadline passed (a service ends it) */
	struct module_stop *stop;  /* where the reason goes                  */
} g;

static int in_module(uint64_t rip)
{
	return rip >= g.lo && rip < g.hi;
}

/* Make f return (iretq) to module_call_abort on the kernel stack saved by
 * module_call, with kernel segments and IF=1. */
static void redirect(struct int_frame *f)
{
	f->rip = (uint64_t)(uintptr_t)module_call_abort;
	f->cs = GDT_KERNEL_CODE;
	f->rflags = EFLAGS_IF | EFLAGS_RESERVED1; /* DF, TF, AC clear */
	f->rsp = module_call_rsp;
	f->ss = GDT_KERNEL_DATA;
}

static void record(uint32_t why, uint64_t rip, uint64_t now)
{
	struct module_stop *s = g.stop;
	s->why = why;
	s->rip = rip;
	s->ms = (uint32_t)((now - g.start) * 1000u / TIMER_HZ);
}

static int guard_exception(struct int_frame *f)
{
	if (!g.stop || !module_call_rsp || f->vector == EXC_NMI || f->vector == EXC_MACHINE_CHECK)
		return 0;
	if (f->vector == EXC_DEBUG && !in_module(f->rip)) {
		/* The module set the trap flag or a debug register and then
		 * returned or called a service: the kernel is not to be
		 * single-stepped or stopped at breakpoints (nothing in it sets
		 * them). Clear both and go on; module_call restores the
		 * kernel's flags when the module returns. */
		f->rflags &= ~(uint64_t)EFLAGS_TF;
		__asm__ volatile("movq %0, %%dr7" : : "r"(0ull));
		return 1;
	}
	if (!in_module(f->rip))
		return 0;
	struct module_stop *s = g.stop;
	record(MODULE_CRASHED, f->rip, timer_ticks());
	s->vector = (uint32_t)f->vector;
	s->err = (uint32_t)f->err;
	s->cr2 = f->vector == EXC_PAGE_FAULT ? read_cr2() : 0;
	/* The RBP chain as the module left it; printing stops at the first
	 * address outside the module (module.h). Collected as 64-bit
	 * addresses, stored in module.h's array whatever its element type. */
	uint64_t bt[BACKTRACE_MAX];
	unsigned nbt = backtrace_collect(f->rbp, bt, BACKTRACE_MAX - 1);
	for (unsigned i = 0; i < nbt; i++)
		s->bt[i] = bt[i];
	s->nbt = nbt;
	redirect(f);
	return 1;
}

static void guard_tick(struct int_frame *f, uint64_t now)
{
	if (!g.stop || !module_call_rsp || now < g.deadline)
		return;
	g.overdue = 1;
	if (!in_module(f->rip))
		return; /* in a kernel service: a later tick or the next service call ends it */
	record(MODULE_TIMEOUT, f->rip, now);
	redirect(f);
}

/* CR0 and CR4 as the kernel had them when a module was last armed
 * (saved != 0): a module may set CR0.TS or clear CR4.OSFXSR, and the FPU
 * reset after it would then fault in the kernel. */
static struct {
	uint64_t cr0, cr4;
	int saved;
} cr;

void module_guard_arm(struct module_record *r, uint32_t deadline_ms)
{
	cr.cr0 = read_cr0();
	cr.cr4 = read_cr4();
	cr.saved = 1;
	g.lo = r->base;
	g.hi = r->base + r->size;
	g.start = timer_ticks();
	g.deadline = g.start + ((uint64_t)deadline_ms * TIMER_HZ + 999u) / 1000u;
	g.overdue = 0;
	g.paused_at = 0;
	g.paused = 0;
	g.stop = &r->stop;
	__asm__ volatile("" ::: "memory");
	backtrace_set_module(g.lo, g.hi, r->name);
	exception_set_filter(guard_exception);
	timer_set_tick_hook(guard_tick);
}

void module_guard_disarm(void)
{
	timer_set_tick_hook(NULL);
	exception_set_filter(NULL);
	backtrace_set_module(0, 0, NULL);
	__asm__ volatile("" ::: "memory");
	g.stop = NULL;
	g.overdue = 0;
}

/*
 * The deadline does not run while the kernel does slow I/O on the module's
 * behalf. Invariant: between pause and resume the guard may mark the
 * module overdue (a tick past the old deadline) but never stops it there
 * (RIP is in the kernel, not in [lo, hi)); resume moves the deadline on by
 * the ticks that passed (and the start the stop line measures from) and
 * recomputes overdue against the new deadline, so only time the module
 * spent itself can make it overdue. Both are
 * no-ops when no module is guarded.
 */
void module_guard_pause(void)
{
	if (g.stop) {
		g.paused_at = timer_ticks(); /* held counts from this tick */
		g.paused = 1;
	}
}

void module_guard_resume(void)
{
	if (!g.stop || !g.paused)
		return;
	uint64_t now = timer_ticks();
	uint64_t held = now > g.paused_at ? now - g.paused_at : 0;
	g.paused = 0;
	g.deadline += held;
	g.start += held; /* "timed out after N ms" counts the module's time only */
	g.overdue = now >= g.deadline;
}

int module_guard_overdue(void)
{
	return g.stop && g.overdue;
}

/* Called at the entry of every kernel service: if the module is overdue,
 * end it here, where the kernel holds nothing (ret = the return address
 * into the module, reported as where it stopped). */
void module_guard_service(void *ret)
{
	if (!g.overdue || !g.stop || !module_call_rsp)
		return;
	record(MODULE_TIMEOUT, (uint64_t)(uintptr_t)ret, timer_ticks());
	__asm__ volatile("jmp module_call_abort");
	__builtin_unreachable();
}

void module_guard_reset_cpu(void)
{
	if (cr.saved) {
		write_cr4(cr.cr4);
		write_cr0(cr.cr0);
	}
	/* A hardware breakpoint the module armed would fire in the kernel
	 * after the guard is gone. */
	__asm__ volatile("movq %0, %%dr7" : : "r"(0ull));
	/* The module may have left x87 exceptions pending or MXCSR changed. */
	__asm__ volatile("fninit");
	if (fpu_features() & FPU_HAS_SSE) {
		uint32_t mxcsr = MXCSR_DEFAULT;
		__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	}
}

static const char *const mnemonics[EXC_VECTORS] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS",
	"#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25",
	"#26", "#27", "#HV", "#VC", "#SX", "#31",
};

const char *module_exception_mnemonic(uint32_t vector)
{
	return vector < EXC_VECTORS ? mnemonics[vector] : "#?";
}
