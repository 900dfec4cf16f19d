/* hogret: takes every byte of kernel heap it can get and returns
 * FLUID_OK, keeping it all. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t n = 0;
	for (uint32_t sz = 1u << 20; sz >= 16; sz /= 2)
		while (svc->alloc(sz))
			n++;
	svc->printf("hogret: kept %u blocks\n", n);
	return FLUID_OK;
}
