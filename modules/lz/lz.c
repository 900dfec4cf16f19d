/*
 * lz — an LZ77-style compressor (4-byte hash, greedy matching, 64 KiB
 * window) and its decompressor, round-tripping generated text. Checks the
 * round trip byte for byte and the compressed size and input hash against
 * modules/lz/known_answers.py (a Python port of the same format).
 *
 * Format: a token byte t; t < 0x80: t+1 literal bytes follow; t >= 0x80: a
 * match of (t & 0x7F) + MIN_MATCH bytes at the 16-bit little-endian offset
 * that follows (distance back from the current output position).
 */
#include "fluid_module.h"

#define LZ_N_DEFAULT   (64u * 1024u)
#define LZ_N_LIGHT     (8u * 1024u)
#define LZ_SEED        0x2545F491u
#define MIN_MATCH      4u
#define MAX_MATCH      (0x7Fu + MIN_MATCH)
#define MAX_LITERALS   128u
#define WINDOW         65535u
#define HASH_BITS      12u
#define HASH_SIZE      (1u << HASH_BITS)

/* python3 modules/lz/known_answers.py */
#define CSIZE_DEFAULT  36172u
#define FNV_DEFAULT    0x955a485du
#define CSIZE_LIGHT    4599u
#define FNV_LIGHT      0x52a231aau

static const char *const words[16] = {
	"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
	"fluid", "kernel", "module", "profile", "branch", "cache", "loop", "data",
};

static void gen_text(uint8_t *p, uint32_t n)
{
	uint32_t s = LZ_SEED, i = 0;
	while (i < n) {
		uint32_t x = xorshift32(&s);
		const char *w = words[x >> 28];
		while (*w && i < n)
			p[i++] = (uint8_t)*w++;
		if ((x & 0x70) == 0) {
			for (int k = 0; k < 3 && i < n; k++)
				p[i++] = (uint8_t)('0' + (x >> (8 + 4 * k)) % 10);
		}
		if (i < n)
			p[i++] = (x & 0xF) == 0 ? '\n' : ' ';
	}
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t hash4(const uint8_t *p)
{
	return (rd32(p) * 2654435761u) >> (32 - HASH_BITS);
}

static uint32_t emit_literals(uint8_t *out, uint32_t o, const uint8_t *in, uint32_t from, uint32_t to)
{
	while (from < to) {
		uint32_t k = to - from > MAX_LITERALS ? MAX_LITERALS : to - from;
		out[o++] = (uint8_t)(k - 1);
		for (uint32_t j = 0; j < k; j++)
			out[o++] = in[from + j];
		from += k;
	}
	return o;
}

/* out needs n + n/128 + 16 bytes; returns the compressed size. */
static uint32_t compress(const uint8_t *in, uint32_t n, uint8_t *out, int32_t *head)
{
	for (uint32_t i = 0; i < HASH_SIZE; i++)
		head[i] = -1;
	uint32_t i = 0, lit = 0, o = 0;
	while (i + MIN_MATCH <= n) {
		uint32_t h = hash4(in + i);
		int32_t cand = head[h];
		head[h] = (int32_t)i;
		if (cand >= 0 && i - (uint32_t)cand <= WINDOW && rd32(in + cand) == rd32(in + i)) {
			uint32_t len = MIN_MATCH;
			while (i + len < n && len < MAX_MATCH && in[cand + len] == in[i + len])
				len++;
			o = emit_literals(out, o, in, lit, i);
			uint32_t off = i - (uint32_t)cand;
			out[o++] = (uint8_t)(0x80 | (len - MIN_MATCH));
			out[o++] = (uint8_t)off;
			out[o++] = (uint8_t)(off >> 8);
			for (uint32_t k = 1; k < len && i + k + MIN_MATCH <= n; k++)
				head[hash4(in + i + k)] = (int32_t)(i + k);
			i += len;
			lit = i;
		} else {
			i++;
		}
	}
	return emit_literals(out, o, in, lit, n);
}

/* Returns the decompressed size, or UINT32_MAX on malformed input. */
static uint32_t decompress(const uint8_t *in, uint32_t n, uint8_t *out, uint32_t cap)
{
	uint32_t i = 0, o = 0;
	while (i < n) {
		uint8_t t = in[i++];
		if (t < 0x80) {
			uint32_t k = (uint32_t)t + 1;
			if (i + k > n || o + k > cap)
				return UINT32_MAX;
			for (uint32_t j = 0; j < k; j++)
				out[o++] = in[i++];
		} else {
			if (i + 2 > n)
				return UINT32_MAX;
			uint32_t len = (uint32_t)(t & 0x7F) + MIN_MATCH;
			uint32_t off = (uint32_t)in[i] | (uint32_t)in[i + 1] << 8;
			i += 2;
			if (off == 0 || off > o || o + len > cap)
				return UINT32_MAX;
			for (uint32_t j = 0; j < len; j++, o++)
				out[o] = out[o - off]; /* may overlap: byte by byte */
		}
	}
	return o;
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 0x811C9DC5u;
	for (uint32_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t n = svc->light ? LZ_N_LIGHT : LZ_N_DEFAULT;
	uint32_t cap = n + n / MAX_LITERALS + 16;
	uint8_t *in = svc->alloc(n);
	uint8_t *comp = svc->alloc(cap);
	uint8_t *back = svc->alloc(n);
	int32_t *head = svc->alloc(HASH_SIZE * sizeof(int32_t));
	int ok = 1;
	if (!in || !comp || !back || !head) {
		svc->print("lz: out of memory\n");
		ok = 0;
		goto out;
	}
	gen_text(in, n);
	uint32_t csize = compress(in, n, comp, head);
	uint32_t dsize = decompress(comp, csize, back, n);
	ok &= svc->check("input fnv1a", fnv1a(in, n), svc->light ? FNV_LIGHT : FNV_DEFAULT);
	ok &= svc->check("compressed size", csize, svc->light ? CSIZE_LIGHT : CSIZE_DEFAULT);
	ok &= svc->check("decompressed size", dsize, n);
	ok &= svc->check("round trip equal", dsize == n && memcmp(in, back, n) == 0, 1);
out:
	svc->free(head);
	svc->free(back);
	svc->free(comp);
	svc->free(in);
	return ok ? FLUID_OK : FLUID_FAIL;
}
