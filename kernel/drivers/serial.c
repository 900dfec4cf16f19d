/*
 * serial.c — COM1 16550 UART, polled transmit.
 *
 * Detection (serial_init) does not rest on the loopback echo, which some
 * UARTs (and emulators) do not implement — the seed kernel went silent on
 * them. A UART is present when its line status register is not the 0xFF of
 * an empty ISA port and its line control register keeps what is written
 * (every 8250-family UART has a read/write LCR; the scratch register is
 * missing on the 8250, so it is not required). It is then programmed to
 * 115200 8N1 with FIFOs, and the loopback echo is tried only to describe
 * the UART: its probe byte is '\n', so a UART without loopback puts an
 * empty line on the wire, never a stray character in front of the banner.
 * MCR always ends in normal mode (DTR|RTS|OUT2, loopback off — leaving
 * loopback on is how the old kernel went silent).
 *
 * Transmit polls LSR.THRE with a bounded spin. The first time THRE does
 * not come within TX_SPIN_MAX polls, the UART is marked unresponsive: from
 * then on bytes are written without polling (a UART whose THRE bit sticks
 * may still send them), so a stuck UART costs one timeout per boot, not one
 * per byte. The VGA console and the exit code still carry the run.
 * With no UART (QEMU -serial none) every call returns at once.
 *
 * Port I/O goes through rd/wr only: built with FLUID_SERIAL_HOST (the
 * driver test in internal/boottest) they reach a model UART instead of
 * inb/outb, so the logic above is tested against UARTs QEMU cannot play.
 */
#include <stdint.h>
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

#define LCR_8N1           0x03
#define LCR_PROBE         0x1B /* 8 bits, even parity: a value no bus floats to */
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
#define LSR_FLOATING      0xFF /* what an ISA port with no device reads  */

#define UART_CLOCK_DIV    1    /* 115200 baud = 115200 / 1               */
#define PROBE_BYTE        '\n' /* harmless if it reaches the wire         */
#define RX_SPIN_MAX       100000u
#define TX_SPIN_MAX       200000u
#define RX_DRAIN_MAX      64u  /* bytes of stale input dropped at most    */

enum com1_state {
	COM1_ABSENT,        /* nothing answered at init: every call is a no-op */
	COM1_OK,            /* present, transmit polls THRE                    */
	COM1_UNRESPONSIVE,  /* THRE timed out once: write without polling      */
};

static enum com1_state state;
static int loopback_echo;
static unsigned tx_timeouts;

#ifdef FLUID_SERIAL_HOST
uint8_t serial_host_inb(uint16_t port);
void serial_host_outb(uint16_t port, uint8_t v);
static uint8_t rd(unsigned reg) { return serial_host_inb((uint16_t)(COM1_BASE + reg)); }
static void wr(unsigned reg, uint8_t v) { serial_host_outb((uint16_t)(COM1_BASE + reg), v); }
#else
#include "cpu.h"
static uint8_t rd(unsigned reg) { return inb((uint16_t)(COM1_BASE + reg)); }
static void wr(unsigned reg, uint8_t v) { outb((uint16_t)(COM1_BASE + reg), v); }
#endif

/* 1 if a UART answers at COM1: LSR is not a floating bus and LCR keeps
 * two values written to it (DLAB clear in both). */
static int uart_answers(void)
{
	static const uint8_t pats[] = { LCR_PROBE, LCR_8N1 };
	if (rd(UART_LSR) == LSR_FLOATING)
		return 0;
	for (unsigned i = 0; i < sizeof pats; i++) {
		wr(UART_LCR, pats[i]);
		if (rd(UART_LCR) != pats[i])
			return 0;
	}
	return 1;
}

/* Loopback: a byte sent with MCR.LOOP set should come back on RBR. Only
 * describes the UART; MCR is always left in normal mode. */
static int loopback_ok(void)
{
	int ok = 0;
	wr(UART_MCR, MCR_LOOP | MCR_OUT1 | MCR_OUT2 | MCR_RTS);
	for (unsigned i = 0; i < RX_DRAIN_MAX && (rd(UART_LSR) & LSR_DATA_READY); i++)
		(void)rd(UART_RBR);             /* drain stale input */
	wr(UART_THR, PROBE_BYTE);
	for (unsigned i = 0; i < RX_SPIN_MAX; i++) {
		if (rd(UART_LSR) & LSR_DATA_READY) {
			ok = rd(UART_RBR) == PROBE_BYTE;
			break;
		}
	}
	wr(UART_MCR, MCR_NORMAL);
	return ok;
}

void serial_init(void)
{
	state = COM1_ABSENT;
	loopback_echo = 0;
	tx_timeouts = 0;
	if (!uart_answers())
		return;
	wr(UART_IER, 0x00);                 /* polled: no UART interrupts */
	wr(UART_LCR, LCR_DLAB);
	wr(UART_DLL, UART_CLOCK_DIV & 0xFF);
	wr(UART_DLM, (UART_CLOCK_DIV >> 8) & 0xFF);
	wr(UART_LCR, LCR_8N1);              /* DLAB off */
	wr(UART_FCR, FCR_ENABLE_CLEAR);
	loopback_echo = loopback_ok();
	state = COM1_OK;
}

int serial_present(void)
{
	return state != COM1_ABSENT;
}

const char *serial_status(void)
{
	switch (state) {
	case COM1_OK:
		return loopback_echo ? "present (loopback echo ok)"
				     : "present (no loopback echo: transmitting anyway)";
	case COM1_UNRESPONSIVE:
		return "unresponsive (transmit timed out: writing without waiting)";
	default:
		return "absent";
	}
}

unsigned serial_tx_timeouts(void)
{
	return tx_timeouts;
}

static void tx(uint8_t c)
{
	if (state == COM1_OK) {
		unsigned i;
		for (i = 0; i < TX_SPIN_MAX; i++)
			if (rd(UART_LSR) & LSR_THRE)
				break;
		if (i == TX_SPIN_MAX) {
			tx_timeouts++;
			state = COM1_UNRESPONSIVE;
		}
	}
	wr(UART_THR, c);
}

void serial_putc(char c)
{
	if (state == COM1_ABSENT)
		return;
	if (c == '\n')
		tx('\r');
	tx((uint8_t)c);
}

void serial_write(const char *buf, size_t len)
{
	if (state == COM1_ABSENT)
		return;
	for (size_t i = 0; i < len; i++)
		serial_putc(buf[i]);
}
