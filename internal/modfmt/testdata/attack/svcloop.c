/* svcloop: calls the print service in a loop forever; it spends most of
 * its time inside the kernel, so the deadline must end it at a service. */
#include "fluid_module.h"

FLUID_DEADLINE_MS(200);

int32_t fluid_main(const struct fluid_services *svc)
{
	for (;;)
		svc->printf("svcloop: %s\n", "still here");
}
