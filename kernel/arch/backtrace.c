/*
 * backtrace.c — walk the EBP chain (the kernel is built with
 * -fno-omit-frame-pointer; entry.asm starts the chain with EBP = 0).
 */
#include <stdint.h>
#include "backtrace.h"
#include "console.h"
#include "kernel.h"

/* A frame pointer we may dereference: aligned, both words inside the image. */
static int frame_ok(uint32_t ebp)
{
	return ebp && !(ebp & 3) &&
	       ebp >= (uint32_t)(uintptr_t)__kernel_start &&
	       ebp + 8 <= (uint32_t)(uintptr_t)__kernel_end;
}

unsigned backtrace_collect(uint32_t ebp, uint32_t *out, unsigned max)
{
	unsigned n = 0;
	while (n < max && frame_ok(ebp)) {
		const uint32_t *fp = (const uint32_t *)(uintptr_t)ebp;
		uint32_t ret = fp[1];
		if (!ret)
			break;
		out[n++] = ret;
		if (fp[0] <= ebp)   /* the stack grows down: callers are higher */
			break;
		ebp = fp[0];
	}
	return n;
}

/* The module that is running, if any (backtrace_set_module). */
static uint32_t mod_lo, mod_hi;
static const char *mod_name;

void backtrace_set_module(uint32_t lo, uint32_t hi, const char *name)
{
	mod_lo = lo;
	mod_hi = hi;
	mod_name = name;
}

static void line(unsigned i, uint32_t a)
{
	if (a >= (uint32_t)(uintptr_t)__text_start && a < (uint32_t)(uintptr_t)__text_end)
		kprintf("  #%-2u 0x%08x\n", i, a);
	else if (mod_name && a >= mod_lo && a < mod_hi)
		kprintf("  #%-2u 0x%08x (module %s+0x%x)\n", i, a, mod_name, a - mod_lo);
	else
		kprintf("  #%-2u 0x%08x (outside kernel .text)\n", i, a);
}

void backtrace_print(uint32_t eip, uint32_t ebp)
{
	uint32_t ret[BACKTRACE_MAX];
	unsigned n = backtrace_collect(ebp, ret, BACKTRACE_MAX - 1);
	kprintf("backtrace (addr2line -e build/kernel.elf):\n");
	line(0, eip);
	for (unsigned i = 0; i < n; i++)
		line(i + 1, ret[i]);
}
