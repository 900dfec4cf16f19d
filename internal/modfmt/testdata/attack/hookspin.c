/* hookspin: runs fine, but its profile dump hook never returns. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("hookspin: ok\n");
	return FLUID_OK;
}

int32_t fluid_profile_dump(uint8_t *buf, uint32_t cap)
{
	(void)buf;
	(void)cap;
	for (;;)
		__asm__ volatile("" ::: "memory");
}
