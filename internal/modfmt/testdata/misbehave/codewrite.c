/* codewrite: writes into its own code after the loader relocated it and
 * made it read-only and executable (W^X): the write must raise #PF with
 * "protection violation, write access" at an address inside the module. */
#include "fluid_module.h"

__attribute__((noinline)) static void patch(volatile uint8_t *code)
{
	*code = 0xC3; /* ret: would change what fluid_main does */
}

int32_t fluid_main(const struct fluid_services *svc)
{
	volatile uint8_t *code = (volatile uint8_t *)(uintptr_t)&fluid_main;
	__asm__ volatile("" : "+r"(code));
	patch(code);
	svc->print("codewrite: survived\n");
	return FLUID_OK;
}
