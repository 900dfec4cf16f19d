/*
 * fmt.c — the kernel's printf engine (kvformat) and ksnprintf on top of it.
 * Output goes to a sink callback in pieces, so kprintf needs no big buffer.
 */
#include <stdarg.h>
#include <stdint.h>
#include "fmt.h"
#include "string.h"

enum size_mod { SZ_INT, SZ_LONG, SZ_LLONG, SZ_SIZE };

struct spec {
	int left;       /* '-' flag */
	int zero;       /* '0' flag */
	int width;      /* -1 if none */
	int prec;       /* -1 if none */
	enum size_mod size;
};

struct out {
	fmt_sink sink;
	void *ctx;
	int count;
};

static void emit(struct out *o, const char *s, size_t n)
{
	if (n) {
		o->sink(o->ctx, s, n);
		o->count += (int)n;
	}
}

static void emit_repeat(struct out *o, char c, int n)
{
	char buf[16];
	memset(buf, c, sizeof buf);
	while (n > 0) {
		int k = n > (int)sizeof buf ? (int)sizeof buf : n;
		emit(o, buf, (size_t)k);
		n -= k;
	}
}

/* Digits of v in base (10 or 16) into the end of buf; returns the start. */
static char *utoa(char *end, uint64_t v, unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	if ((v >> 32) == 0) {
		uint32_t w = (uint32_t)v;   /* 32-bit fast path: no __udivdi3 */
		do {
			*--p = digits[w % base];
			w /= base;
		} while (w);
	} else {
		do {
			*--p = digits[v % base];
			v /= base;
		} while (v);
	}
	return p;
}

static void emit_padded(struct out *o, const struct spec *sp, const char *s, int len)
{
	int pad = sp->width > len ? sp->width - len : 0;
	if (!sp->left)
		emit_repeat(o, ' ', pad);
	emit(o, s, (size_t)len);
	if (sp->left)
		emit_repeat(o, ' ', pad);
}

static void emit_number(struct out *o, const struct spec *sp, uint64_t v, int neg,
			unsigned base, int upper, const char *prefix)
{
	char buf[24];
	char *end = buf + sizeof buf;
	char *digits;
	int ndig;

	if (sp->prec == 0 && v == 0) {
		digits = end;       /* C: precision 0 prints no digits for 0 */
		ndig = 0;
	} else {
		digits = utoa(end, v, base, upper);
		ndig = (int)(end - digits);
	}
	int zeros = sp->prec > ndig ? sp->prec - ndig : 0;
	int plen = (int)strlen(prefix) + (neg ? 1 : 0);
	int len = plen + zeros + ndig;
	int pad = sp->width > len ? sp->width - len : 0;

	if (sp->zero && !sp->left && sp->prec < 0) {
		zeros += pad;       /* zero padding goes after the sign/prefix */
		pad = 0;
	}
	if (!sp->left)
		emit_repeat(o, ' ', pad);
	if (neg)
		emit(o, "-", 1);
	emit(o, prefix, strlen(prefix));
	emit_repeat(o, '0', zeros);
	emit(o, digits, (size_t)ndig);
	if (sp->left)
		emit_repeat(o, ' ', pad);
}

static int64_t arg_signed(va_list *ap, enum size_mod size)
{
	switch (size) {
	case SZ_LLONG: return va_arg(*ap, long long);
	case SZ_LONG:  return va_arg(*ap, long);
	case SZ_SIZE:  return (int32_t)va_arg(*ap, size_t);
	default:       return va_arg(*ap, int);
	}
}

static uint64_t arg_unsigned(va_list *ap, enum size_mod size)
{
	switch (size) {
	case SZ_LLONG: return va_arg(*ap, unsigned long long);
	case SZ_LONG:  return va_arg(*ap, unsigned long);
	case SZ_SIZE:  return va_arg(*ap, size_t);
	default:       return va_arg(*ap, unsigned int);
	}
}

static int parse_int(const char **pp)
{
	int v = 0;
	while (**pp >= '0' && **pp <= '9') {
		if (v < 100000)     /* clamp absurd widths instead of overflowing */
			v = v * 10 + (**pp - '0');
		(*pp)++;
	}
	return v;
}

int kvformat(fmt_sink sink, void *ctx, const char *fmt, va_list ap_in)
{
	struct out o = { sink, ctx, 0 };
	va_list ap;
	va_copy(ap, ap_in);

	while (*fmt) {
		if (*fmt != '%') {
			const char *run = fmt;
			while (*fmt && *fmt != '%')
				fmt++;
			emit(&o, run, (size_t)(fmt - run));
			continue;
		}
		const char *start = fmt++;
		struct spec sp = { 0, 0, -1, -1, SZ_INT };

		for (;; fmt++) {
			if (*fmt == '-')
				sp.left = 1;
			else if (*fmt == '0')
				sp.zero = 1;
			else
				break;
		}
		if (*fmt == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.left = 1;
				sp.width = -sp.width;
			}
			fmt++;
		} else if (*fmt >= '0' && *fmt <= '9') {
			sp.width = parse_int(&fmt);
		}
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				sp.prec = va_arg(ap, int);
				if (sp.prec < 0)
					sp.prec = -1;
				fmt++;
			} else {
				sp.prec = parse_int(&fmt);
			}
		}
		if (*fmt == 'l') {
			fmt++;
			sp.size = SZ_LONG;
			if (*fmt == 'l') {
				fmt++;
				sp.size = SZ_LLONG;
			}
		} else if (*fmt == 'z') {
			fmt++;
			sp.size = SZ_SIZE;
		}

		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = arg_signed(&ap, sp.size);
			uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			emit_number(&o, &sp, u, v < 0, 10, 0, "");
			break;
		}
		case 'u':
			emit_number(&o, &sp, arg_unsigned(&ap, sp.size), 0, 10, 0, "");
			break;
		case 'x':
		case 'X':
			emit_number(&o, &sp, arg_unsigned(&ap, sp.size), 0, 16, *fmt == 'X', "");
			break;
		case 'p': {
			struct spec ps = sp;
			ps.prec = 8;        /* always 8 hex digits after 0x */
			ps.zero = 0;
			emit_number(&o, &ps, (uintptr_t)va_arg(ap, void *), 0, 16, 0, "0x");
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = (int)(sp.prec >= 0 ? strnlen(s, (size_t)sp.prec) : strlen(s));
			emit_padded(&o, &sp, s, len);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			emit_padded(&o, &sp, &c, 1);
			break;
		}
		case '%':
			emit(&o, "%", 1);
			break;
		case '\0':
			/* Lone '%' at the end: print what we saw. */
			emit(&o, start, (size_t)(fmt - start));
			va_end(ap);
			return o.count;
		default:
			/* Unknown conversion: copy the whole directive verbatim. */
			emit(&o, start, (size_t)(fmt - start + 1));
			break;
		}
		fmt++;
	}
	va_end(ap);
	return o.count;
}

struct buf_ctx {
	char *buf;
	size_t size;
	size_t pos;
};

static void buf_sink(void *ctx, const char *s, size_t n)
{
	struct buf_ctx *b = ctx;
	if (b->pos + 1 < b->size) {
		size_t room = b->size - 1 - b->pos;
		memcpy(b->buf + b->pos, s, n < room ? n : room);
	}
	b->pos += n;
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct buf_ctx b = { buf, size, 0 };
	int n = kvformat(buf_sink, &b, fmt, ap);
	if (size)
		buf[b.pos < size ? b.pos : size - 1] = '\0';
	return n;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
