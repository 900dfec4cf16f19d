/* dataexec: jumps into its own data (W^X: module data is never
 * executable): the fetch must raise #PF with "protection violation,
 * instruction fetch access" at the data's address inside the module. */
#include "fluid_module.h"

static uint8_t blob[16]; /* .bss: read-write, no-execute */

int32_t fluid_main(const struct fluid_services *svc)
{
	blob[0] = 0xC3; /* ret: executable bytes, in a page that is not */
	void (*fn)(void) = (void (*)(void))(uintptr_t)blob;
	__asm__ volatile("" : "+r"(fn));
	fn();
	svc->print("dataexec: survived\n");
	return FLUID_OK;
}
