/*
 * test_prof.c — in-kernel tests of the profile frame encoding (kernel/prof):
 * base64 against published vectors, and one whole frame against
 * the bytes the host's encoder (internal/profile.EncodeFrame) produces for
 * the same payload, so both sides agree on the format.
 */
#include "ktest.h"
#include "profiling.h"
#include "string.h"

struct mem_sink {
	char buf[1024];
	size_t len;
	int overflow;
};

static void mem_write(void *ctx, const char *s, size_t n)
{
	struct mem_sink *m = ctx;
	if (m->len + n >= sizeof m->buf) {
		m->overflow = 1;
		return;
	}
	memcpy(m->buf + m->len, s, n);
	m->len += n;
	m->buf[m->len] = '\0';
}

KTEST(prof_base64_vectors)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "" },         { "f", "Zg==" },         { "fo", "Zm8=" },
		{ "foo", "Zm9v" },  { "foob", "Zm9vYg==" },  { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char out[16];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t n = prof_base64_encode(out, (const uint8_t *)v[i].in, strlen(v[i].in));
		KT_EQ_U(n, PROF_B64_LEN(strlen(v[i].in)));
		out[n] = '\0';
		KT_EQ_STR(out, v[i].out);
	}
}

/* The expected text is what internal/profile.EncodeFrame writes for this
 * payload: 61 bytes -> one full 76-character line and one padded line. */
KTEST(prof_frame_matches_host_encoder)
{
	static struct mem_sink m;
	const struct prof_sink sink = { mem_write, &m };
	const char *payload = "hello, profile! 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFG";
	m.len = 0;
	m.overflow = 0;
	prof_frame_write(&sink, PROF_KIND_PROFRAW, "fib", payload, strlen(payload));
	KT_ASSERT(!m.overflow);
	KT_EQ_STR(m.buf,
		  "@@FLUID-FRAME-BEGIN v=1 kind=profraw module=fib len=61 crc32=ea4abd4d\n"
		  "aGVsbG8sIHByb2ZpbGUhIDAxMjM0NTY3ODkgYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXogQUJD\n"
		  "REVGRw==\n"
		  "@@FLUID-FRAME-END kind=profraw module=fib\n");
}

KTEST(prof_frame_error_line)
{
	static struct mem_sink m;
	const struct prof_sink sink = { mem_write, &m };
	m.len = 0;
	m.overflow = 0;
	prof_frame_error(&sink, PROF_KIND_PROFRAW, "sort", "out of heap");
	KT_EQ_STR(m.buf, "@@FLUID-FRAME-ERROR kind=profraw module=sort reason=out of heap\n");
}
