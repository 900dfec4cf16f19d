/*
 * heap.c — the kernel heap: one contiguous region (the usable E820 range
 * above the kernel image) cut into blocks, each with a 16-byte header, kept
 * in address order in a doubly linked list.  kmalloc is first fit with
 * splitting; kfree merges a block with free neighbours.
 *
 * Invariants (checked by kfree and heap_check, which panic when broken):
 *   - every header has magic HEAP_USED or HEAP_FREE;
 *   - blocks tile the region: b->next == (char *)b + HDR + b->size;
 *   - b->next->prev == b;
 *   - no two free blocks are adjacent (kfree coalesces).
 */
#include <stddef.h>
#include <stdint.h>
#include "bootinfo.h"
#include "console.h"
#include "heap.h"
#include "kernel.h"
#include "panic.h"
#include "string.h"
#include "vm.h"

#define HEAP_USED   0xA110C8EDu
#define HEAP_FREE   0xF4EEB10Cu
#define HDR         sizeof(struct block)
#define MIN_SPLIT   (HDR + HEAP_ALIGN)   /* smallest remainder worth splitting */
#define PAGE        4096u

struct block {
	uint32_t magic;
	uint32_t size;          /* payload bytes, a multiple of HEAP_ALIGN */
	struct block *prev;     /* lower neighbour, NULL for the first     */
	struct block *next;     /* higher neighbour, NULL for the last     */
	uint64_t pad;           /* 32 bytes: payloads stay HEAP_ALIGN-aligned */
};
_Static_assert(sizeof(struct block) % HEAP_ALIGN == 0, "header keeps payloads aligned");

static struct block *first;
static uintptr_t heap_start, heap_end;

static uintptr_t align_up(uintptr_t v, uintptr_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The heap lives in the direct map (virtual = physical, RW+NX, vm.h): it
 * starts at the first page after the kernel image's physical end and the
 * page-table area vm_init reserved there. */
void heap_init(const struct boot_info *bi)
{
	uintptr_t kend = align_up((uintptr_t)__kernel_end - (uintptr_t)KERNEL_VMA, PAGE);
	if (vm_tables_end() > kend)
		kend = vm_tables_end(); /* vm.c's page tables come first */
	uint32_t n = bi->e820_count > BOOTINFO_E820_MAX ? BOOTINFO_E820_MAX : bi->e820_count;
	uint64_t best_end = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct e820_entry *e = &bi->e820[i];
		uint64_t end = e->base + e->length;
		if (e->type != E820_USABLE || e->base > kend || end <= kend)
			continue;
		if (end > best_end)
			best_end = end;
	}
	if (best_end == 0)
		panic("heap: no usable E820 region contains the end of the kernel (0x%08x); "
		      "the memory map from stage 2 has %u entries", (unsigned)kend, n);
	if (best_end > 0xFFFFF000ull)
		best_end = 0xFFFFF000ull;
	/* Round the end down so the last block ends aligned. */
	best_end &= ~(uint64_t)(PAGE - 1);
	if (best_end <= kend + PAGE)
		panic("heap: usable memory after the kernel is only %u bytes (0x%08x..0x%08x)",
		      (unsigned)(best_end - kend), (unsigned)kend, (unsigned)best_end);

	heap_start = kend;
	heap_end = (uintptr_t)best_end;
	first = (struct block *)heap_start;
	first->magic = HEAP_FREE;
	first->size = (uint32_t)(heap_end - heap_start - HDR);
	first->prev = first->next = NULL;
	kprintf("heap: 0x%08x-0x%08x (%u KiB)\n", (unsigned)heap_start, (unsigned)heap_end,
		(unsigned)((heap_end - heap_start) / 1024));
}

static struct block *hdr_of(void *p)
{
	return (struct block *)((char *)p - HDR);
}

/* Merge b with its higher neighbour n (both free). */
static void absorb_next(struct block *b)
{
	struct block *n = b->next;
	b->size += HDR + n->size;
	b->next = n->next;
	if (b->next)
		b->next->prev = b;
	n->magic = 0;   /* a stale pointer to n now fails the magic check */
}

void *kmalloc(size_t size)
{
	if (!first)
		panic("kmalloc(%zu) before heap_init", size);
	if (size == 0 || size > heap_end - heap_start)
		return NULL;
	size = align_up(size, HEAP_ALIGN);

	for (struct block *b = first; b; b = b->next) {
		if (b->magic != HEAP_FREE || b->size < size)
			continue;
		if (b->size >= size + MIN_SPLIT) {
			struct block *rest = (struct block *)((char *)b + HDR + size);
			rest->magic = HEAP_FREE;
			rest->size = b->size - (uint32_t)size - (uint32_t)HDR;
			rest->prev = b;
			rest->next = b->next;
			if (rest->next)
				rest->next->prev = rest;
			b->next = rest;
			b->size = (uint32_t)size;
		}
		b->magic = HEAP_USED;
		return (char *)b + HDR;
	}
	return NULL;
}

void *kcalloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	void *p = kmalloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void kfree(void *p)
{
	if (!p)
		return;
	uintptr_t a = (uintptr_t)p;
	if (a < heap_start + HDR || a >= heap_end)
		panic("kfree(%p): pointer outside the heap 0x%08x-0x%08x (not from kmalloc)",
		      p, (unsigned)heap_start, (unsigned)heap_end);
	if (a & (HEAP_ALIGN - 1))
		panic("kfree(%p): pointer not %u-byte aligned, so not from kmalloc", p, HEAP_ALIGN);
	struct block *b = hdr_of(p);
	if (b->magic == HEAP_FREE)
		panic("kfree(%p): double free (the block is already free)", p);
	if (b->magic == 0)
		panic("kfree(%p): no live block here: a double free of a block already merged "
		      "into a free neighbour, or a pointer into the middle of a block", p);
	if (b->magic != HEAP_USED)
		panic("kfree(%p): block header corrupted (magic 0x%08x, expected 0x%08x): "
		      "an overrun of the block below, or not a kmalloc pointer", p, b->magic, HEAP_USED);
	if ((b->next && b->next != (struct block *)((char *)p + b->size)) ||
	    (b->next && b->next->prev != b))
		panic("kfree(%p): block links corrupted (size %u, next %p): heap overrun?",
		      p, b->size, (void *)b->next);

	b->magic = HEAP_FREE;
	if (b->next && b->next->magic == HEAP_FREE)
		absorb_next(b);
	if (b->prev && b->prev->magic == HEAP_FREE)
		absorb_next(b->prev);
}

void heap_bounds(uintptr_t *start, uintptr_t *end)
{
	*start = heap_start;
	*end = heap_end;
}

void heap_stats(struct heap_stats *st)
{
	memset(st, 0, sizeof *st);
	st->start = heap_start;
	st->end = heap_end;
	for (struct block *b = first; b; b = b->next) {
		st->blocks++;
		st->total += b->size;
		if (b->magic == HEAP_FREE) {
			st->free_blocks++;
			st->free += b->size;
			if (b->size > st->largest_free)
				st->largest_free = b->size;
		}
	}
}

void heap_check(void)
{
	struct block *prev = NULL;
	uintptr_t expect = heap_start;
	for (struct block *b = first; b; prev = b, b = b->next) {
		if ((uintptr_t)b != expect)
			panic("heap_check: block at %p, expected 0x%08x (sizes do not tile the heap)",
			      (void *)b, (unsigned)expect);
		if (b->magic != HEAP_USED && b->magic != HEAP_FREE)
			panic("heap_check: block %p has bad magic 0x%08x (overrun from below?)",
			      (void *)b, b->magic);
		if (b->prev != prev)
			panic("heap_check: block %p prev link %p, expected %p", (void *)b,
			      (void *)b->prev, (void *)prev);
		if (prev && prev->magic == HEAP_FREE && b->magic == HEAP_FREE)
			panic("heap_check: adjacent free blocks %p and %p were not coalesced",
			      (void *)prev, (void *)b);
		expect = (uintptr_t)b + HDR + b->size;
	}
	if (expect != heap_end)
		panic("heap_check: blocks end at 0x%08x, heap ends at 0x%08x",
		      (unsigned)expect, (unsigned)heap_end);
}
