/* slowread: a module with a 50 ms deadline that asks read_file for
 * /data/blob.bin, which the test makes take far longer than that to read
 * (several MiB by PIO): the read is the kernel's time, not the module's,
 * so the module must not time out. */
#include "fluid_module.h"

FLUID_DEADLINE_MS(50);

int32_t fluid_main(const struct fluid_services *svc)
{
	uint64_t n = 0;
	uint64_t t0 = svc->ms();
	const void *p = svc->read_file("/data/blob.bin", &n);
	svc->check("blob read", p != 0, 1);
	svc->printf("slowread: read_file took %llu ms\n", (unsigned long long)(svc->ms() - t0));
	return FLUID_OK;
}
