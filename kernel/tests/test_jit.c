/*
 * test_jit.c — in-kernel tests of the JIT allocator (kernel/mm): every
 * power-of-two alignment 1..4096 on a fresh and on a fragmented pool, free
 * with coalescing back to one block, exhaustion and a full block table
 * reported as errors, and bad arguments refused.
 */
#include "jit_allocator.h"
#include "ktest.h"
#include "string.h"
#include "heap.h"
#include "vm.h"

/* Blocks are whole pages: more pages than block descriptors, so the
 * "block table full" case is reachable; from the heap (the direct map). */
#define TEST_POOL_BYTES ((JIT_MAX_BLOCKS + 16u) * JIT_GRANULE)
#define SMALL_POOL_BYTES (64u * 1024u)

static uint8_t *pool_mem;
static struct jit_pool pool;

/* jit_pool_init over the test memory (kmalloc'd once, page aligned). */
static int pool_init(size_t bytes)
{
	if (!pool_mem) {
		uint8_t *raw = kmalloc(TEST_POOL_BYTES + JIT_MAX_ALIGN);
		if (!raw)
			return -1;
		pool_mem = (uint8_t *)(((uintptr_t)raw + JIT_MAX_ALIGN - 1) & ~(uintptr_t)(JIT_MAX_ALIGN - 1));
	}
	return jit_pool_init(&pool, pool_mem, bytes);
}

static int has(const char *s, const char *sub)
{
	size_t n = strlen(sub);
	for (; *s; s++)
		if (strncmp(s, sub, n) == 0)
			return 1;
	return 0;
}

static int inside(const void *p, size_t size)
{
	uintptr_t a = (uintptr_t)p;
	return a >= (uintptr_t)pool_mem && a + size <= (uintptr_t)pool_mem + TEST_POOL_BYTES;
}

KTEST(jit_align_fresh_pool)
{
	static const size_t sizes[] = { 1, 17, 100, 4095 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t align = 1; align <= JIT_MAX_ALIGN; align <<= 1) {
			KT_EQ_U(pool_init(TEST_POOL_BYTES), 0);
			/* a first small block makes the free block start unaligned */
			void *first = jit_alloc(&pool, 16, 1);
			KT_ASSERT(first != NULL);
			void *p = jit_alloc(&pool, sizes[s], align);
			if (!p)
				ktest_fail(__FILE__, __LINE__, "size %u align %u: NULL (%s)", (unsigned)sizes[s],
					   (unsigned)align, jit_last_error(&pool));
			KT_ASSERT(p != NULL);
			KT_EQ_U((uintptr_t)p & (align - 1), 0);
			KT_ASSERT(inside(p, sizes[s]));
			memset(p, 0xA5, sizes[s]);
			KT_EQ_U(jit_pool_check(&pool), 0);
			/* the padding before p went back to the free list */
			struct jit_stats st;
			jit_stats(&pool, &st);
			KT_EQ_U(st.used, JIT_GRANULE + ((sizes[s] + JIT_GRANULE - 1) & ~(size_t)(JIT_GRANULE - 1)));
			KT_EQ_U(jit_free(&pool, p), 0);
			KT_EQ_U(jit_free(&pool, first), 0);
			jit_stats(&pool, &st);
			KT_EQ_U(st.blocks, 1);
		}
	}
}

KTEST(jit_align_fragmented_pool)
{
	enum { N = 48 };
	void *blk[N];
	KT_EQ_U(pool_init(TEST_POOL_BYTES), 0);
	for (int i = 0; i < N; i++) {
		blk[i] = jit_alloc(&pool, (size_t)(16 + 48 * (i % 7)), 1);
		KT_ASSERT(blk[i] != NULL);
	}
	for (int i = 0; i < N; i += 2) { /* holes of varying sizes */
		KT_EQ_U(jit_free(&pool, blk[i]), 0);
		blk[i] = NULL;
	}
	struct jit_stats st;
	jit_stats(&pool, &st);
	KT_ASSERT(st.free_blocks >= N / 2);
	void *got[13];
	int k = 0;
	for (size_t align = 1; align <= JIT_MAX_ALIGN; align <<= 1, k++) {
		got[k] = jit_alloc(&pool, 40, align);
		if (!got[k])
			ktest_fail(__FILE__, __LINE__, "align %u on a fragmented pool: NULL (%s)", (unsigned)align,
				   jit_last_error(&pool));
		KT_ASSERT(got[k] != NULL);
		KT_EQ_U((uintptr_t)got[k] & (align - 1), 0);
		KT_ASSERT(inside(got[k], 40));
		memset(got[k], k + 1, 40);
		KT_EQ_U(jit_pool_check(&pool), 0);
	}
	/* no two allocations overlap: each still holds its own pattern */
	for (int i = 0; i < k; i++)
		for (int b = 0; b < 40; b++)
			KT_EQ_U(((uint8_t *)got[i])[b], i + 1);
	for (int i = 0; i < k; i++)
		KT_EQ_U(jit_free(&pool, got[i]), 0);
	for (int i = 1; i < N; i += 2)
		KT_EQ_U(jit_free(&pool, blk[i]), 0);
	jit_stats(&pool, &st);
	KT_EQ_U(st.blocks, 1);
	KT_EQ_U(st.free, TEST_POOL_BYTES);
}

KTEST(jit_free_coalesces_to_one_block)
{
	enum { N = 40 };
	void *blk[N];
	KT_EQ_U(pool_init(TEST_POOL_BYTES), 0);
	for (int i = 0; i < N; i++) {
		blk[i] = jit_alloc(&pool, (size_t)(100 + i * 10), (size_t)1 << (i % 8));
		KT_ASSERT(blk[i] != NULL);
	}
	/* free in a scrambled order (7 is coprime with 40) */
	for (int i = 0; i < N; i++) {
		KT_EQ_U(jit_free(&pool, blk[(i * 7) % N]), 0);
		KT_EQ_U(jit_pool_check(&pool), 0);
	}
	struct jit_stats st;
	jit_stats(&pool, &st);
	KT_EQ_U(st.blocks, 1);
	KT_EQ_U(st.free_blocks, 1);
	KT_EQ_U(st.largest_free, TEST_POOL_BYTES);
	KT_EQ_U(st.used, 0);
	KT_EQ_U(st.allocs, N);
	KT_EQ_U(st.frees, N);
}

KTEST(jit_exhaustion_is_an_error)
{
	KT_EQ_U(pool_init(SMALL_POOL_BYTES), 0);
	KT_ASSERT(jit_alloc(&pool, SMALL_POOL_BYTES + 1, 1) == NULL);
	KT_ASSERT(has(jit_last_error(&pool), "larger than the pool"));
	int n = 0;
	void *last = NULL;
	for (;;) {
		void *p = jit_alloc(&pool, 4096, 4096);
		if (!p)
			break;
		last = p;
		n++;
	}
	KT_EQ_U(n, SMALL_POOL_BYTES / 4096);
	KT_ASSERT(has(jit_last_error(&pool), "exhausted"));
	KT_ASSERT(jit_alloc(&pool, 16, 1) == NULL);
	struct jit_stats st;
	jit_stats(&pool, &st);
	KT_EQ_U(st.failures, 3);
	KT_EQ_U(jit_free(&pool, last), 0);
	KT_ASSERT(jit_alloc(&pool, 4096, 4096) == last);

	/* more blocks than descriptors: refused with its own reason */
	KT_EQ_U(pool_init(TEST_POOL_BYTES), 0);
	int blocks = 0;
	while (jit_alloc(&pool, 16, 1))
		blocks++;
	KT_EQ_U(blocks, JIT_MAX_BLOCKS - 1); /* the last descriptor holds the free tail */
	KT_ASSERT(has(jit_last_error(&pool), "block table full"));
	KT_EQ_U(jit_pool_check(&pool), 0);
}

/* W^X: free pages are RW+NX; a block the loader made R+X is RW+NX again
 * once freed, and a fresh pool resets every page. */
KTEST(jit_blocks_are_pages_rw_nx)
{
	KT_EQ_U(pool_init(SMALL_POOL_BYTES), 0);
	uint8_t *a = jit_alloc(&pool, 100, 16);
	uint8_t *b = jit_alloc(&pool, 5000, 16);
	KT_ASSERT(a != NULL && b != NULL);
	KT_EQ_U((uintptr_t)a & (PAGE_SIZE - 1), 0);
	KT_EQ_U((uintptr_t)b & (PAGE_SIZE - 1), 0);
	KT_EQ_U(b - a, PAGE_SIZE);                      /* 100 bytes take one whole page */
	KT_EQ_U(vm_prot((uintptr_t)a), VM_R | VM_W);
	KT_EQ_U(vm_protect(b, 2 * PAGE_SIZE, VM_R | VM_X), 0); /* what the loader does */
	KT_EQ_U(vm_prot((uintptr_t)b + PAGE_SIZE), VM_R | VM_X);
	KT_EQ_U(vm_prot((uintptr_t)a), VM_R | VM_W);    /* the neighbour keeps its own */
	KT_EQ_U(jit_free(&pool, b), 0);
	KT_EQ_U(vm_prot((uintptr_t)b), VM_R | VM_W);
	KT_EQ_U(vm_prot((uintptr_t)b + PAGE_SIZE), VM_R | VM_W);
	KT_EQ_U(vm_protect(a, PAGE_SIZE, VM_R | VM_X), 0);
	KT_EQ_U(pool_init(SMALL_POOL_BYTES), 0);
	KT_EQ_U(vm_prot((uintptr_t)a), VM_R | VM_W);
}

KTEST(jit_bad_arguments_refused)
{
	KT_EQ_U(pool_init(TEST_POOL_BYTES), 0);
	static const size_t bad[] = { 0, 3, 6, 48, 100, 4097, 8192 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		KT_ASSERT(jit_alloc(&pool, 64, bad[i]) == NULL);
		KT_ASSERT(has(jit_last_error(&pool), "alignment"));
	}
	KT_ASSERT(jit_alloc(&pool, 0, 16) == NULL);
	KT_ASSERT(has(jit_last_error(&pool), "size is 0"));
	void *p = jit_alloc(&pool, 64, 64);
	KT_ASSERT(p != NULL);
	KT_ASSERT(jit_free(&pool, (uint8_t *)p + 16) == -1);
	KT_ASSERT(has(jit_last_error(&pool), "not the start"));
	KT_EQ_U(jit_free(&pool, p), 0);
	KT_ASSERT(jit_free(&pool, p) == -1);
	KT_ASSERT(has(jit_last_error(&pool), "double free"));
	KT_ASSERT(jit_free(&pool, (void *)0x10) == -1);
	KT_ASSERT(has(jit_last_error(&pool), "not inside"));
	struct jit_pool other;
	KT_ASSERT(jit_pool_init(&other, pool_mem + 16, 4096) == -1);
	KT_ASSERT(has(jit_last_error(&other), "page aligned"));
	KT_EQ_U(jit_pool_check(&pool), 0);
}
