/*
 * serial.c — COM1 16550 UART, polled transmit.
 *
 * Init probes the UART (scratch register, then a loopback echo) and, if it
 * answers, programs 115200 8N1 with FIFOs and restores MCR to normal mode
 * (DTR|RTS|OUT2, loopback off — leaving loopback on is how the old kernel
 * went silent).  Transmit polls LSR.THRE with a bounded spin; if it never
 * sets, the byte is written anyway, so output is neither dropped nor hung.
 * With no UART (QEMU -serial none) every call returns at once.
 */
#include <stdint.h>
#include "cpu.h"
#include "serial.h"

#define COM1_BASE         0x3F8
#define UART_THR          0   /* transmit holding (write, DLAB=0)       */
#define UART_RBR          0   /* receive buffer (read, DLAB=0)          */
#define UART_DLL          0   /* divisor latch low (DLAB=1)             */
#define UART_IER          1   /* interrupt enable (DLAB=0)              */
#define UART_DLM          1   /* divisor latch high (DLAB=1)            */
#define UART_FCR          2   /* FIFO control (write)                   */
#define UART_LCR          3   /* line control                           */
#define UART_MCR          4   /* modem control                          */
#define UART_LSR          5   /* line status                            */
#define UART_SCR          7   /* scratch                                */

#define LCR_8N1           0x03
#define LCR_DLAB          0x80
#define FCR_ENABLE_CLEAR  0xC7 /* enable, clear RX/TX, 14-byte trigger   */
#define MCR_DTR           0x01
#define MCR_RTS           0x02
#define MCR_OUT1          0x04
#define MCR_OUT2          0x08
#define MCR_LOOP          0x10
#define MCR_NORMAL        (MCR_DTR | MCR_RTS | MCR_OUT2)
#define LSR_DATA_READY    0x01
#define LSR_THRE          0x20 /* transmit holding register empty        */

#define UART_CLOCK_DIV    1    /* 115200 baud = 115200 / 1               */
#define PROBE_BYTE        0xAE
#define RX_SPIN_MAX       100000u
#define TX_SPIN_MAX       200000u

static int present;
static unsigned tx_timeouts;

static uint8_t rd(unsigned reg) { return inb((uint16_t)(COM1_BASE + reg)); }
static void wr(unsigned reg, uint8_t v) { outb((uint16_t)(COM1_BASE + reg), v); }

/* Scratch register round-trip: an absent UART reads back 0xFF. */
static int scratch_ok(void)
{
	static const uint8_t pats[] = { 0x5A, 0xA5, 0x00 };
	for (unsigned i = 0; i < sizeof pats; i++) {
		wr(UART_SCR, pats[i]);
		if (rd(UART_SCR) != pats[i])
			return 0;
	}
	return 1;
}

/* Loopback: a byte sent with MCR.LOOP set must come back on RBR. */
static int loopback_ok(void)
{
	int ok = 0;
	wr(UART_MCR, MCR_LOOP | MCR_OUT1 | MCR_OUT2 | MCR_RTS);
	while (rd(UART_LSR) & LSR_DATA_READY)   /* drain stale input */
		(void)rd(UART_RBR);
	wr(UART_THR, PROBE_BYTE);
	for (unsigned i = 0; i < RX_SPIN_MAX; i++) {
		if (rd(UART_LSR) & LSR_DATA_READY) {
			ok = rd(UART_RBR) == PROBE_BYTE;
			break;
		}
	}
	wr(UART_MCR, MCR_NORMAL);               /* always leave loopback mode */
	return ok;
}

void serial_init(void)
{
	present = 0;
	if (!scratch_ok())
		return;
	wr(UART_IER, 0x00);                 /* polled: no UART interrupts */
	wr(UART_LCR, LCR_DLAB);
	wr(UART_DLL, UART_CLOCK_DIV & 0xFF);
	wr(UART_DLM, (UART_CLOCK_DIV >> 8) & 0xFF);
	wr(UART_LCR, LCR_8N1);              /* DLAB off */
	wr(UART_FCR, FCR_ENABLE_CLEAR);
	if (!loopback_ok())
		return;
	present = 1;
}

int serial_present(void)
{
	return present;
}

unsigned serial_tx_timeouts(void)
{
	return tx_timeouts;
}

static void tx(uint8_t c)
{
	unsigned i;
	for (i = 0; i < TX_SPIN_MAX; i++)
		if (rd(UART_LSR) & LSR_THRE)
			break;
	if (i == TX_SPIN_MAX)
		tx_timeouts++;
	wr(UART_THR, c);
}

void serial_putc(char c)
{
	if (!present)
		return;
	if (c == '\n')
		tx('\r');
	tx((uint8_t)c);
}

void serial_write(const char *buf, size_t len)
{
	if (!present)
		return;
	for (size_t i = 0; i < len; i++)
		serial_putc(buf[i]);
}
