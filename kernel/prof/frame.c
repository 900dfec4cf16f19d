/*
 * frame.c — the COM1 frame encoding of profiling.h: base64 and the
 * BEGIN/payload/END lines. Pure: it only talks to the sink it is given.
 */
#include "profiling.h"
#include "crc32.h"
#include "fmt.h"
#include "string.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t prof_base64_encode(char *dst, const uint8_t *src, size_t n)
{
	size_t o = 0;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)src[i] << 16) | ((uint32_t)src[i + 1] << 8) | src[i + 2];
		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = b64_alphabet[(v >> 6) & 63];
		dst[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)src[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)src[i + 1] << 8;
		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		dst[o++] = '=';
	}
	return o;
}

static void sink_str(const struct prof_sink *sink, const char *s)
{
	sink->write(sink->ctx, s, strlen(s));
}

void prof_frame_write(const struct prof_sink *sink, const char *kind, const char *module,
		      const void *payload, size_t len)
{
	/* 57 input bytes encode to exactly PROF_B64_LINE (76) characters. */
	enum { IN_PER_LINE = PROF_B64_LINE / 4 * 3 };
	char line[160];
	const uint8_t *p = payload;

	ksnprintf(line, sizeof line, "@@FLUID-FRAME-BEGIN v=%d kind=%s module=%s len=%u crc32=%08x\n",
		  PROF_FRAME_VERSION, kind, module, (unsigned)len, (unsigned)crc32_ieee(payload, len));
	sink_str(sink, line);
	for (size_t off = 0; off < len; off += IN_PER_LINE) {
		size_t chunk = len - off < IN_PER_LINE ? len - off : IN_PER_LINE;
		size_t n = prof_base64_encode(line, p + off, chunk);
		line[n++] = '\n';
		sink->write(sink->ctx, line, n);
	}
	ksnprintf(line, sizeof line, "@@FLUID-FRAME-END kind=%s module=%s\n", kind, module);
	sink_str(sink, line);
}

void prof_frame_error(const struct prof_sink *sink, const char *kind, const char *module,
		      const char *reason)
{
	char line[256];
	ksnprintf(line, sizeof line, "@@FLUID-FRAME-ERROR kind=%s module=%s reason=%s\n", kind, module,
		  reason);
	sink_str(sink, line);
}
