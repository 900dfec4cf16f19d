/* divzero: divides by zero (#DE). */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	volatile uint32_t zero = svc->light & 0; /* 0, not known at compile time */
	uint32_t q = 1000u / zero;
	svc->check("divzero: unreachable", q, 0);
	return FLUID_OK;
}
