/* entry: a minimal module around mathf.c, so the test can link it exactly
 * as a module is linked (modfmt.LDFlags, modules/module.ld) and pack it.
 * The known answers are the float bit patterns of the correctly rounded
 * e^1, ln 2, sin 1, cos 1 and sqrt 2 (Python: struct.pack('<f', math.exp(1))
 * and so on; these five round the same from double). */
#include "fluid_module.h"
#include "mathf.h"

static uint32_t bits(float f)
{
	union {
		float f;
		uint32_t u;
	} b = {.f = f};
	return b.u;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	int ok = svc->check("expf(1)", bits(fl_expf(1.0f)), 0x402df854u);
	ok &= svc->check("logf(2)", bits(fl_logf(2.0f)), 0x3f317218u);
	ok &= svc->check("sinf(1)", bits(fl_sinf(1.0f)), 0x3f576aa4u);
	ok &= svc->check("cosf(1)", bits(fl_cosf(1.0f)), 0x3f0a5140u);
	ok &= svc->check("sqrtf(2)", bits(fl_sqrtf(2.0f)), 0x3fb504f3u);
	return ok ? FLUID_OK : FLUID_FAIL;
}
