/* A test module with every part Pack handles: code, rodata, data holding
 * pointers (R_X86_64_RELATIVE), a 256-byte aligned object, bss and the
 * profile hook. The writes in fluid_main keep names[] and table[] in .data
 * (otherwise clang folds never-written globals into .rodata). */
#include "fluid_module.h"

static const char *names[] = { "alpha", "beta", "gamma" };
static int32_t table[4] __attribute__((aligned(256))) = { 1, 2, 3, 4 };
static uint8_t scratch[8192];
static int32_t counter;

int32_t fluid_profile_dump(uint8_t *buf, uint32_t cap)
{
	if (!buf)
		return 4;
	if (cap < 4)
		return -1;
	buf[0] = (uint8_t)counter;
	buf[1] = buf[2] = buf[3] = 0;
	return 4;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	counter++;
	const char *t = names[0];
	names[0] = names[counter % 3];
	names[counter % 3] = t;
	table[(counter + 1) & 3] = table[counter & 3] + 1;
	scratch[counter & 8191] = (uint8_t)table[counter & 3];
	svc->print(names[counter % 3]);
	return svc->check("fixture scratch", scratch[counter & 8191], (uint64_t)(uint8_t)table[counter & 3]) ? FLUID_OK : FLUID_FAIL;
}
