/* gpf: loads DS with a selector past the GDT (#GP, error code = selector). */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("gpf: mov $0x1238, %ds\n");
	__asm__ volatile("movl $0x1238, %%eax\n\tmovl %%eax, %%ds" ::: "eax");
	return FLUID_OK;
}
