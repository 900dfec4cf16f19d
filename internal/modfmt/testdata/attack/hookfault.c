/* hookfault: runs fine, but its profile dump hook writes through NULL.
 * The kernel calls the hook after every module ran, to export frames. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("hookfault: ok\n");
	return FLUID_OK;
}

int32_t fluid_profile_dump(uint8_t *buf, uint32_t cap)
{
	(void)cap;
	volatile uint8_t *p = 0;
	__asm__ volatile("" : "+r"(p));
	*p = buf ? buf[0] : 0;
	return 0;
}
