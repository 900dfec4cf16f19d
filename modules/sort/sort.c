/*
 * sort — quicksort (median of three, insertion sort below a cutoff) of
 * pseudo-random keys, then binary searches, half for keys that are present.
 * Known answers: modules/sort/known_answers.py (Python's sorted() and
 * bisect over the same xorshift32 sequence).
 */
#include "fluid_module.h"

#define SORT_N_DEFAULT     30000u
#define SORT_N_LIGHT       2000u
#define SORT_SEED          0x00C0FFEEu
#define SORT_MASK          0x000FFFFFu /* 20-bit keys: plenty of duplicates */
#define INSERTION_CUTOFF   12

/* python3 modules/sort/known_answers.py */
#define SUM_DEFAULT        0xc66ea0e3u
#define HITS_DEFAULT       15429u
#define SUM_LIGHT          0xceb6478fu
#define HITS_LIGHT         1001u

static void insertion(uint32_t *a, int lo, int hi)
{
	for (int i = lo + 1; i <= hi; i++) {
		uint32_t v = a[i];
		int j = i - 1;
		while (j >= lo && a[j] > v) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = v;
	}
}

static void swap(uint32_t *a, int i, int j)
{
	uint32_t t = a[i];
	a[i] = a[j];
	a[j] = t;
}

static void quicksort(uint32_t *a, int lo, int hi)
{
	while (hi - lo > INSERTION_CUTOFF) {
		int mid = lo + (hi - lo) / 2;
		if (a[mid] < a[lo])
			swap(a, mid, lo);
		if (a[hi] < a[lo])
			swap(a, hi, lo);
		if (a[hi] < a[mid])
			swap(a, hi, mid);
		uint32_t pivot = a[mid];
		int i = lo, j = hi;
		while (i <= j) {
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j)
				swap(a, i++, j--);
		}
		/* recurse into the smaller half, loop on the larger */
		if (j - lo < hi - i) {
			quicksort(a, lo, j);
			lo = i;
		} else {
			quicksort(a, i, hi);
			hi = j;
		}
	}
	insertion(a, lo, hi);
}

static int bsearch_u32(const uint32_t *a, uint32_t n, uint32_t key)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (a[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && a[lo] == key;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t n = svc->light ? SORT_N_LIGHT : SORT_N_DEFAULT;
	uint32_t *orig = svc->alloc(n * sizeof(uint32_t));
	uint32_t *a = svc->alloc(n * sizeof(uint32_t));
	if (!orig || !a) {
		svc->print("sort: out of memory\n");
		svc->free(orig);
		svc->free(a);
		return FLUID_FAIL;
	}
	uint32_t s = SORT_SEED;
	for (uint32_t i = 0; i < n; i++)
		orig[i] = a[i] = xorshift32(&s) & SORT_MASK;
	quicksort(a, 0, (int)n - 1);

	uint32_t unsorted = 0, sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i && a[i - 1] > a[i])
			unsorted++;
		sum += a[i] * (i + 1);
	}
	uint32_t hits = 0;
	for (uint32_t q = 0; q < n; q++) {
		uint32_t r = xorshift32(&s);
		uint32_t key = (q & 1) ? orig[r % n] : (r & SORT_MASK);
		hits += (uint32_t)bsearch_u32(a, n, key);
	}
	int ok = 1;
	ok &= svc->check("out-of-order pairs", unsorted, 0);
	ok &= svc->check("weighted sum", sum, svc->light ? SUM_LIGHT : SUM_DEFAULT);
	ok &= svc->check("search hits", hits, svc->light ? HITS_LIGHT : HITS_DEFAULT);
	svc->free(a);
	svc->free(orig);
	return ok ? FLUID_OK : FLUID_FAIL;
}
