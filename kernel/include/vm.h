/*
 * vm.h — the kernel's x86_64 page tables (kernel/mm/vm.c) and the W^X API.
 *
 * Address space after vm_init:
 *   - direct map: physical memory at virtual = physical, read-write and
 *     no-execute, for every 2 MiB region an E820 entry (any type) touches
 *     and the low 16 MiB, above 4 GiB too; 2 MiB pages, 4 KiB pages where
 *     permissions differ: page 0 (NULL) and the kernel image's physical
 *     pages are not present there (the image is reached only through the
 *     higher half);
 *   - the kernel image at KERNEL_VMA + physical (boot/bootinfo.h), 4 KiB
 *     pages: .text read-only + executable, .rodata/.ktests read-only +
 *     no-execute, .data/.bss read-write + no-execute, the guard pages below
 *     the kernel stack and the IST stacks not present;
 *   - the page tables themselves: a fixed area of RAM right after the
 *     kernel image (direct map), before the heap;
 *   - CR0.WP set (ring 0 honours read-only pages), EFER.NXE set.
 */
#ifndef FLUID_VM_H
#define FLUID_VM_H

#include <stddef.h>
#include <stdint.h>
#include "bootinfo.h"

#define PAGE_SIZE      4096u
#define LARGE_PAGE     0x200000u   /* 2 MiB */

#define VM_R 1u
#define VM_W 2u
#define VM_X 4u

/* Build the tables above, load CR3, set CR0.WP; one line per fact. */
void vm_init(const struct boot_info *bi);

/* Set the permissions of [va, va + len): 4 KiB granular, va and len
 * page-aligned, every page already mapped (a 2 MiB page is split). prot 0
 * makes the pages not present (a guard). 0 ok, -1 bad range (unaligned,
 * not mapped, or no page table left to split with). */
int vm_protect(void *va, size_t len, unsigned prot);

/* VM_* bits of the page holding va, 0 when it is not present. */
unsigned vm_prot(uint64_t va);

/* 1 if a read of va cannot fault: before vm_init, stage 2's boot tables
 * map the whole kernel image (and the first 4 GiB), so always 1 there;
 * after it, vm_prot(va) has VM_R. For code that must not fault, like the
 * backtrace of an exception dump. */
int vm_readable(uint64_t va);

/* What va is, for fault reports: "kernel .text (read-only, executable)",
 * "page 0 (NULL; not present)", ... (a static buffer). */
const char *vm_describe(uint64_t va);

/* Physical end of the page-table area vm_init reserves right after the
 * kernel image; the heap starts there. */
uintptr_t vm_tables_end(void);

/* Usable RAM above 4 GiB (from E820): [*base, *end), 0 and 0 if none. */
void vm_high_range(uint64_t *base, uint64_t *end);
/* Page-aligned memory above 4 GiB (direct map, RW+NX), never freed; NULL
 * when there is none left. */
void *vm_high_alloc(size_t bytes);
/* Give back the block vm_high_alloc(bytes) returned as p, if it is the
 * last one handed out (the allocator only grows; a block with later ones
 * after it stays taken). For a caller whose use of it failed at once. */
void vm_high_release(void *p, size_t bytes);
/* Bytes vm_high_alloc can still hand out (0 without RAM above 4 GiB). */
uint64_t vm_high_left(void);

#endif
