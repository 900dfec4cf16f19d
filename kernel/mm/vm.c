/*
 * vm.c — the kernel's page tables (the layout is in vm.h), built once at
 * boot from a pool of page-table pages in .bss, and vm_protect for W^X.
 *
 * Invariants:
 *   - every table page comes from the table area: pool_pages pages of RAM
 *     right after the kernel image (physical), reserved before the heap
 *     (vm_tables_end): one page directory for every GiB of the direct map
 *     that an E820 entry touches (so any amount of RAM up to MAP_LIMIT
 *     fits), plus POOL_PAGES for everything else (PML4, PDPTs, the 4 KiB
 *     tables of the kernel image and of vm_protect's splits); tables are reached at virtual = physical, through
 *     stage 2's identity map while vm_init builds them and through the
 *     direct map afterwards, and are zeroed when they are taken (stage 2
 *     does not have to zero them as part of .bss);
 *   - non-leaf entries are present + writable + executable, so a leaf's
 *     bits alone decide a page's permissions;
 *   - no page is writable and executable at once, except where a caller of
 *     vm_protect asks for it;
 *   - after vm_init nothing maps virtual 0..4095.
 */
#include <stdint.h>
#include "bootinfo.h"
#include "console.h"
#include "cpu.h"
#include "fmt.h"
#include "gdt.h"
#include "heap.h"
#include "kernel.h"
#include "panic.h"
#include "vm.h"

#define PTE_P      0x001ull
#define PTE_W      0x002ull
#define PTE_PS     0x080ull
#define PTE_NX     (1ull << 63)
#define PTE_ADDR   0x000FFFFFFFFFF000ull
#define PDE_ADDR2M 0x000FFFFFFFE00000ull
#define TABLE      (PTE_P | PTE_W)          /* non-leaf entries */
#define MIN_MAP    (16ull << 20)            /* direct-map at least 16 MiB */
#define MAP_LIMIT  (512ull << 30)           /* one PML4 entry of direct map */
#define POOL_PAGES 64u                    /* table pages besides the direct map's PDs */
#define ONE_GIB    (1ull << 30)
#define FOUR_GIB   0x100000000ull

static uint64_t pool_base;   /* physical = virtual; 0 before vm_init */
static unsigned pool_used, pool_pages;
static uint64_t *pml4;
static uint64_t high_base, high_end, high_next;

static uint64_t kphys(const void *p)
{
	return (uint64_t)(uintptr_t)p - KERNEL_VMA;
}

static uint64_t *table_of(uint64_t e)
{
	return (uint64_t *)(uintptr_t)(e & PTE_ADDR);
}

static uint64_t tphys(const uint64_t *t)
{
	return (uint64_t)(uintptr_t)t;
}

static uint64_t *alloc_table(void)
{
	if (pool_used == pool_pages)
		return NULL;
	uint64_t *t = (uint64_t *)(uintptr_t)(pool_base + (uint64_t)pool_used++ * PAGE_SIZE);
	for (unsigned i = 0; i < 512; i++)
		t[i] = 0;
	return t;
}

uintptr_t vm_tables_end(void)
{
	return (uintptr_t)(pool_base + (uint64_t)pool_pages * PAGE_SIZE);
}

static uint64_t leaf_bits(unsigned prot)
{
	if (!prot)
		return 0;
	return PTE_P | ((prot & VM_W) ? PTE_W : 0) | ((prot & VM_X) ? 0 : PTE_NX);
}

/* The entry of level `level` (3 PML4 .. 1 PD) for va, creating the lower
 * tables on the way when create; NULL when absent (or the pool is empty). */
static uint64_t *pd_entry(uint64_t va, int create)
{
	uint64_t *t = pml4;
	for (int shift = 39; shift > 21; shift -= 9) {
		uint64_t *e = &t[(va >> shift) & 511];
		if (!(*e & PTE_P)) {
			if (!create)
				return NULL;
			uint64_t *n = alloc_table();
			if (!n)
				return NULL;
			*e = tphys(n) | TABLE;
		}
		t = table_of(*e);
	}
	return &t[(va >> 21) & 511];
}

/* The 4 KiB entry for va; a 2 MiB page on the way is split into 512 4 KiB
 * pages with its own permissions first (only when create). */
static uint64_t *pt_entry(uint64_t va, int create)
{
	uint64_t *pde = pd_entry(va, create);
	if (!pde)
		return NULL;
	if ((*pde & PTE_P) && (*pde & PTE_PS)) {
		if (!create)
			return NULL;
		uint64_t *pt = alloc_table();
		if (!pt)
			return NULL;
		uint64_t base = *pde & PDE_ADDR2M, bits = *pde & (PTE_NX | PTE_P | PTE_W);
		for (unsigned i = 0; i < 512; i++)
			pt[i] = (base + (uint64_t)i * PAGE_SIZE) | bits;
		*pde = tphys(pt) | TABLE;
		invlpg((void *)(uintptr_t)(va & ~(uint64_t)(LARGE_PAGE - 1)));
	}
	if (!(*pde & PTE_P)) {
		if (!create)
			return NULL;
		uint64_t *pt = alloc_table();
		if (!pt)
			return NULL;
		*pde = tphys(pt) | TABLE;
	}
	return &table_of(*pde)[(va >> 12) & 511];
}

static void map_4k(uint64_t va, uint64_t pa, uint64_t bits)
{
	uint64_t *e = pt_entry(va, 1);
	if (!e)
		panic("vm: no page-table page left (pool of %u) mapping 0x%016llx", pool_pages,
		      (unsigned long long)va);
	*e = pa | bits;
}

static int in(uint64_t a, const void *lo, const void *hi)
{
	return a >= (uint64_t)(uintptr_t)lo && a < (uint64_t)(uintptr_t)hi;
}

static int is_guard(uint64_t va)
{
	if (in(va, kernel_stack_guard, kernel_stack_guard + PAGE_SIZE))
		return 1;
	for (unsigned n = 1; n <= IST_COUNT; n++) {
		uintptr_t lo, hi;
		gdt_ist_stack(n, &lo, &hi);
		if (va >= lo - PAGE_SIZE && va < lo)
			return 1;
	}
	return 0;
}

/* Permission bits of kernel image page va (higher half). */
static uint64_t image_bits(uint64_t va)
{
	if (is_guard(va))
		return 0;
	if (in(va, __text_start, __rodata_start))
		return leaf_bits(VM_R | VM_X);
	if (in(va, __rodata_start, __data_start))
		return leaf_bits(VM_R);
	return leaf_bits(VM_R | VM_W);
}

/* Direct-map the 2 MiB region at a (physical = virtual). The regions that
 * hold page 0 or kernel image pages get 4 KiB pages with those left out.
 * Returns 1 if the region was newly mapped. */
static int map_region(uint64_t a, uint64_t kend_phys)
{
	uint64_t *pde = pd_entry(a, 1);
	if (!pde)
		panic("vm: no page-table page left (pool of %u) for the direct map at 0x%016llx",
		      pool_pages, (unsigned long long)a);
	if (*pde & PTE_P)
		return 0;
	uint64_t rw = leaf_bits(VM_R | VM_W);
	if (a >= kend_phys) {
		*pde = a | rw | PTE_PS;
		return 1;
	}
	for (uint64_t p = a; p < a + LARGE_PAGE; p += PAGE_SIZE)
		if (p != 0 && !(p >= KERNEL_LOAD_MIN && p < kend_phys))
			map_4k(p, p, rw);
	return 1;
}

static void find_high(const struct boot_info *bi, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct e820_entry *e = &bi->e820[i];
		uint64_t b = e->base, end = e->base + e->length;
		if (e->type != E820_USABLE || end <= FOUR_GIB)
			continue;
		if (b < FOUR_GIB)
			b = FOUR_GIB;
		b = (b + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
		end &= ~(uint64_t)(PAGE_SIZE - 1);
		if (end > MAP_LIMIT)
			end = MAP_LIMIT;
		if (end > b && end - b > high_end - high_base) {
			high_base = b;
			high_end = end;
		}
	}
	high_next = high_base;
}

/* The page directories the direct map needs: one for every GiB below
 * MAP_LIMIT that the low MIN_MAP or an E820 entry (any type, as vm_init
 * maps them) touches. */
static unsigned direct_map_pds(const struct boot_info *bi, uint32_t n)
{
	uint64_t seen[MAP_LIMIT / ONE_GIB / 64] = { 1 }; /* GiB 0: MIN_MAP */
	unsigned count = 1;
	for (uint32_t i = 0; i < n; i++) {
		const struct e820_entry *e = &bi->e820[i];
		uint64_t end = e->base + e->length;
		if (e->length == 0 || e->base >= MAP_LIMIT)
			continue;
		if (end > MAP_LIMIT || end < e->base)
			end = MAP_LIMIT;
		for (uint64_t g = e->base / ONE_GIB; g <= (end - 1) / ONE_GIB; g++)
			if (!(seen[g / 64] & (1ull << (g % 64)))) {
				seen[g / 64] |= 1ull << (g % 64);
				count++;
			}
	}
	return count;
}

void vm_init(const struct boot_info *bi)
{
	uint32_t a, b, c, d;
	cpuid(0x80000001u, &a, &b, &c, &d);
	if (!(d & (1u << 20)))
		panic("vm: CPU has no NX bit (CPUID 0x80000001 EDX bit 20); stage 2 should have refused it");
	uint64_t kend_phys = kphys(__kernel_end);
	uint32_t n = bi->e820_count > BOOTINFO_E820_MAX ? BOOTINFO_E820_MAX : bi->e820_count;
	pool_base = kend_phys;
	pool_pages = POOL_PAGES + direct_map_pds(bi, n);
	int room = 0;
	for (uint32_t i = 0; i < n; i++)
		if (bi->e820[i].type == E820_USABLE && bi->e820[i].base <= pool_base &&
		    bi->e820[i].base + bi->e820[i].length >= vm_tables_end())
			room = 1;
	if (!room)
		panic("vm: no usable E820 RAM for the %u page-table pages at 0x%016llx (after the kernel); "
		      "give the VM more memory", pool_pages, (unsigned long long)pool_base);
	pml4 = alloc_table();
	uint64_t regions = 0, top = 0, beyond = 0;

	for (uint64_t r = 0; r < MIN_MAP; r += LARGE_PAGE)
		regions += map_region(r, kend_phys);
	for (uint32_t i = 0; i < n; i++) {
		const struct e820_entry *e = &bi->e820[i];
		if (e->length == 0)
			continue;
		uint64_t end = e->base + e->length;
		if (end > MAP_LIMIT) {
			if (e->type == E820_USABLE)
				beyond += end - (e->base > MAP_LIMIT ? e->base : MAP_LIMIT);
			end = MAP_LIMIT;
		}
		for (uint64_t r = e->base & ~(uint64_t)(LARGE_PAGE - 1); r < end; r += LARGE_PAGE) {
			regions += map_region(r, kend_phys);
			if (r + LARGE_PAGE > top)
				top = r + LARGE_PAGE;
		}
	}
	for (uint64_t va = (uint64_t)(uintptr_t)__kernel_start; va < (uint64_t)(uintptr_t)__kernel_end;
	     va += PAGE_SIZE)
		map_4k(va, va - KERNEL_VMA, image_bits(va));

	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	write_cr3(tphys(pml4));
	write_cr0(read_cr0() | CR0_WP);
	find_high(bi, n);

	kprintf("vm: direct map %llu MiB up to 0x%016llx (2 MiB pages; 4 KiB where permissions differ), "
		"%u of %u page-table pages at 0x%llx\n", (unsigned long long)(regions * 2), (unsigned long long)top,
		pool_used, pool_pages, (unsigned long long)pool_base);
	kprintf("vm: kernel 0x%016llx-0x%016llx: .text R+X, .rodata R+NX, .data/.bss RW+NX; "
		"not present: page 0, stack guards; CR0.WP EFER.NXE on\n",
		(unsigned long long)(uintptr_t)__kernel_start, (unsigned long long)(uintptr_t)__kernel_end);
	if (beyond)
		kprintf("vm: %llu MiB of usable RAM above 512 GiB left unmapped (one PML4 entry of direct map)\n",
			(unsigned long long)(beyond >> 20));
	if (high_end > high_base)
		kprintf("vm: usable RAM above 4 GiB: %llu MiB at 0x%016llx-0x%016llx\n",
			(unsigned long long)((high_end - high_base) >> 20), (unsigned long long)high_base,
			(unsigned long long)high_end);
}

int vm_protect(void *va, size_t len, unsigned prot)
{
	uint64_t s = (uint64_t)(uintptr_t)va;
	if ((s | len) & (PAGE_SIZE - 1) || len == 0 || s + len < s || !pml4)
		return -1;
	for (uint64_t p = s; p < s + len; p += PAGE_SIZE) {
		uint64_t *pde = pd_entry(p, 0);
		if (!pde || !(*pde & PTE_P))
			return -1;
		if (!(*pde & PTE_PS) && !(*pt_entry(p, 0) & PTE_P) && !is_guard(p))
			return -1;
	}
	for (uint64_t p = s; p < s + len; p += PAGE_SIZE) {
		uint64_t *e = pt_entry(p, 1);
		if (!e)
			return -1;
		uint64_t pa = *e & PTE_ADDR;
		if (!pa && p >= KERNEL_VMA)
			pa = p - KERNEL_VMA;
		else if (!pa)
			pa = p;
		*e = pa | leaf_bits(prot);
		invlpg((void *)(uintptr_t)p);
	}
	return 0;
}

unsigned vm_prot(uint64_t va)
{
	if (!pml4)
		return 0;
	uint64_t *pde = pd_entry(va, 0);
	if (!pde || !(*pde & PTE_P))
		return 0;
	uint64_t e = *pde;
	if (!(e & PTE_PS))
		e = table_of(e)[(va >> 12) & 511];
	if (!(e & PTE_P))
		return 0;
	return VM_R | ((e & PTE_W) ? VM_W : 0) | ((e & PTE_NX) ? 0 : VM_X);
}

int vm_readable(uint64_t va)
{
	if (!pml4)
		return va < FOUR_GIB || (va >= (uint64_t)(uintptr_t)__kernel_start &&
					 va < (uint64_t)(uintptr_t)__kernel_end);
	return (vm_prot(va) & VM_R) != 0;
}

const char *vm_describe(uint64_t va)
{
	static char buf[160];
	const char *what = "unmapped address";
	struct heap_stats hs;
	heap_bounds(&hs.start, &hs.end);
	if (va < PAGE_SIZE)
		what = "page 0 (NULL)";
	else if (is_guard(va))
		what = "a stack guard page";
	else if (in(va, __text_start, __rodata_start))
		what = "kernel .text";
	else if (in(va, __rodata_start, __data_start))
		what = "kernel .rodata";
	else if (in(va, kernel_stack_bottom, kernel_stack_top))
		what = "the kernel stack";
	else if (in(va, __data_start, __kernel_end))
		what = "kernel .data/.bss";
	else if (va >= pool_base && va < vm_tables_end())
		what = "the page tables";
	else if (va >= hs.start && va < hs.end)
		what = "the kernel heap";
	else if (va >= high_base && va < high_end)
		what = "RAM above 4 GiB";
	else if (vm_prot(va))
		what = "the direct map";
	unsigned p = vm_prot(va);
	ksnprintf(buf, sizeof buf, "%s (%s)", what,
		  !p ? "not present" :
		  (p & VM_W) ? ((p & VM_X) ? "read-write, executable" : "read-write, no-execute") :
		  ((p & VM_X) ? "read-only, executable" : "read-only, no-execute"));
	return buf;
}

void vm_high_range(uint64_t *base, uint64_t *end)
{
	*base = high_base;
	*end = high_end;
}

void *vm_high_alloc(size_t bytes)
{
	uint64_t n = ((uint64_t)bytes + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	if (!n || high_next + n > high_end || high_next + n < high_next)
		return NULL;
	void *p = (void *)(uintptr_t)high_next;
	high_next += n;
	return p;
}

void vm_high_release(void *p, size_t bytes)
{
	uint64_t n = ((uint64_t)bytes + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	uint64_t a = (uint64_t)(uintptr_t)p;
	if (p && n && a + n == high_next && a >= high_base)
		high_next = a;
}

uint64_t vm_high_left(void)
{
	return high_end - high_next;
}
