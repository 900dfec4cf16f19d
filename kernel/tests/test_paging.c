/*
 * test_paging.c — paging is on, page 0 is not present and a NULL read
 * faults with CR2 = 0 (caught by a temporary #PF handler that resumes at a
 * recovery label), while the rest of low memory and the kernel are mapped.
 */
#include <stdint.h>
#include "cpu.h"
#include "idt.h"
#include "kernel.h"
#include "ktest.h"
#include "paging.h"

static volatile uint32_t pf_count, pf_cr2, pf_err;
static volatile uint32_t pf_resume;

static void on_page_fault(struct int_frame *f)
{
	pf_count++;
	pf_cr2 = read_cr2();
	pf_err = f->err;
	f->eip = pf_resume;     /* skip the faulting load */
}

KTEST(paging_enabled)
{
	KT_EQ_U(read_cr0() & CR0_PG, CR0_PG);
	KT_EQ_U(read_cr4() & CR4_PSE, CR4_PSE);
	KT_ASSERT(!paging_is_mapped(0));
	KT_ASSERT(!paging_is_mapped(0xFFF));
	KT_ASSERT(paging_is_mapped(0x1000));
	KT_ASSERT(paging_is_mapped(0xB8000));
	KT_ASSERT(paging_is_mapped((uint32_t)(uintptr_t)__kernel_start));
	KT_ASSERT(paging_is_mapped((uint32_t)(uintptr_t)__kernel_end - 1));
}

KTEST(paging_null_read_faults_cr2_zero)
{
	uint32_t v = 0x1234;
	pf_count = 0;
	interrupt_register(EXC_PAGE_FAULT, on_page_fault);
	__asm__ volatile("movl $3f, %1\n\t"
			 "xorl %%ecx, %%ecx\n\t"
			 "movl (%%ecx), %0\n\t"   /* NULL read: #PF */
			 "3:\n\t"
			 : "+r"(v), "=m"(pf_resume) : : "ecx", "memory");
	interrupt_register(EXC_PAGE_FAULT, 0);
	KT_EQ_U(pf_count, 1);
	KT_EQ_U(pf_cr2, 0);
	KT_EQ_U(pf_err & 1, 0);          /* P = 0: not present */
	KT_EQ_U(pf_err & 2, 0);          /* a read */
	KT_EQ_U(v, 0x1234);              /* the load never completed */
}
