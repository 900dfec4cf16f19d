/*
 * jit_allocator.h — executable memory pools that modules are placed into.
 *
 * A pool manages one contiguous region with an out-of-band, address-ordered
 * table of blocks (the region itself is never written by the allocator, so
 * a module overrunning its block cannot corrupt the bookkeeping).
 *
 * W^X (kernel/mm/vm.c): blocks are whole pages (JIT_GRANULE = a page), so
 * each block has page permissions of its own. The pool keeps every page
 * that is not in an allocated block read-write and no-execute; a block is
 * handed out that way too. The module loader copies and relocates a module
 * into its block, then makes the code pages read-only + executable with
 * vm_protect; jit_free (and jit_pool_init, jit_pool_destroy) makes the
 * pages read-write + no-execute again.
 *
 * Alignment: any power of two from 1 to JIT_MAX_ALIGN, on fresh and
 * fragmented pools alike. Allocation scans free blocks, computes the aligned
 * start inside each, and splits the head padding and the tail off as free
 * blocks of their own. Errors never crash: jit_alloc returns NULL and
 * jit_last_error() says why.
 */
#ifndef FLUID_JIT_ALLOCATOR_H
#define FLUID_JIT_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

#define JIT_MAX_ALIGN   4096u  /* largest alignment jit_alloc honours (a page) */
#define JIT_GRANULE     4096u  /* block sizes and offsets are multiples of this: a page */
#define JIT_MAX_BLOCKS  256u   /* block descriptors per pool                    */

struct jit_block {
	uint32_t off;   /* from pool base, multiple of JIT_GRANULE */
	uint32_t size;  /* bytes, multiple of JIT_GRANULE, > 0      */
	uint32_t used;  /* 1 allocated, 0 free                      */
};

struct jit_pool {
	uintptr_t base;         /* JIT_MAX_ALIGN-aligned                 */
	uint32_t size;          /* multiple of JIT_GRANULE               */
	uint32_t nblocks;
	struct jit_block blocks[JIT_MAX_BLOCKS];
	const char *last_error; /* reason of the last failed call, or NULL */
	uint32_t allocs, frees, failures;
	void *owned;            /* heap block to kfree in jit_pool_destroy */
};

struct jit_stats {
	uint32_t size;          /* pool bytes                             */
	uint32_t used, free;    /* bytes in allocated / free blocks       */
	uint32_t largest_free;  /* biggest free block                     */
	uint32_t blocks, free_blocks;
	uint32_t allocs, frees, failures;
};

/* Manage [mem, mem+size): mem must be JIT_MAX_ALIGN-aligned, mapped, and
 * size at least JIT_GRANULE (it is rounded down to a granule); the pages
 * become read-write + no-execute. 0 or -1 (see jit_last_error). */
int jit_pool_init(struct jit_pool *p, void *mem, size_t size);

/* Allocate a pool of size bytes from the kernel heap (kmalloc), page
 * aligned. NULL when the heap cannot provide it. */
struct jit_pool *jit_pool_create(size_t size);
void jit_pool_destroy(struct jit_pool *p);

/* size bytes aligned to align (a power of two <= JIT_MAX_ALIGN).
 * NULL on: size 0, bad alignment, no fitting free block (exhausted or too
 * fragmented), descriptor table full — with jit_last_error() set. */
void *jit_alloc(struct jit_pool *p, size_t size, size_t align);

/* Free a pointer jit_alloc returned; neighbouring free blocks coalesce.
 * -1 (and last_error) for a pointer that is not the start of an allocated
 * block of this pool — e.g. a double free. */
int jit_free(struct jit_pool *p, void *ptr);

const char *jit_last_error(const struct jit_pool *p);
void jit_stats(const struct jit_pool *p, struct jit_stats *st);

/* Verify the block table (ordered, contiguous, covering the pool, no two
 * adjacent free blocks). 0 when consistent, else -1 with last_error. */
int jit_pool_check(struct jit_pool *p);

#endif
