/* fpuvictim: runs after fpuset and checks that it starts with the default
 * x87 control word (0x37f) and MXCSR (0x1f80). */
#include "fluid_module.h"

int32_t fluid_main(const struct fluid_services *svc)
{
	uint16_t cw = 0;
	uint32_t mxcsr = 0;
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	svc->check("fpuvictim: x87 control word", cw, 0x37f);
	svc->check("fpuvictim: mxcsr", mxcsr & 0xffc0u, 0x1f80);
	return FLUID_OK;
}
