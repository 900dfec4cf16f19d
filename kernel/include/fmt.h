/*
 * fmt.h — freestanding printf-style formatting.
 *
 * Conversions: %d %i %u %x %X %p %s %c %%.  Sizes: l (long: 64-bit on x86_64), ll (64-bit),
 * z (size_t).  Flags: '-' (left-justify), '0' (zero-pad).  Width and
 * precision as decimal digits or '*'.  Precision: maximum bytes for %s,
 * minimum digits for integers (as in C).  %p prints "0x" and at least 8 hex digits.
 * A NULL %s prints "(null)".  An unknown conversion is copied verbatim.
 */
#ifndef FLUID_FMT_H
#define FLUID_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Receives formatted output in pieces. */
typedef void (*fmt_sink)(void *ctx, const char *s, size_t n);

/* Core formatter: returns the number of bytes produced. */
int kvformat(fmt_sink sink, void *ctx, const char *fmt, va_list ap);

/* Like C's snprintf: always NUL-terminates when size > 0 and returns the
 * length the full output would have had (so >= size means truncated). */
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
