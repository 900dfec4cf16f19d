/* brk: executes int3 (#BP). */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("brk: int3\n");
	__asm__ volatile("int3");
	return FLUID_OK;
}
