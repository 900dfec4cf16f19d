/* hogfault: takes every byte of kernel heap it can get, then writes
 * through NULL. The guard must give the heap back. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t n = 0;
	for (uint32_t sz = 1u << 20; sz >= 16; sz /= 2)
		while (svc->alloc(sz))
			n++;
	svc->printf("hogfault: %u blocks, now NULL\n", n);
	volatile uint32_t *p = 0;
	__asm__ volatile("" : "+r"(p));
	*p = n;
	return FLUID_OK;
}
