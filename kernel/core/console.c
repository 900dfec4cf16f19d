/*
 * console.c — kprintf: format once, send to COM1 and the VGA console.
 */
#include <stdarg.h>
#include "console.h"
#include "fmt.h"
#include "serial.h"
#include "vga.h"

/* 1 when the last byte console_write sent was a newline (or none was
 * sent). Modules print through the console too, not always whole lines. */
static int at_line_start = 1;

void console_write(const char *buf, size_t len)
{
	serial_write(buf, len);
	vga_write(buf, len);
	if (len)
		at_line_start = buf[len - 1] == '\n';
}

void console_line_start(void)
{
	if (!at_line_start)
		console_write("\n", 1);
}

static void console_sink(void *ctx, const char *s, size_t n)
{
	(void)ctx;
	console_write(s, n);
}

int kvprintf(const char *fmt, va_list ap)
{
	return kvformat(console_sink, 0, fmt, ap);
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvprintf(fmt, ap);
	va_end(ap);
	return n;
}
