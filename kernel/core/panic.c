/*
 * panic.c — the end of the road for an impossible state: message, backtrace,
 * FLUID-END fail panic, exit EXIT_PANIC.  A panic inside panic exits at once.
 */
#include <stdarg.h>
#include "backtrace.h"
#include "bootinfo.h"
#include "console.h"
#include "cpu.h"
#include "exit.h"
#include "fmt.h"
#include "panic.h"
#include "serial.h"
#include "vga.h"

static int panicking;

void panic(const char *fmt, ...)
{
	cli();
	if (panicking++) {
		static const char msg[] = "*** PANIC while panicking\nFLUID-END fail panic: nested panic\n";
		serial_write(msg, sizeof msg - 1);
		qemu_exit(EXIT_PANIC);
	}
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	vga_set_color(VGA_WHITE, VGA_RED);
	kprintf("\n*** PANIC: %s\n", msg);
	vga_set_color(VGA_LIGHT_GREY, VGA_BLACK);
	/* Start at our caller: its return address is 8 bytes above our RBP. */
	const uint64_t *fp = __builtin_frame_address(0);
	backtrace_print(fp[1], fp[0]);
	fluid_end_fail("panic", "%s", msg);
}
