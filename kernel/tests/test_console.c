/*
 * test_console.c — the VGA console shows what kprintf prints, scrolls,
 * and the frame-pointer backtrace walks back into the kernel.
 */
#include <stdint.h>
#include "backtrace.h"
#include "console.h"
#include "kernel.h"
#include "ktest.h"
#include "serial.h"
#include "vga.h"

static int row_starts_with(unsigned row, const char *s)
{
	for (unsigned c = 0; s[c]; c++)
		if ((char)(vga_cell(row, c) & 0xFF) != s[c])
			return 0;
	return 1;
}

KTEST(console_vga_mirrors_kprintf)
{
	kprintf("vga-probe %d\n", 4321);
	unsigned row, col;
	vga_cursor(&row, &col);
	KT_EQ_U(col, 0);
	KT_ASSERT(row >= 1);
	KT_ASSERT(row_starts_with(row - 1, "vga-probe 4321"));
	KT_EQ_U(vga_cell(row - 1, 0) >> 8, VGA_LIGHT_GREY);   /* grey on black */
}

KTEST(console_vga_scrolls)
{
	vga_write("scroll-probe\n", 13);
	unsigned row, col;
	vga_cursor(&row, &col);
	unsigned probe_row = row - 1;
	for (unsigned i = 0; i < VGA_ROWS; i++)
		vga_write("\n", 1);
	vga_cursor(&row, &col);
	KT_EQ_U(row, VGA_ROWS - 1);    /* the cursor stays on the last line */
	/* VGA_ROWS newlines moved every line up VGA_ROWS rows: the probe is gone. */
	KT_ASSERT(probe_row < VGA_ROWS);
	for (unsigned r = 0; r < VGA_ROWS; r++)
		KT_ASSERT(!row_starts_with(r, "scroll-probe"));
	KT_ASSERT(row_starts_with(0, "Fluid OS "));   /* the pinned banner stayed */
}

KTEST(console_serial_no_timeouts)
{
	if (serial_present())
		KT_EQ_U(serial_tx_timeouts(), 0);
}

KTEST(backtrace_walks_kernel_frames)
{
	uint64_t ret[BACKTRACE_MAX];
	unsigned n = backtrace_collect((uint64_t)(uintptr_t)__builtin_frame_address(0), ret, BACKTRACE_MAX);
	KT_ASSERT(n >= 2);       /* the runner, kernel_main */
	KT_ASSERT(n < BACKTRACE_MAX);   /* the chain ends (RBP = 0 at _start) */
	for (unsigned i = 0; i < n; i++) {
		KT_ASSERT(ret[i] >= (uint64_t)(uintptr_t)__text_start);
		KT_ASSERT(ret[i] < (uint64_t)(uintptr_t)__text_end);
	}
	KT_EQ_U(backtrace_collect(0, ret, BACKTRACE_MAX), 0);
	KT_EQ_U(backtrace_collect(3, ret, BACKTRACE_MAX), 0);   /* misaligned */
	/* inside the image but not present (the stack guard page): a
	 * corrupted RBP there must end the walk, not fault inside a dump */
	KT_EQ_U(backtrace_collect((uint64_t)(uintptr_t)kernel_stack_guard + 64, ret, BACKTRACE_MAX), 0);
	/* a frame whose saved RBP leads into the guard page: one frame, then stop */
	uint64_t frame[2] = { (uint64_t)(uintptr_t)kernel_stack_guard + 4096 - 8, (uint64_t)(uintptr_t)__text_start };
	KT_EQ_U(backtrace_collect((uint64_t)(uintptr_t)frame, ret, BACKTRACE_MAX), 1);
}
