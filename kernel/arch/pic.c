/*
 * pic.c — the 8259A pair: remapped to 0x20 (master) / 0x28 (slave) so IRQs
 * do not collide with CPU exceptions; everything masked until a driver
 * unmasks its line.
 */
#include <stdint.h>
#include "console.h"
#include "cpu.h"
#include "idt.h"
#include "pic.h"

#define PIC1_CMD      0x20
#define PIC1_DATA     0x21
#define PIC2_CMD      0xA0
#define PIC2_DATA     0xA1
#define ICW1_INIT     0x10
#define ICW1_ICW4     0x01
#define ICW4_8086     0x01
#define PIC_EOI       0x20
#define OCW3_READ_ISR 0x0B
#define CASCADE_IRQ   2

static uint8_t mask1 = 0xFF, mask2 = 0xFF;

static void write_masks(void)
{
	outb(PIC1_DATA, mask1);
	outb(PIC2_DATA, mask2);
}

void pic_init(void)
{
	outb(PIC1_CMD, ICW1_INIT | ICW1_ICW4);  io_wait();
	outb(PIC2_CMD, ICW1_INIT | ICW1_ICW4);  io_wait();
	outb(PIC1_DATA, IRQ_BASE);              io_wait(); /* ICW2: vector base */
	outb(PIC2_DATA, IRQ_SLAVE_BASE);        io_wait();
	outb(PIC1_DATA, 1u << CASCADE_IRQ);     io_wait(); /* ICW3: slave on IRQ2 */
	outb(PIC2_DATA, CASCADE_IRQ);           io_wait(); /* ICW3: cascade id */
	outb(PIC1_DATA, ICW4_8086);             io_wait();
	outb(PIC2_DATA, ICW4_8086);             io_wait();
	mask1 = 0xFF;
	mask2 = 0xFF;
	write_masks();
	kprintf("pic: remapped to 0x%02x/0x%02x, all IRQs masked\n", IRQ_BASE, IRQ_SLAVE_BASE);
}

void pic_unmask(unsigned irq)
{
	if (irq < 8) {
		mask1 &= (uint8_t)~(1u << irq);
	} else if (irq < 16) {
		mask2 &= (uint8_t)~(1u << (irq - 8));
		mask1 &= (uint8_t)~(1u << CASCADE_IRQ);
	}
	write_masks();
}

void pic_mask(unsigned irq)
{
	if (irq < 8)
		mask1 |= (uint8_t)(1u << irq);
	else if (irq < 16)
		mask2 |= (uint8_t)(1u << (irq - 8));
	write_masks();
}

uint16_t pic_get_mask(void)
{
	return (uint16_t)(inb(PIC1_DATA) | (inb(PIC2_DATA) << 8));
}

void pic_eoi(unsigned irq)
{
	if (irq >= 8)
		outb(PIC2_CMD, PIC_EOI);
	outb(PIC1_CMD, PIC_EOI);
}

static uint8_t read_isr(uint16_t cmd_port)
{
	outb(cmd_port, OCW3_READ_ISR);
	return inb(cmd_port);
}

int pic_is_spurious(unsigned irq)
{
	if (irq == 7)
		return !(read_isr(PIC1_CMD) & 0x80);
	if (irq == 15 && !(read_isr(PIC2_CMD) & 0x80)) {
		outb(PIC1_CMD, PIC_EOI);   /* master did see a real IRQ2 */
		return 1;
	}
	return 0;
}
