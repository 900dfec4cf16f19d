/*
 * fmt.h — a small bounded string formatter for the llama module: refusal
 * messages are built into a buffer before they are printed, and the kernel
 * offers printf only to the console.
 */
#ifndef LLAMA_FMT_H
#define LLAMA_FMT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Formats into buf (cap > 0), always NUL-terminated, truncating. Supports
 * %s, %c, %%, %d/%u/%x with optional l/ll/z, a width with optional 0 flag,
 * and %S (a const char* + uint64_t length pair, the bytes escaped like the
 * contract's quoted strings). Returns the length written. */
size_t fl_fmt(char *buf, size_t cap, const char *f, ...);
size_t fl_vfmt(char *buf, size_t cap, const char *f, va_list ap);

/* Appends the contract's escaping of b[0..n) to buf (bytes 0x20..0x7E
 * except '"' and '\\' as themselves, every other byte as \xNN). */
size_t fl_escape(char *buf, size_t cap, const uint8_t *b, uint64_t n);

#endif
