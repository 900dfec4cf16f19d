/* badsvc: hands a kernel service a bad pointer, so the fault is in the
 * kernel (kprintf reading address 0x10), not in the module: a kernel
 * crash, which still ends the run with the exception dump. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	const char *s = 0;
	__asm__ volatile("" : "+r"(s));
	svc->print(s + 0x10);
	return FLUID_OK;
}
