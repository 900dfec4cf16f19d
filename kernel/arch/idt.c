/*
 * idt.c — 256 interrupt gates pointing at isr.asm's stubs, and the
 * dispatcher they all call: registered handler, else exception dump
 * (vectors 0..31), IRQ bookkeeping (32..47) or panic.
 */
#include <stdint.h>
#include "console.h"
#include "gdt.h"
#include "idt.h"
#include "panic.h"
#include "pic.h"

#define GATE_INT64_DPL0 0x8E  /* present, DPL 0, 64-bit interrupt gate (IF=0) */

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;          /* bits 0..2: IST slot, 0 = the current stack */
	uint8_t type_attr;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate");

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern const uint64_t isr_stub_table[IDT_VECTORS];

static struct idt_gate idt[IDT_VECTORS] __attribute__((aligned(8)));
static int_handler handlers[IDT_VECTORS];
static int_filter exception_filter;
static unsigned spurious;

static const char *const exc_names[EXC_VECTORS] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow",
	"bound range exceeded", "invalid opcode", "device not available",
	"double fault", "coprocessor segment overrun", "invalid TSS",
	"segment not present", "stack-segment fault", "general protection fault",
	"page fault", "reserved 15", "x87 floating-point error", "alignment check",
	"machine check", "SIMD floating-point error", "virtualization exception",
	"control protection exception", "reserved 22", "reserved 23",
	"reserved 24", "reserved 25", "reserved 26", "reserved 27",
	"hypervisor injection exception", "VMM communication exception",
	"security exception", "reserved 31",
};

const char *exception_name(unsigned vector)
{
	return vector < EXC_VECTORS ? exc_names[vector] : "interrupt";
}

void idt_init(void)
{
	for (unsigned v = 0; v < IDT_VECTORS; v++) {
		uint64_t a = isr_stub_table[v];
		idt[v].off_lo = (uint16_t)a;
		idt[v].sel = GDT_KERNEL_CODE;
		idt[v].ist = 0;
		idt[v].type_attr = GATE_INT64_DPL0;
		idt[v].off_mid = (uint16_t)(a >> 16);
		idt[v].off_hi = (uint32_t)(a >> 32);
		idt[v].zero = 0;
	}
	/* #DF, NMI and #MC switch to their own stacks (the TSS's IST): they
	 * must work when the kernel stack is exhausted (the stub would fault
	 * pushing the frame). */
	idt[EXC_DOUBLE_FAULT].ist = IST_DOUBLE_FAULT;
	idt[EXC_NMI].ist = IST_NMI;
	idt[EXC_MACHINE_CHECK].ist = IST_MACHINE_CHECK;
	struct idt_ptr p = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(p) : "memory");
	kprintf("idt: %u gates, exception handlers for vectors 0-%u (#DF, NMI, #MC on IST stacks)\n",
		IDT_VECTORS, EXC_VECTORS - 1);
}

void interrupt_register(unsigned vector, int_handler h)
{
	if (vector >= IDT_VECTORS)
		panic("interrupt_register: vector %u out of range (0-%u)", vector, IDT_VECTORS - 1);
	handlers[vector] = h;
}

void exception_set_filter(int_filter fn)
{
	exception_filter = fn;
}

unsigned irq_spurious_count(void)
{
	return spurious;
}

void interrupt_dispatch(struct int_frame *f)
{
	unsigned v = f->vector;
	int_handler h = v < IDT_VECTORS ? handlers[v] : 0;

	if (v < EXC_VECTORS) {
		if (!h) {
			if (exception_filter && exception_filter(f))
				return; /* taken: the filter rewrote the frame */
			exception_dump(f);
		}
		h(f);
		return;
	}
	if (v >= IRQ_BASE && v < IRQ_BASE + IRQ_COUNT) {
		unsigned irq = v - IRQ_BASE;
		if ((irq == 7 || irq == 15) && pic_is_spurious(irq)) {
			spurious++;
			return;             /* no EOI for a spurious IRQ */
		}
		if (h)
			h(f);
		pic_eoi(irq);
		return;
	}
	if (!h) {
		/* Only software can raise these (int N): a running module's int N
		 * is its own fault, the filter (the module guard) takes it. */
		if (exception_filter && exception_filter(f))
			return;
		panic("unexpected interrupt vector %u (0x%x) at rip 0x%016llx: no handler registered",
		      v, v, (unsigned long long)f->rip);
	}
	h(f);
}
