/*
 * console.h — kernel output: everything goes to COM1 and the VGA console.
 */
#ifndef FLUID_CONSOLE_H
#define FLUID_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

void console_write(const char *buf, size_t len);
/* End the current line if output so far did not (a module printed part of
 * a line): the kernel's lines that follow start lines of their own, where
 * the host's parser looks for them. */
void console_line_start(void);
/* Formats as ksnprintf (see fmt.h); returns the number of bytes written. */
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);

#endif
