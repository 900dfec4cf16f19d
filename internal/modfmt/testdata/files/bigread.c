/* bigread: loads /data/blob.bin through read_file, however big, and checks
 * it cheaply: /data/expect.txt says "<size> <crc32 hex>" where the CRC-32
 * is over every BIGREAD_STRIDE-th byte (offsets 0, STRIDE, 2 * STRIDE, ...),
 * so a gigabyte is checked in a moment under TCG (TestBootReadFileHuge). */
#include "fluid_module.h"

#define BIGREAD_STRIDE 4093u /* a prime: samples every offset modulo 4096 */

FLUID_DEADLINE_MS(60000);

static uint32_t crc_update(uint32_t c, uint8_t b)
{
	c ^= b;
	for (int k = 0; k < 8; k++)
		c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
	return c;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	uint64_t elen = 0, n = 0;
	const char *e = svc->read_file("/data/expect.txt", &elen);
	const uint8_t *p = svc->read_file("/data/blob.bin", &n);
	if (!svc->check("files found", e != 0 && p != 0, 1))
		return FLUID_FAIL;
	uint64_t size = 0, i = 0;
	uint32_t want = 0;
	for (; i < elen && e[i] >= '0' && e[i] <= '9'; i++)
		size = size * 10 + (uint64_t)(e[i] - '0');
	for (i++; i < elen && e[i] != '\n'; i++)
		want = want << 4 | (uint32_t)(e[i] <= '9' ? e[i] - '0' : e[i] - 'a' + 10);
	svc->check("blob size", n, size);
	uint32_t c = 0xFFFFFFFFu;
	for (uint64_t off = 0; off < n; off += BIGREAD_STRIDE)
		c = crc_update(c, p[off]);
	svc->check("blob sampled crc32", c ^ 0xFFFFFFFFu, want);
	svc->printf("bigread: /data/blob.bin at %p, %llu bytes\n", (const void *)p, (unsigned long long)n);
	return FLUID_OK;
}
