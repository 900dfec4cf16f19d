/* readfile: the read_file and ms services (fluid_module.h), from a module.
 *
 * The test (TestBootReadFile) puts /data/blob.bin into the image and
 * /data/expect.txt beside it: "<size> <crc32 in hex>\n", what blob.bin
 * must hold. Every call reads both, checks the size and the CRC-32 the
 * module computes itself, asks again (the same pointer, no second read),
 * asks under another spelling (FAT names ignore case: the same bytes), and
 * asks for a missing file and a directory (NULL, size 0). It prints where
 * the bytes are ("readfile: /data/blob.bin at 0x..."), so the test can
 * see that a second module built from this file gets the same pointer
 * after the first one's heap was released; to make that release matter,
 * it allocates a block of the blob's size, fills it and never frees it.
 */
#include "fluid_module.h"

FLUID_DEADLINE_MS(20000); /* a CRC-32 of 32 MiB under TCG, three times */

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const uint8_t *p, uint64_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* "<decimal> <hex>": 0 on success. */
static int parse_expect(const char *s, uint64_t n, uint64_t *size, uint32_t *crc)
{
	uint64_t i = 0, v = 0;
	uint32_t h = 0;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return -1;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (i >= n || s[i++] != ' ')
		return -1;
	uint64_t digits = 0;
	for (; i < n; i++, digits++) {
		char c = s[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else
			break;
		h = h << 4 | d;
	}
	if (digits == 0 || digits > 8)
		return -1;
	*size = v;
	*crc = h;
	return 0;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	crc_init();
	uint64_t t0 = svc->ms();

	uint64_t elen = 99;
	const char *exp = svc->read_file("/data/expect.txt", &elen);
	uint64_t want_size = 0;
	uint32_t want_crc = 0;
	if (!exp || parse_expect(exp, elen, &want_size, &want_crc) != 0) {
		svc->print("readfile: /data/expect.txt is missing or not \"<size> <crc32 hex>\"\n");
		return FLUID_FAIL;
	}

	uint64_t n1 = 0;
	const uint8_t *p1 = svc->read_file("/data/blob.bin", &n1);
	svc->check("blob found", p1 != 0, 1);
	if (!p1)
		return FLUID_FAIL;
	svc->printf("readfile: /data/blob.bin at %p, %llu bytes\n", (const void *)p1, (unsigned long long)n1);
	svc->check("blob size", n1, want_size);
	svc->check("blob 16-byte aligned", (uintptr_t)p1 & 15u, 0);
	svc->check("blob crc32", crc32(p1, n1), want_crc);

	uint64_t n2 = 0;
	const uint8_t *p2 = svc->read_file("/data/blob.bin", &n2);
	svc->check("second request: same pointer", (uintptr_t)p2, (uintptr_t)p1);
	svc->check("second request: same size", n2, n1);
	uint64_t n3 = 0;
	const uint8_t *p3 = svc->read_file("/DATA/Blob.BIN", &n3);
	svc->check("other spelling: same pointer", (uintptr_t)p3, (uintptr_t)p1);

	uint64_t nm = 77;
	svc->check("missing file: NULL", (uintptr_t)svc->read_file("/data/missing.bin", &nm), 0);
	svc->check("missing file: size 0", nm, 0);
	uint64_t nd = 77;
	svc->check("directory: NULL", (uintptr_t)svc->read_file("/data", &nd), 0);
	svc->check("directory: size 0", nd, 0);
	uint64_t ne = 77;
	const void *pe = svc->read_file("/data/empty.bin", &ne);
	svc->check("empty file: not NULL", pe != 0, 1);
	svc->check("empty file: size 0", ne, 0);

	/* Heap the guard releases after the module: it must not be the cache's. */
	uint8_t *mine = svc->alloc(n1 ? n1 : 1);
	if (mine)
		memset(mine, 0xA5, n1 ? n1 : 1);
	svc->check("blob intact after an alloc", crc32(p1, n1), want_crc);

	uint64_t t1 = svc->ms();
	svc->check("ms does not go backwards", t1 >= t0, 1);
	/* The PIT ticks at 1 kHz: ms moves within a bounded spin. */
	uint64_t spins = 0;
	while (svc->ms() == t1 && spins < 2000000000u)
		spins++;
	svc->check("ms advances", svc->ms() > t1, 1);
	return FLUID_OK;
}
