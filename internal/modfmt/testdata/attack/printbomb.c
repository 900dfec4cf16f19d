/* printbomb: hands the print service a 32 MiB string: all of it is kernel
 * time (the timer cannot stop the module there), so only a bound in the
 * service keeps the run from hanging. */
#include "fluid_module.h"

FLUID_DEADLINE_MS(200);

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t n = 32u << 20;
	char *s = svc->alloc(n + 1);
	if (!s)
		return FLUID_FAIL;
	for (uint32_t i = 0; i < n; i++)
		s[i] = 'A' + (char)(i % 26);
	s[n] = '\0';
	svc->print(s);
	return FLUID_OK;
}
