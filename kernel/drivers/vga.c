/*
 * vga.c — VGA text mode console: 80x25 cells at 0xB8000 (char + attribute),
 * scrolling, colours and the CRTC hardware cursor.
 */
#include <stdint.h>
#include "cpu.h"
#include "string.h"
#include "vga.h"

#define VGA_TEXT_BASE     0xB8000
#define VGA_CRTC_INDEX    0x3D4
#define VGA_CRTC_DATA     0x3D5
#define CRTC_CURSOR_START 0x0A
#define CRTC_CURSOR_END   0x0B
#define CRTC_CURSOR_HIGH  0x0E
#define CRTC_CURSOR_LOW   0x0F
#define CURSOR_SCANLINE_START 13
#define CURSOR_SCANLINE_END   14
#define TAB_WIDTH         8

static volatile uint16_t *const vga_mem = (volatile uint16_t *)VGA_TEXT_BASE;
static unsigned row, col;
static unsigned pinned;   /* rows at the top that scrolling leaves alone */
static uint8_t attr = VGA_LIGHT_GREY | (VGA_BLACK << 4);

static uint16_t cell(char c)
{
	return (uint16_t)((uint8_t)c | (attr << 8));
}

static void crtc_write(uint8_t reg, uint8_t v)
{
	outb(VGA_CRTC_INDEX, reg);
	outb(VGA_CRTC_DATA, v);
}

static void update_cursor(void)
{
	uint16_t pos = (uint16_t)(row * VGA_COLS + col);
	crtc_write(CRTC_CURSOR_HIGH, (uint8_t)(pos >> 8));
	crtc_write(CRTC_CURSOR_LOW, (uint8_t)pos);
}

static void clear_row(unsigned r)
{
	for (unsigned c = 0; c < VGA_COLS; c++)
		vga_mem[r * VGA_COLS + c] = cell(' ');
}

void vga_init(void)
{
	for (unsigned r = 0; r < VGA_ROWS; r++)
		clear_row(r);
	row = col = 0;
	pinned = 0;
	/* Cursor visible as an underline (scan lines 13..14). */
	outb(VGA_CRTC_INDEX, CRTC_CURSOR_START);
	outb(VGA_CRTC_DATA, (uint8_t)((inb(VGA_CRTC_DATA) & 0xC0) | CURSOR_SCANLINE_START));
	outb(VGA_CRTC_INDEX, CRTC_CURSOR_END);
	outb(VGA_CRTC_DATA, (uint8_t)((inb(VGA_CRTC_DATA) & 0xE0) | CURSOR_SCANLINE_END));
	update_cursor();
}

void vga_pin_rows(unsigned n)
{
	pinned = n < VGA_ROWS - 1 ? n : VGA_ROWS - 1;
	if (row < pinned) {
		row = pinned;
		col = 0;
		update_cursor();
	}
}

void vga_set_color(enum vga_color fg, enum vga_color bg)
{
	attr = (uint8_t)(fg | (bg << 4));
}

static void scroll(void)
{
	for (unsigned i = pinned * VGA_COLS; i < (VGA_ROWS - 1) * VGA_COLS; i++)
		vga_mem[i] = vga_mem[i + VGA_COLS];
	clear_row(VGA_ROWS - 1);
	row = VGA_ROWS - 1;
}

static void put(char c)
{
	switch (c) {
	case '\n':
		col = 0;
		row++;
		break;
	case '\r':
		col = 0;
		break;
	case '\t':
		col = (col + TAB_WIDTH) & ~(TAB_WIDTH - 1u);
		break;
	case '\b':
		if (col)
			col--;
		break;
	default:
		vga_mem[row * VGA_COLS + col] = cell(c);
		col++;
		break;
	}
	if (col >= VGA_COLS) {
		col = 0;
		row++;
	}
	if (row >= VGA_ROWS)
		scroll();
}

void vga_putc(char c)
{
	put(c);
	update_cursor();
}

void vga_write(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		put(buf[i]);
	update_cursor();
}

uint16_t vga_cell(unsigned r, unsigned c)
{
	if (r >= VGA_ROWS || c >= VGA_COLS)
		return 0;
	return vga_mem[r * VGA_COLS + c];
}

void vga_cursor(unsigned *r, unsigned *c)
{
	*r = row;
	*c = col;
}
