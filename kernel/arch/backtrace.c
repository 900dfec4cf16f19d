/*
 * backtrace.c — walk the RBP chain (the kernel is built with
 * -fno-omit-frame-pointer; entry.asm starts the chain with RBP = 0).
 */
#include <stdint.h>
#include "backtrace.h"
#include "console.h"
#include "kernel.h"
#include "vm.h"

/* A frame pointer we may dereference: aligned, both words inside the image
 * and mapped. The image holds not-present guard pages (vm.c: below the
 * kernel stack and each IST stack), and a corrupted RBP there would fault
 * inside the very exception dump that is printing this backtrace (the
 * two words can lie on two pages: both are looked up). */
static int frame_ok(uint64_t rbp)
{
	return rbp && !(rbp & 7) &&
	       rbp >= (uint64_t)(uintptr_t)__kernel_start &&
	       rbp + 16 <= (uint64_t)(uintptr_t)__kernel_end &&
	       vm_readable(rbp) && vm_readable(rbp + 8);
}

unsigned backtrace_collect(uint64_t rbp, uint64_t *out, unsigned max)
{
	unsigned n = 0;
	while (n < max && frame_ok(rbp)) {
		const uint64_t *fp = (const uint64_t *)(uintptr_t)rbp;
		uint64_t ret = fp[1];
		if (!ret)
			break;
		out[n++] = ret;
		if (fp[0] <= rbp)   /* the stack grows down: callers are higher */
			break;
		rbp = fp[0];
	}
	return n;
}

/* The module that is running, if any (backtrace_set_module). */
static uintptr_t mod_lo, mod_hi;
static const char *mod_name;

void backtrace_set_module(uintptr_t lo, uintptr_t hi, const char *name)
{
	mod_lo = lo;
	mod_hi = hi;
	mod_name = name;
}

static void line(unsigned i, uint64_t a)
{
	if (a >= (uint64_t)(uintptr_t)__text_start && a < (uint64_t)(uintptr_t)__text_end)
		kprintf("  #%-2u 0x%016llx\n", i, (unsigned long long)a);
	else if (mod_name && a >= mod_lo && a < mod_hi)
		kprintf("  #%-2u 0x%016llx (module %s+0x%llx)\n", i, (unsigned long long)a, mod_name,
			(unsigned long long)(a - mod_lo));
	else
		kprintf("  #%-2u 0x%016llx (outside kernel .text)\n", i, (unsigned long long)a);
}

void backtrace_print(uint64_t rip, uint64_t rbp)
{
	uint64_t ret[BACKTRACE_MAX];
	unsigned n = backtrace_collect(rbp, ret, BACKTRACE_MAX - 1);
	kprintf("backtrace (llvm-symbolizer --obj=build/kernel.elf ADDR):\n");
	line(0, rip);
	for (unsigned i = 0; i < n; i++)
		line(i + 1, ret[i]);
}
