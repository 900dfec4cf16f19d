/*
 * kernel.h — version string, kernel image bounds from kernel.ld, kernel_main.
 */
#ifndef FLUID_KERNEL_H
#define FLUID_KERNEL_H

#include <stdint.h>
#include "bootinfo.h"

#ifndef FLUID_VERSION
#define FLUID_VERSION "0.0.0-dev"
#endif

/* Linker-script symbols: use their addresses only. */
extern char __kernel_start[], __kernel_end[];
extern char __text_start[], __text_end[];
extern char __rodata_start[], __data_start[];
extern char __bss_start[], __bss_end[];
/* The boot stack (arch/entry.asm) and the unmapped page below it. */
extern char kernel_stack_guard[], kernel_stack_bottom[], kernel_stack_top[];

void kernel_main(uint32_t magic, const struct boot_info *bi);

#ifdef FLUID_PAD_KIB
#define FLUID_PAD_FIRST 0xA5
#define FLUID_PAD_LAST  0x5A
/* FLUID_PAD_KIB KiB of .rodata (core/pad.c) to make the kernel large. */
extern const uint8_t fluid_pad[FLUID_PAD_KIB * 1024];
#endif

#endif
