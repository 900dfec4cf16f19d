/* fpuset: returns FLUID_OK leaving the x87 control word and MXCSR set to
 * round toward zero with all exceptions unmasked. */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	(void)svc;
	uint16_t cw = 0x0C40; /* RC=toward zero, PC=single, all unmasked */
	uint32_t mxcsr = 0x6000; /* RC=toward zero, all unmasked */
	__asm__ volatile("fldcw %0" : : "m"(cw));
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	return FLUID_OK;
}
