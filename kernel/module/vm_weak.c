/*
 * vm_weak.c — a weak stand-in for vm_protect (kernel/include/vm.h), so the
 * module loader builds and its tests run before the kernel's page-table
 * code exists. The kernel's real vm_protect (kernel/mm, issue 13's paging
 * side) is a strong definition and overrides this one at link time; once
 * it is merged this file can go (delete it, nothing else refers to it).
 *
 * It changes no mapping. It keeps the contract's argument checks, so a
 * caller that passes an unaligned range fails here exactly as it would
 * with the real one: va and len page-aligned, len > 0, prot within
 * VM_R | VM_W | VM_X. 0 ok, -1 bad range.
 */
#include "module_vm.h"

__attribute__((weak)) int vm_protect(void *va, size_t len, unsigned prot)
{
	uintptr_t a = (uintptr_t)va;
	if (len == 0 || (a & (MODULE_PAGE - 1u)) || (len & (MODULE_PAGE - 1u)) || (prot & ~(VM_R | VM_W | VM_X)))
		return -1;
	return 0;
}
