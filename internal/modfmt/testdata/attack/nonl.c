/* nonl: prints without a trailing newline, then faults: the kernel's
 * lines about it must still start lines of their own. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("nonl: no newline here");
	__asm__ volatile("ud2");
	return FLUID_OK;
}
