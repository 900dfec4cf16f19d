/*
 * test_vm.c — the kernel's page tables (kernel/mm/vm.c): long mode with
 * PAE, NX and CR0.WP on; page 0 not present (a NULL read faults with
 * CR2 = 0); .text read-only + executable, .rodata read-only, data, heap
 * and stack no-execute; a write to .text, a write to .rodata, and a call
 * into heap or stack data each raise #PF with the right CR2 and error
 * code (caught by a temporary #PF handler that resumes at a recovery
 * address); vm_protect changes one page and refuses bad ranges; RAM above
 * 4 GiB, when present, is mapped and usable.
 */
#include <stdint.h>
#include "cpu.h"
#include "gdt.h"
#include "heap.h"
#include "idt.h"
#include "kernel.h"
#include "ktest.h"
#include "vm.h"

#define PF_P     0x1u
#define PF_W     0x2u
#define PF_I     0x10u

static volatile uint64_t pf_count, pf_cr2, pf_err;
static volatile uint64_t pf_resume;

static void on_page_fault(struct int_frame *f)
{
	pf_count++;
	pf_cr2 = read_cr2();
	pf_err = f->err;
	f->rip = pf_resume;     /* skip the faulting access */
}

/* A #PF handler for a call into data: the fault is at the call target
 * (RIP = CR2); return to the caller as if the callee had returned. */
static void on_exec_fault(struct int_frame *f)
{
	pf_count++;
	pf_cr2 = read_cr2();
	pf_err = f->err;
	f->rip = *(uint64_t *)(uintptr_t)f->rsp; /* the call's return address */
	f->rsp += 8;
}

static const uint32_t rodata_word = 0x600DF00D;

KTEST(vm_long_mode_nx_wp)
{
	KT_EQ_U(read_cr0() & (CR0_PG | CR0_WP), CR0_PG | CR0_WP);
	KT_EQ_U(read_cr4() & CR4_PAE, CR4_PAE);
	KT_EQ_U(rdmsr(MSR_EFER) & (EFER_LMA | EFER_NXE), EFER_LMA | EFER_NXE);
}

KTEST(vm_permissions_by_section)
{
	KT_EQ_U(vm_prot(0), 0);
	KT_EQ_U(vm_prot(0xFFF), 0);
	KT_EQ_U(vm_prot(0x1000), VM_R | VM_W);
	KT_EQ_U(vm_prot(0xB8000), VM_R | VM_W);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)kernel_main), VM_R | VM_X);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)&rodata_word), VM_R);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)&pf_count), VM_R | VM_W);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)__kernel_end - 1), VM_R | VM_W);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)kernel_stack_guard), 0);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)kernel_stack_bottom), VM_R | VM_W);
	/* the kernel image is not reachable at its physical address */
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)kernel_main - KERNEL_VMA), 0);
	void *h = kmalloc(64);
	KT_ASSERT(h != NULL);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)h), VM_R | VM_W);
	kfree(h);
}

KTEST(vm_null_read_faults_cr2_zero)
{
	uint64_t v = 0x1234;
	pf_count = 0;
	interrupt_register(EXC_PAGE_FAULT, on_page_fault);
	__asm__ volatile("leaq 3f(%%rip), %%rax\n\t"
			 "movq %%rax, %1\n\t"
			 "xorl %%ecx, %%ecx\n\t"
			 "movq (%%rcx), %0\n\t"   /* NULL read: #PF */
			 "3:\n\t"
			 : "+r"(v), "=m"(pf_resume) : : "rax", "rcx", "memory");
	interrupt_register(EXC_PAGE_FAULT, 0);
	KT_EQ_U(pf_count, 1);
	KT_EQ_U(pf_cr2, 0);
	KT_EQ_U(pf_err & (PF_P | PF_W), 0); /* not present, a read */
	KT_EQ_U(v, 0x1234);                 /* the load never completed */
}

/* Write one byte at addr with a #PF handler installed; 1 if it faulted. */
static int write_faults(volatile uint8_t *addr)
{
	pf_count = 0;
	interrupt_register(EXC_PAGE_FAULT, on_page_fault);
	__asm__ volatile("leaq 4f(%%rip), %%rax\n\t"
			 "movq %%rax, %0\n\t"
			 "movb (%1), %%cl\n\t"
			 "movb %%cl, (%1)\n\t"    /* the same byte back: harmless if it works */
			 "4:\n\t"
			 : "=m"(pf_resume) : "r"(addr) : "rax", "rcx", "memory");
	interrupt_register(EXC_PAGE_FAULT, 0);
	return pf_count == 1;
}

KTEST(vm_write_to_text_faults)
{
	volatile uint8_t *t = (volatile uint8_t *)(uintptr_t)kernel_main;
	KT_ASSERT(write_faults(t));
	KT_EQ_U(pf_cr2, (uint64_t)(uintptr_t)t);
	KT_EQ_U(pf_err & (PF_P | PF_W), PF_P | PF_W); /* protection violation, write */
}

KTEST(vm_write_to_rodata_faults)
{
	volatile uint8_t *t = (volatile uint8_t *)(uintptr_t)&rodata_word;
	KT_ASSERT(write_faults(t));
	KT_EQ_U(pf_cr2, (uint64_t)(uintptr_t)t);
	KT_EQ_U(pf_err & (PF_P | PF_W), PF_P | PF_W);
}

/* Call code at addr (a ret) with the exec-fault handler; 1 if it faulted
 * as an instruction fetch at addr. */
static int call_faults(uint8_t *addr)
{
	addr[0] = 0xC3; /* ret: returns at once if it is (wrongly) executable */
	pf_count = 0;
	interrupt_register(EXC_PAGE_FAULT, on_exec_fault);
	((void (*)(void))(uintptr_t)addr)();
	interrupt_register(EXC_PAGE_FAULT, 0);
	return pf_count == 1 && pf_cr2 == (uint64_t)(uintptr_t)addr && (pf_err & (PF_P | PF_I)) == (PF_P | PF_I);
}

KTEST(vm_call_into_heap_or_stack_faults)
{
	uint8_t *h = kmalloc(64);
	KT_ASSERT(h != NULL);
	KT_ASSERT(call_faults(h));
	kfree(h);
	volatile uint8_t stackbuf[32];
	KT_ASSERT(call_faults((uint8_t *)stackbuf));
	static uint8_t bssbuf[32];
	KT_ASSERT(call_faults(bssbuf));
}

KTEST(vm_protect_one_page)
{
	uint8_t *raw = kmalloc(3 * PAGE_SIZE);
	KT_ASSERT(raw != NULL);
	uint8_t *pg = (uint8_t *)(((uintptr_t)raw + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1));
	KT_EQ_U(vm_protect(pg, PAGE_SIZE, VM_R | VM_X), 0);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)pg), VM_R | VM_X);
	KT_EQ_U(vm_prot((uint64_t)(uintptr_t)pg + PAGE_SIZE), VM_R | VM_W); /* neighbour unchanged */
	KT_ASSERT(write_faults(pg));
	KT_EQ_U(vm_protect(pg, PAGE_SIZE, VM_R | VM_W), 0);
	KT_ASSERT(!write_faults(pg));
	kfree(raw);
	KT_EQ_U(vm_protect((void *)(uintptr_t)0x1001, PAGE_SIZE, VM_R), -1); /* unaligned */
	KT_EQ_U(vm_protect((void *)(uintptr_t)0x1000, 100, VM_R), -1);
	KT_EQ_U(vm_protect((void *)(uintptr_t)0x0, PAGE_SIZE, VM_R), -1);    /* page 0: not mapped */
}

KTEST(vm_high_memory_when_present)
{
	uint64_t base, end;
	vm_high_range(&base, &end);
	if (base == end)
		return; /* a guest with no RAM above 4 GiB */
	KT_ASSERT(base >= 0x100000000ull);
	KT_EQ_U(vm_prot(base), VM_R | VM_W);
	KT_EQ_U(vm_prot(end - 1), VM_R | VM_W);
	volatile uint64_t *p = vm_high_alloc(PAGE_SIZE);
	KT_ASSERT(p != NULL);
	KT_ASSERT((uint64_t)(uintptr_t)p >= 0x100000000ull);
	p[0] = 0x1122334455667788ull;
	p[511] = (uint64_t)(uintptr_t)p;
	KT_EQ_U(p[0], 0x1122334455667788ull);
	KT_EQ_U(p[511], (uint64_t)(uintptr_t)p);
}

/*
 * A walk of the live page tables from CR3 (table pages are reached at
 * virtual = physical through the direct map). The effective permission of
 * a leaf is the AND of W and the OR of NX over every level on its way.
 * W^X holds for the whole address space, not just the pages the tests
 * above name: no leaf is writable and executable, and no physical page
 * that some mapping can execute is writable through another mapping
 * (an alias, e.g. the direct map of kernel .text or of module code, would
 * make W^X bypassable by writing the physical page).
 */
#define WX_ADDR     0x000FFFFFFFFFF000ull
#define WX_XPAGES   1024u
struct wx_walk {
	uint64_t xpage[WX_XPAGES]; /* physical 4 KiB pages mapped executable */
	unsigned nx, leaves, both;
	int overflow;
	uint64_t first_both_va, alias_va, alias_pa;
};
static struct wx_walk wxw;

static uint64_t wx_canon(uint64_t va)
{
	return (va & (1ull << 47)) ? (va | 0xFFFF000000000000ull) : va;
}

/* Pass 1 (collect = 1): every executable leaf's physical pages into
 * xpage[], and count writable+executable leaves. Pass 2: every writable
 * leaf whose physical range holds a page of xpage[] is an alias. */
static void wx_level(const uint64_t *t, int level, uint64_t va_base, int w, int x, int collect)
{
	static const unsigned shift[] = { 0, 12, 21, 30, 39 };
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = t[i];
		if (!(e & 1))
			continue;
		uint64_t va = wx_canon(va_base | ((uint64_t)i << shift[level]));
		int ew = w && (e & 2), ex = x && !(e >> 63);
		int leaf = level == 1 || (level <= 3 && (e & 0x80));
		if (!leaf) {
			wx_level((const uint64_t *)(uintptr_t)(e & WX_ADDR), level - 1, va, ew, ex, collect);
			continue;
		}
		uint64_t size = 1ull << shift[level];
		uint64_t pa = e & WX_ADDR & ~(size - 1);
		if (collect) {
			wxw.leaves++;
			if (ew && ex && !wxw.both++)
				wxw.first_both_va = va;
			if (ex)
				for (uint64_t p = pa; p < pa + size; p += PAGE_SIZE) {
					if (wxw.nx == WX_XPAGES) {
						wxw.overflow = 1;
						break;
					}
					wxw.xpage[wxw.nx++] = p;
				}
		} else if (ew && !ex) {
			for (unsigned k = 0; k < wxw.nx; k++)
				if (wxw.xpage[k] >= pa && wxw.xpage[k] < pa + size && !wxw.alias_va) {
					wxw.alias_va = va + (wxw.xpage[k] - pa);
					wxw.alias_pa = wxw.xpage[k];
				}
		}
	}
}

KTEST(vm_no_page_is_writable_and_executable_by_any_alias)
{
	const uint64_t *pml4 = (const uint64_t *)(uintptr_t)(read_cr3() & WX_ADDR);
	/* a heap page made R+X the way the loader does module code */
	uint8_t *raw = kmalloc(2 * PAGE_SIZE);
	KT_ASSERT(raw != NULL);
	uint8_t *pg = (uint8_t *)(((uintptr_t)raw + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1));
	KT_EQ_U(vm_protect(pg, PAGE_SIZE, VM_R | VM_X), 0);
	wxw.nx = wxw.leaves = wxw.both = 0;
	wxw.overflow = 0;
	wxw.first_both_va = wxw.alias_va = wxw.alias_pa = 0;
	wx_level(pml4, 4, 0, 1, 1, 1);
	wx_level(pml4, 4, 0, 1, 1, 0);
	int seen = 0;
	for (unsigned k = 0; k < wxw.nx; k++)
		seen |= wxw.xpage[k] == (uint64_t)(uintptr_t)pg;
	KT_EQ_U(vm_protect(pg, PAGE_SIZE, VM_R | VM_W), 0);
	kfree(raw);
	KT_ASSERT(seen); /* the walk found the R+X heap page */
	KT_ASSERT(wxw.leaves > 0);
	KT_ASSERT(!wxw.overflow);
	/* the kernel's .text is executable: pass 1 saw at least its pages */
	KT_ASSERT(wxw.nx >= (unsigned)((__rodata_start - __text_start) / PAGE_SIZE));
	if (wxw.both)
		ktest_fail(__FILE__, __LINE__, "%u leaves are writable and executable, the first at 0x%016llx",
			   wxw.both, (unsigned long long)wxw.first_both_va);
	if (wxw.alias_va)
		ktest_fail(__FILE__, __LINE__,
			   "executable physical page 0x%llx is writable through 0x%016llx",
			   (unsigned long long)wxw.alias_pa, (unsigned long long)wxw.alias_va);
}

KTEST(vm_ist_stacks_have_unmapped_guards)
{
	for (unsigned n = 1; n <= IST_COUNT; n++) {
		uintptr_t lo, hi;
		gdt_ist_stack(n, &lo, &hi);
		KT_ASSERT(hi > lo);
		KT_EQ_U(vm_prot(lo - 1), 0);          /* the guard page below */
		KT_EQ_U(vm_prot(lo - PAGE_SIZE), 0);
		KT_EQ_U(vm_prot(lo), VM_R | VM_W);     /* the stack itself, NX */
		KT_EQ_U(vm_prot(hi - 1), VM_R | VM_W);
	}
}
