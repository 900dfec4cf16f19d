/*
 * gdt.h — flat 4 GiB code and data segments (same selectors as stage 2).
 */
#ifndef FLUID_GDT_H
#define FLUID_GDT_H

#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10

void gdt_init(void);

#endif
