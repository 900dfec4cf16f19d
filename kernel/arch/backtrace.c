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

static const char *where(uint32_t a)
{
	return a >= (uint32_t)(uintptr_t)__text_start && a < (uint32_t)(uintptr_t)__text_end
		       ? "" : " (outside kernel .text)";
}

void backtrace_print(uint32_t eip, uint32_t ebp)
{
	uint32_t ret[BACKTRACE_MAX];
	unsigned n = backtrace_collect(ebp, ret, BACKTRACE_MAX - 1);
	kprintf("backtrace (addr2line -e build/kernel.elf):\n");
	kprintf("  #0  0x%08x%s\n", eip, where(eip));
	for (unsigned i = 0; i < n; i++)
		kprintf("  #%-2u 0x%08x%s\n", i + 1, ret[i], where(ret[i]));
}
