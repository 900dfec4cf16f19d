/* spin: a well-formed module that never returns. Its header deadline
 * (250 ms a call) makes the kernel stop it quickly. */
#include "fluid_module.h"

FLUID_DEADLINE_MS(250);

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("spin: spinning\n");
	for (;;)
		__asm__ volatile("" ::: "memory");
}
