/*
 * paging.h — identity paging: the first 4 MiB through a 4 KiB page table
 * with page 0 not present (NULL dereferences fault, CR2=0) and the boot
 * stack's guard page unmapped; the rest of physical memory in 4 MiB PSE
 * pages.
 */
#ifndef FLUID_PAGING_H
#define FLUID_PAGING_H

#include <stdint.h>
#include "bootinfo.h"

#define PAGE_SIZE      4096u
#define LARGE_PAGE     0x400000u

/* Identity-maps every 4 MiB page an E820 entry (any type) touches, plus
 * the low 16 MiB, and turns paging on.  Returns the MiB mapped. */
uint32_t paging_init(const struct boot_info *bi);
/* 1 if addr is mapped (present) in the kernel's page tables. */
int paging_is_mapped(uint32_t addr);

#endif
