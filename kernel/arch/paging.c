/*
 * paging.c — identity paging for the whole physical address range the E820
 * map describes.  The first 4 MiB go through one 4 KiB page table so that
 * page 0 can be left not-present (NULL dereferences raise #PF with CR2 = 0);
 * everything above uses 4 MiB PSE pages, except that the 4 MiB page holding
 * the boot stack's guard page is split too, to leave the guard unmapped.
 */
#include <stdint.h>
#include "console.h"
#include "cpu.h"
#include "gdt.h"
#include "kernel.h"
#include "paging.h"
#include "panic.h"

#define PTE_PRESENT   0x001
#define PTE_WRITE     0x002
#define PDE_LARGE     0x080   /* PS: 4 MiB page */
#define PD_ENTRIES    1024
#define PT_ENTRIES    1024
#define MIN_MAP       (16u * 1024 * 1024)  /* map at least 16 MiB */

static uint32_t page_dir[PD_ENTRIES] __attribute__((aligned(PAGE_SIZE)));
static uint32_t low_table[PT_ENTRIES] __attribute__((aligned(PAGE_SIZE)));
/* 4 KiB table for the 4 MiB page holding the stack guard, if not the first. */
static uint32_t guard_table[PT_ENTRIES] __attribute__((aligned(PAGE_SIZE)));

/* Mark in want[] every 4 MiB page that some E820 entry (any type) touches. */
static void e820_pages(const struct boot_info *bi, uint8_t *want)
{
	uint32_t n = bi->e820_count > BOOTINFO_E820_MAX ? BOOTINFO_E820_MAX : bi->e820_count;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t base = bi->e820[i].base, end = base + bi->e820[i].length;
		if (bi->e820[i].length == 0 || base >= 0x100000000ull)
			continue;
		if (end > 0x100000000ull)
			end = 0x100000000ull;
		for (uint64_t a = base & ~(uint64_t)(LARGE_PAGE - 1); a < end; a += LARGE_PAGE)
			want[a / LARGE_PAGE] = 1;
	}
}

uint32_t paging_init(const struct boot_info *bi)
{
	uint32_t a, b, c, d;
	cpuid(1, &a, &b, &c, &d);
	if (!(d & CPUID_EDX_PSE))
		panic("paging: CPU lacks PSE (4 MiB pages, CPUID.1:EDX bit 3); use a newer CPU model");

	/* Map what the E820 map describes (RAM, ROM, ACPI) and the low 16 MiB;
	 * anything else (a wild pointer) faults. */
	static uint8_t want[PD_ENTRIES];
	e820_pages(bi, want);
	for (uint32_t i = 0; i < MIN_MAP / LARGE_PAGE; i++)
		want[i] = 1;

	low_table[0] = 0;  /* page 0: not present */
	for (uint32_t i = 1; i < PT_ENTRIES; i++)
		low_table[i] = (i * PAGE_SIZE) | PTE_PRESENT | PTE_WRITE;
	page_dir[0] = (uint32_t)(uintptr_t)low_table | PTE_PRESENT | PTE_WRITE;
	uint32_t npde = 1, top = 0;
	for (uint32_t i = 1; i < PD_ENTRIES; i++) {
		page_dir[i] = want[i] ? (i * LARGE_PAGE) | PTE_PRESENT | PTE_WRITE | PDE_LARGE : 0;
		if (want[i]) {
			npde++;
			top = i;
		}
	}

	/* Unmap the stack guard page: split its 4 MiB page into 4 KiB pages. */
	uint32_t guard = (uint32_t)(uintptr_t)kernel_stack_guard;
	uint32_t gpde = guard / LARGE_PAGE;
	uint32_t *gt = low_table;
	if (gpde != 0) {
		for (uint32_t i = 0; i < PT_ENTRIES; i++)
			guard_table[i] = (gpde * LARGE_PAGE + i * PAGE_SIZE) | PTE_PRESENT | PTE_WRITE;
		page_dir[gpde] = (uint32_t)(uintptr_t)guard_table | PTE_PRESENT | PTE_WRITE;
		gt = guard_table;
	}
	gt[(guard >> 12) & (PT_ENTRIES - 1)] = 0;

	write_cr4(read_cr4() | CR4_PSE);
	write_cr3((uint32_t)(uintptr_t)page_dir);
	write_cr0(read_cr0() | CR0_PG | CR0_WP);
	gdt_set_df_cr3((uint32_t)(uintptr_t)page_dir);

	kprintf("paging: identity map %u MiB (4 MiB pages, up to 0x%08x)\n",
		npde * 4, top * LARGE_PAGE + (LARGE_PAGE - 1));
	kprintf("paging: not present: page 0 (NULL), stack guard 0x%08x\n", guard);
	return npde * 4;
}

int paging_is_mapped(uint32_t addr)
{
	uint32_t pde = page_dir[addr >> 22];
	if (!(pde & PTE_PRESENT))
		return 0;
	if (pde & PDE_LARGE)
		return 1;
	const uint32_t *pt = (const uint32_t *)(uintptr_t)(pde & ~(PAGE_SIZE - 1));
	return (pt[(addr >> 12) & (PT_ENTRIES - 1)] & PTE_PRESENT) != 0;
}
