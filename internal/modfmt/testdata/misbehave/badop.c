/* badop: executes an invalid opcode (ud2). */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("badop: about to execute ud2\n");
	__asm__ volatile("ud2");
	return FLUID_OK;
}
