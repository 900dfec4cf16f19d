/*
 * hash — CRC-32 (table driven), FNV-1a 32 and SHA-256 over a pseudo-random
 * buffer. Expected values come from Python's zlib.crc32, a two-line FNV-1a
 * and hashlib.sha256 over the same buffer (modules/README.md, "Known
 * answers"): bytes are the low byte of successive xorshift32 states from
 * seed 0x12345678.
 */
#include "fluid_module.h"

#define HASH_LEN_DEFAULT (128u * 1024u)
#define HASH_LEN_LIGHT   (16u * 1024u)
#define HASH_SEED        0x12345678u

/* python3: zlib.crc32 / fnv1a / hashlib.sha256(buf).digest()[:8] big-endian */
#define CRC_DEFAULT      0xa8420247u
#define FNV_DEFAULT      0x8525e8c7u
#define SHA_DEFAULT      0xfe5572cfbb755306ull
#define CRC_LIGHT        0x8a232b82u
#define FNV_LIGHT        0xc0f6011bu
#define SHA_LIGHT        0xb650c67611727709ull

static uint32_t crc32(const uint8_t *p, uint32_t n, const uint32_t *tab)
{
	uint32_t c = 0xFFFFFFFFu;
	for (uint32_t i = 0; i < n; i++)
		c = tab[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
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

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *b)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = bb;
		bb = a;
		a = t1 + t2;
	}
	h[0] += a; h[1] += bb; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* SHA-256 of p[0..n); returns the first 8 digest bytes as a big-endian u64. */
static uint64_t sha256_prefix(const uint8_t *p, uint32_t n)
{
	uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	uint32_t i = 0;
	for (; i + 64 <= n; i += 64)
		sha256_block(h, p + i);
	uint8_t tail[128];
	uint32_t r = n - i;
	memset(tail, 0, sizeof(tail));
	memcpy(tail, p + i, r);
	tail[r] = 0x80;
	uint32_t tl = (r + 9 <= 64) ? 64 : 128;
	uint64_t bits = (uint64_t)n * 8;
	for (int k = 0; k < 8; k++)
		tail[tl - 1 - k] = (uint8_t)(bits >> (8 * k));
	for (uint32_t k = 0; k < tl; k += 64)
		sha256_block(h, tail + k);
	return (uint64_t)h[0] << 32 | h[1];
}

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t n = svc->light ? HASH_LEN_LIGHT : HASH_LEN_DEFAULT;
	uint8_t *buf = svc->alloc(n);
	uint32_t *tab = svc->alloc(256 * sizeof(uint32_t));
	if (!buf || !tab) {
		svc->print("hash: out of memory\n");
		svc->free(buf);
		svc->free(tab);
		return FLUID_FAIL;
	}
	uint32_t s = HASH_SEED;
	for (uint32_t i = 0; i < n; i++)
		buf[i] = (uint8_t)xorshift32(&s);
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
		tab[i] = c;
	}
	int ok = 1;
	ok &= svc->check("crc32", crc32(buf, n, tab), svc->light ? CRC_LIGHT : CRC_DEFAULT);
	ok &= svc->check("fnv1a32", fnv1a(buf, n), svc->light ? FNV_LIGHT : FNV_DEFAULT);
	ok &= svc->check("sha256[0:8]", sha256_prefix(buf, n), svc->light ? SHA_LIGHT : SHA_DEFAULT);
	/* a second SHA-256 over an odd-length prefix exercises the padding path */
	ok &= svc->check("sha256(abc)", sha256_prefix((const uint8_t *)"abc", 3), 0xba7816bf8f01cfeaull);
	svc->free(tab);
	svc->free(buf);
	return ok ? FLUID_OK : FLUID_FAIL;
}
