/* badebp: corrupts its RBP chain (a pointer into the kernel's low memory,
 * then a self-loop) and faults: the backtrace must stop, not fault. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	svc->print("badebp: ud2 with a garbage RBP\n");
	__asm__ volatile("movl $0xdeadbeef, %%ebp\n\tud2" ::: "memory");
	return FLUID_OK;
}
