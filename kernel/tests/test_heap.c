/*
 * test_heap.c — kmalloc/kfree/kcalloc: alignment, reuse, coalescing,
 * exhaustion, and that the heap is exactly as it was after each test.
 */
#include <stdint.h>
#include "heap.h"
#include "ktest.h"
#include "string.h"

#define MIB (1024u * 1024u)

/*
 * KT_HEAP_AS(before): the heap is well formed and exactly as it was when
 * before was taken: the same free bytes in the same blocks, so every kfree
 * merged its hole back. A macro, not a function, so that a failed check
 * returns from the test (see ktest.h).
 */
#define KT_HEAP_AS(before)                                                    \
	do {                                                                  \
		struct heap_stats now_;                                       \
		heap_check();                                                 \
		heap_stats(&now_);                                            \
		KT_EQ_U(now_.free, (before).free);                            \
		KT_EQ_U(now_.largest_free, (before).largest_free);            \
		KT_EQ_U(now_.blocks, (before).blocks);                        \
		KT_EQ_U(now_.free_blocks, (before).free_blocks);              \
	} while (0)

KTEST(heap_alloc_aligned_writable)
{
	struct heap_stats before;
	heap_stats(&before);
	uint8_t *p[8];
	for (unsigned i = 0; i < 8; i++) {
		p[i] = kmalloc(1 + i * 37);
		KT_ASSERT(p[i] != 0);
		KT_EQ_U((uintptr_t)p[i] % HEAP_ALIGN, 0);
		memset(p[i], (int)i, 1 + i * 37);
	}
	for (unsigned i = 0; i < 8; i++)
		for (unsigned j = 0; j < 1 + i * 37; j++)
			KT_EQ_U(p[i][j], i);   /* no block overlaps another */
	for (unsigned i = 0; i < 8; i++)
		kfree(p[i]);
	KT_HEAP_AS(before);
}

KTEST(heap_coalesce)
{
	struct heap_stats before, mid;
	heap_stats(&before);
	void *a = kmalloc(1000), *b = kmalloc(2000), *c = kmalloc(3000), *guard = kmalloc(16);
	KT_ASSERT(a && b && c && guard);
	kfree(a);
	kfree(c);
	heap_stats(&mid);
	KT_EQ_U(mid.free_blocks, before.free_blocks + 2);   /* a and c: holes */
	kfree(b);                       /* merges with both neighbours */
	heap_stats(&mid);
	KT_EQ_U(mid.free_blocks, before.free_blocks + 1);
	void *big = kmalloc(1000 + 2000 + 3000);   /* fits the merged hole */
	KT_ASSERT(big == a);
	kfree(big);
	kfree(guard);
	KT_HEAP_AS(before);
}

KTEST(heap_first_fit_reuse)
{
	void *a = kmalloc(256);
	kfree(a);
	void *b = kmalloc(256);
	KT_ASSERT(a == b);
	kfree(b);
}

KTEST(heap_exhaustion)
{
	struct heap_stats before;
	heap_stats(&before);
	KT_ASSERT(before.free > 16 * MIB);
	KT_ASSERT(kmalloc(0) == 0);
	KT_ASSERT(kmalloc(before.end - before.start) == 0);   /* larger than the heap */
	KT_ASSERT(kmalloc(0xFFFFFFF0u) == 0);

	static void *chunks[4096];
	unsigned n = 0;
	while (n < sizeof chunks / sizeof chunks[0] && (chunks[n] = kmalloc(MIB)) != 0)
		n++;
	KT_ASSERT(n < sizeof chunks / sizeof chunks[0]);
	KT_ASSERT((uint64_t)n * MIB <= before.free);
	KT_ASSERT((uint64_t)(n + 1) * (MIB + HEAP_ALIGN) > before.largest_free);
	struct heap_stats full;
	heap_stats(&full);
	KT_ASSERT(full.largest_free < MIB);
	void *rest = full.largest_free ? kmalloc(full.largest_free) : 0;
	KT_ASSERT(full.largest_free == 0 || rest != 0);   /* the exact remainder fits */
	kfree(rest);
	for (unsigned i = 0; i < n; i++)
		kfree(chunks[i]);
	KT_HEAP_AS(before);
}

KTEST(heap_kcalloc)
{
	uint8_t *p = kmalloc(512);
	KT_ASSERT(p);
	memset(p, 0xAB, 512);
	kfree(p);
	uint8_t *z = kcalloc(128, 4);   /* likely the same dirty block */
	KT_ASSERT(z);
	for (unsigned i = 0; i < 512; i++)
		KT_EQ_U(z[i], 0);
	kfree(z);
	KT_ASSERT(kcalloc(0x10000, 0x10000) == 0);   /* n * size overflows */
	kfree(0);                                     /* NULL is ignored */
}
