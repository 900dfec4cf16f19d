/*
 * workload.h — the hook kernel_main calls after init.  A weak default
 * (core/workload_default.c) prints "workload: none linked" and returns 0;
 * the module loader provides the strong definition.  Nonzero = failure
 * (kernel_main ends the run with "FLUID-END fail module: ...").
 */
#ifndef FLUID_WORKLOAD_H
#define FLUID_WORKLOAD_H

#include "bootinfo.h"

#include <stddef.h>

/* Runs the workload; on failure may write the FLUID-END reason into
 * why[0..whylen) (the names of the modules that did not pass, ...); left
 * empty, kernel_main says "workload returned <rc>". */
int workload_run(const struct boot_info *bi, char *why, size_t whylen);

#endif
