/*
 * fmt.c — bounded formatting for refusal messages and output lines (see
 * fmt.h). Invariant kept by every writer here: pos < cap and buf[pos] is
 * the terminating NUL, whatever the input.
 */
#include "fmt.h"

struct out {
	char *buf;
	size_t cap, pos;
};

static void put(struct out *o, char c)
{
	if (o->pos + 1 < o->cap)
		o->buf[o->pos++] = c;
	o->buf[o->pos] = 0;
}

static void put_escaped(struct out *o, const uint8_t *b, uint64_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (uint64_t i = 0; i < n; i++) {
		uint8_t c = b[i];
		if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') {
			put(o, (char)c);
		} else {
			put(o, '\\');
			put(o, 'x');
			put(o, hex[c >> 4]);
			put(o, hex[c & 15]);
		}
	}
}

size_t fl_escape(char *buf, size_t cap, const uint8_t *b, uint64_t n)
{
	struct out o = {buf, cap, 0};
	buf[0] = 0;
	put_escaped(&o, b, n);
	return o.pos;
}

size_t fl_vfmt(char *buf, size_t cap, const char *f, va_list ap)
{
	struct out o = {buf, cap, 0};
	buf[0] = 0;
	for (; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		f++;
		int zero = 0, width = 0, lng = 0;
		if (*f == '0') {
			zero = 1;
			f++;
		}
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		while (*f == 'l' || *f == 'z') {
			lng++;
			f++;
		}
		char tmp[24];
		int n = 0;
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			while (*s)
				put(&o, *s++);
			continue;
		}
		case 'S': {
			const char *s = va_arg(ap, const char *);
			uint64_t len = va_arg(ap, uint64_t);
			put_escaped(&o, (const uint8_t *)s, len);
			continue;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			continue;
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
			do
				tmp[n++] = (char)('0' + u % 10);
			while (u /= 10);
			if (v < 0)
				tmp[n++] = '-';
			break;
		}
		case 'u':
		case 'x': {
			uint64_t u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			unsigned base = *f == 'u' ? 10 : 16;
			do
				tmp[n++] = "0123456789abcdef"[u % base];
			while (u /= base);
			break;
		}
		case '%':
			put(&o, '%');
			continue;
		default:
			put(&o, '?');
			continue;
		}
		for (int i = n; i < width; i++)
			put(&o, zero ? '0' : ' ');
		while (n > 0)
			put(&o, tmp[--n]);
	}
	return o.pos;
}

size_t fl_fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	size_t n = fl_vfmt(buf, cap, f, ap);
	va_end(ap);
	return n;
}
