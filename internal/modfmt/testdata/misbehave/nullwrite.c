/* nullwrite: writes through a NULL struct pointer (a field at offset
 * 0x10), one call below the entry, so the backtrace has a module frame. */
#include "fluid_module.h"

struct counter {
	uint32_t pad[4];
	uint32_t hits; /* offset 0x10 */
};

__attribute__((noinline)) static void bump(struct counter *c)
{
	c->hits = 1; /* a write: the #PF error code has W set */
}

int32_t fluid_main(const struct fluid_services *svc)
{
	struct counter *c = 0;
	__asm__ volatile("" : "+r"(c)); /* a NULL the compiler cannot see */
	bump(c);
	svc->print("nullwrite: survived\n");
	return FLUID_OK;
}
