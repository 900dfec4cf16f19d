/*
 * workload_default.c — the weak workload hook used when no module loader is
 * linked: says so and succeeds.
 */
#include "console.h"
#include "workload.h"

__attribute__((weak)) int workload_run(const struct boot_info *bi, char *why, size_t whylen)
{
	(void)bi;
	(void)why;
	(void)whylen;
	kprintf("workload: none linked\n");
	return 0;
}
