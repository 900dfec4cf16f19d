/* softint: raises software interrupt 0x99, a vector nobody handles. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("softint: int $0x99\n");
	__asm__ volatile("int $0x99");
	return FLUID_OK;
}
