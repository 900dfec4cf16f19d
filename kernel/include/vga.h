/*
 * vga.h — 80x25 VGA text console at 0xB8000 with scrolling and hardware cursor.
 */
#ifndef FLUID_VGA_H
#define FLUID_VGA_H

#include <stddef.h>
#include <stdint.h>

enum vga_color {
	VGA_BLACK = 0, VGA_BLUE, VGA_GREEN, VGA_CYAN, VGA_RED, VGA_MAGENTA,
	VGA_BROWN, VGA_LIGHT_GREY, VGA_DARK_GREY, VGA_LIGHT_BLUE, VGA_LIGHT_GREEN,
	VGA_LIGHT_CYAN, VGA_LIGHT_RED, VGA_LIGHT_MAGENTA, VGA_YELLOW, VGA_WHITE,
};

void vga_init(void);
/* Keep the top n rows (the banner) in place when the screen scrolls. */
void vga_pin_rows(unsigned n);
void vga_set_color(enum vga_color fg, enum vga_color bg);
void vga_putc(char c);
void vga_write(const char *buf, size_t len);
/* The character cell at (row, col), for tests: low byte char, high byte attribute. */
uint16_t vga_cell(unsigned row, unsigned col);
void vga_cursor(unsigned *row, unsigned *col);

#define VGA_COLS 80
#define VGA_ROWS 25

#endif
