/*
 * heap.h — the general kernel heap: first-fit over one usable E820 region
 * above the kernel image, with block headers, splitting and coalescing.
 */
#ifndef FLUID_HEAP_H
#define FLUID_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include "bootinfo.h"

#define HEAP_ALIGN 16u  /* every pointer kmalloc returns is 16-byte aligned */

/* Take the usable E820 region that holds __kernel_end (from the page after
 * the image to the region's end).  Panics if there is no such region. */
void heap_init(const struct boot_info *bi);

/* NULL when no block is large enough (or size is 0). */
void *kmalloc(size_t size);
/* Zeroed; NULL on overflow of n*size or exhaustion. */
void *kcalloc(size_t n, size_t size);
/* NULL is ignored.  Panics on a pointer the heap did not hand out, a
 * corrupted header or a double free, and says which. */
void kfree(void *p);

struct heap_stats {
	uintptr_t start, end;   /* heap region [start, end)               */
	size_t total;           /* payload bytes in all blocks             */
	size_t free;            /* payload bytes in free blocks            */
	size_t largest_free;    /* largest single free block payload       */
	size_t blocks, free_blocks;
};
void heap_stats(struct heap_stats *st);
/* [*start, *end) of the heap region (0, 0 before heap_init). */
void heap_bounds(uintptr_t *start, uintptr_t *end);
/* Walk every block and verify headers and links; panics on damage. */
void heap_check(void);

#endif
