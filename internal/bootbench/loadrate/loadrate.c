/* loadrate: the module internal/bootbench boots to measure the kernel's
 * file load rate. It asks for /bench/blob.bin through read_file (the
 * kernel times the read and prints "file /bench/blob.bin: read N bytes in
 * US us (R MB/s)") and checks that it holds LOADRATE_BYTES bytes of the
 * xorshift32 stream seeded with LOADRATE_SEED, little-endian words, as
 * bootbench.go writes it. */
#include "fluid_module.h"

#define LOADRATE_BYTES (32u << 20)
#define LOADRATE_SEED  0x14u

FLUID_DEADLINE_MS(20000); /* 8 Mi words compared under TCG, three times */

int32_t fluid_main(const struct fluid_services *svc)
{
	uint64_t n = 0;
	const uint32_t *p = svc->read_file("/bench/blob.bin", &n);
	if (!svc->check("blob read", p != 0, 1))
		return FLUID_FAIL;
	svc->check("blob size", n, LOADRATE_BYTES);
	uint32_t s = LOADRATE_SEED;
	uint64_t bad = 0;
	for (uint64_t i = 0; i < n / 4; i++)
		bad += p[i] != xorshift32(&s);
	svc->check("blob content", bad, 0);
	return FLUID_OK;
}
