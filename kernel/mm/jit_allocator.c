/*
 * jit_allocator.c — executable memory pools for modules (see
 * jit_allocator.h). The block table is kept sorted by offset and always
 * tiles the whole pool; free neighbours are merged on every free, so the
 * table never holds two adjacent free blocks.
 *
 * The table invariant (jit_pool_check verifies it; every function below
 * keeps it on return):
 *   - 1 <= nblocks <= JIT_MAX_BLOCKS;
 *   - blocks[0].off == 0, blocks[i + 1].off == blocks[i].off + blocks[i].size,
 *     and the sizes add up to p->size: the blocks tile [0, size) exactly;
 *   - every off and size is a multiple of JIT_GRANULE, every size > 0;
 *   - no two neighbouring blocks are both free.
 * Since pool offsets are granule multiples and base is page aligned, every
 * pointer jit_alloc returns is at least JIT_GRANULE (page) aligned.
 *
 * The page invariant (vm.h): every page of the pool outside an allocated
 * block is mapped read-write + no-execute. jit_pool_init establishes it
 * for the whole pool; jit_alloc hands out free pages (so RW+NX); jit_free
 * restores it for the block it frees, whatever the loader made of it.
 *
 * Ownership: the pool never writes to the memory it manages (the table is
 * in struct jit_pool), and it does not zero or fill a block: a caller gets
 * whatever the previous user left (the module loader copies the image and
 * zeroes the bss itself). A pool from jit_pool_create owns its heap block
 * (p->owned); jit_pool_destroy frees it whether or not blocks are still
 * allocated, so every pointer from that pool dies with it. A pool from
 * jit_pool_init manages caller-owned memory and owns nothing.
 *
 * Sizes: the pool is at most 1 GiB (0x40000000), so offsets, sizes and the
 * rounding below fit in 32 bits without wrapping.
 */
#include "jit_allocator.h"
#include "heap.h"
#include "string.h"
#include "vm.h"

/* Errors are static strings; last_error keeps the latest until the next
 * jit_alloc or jit_free clears it. */
static int set_err(struct jit_pool *p, const char *why)
{
	p->last_error = why;
	return -1;
}

static void *fail_alloc(struct jit_pool *p, const char *why)
{
	p->last_error = why;
	p->failures++;
	return NULL;
}

/* x rounded up to a multiple of a (a power of two); x + a - 1 must not
 * wrap, which the 1 GiB pool limit guarantees for every use here. */
static uint32_t round_up(uint32_t x, uint32_t a)
{
	return (x + a - 1) & ~(a - 1);
}

int jit_pool_init(struct jit_pool *p, void *mem, size_t size)
{
	memset(p, 0, sizeof(*p));
	if (!mem)
		return set_err(p, "no memory given");
	if ((uintptr_t)mem & (JIT_MAX_ALIGN - 1))
		return set_err(p, "pool memory is not page aligned");
	if (size < JIT_GRANULE || size > 0x40000000u)
		return set_err(p, "pool size out of range");
	p->base = (uintptr_t)mem;
	p->size = (uint32_t)size & ~(JIT_GRANULE - 1);
	if (vm_protect(mem, p->size, VM_R | VM_W) != 0)
		return set_err(p, "vm_protect refused the pool memory (not mapped, or no page-table page left to split a 2 MiB page: see vm.c pool_pages)");
	p->nblocks = 1;
	p->blocks[0].off = 0;
	p->blocks[0].size = p->size;
	p->blocks[0].used = 0;
	return 0;
}

struct jit_pool *jit_pool_create(size_t size)
{
	if (size == 0 || size > 0x40000000u)
		return NULL;
	struct jit_pool *p = kmalloc(sizeof(*p));
	if (!p)
		return NULL;
	void *raw = kmalloc(size + JIT_MAX_ALIGN);
	if (!raw) {
		kfree(p);
		return NULL;
	}
	uintptr_t aligned = ((uintptr_t)raw + JIT_MAX_ALIGN - 1) & ~(uintptr_t)(JIT_MAX_ALIGN - 1);
	if (jit_pool_init(p, (void *)aligned, size) != 0) {
		kfree(raw);
		kfree(p);
		return NULL;
	}
	p->owned = raw;
	return p;
}

void jit_pool_destroy(struct jit_pool *p)
{
	if (!p)
		return;
	if (p->owned) {
		vm_protect((void *)p->base, p->size, VM_R | VM_W); /* heap pages are RW+NX */
		kfree(p->owned);
	}
	kfree(p);
}

/* Insert a descriptor at index i (caller checked capacity). Shifts
 * blocks[i..] up by one; the caller makes the tiling right again before it
 * returns (insert_at and remove_at alone do not keep the invariant). */
static void insert_at(struct jit_pool *p, uint32_t i, uint32_t off, uint32_t size, uint32_t used)
{
	memmove(&p->blocks[i + 1], &p->blocks[i], (p->nblocks - i) * sizeof(p->blocks[0]));
	p->blocks[i].off = off;
	p->blocks[i].size = size;
	p->blocks[i].used = used;
	p->nblocks++;
}

static void remove_at(struct jit_pool *p, uint32_t i)
{
	memmove(&p->blocks[i], &p->blocks[i + 1], (p->nblocks - i - 1) * sizeof(p->blocks[0]));
	p->nblocks--;
}

/*
 * jit_alloc: first fit in address order. For each free block, the aligned
 * start is computed inside it; the head padding (start - off, a granule
 * multiple below align) stays a free block in place, the allocation
 * follows, and the tail becomes a new free block. The padding block keeps
 * the old block's left neighbour and the tail its right neighbour, both of
 * which were used (no two free neighbours before), so the invariant holds
 * without merging. A split needs up to two more descriptors; when the
 * table has no room, the scan goes on to a block that needs fewer, and
 * the error then says "too fragmented" rather than "exhausted".
 * The size is rounded up to JIT_GRANULE: the block can be larger than asked.
 */
void *jit_alloc(struct jit_pool *p, size_t size, size_t align)
{
	p->last_error = NULL;
	if (size == 0)
		return fail_alloc(p, "size is 0");
	if (align == 0 || (align & (align - 1)))
		return fail_alloc(p, "alignment is not a power of two");
	if (align > JIT_MAX_ALIGN)
		return fail_alloc(p, "alignment larger than a page (4096)");
	if (size > p->size)
		return fail_alloc(p, "request larger than the pool");
	uint32_t need = round_up((uint32_t)size, JIT_GRANULE);
	uint32_t a = align < JIT_GRANULE ? JIT_GRANULE : (uint32_t)align;
	int fits_somewhere = 0;

	for (uint32_t i = 0; i < p->nblocks; i++) {
		struct jit_block *b = &p->blocks[i];
		if (b->used || b->size < need)
			continue;
		/* The aligned start inside this block; base is page aligned,
		 * so aligning the offset aligns the address. */
		uint32_t start = round_up(b->off, a);
		uint32_t pad = start - b->off;
		if (start < b->off || pad > b->size || b->size - pad < need)
			continue;
		fits_somewhere = 1;
		uint32_t tail = b->size - pad - need;
		uint32_t extra = (pad ? 1u : 0u) + (tail ? 1u : 0u);
		if (p->nblocks + extra > JIT_MAX_BLOCKS)
			continue; /* maybe a block needing no split still fits */
		uint32_t idx = i;
		if (pad) {
			/* head padding becomes a free block of its own */
			p->blocks[idx].size = pad;
			idx++;
			insert_at(p, idx, start, need, 1);
		} else {
			p->blocks[idx].size = need;
			p->blocks[idx].used = 1;
		}
		if (tail)
			insert_at(p, idx + 1, start + need, tail, 0);
		p->allocs++;
		return (void *)(p->base + start);
	}
	if (fits_somewhere)
		return fail_alloc(p, "block table full (pool too fragmented)");
	return fail_alloc(p, "pool exhausted: no free block large enough");
}

/*
 * jit_free: only the exact start of a used block is accepted (binary
 * search: the table is sorted by offset); anything else, a double free
 * included, is refused with last_error and leaves the pool unchanged. The
 * freed block then merges with a free right and then a free left
 * neighbour, which restores "no two free neighbours" and gives back up to
 * two descriptors: frees never need table room.
 */
int jit_free(struct jit_pool *p, void *ptr)
{
	p->last_error = NULL;
	uintptr_t a = (uintptr_t)ptr;
	if (!ptr || a < p->base || a >= p->base + p->size)
		return set_err(p, "pointer is not inside this pool");
	uint32_t off = (uint32_t)(a - p->base);
	uint32_t lo = 0, hi = p->nblocks;
	while (lo < hi) { /* binary search by offset */
		uint32_t mid = (lo + hi) / 2;
		if (p->blocks[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= p->nblocks || p->blocks[lo].off != off)
		return set_err(p, "pointer is not the start of a block");
	if (!p->blocks[lo].used)
		return set_err(p, "double free");
	if (vm_protect(ptr, p->blocks[lo].size, VM_R | VM_W) != 0)
		return set_err(p, "vm_protect refused the block: it is no longer mapped");
	p->blocks[lo].used = 0;
	p->frees++;
	uint32_t i = lo;
	if (i + 1 < p->nblocks && !p->blocks[i + 1].used) {
		p->blocks[i].size += p->blocks[i + 1].size;
		remove_at(p, i + 1);
	}
	if (i > 0 && !p->blocks[i - 1].used) {
		p->blocks[i - 1].size += p->blocks[i].size;
		remove_at(p, i);
	}
	return 0;
}

const char *jit_last_error(const struct jit_pool *p)
{
	return p->last_error ? p->last_error : "no error";
}

void jit_stats(const struct jit_pool *p, struct jit_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = p->size;
	st->blocks = p->nblocks;
	st->allocs = p->allocs;
	st->frees = p->frees;
	st->failures = p->failures;
	for (uint32_t i = 0; i < p->nblocks; i++) {
		const struct jit_block *b = &p->blocks[i];
		if (b->used) {
			st->used += b->size;
		} else {
			st->free += b->size;
			st->free_blocks++;
			if (b->size > st->largest_free)
				st->largest_free = b->size;
		}
	}
}

int jit_pool_check(struct jit_pool *p)
{
	uint32_t expect = 0;
	if (p->nblocks == 0 || p->nblocks > JIT_MAX_BLOCKS)
		return set_err(p, "block count out of range");
	for (uint32_t i = 0; i < p->nblocks; i++) {
		const struct jit_block *b = &p->blocks[i];
		if (b->off != expect)
			return set_err(p, "blocks do not tile the pool");
		if (b->size == 0 || (b->size & (JIT_GRANULE - 1)))
			return set_err(p, "block size not a positive granule multiple");
		if (i > 0 && !b->used && !p->blocks[i - 1].used)
			return set_err(p, "two adjacent free blocks (missed coalesce)");
		expect += b->size;
	}
	if (expect != p->size)
		return set_err(p, "blocks do not cover the pool");
	return 0;
}
