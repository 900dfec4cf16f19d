/*
 * pic.h — the two 8259A PICs, remapped to vectors 0x20..0x2f.
 */
#ifndef FLUID_PIC_H
#define FLUID_PIC_H

#include <stdint.h>

/* Remap and mask every IRQ. */
void pic_init(void);
void pic_unmask(unsigned irq);
void pic_mask(unsigned irq);
void pic_eoi(unsigned irq);
/* For IRQ 7/15: 1 if the PIC's in-service bit is clear (a spurious IRQ);
 * for a spurious IRQ 15 it sends the master the EOI the cascade needs. */
int pic_is_spurious(unsigned irq);
/* Current masks: low byte master, high byte slave. */
uint16_t pic_get_mask(void);

#endif
