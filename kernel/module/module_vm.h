/*
 * module_vm.h — the page-permission call the module loader makes (W^X):
 * kernel/include/vm.h when the tree has it, else the contract's exact
 * declaration (issue 13: VM_R 1, VM_W 2, VM_X 4; vm_protect 4 KiB
 * granular, va and len page-aligned, 0 ok, -1 bad range), with the weak
 * stand-in in vm_weak.c.
 */
#ifndef FLUID_MODULE_VM_H
#define FLUID_MODULE_VM_H

#include <stddef.h>
#include <stdint.h>

#if __has_include("vm.h")
#include "vm.h"
#else
#define VM_R 1u
#define VM_W 2u
#define VM_X 4u
int vm_protect(void *va, size_t len, unsigned prot);
#endif

/* The unit of vm_protect, FLUID_MOD_PAGE_SIZE of the module format. */
#define MODULE_PAGE 4096u

#endif
