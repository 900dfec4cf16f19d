/*
 * uart_model.c — kernel/drivers/serial.c built for the host
 * (FLUID_SERIAL_HOST) against a model of the COM1 UART, for the UARTs QEMU
 * cannot play: one without loopback emulation, an 8250 without a scratch
 * register, one whose THRE bit never sets, one that is slow to empty, and
 * no UART at all. For each model named on the command line it runs
 * serial_init, writes a 100-byte message (99 characters and '\n') and
 * prints one line:
 *   NAME present=P status="S" timeouts=T wire=W lsr_polls=L mcr=0xM
 * wire counts the bytes the model transmitted after init (its line out),
 * lsr_polls the line status reads after init, mcr the final modem control.
 * A model's registers: LCR (DLAB), MCR (LOOP), SCR, DLL/DLM, IER, FCR are
 * stored as written; LSR is THRE|TEMT unless the model says otherwise, plus
 * DR when a looped-back byte waits in RBR.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "serial.h"

struct model {
	const char *name;
	int absent;        /* nothing at the port: every read is 0xFF        */
	int no_scratch;    /* 8250: SCR writes are lost, reads 0xFF          */
	int no_loopback;   /* MCR.LOOP ignored: the byte goes to the wire    */
	int thre_stuck;    /* LSR.THRE never sets                            */
	int slow;          /* THRE clears for this many polls after a write  */
};

static const struct model models[] = {
	{ .name = "16550" },
	{ .name = "no-loopback", .no_loopback = 1 },
	{ .name = "8250", .no_scratch = 1, .no_loopback = 1 },
	{ .name = "thre-stuck", .thre_stuck = 1 },
	{ .name = "slow", .slow = 50 },
	{ .name = "absent", .absent = 1 },
};

static const struct model *m;
static uint8_t reg[8], dll, dlm, rbr;
static int rx_ready, busy;
static unsigned wire, lsr_polls;

uint8_t serial_host_inb(uint16_t port)
{
	unsigned r = port - 0x3F8u;
	if (m->absent || r > 7)
		return 0xFF;
	int dlab = reg[3] & 0x80;
	switch (r) {
	case 0:
		if (dlab)
			return dll;
		rx_ready = 0;
		return rbr;
	case 1:
		return dlab ? dlm : reg[1];
	case 2:
		return 0xC1; /* IIR: FIFOs enabled, no interrupt */
	case 5: {
		lsr_polls++;
		uint8_t lsr = rx_ready ? 0x01 : 0;
		if (busy > 0)
			busy--;
		else if (!m->thre_stuck)
			lsr |= 0x60;
		return lsr;
	}
	case 7:
		return m->no_scratch ? 0xFF : reg[7];
	default:
		return reg[r];
	}
}

void serial_host_outb(uint16_t port, uint8_t v)
{
	unsigned r = port - 0x3F8u;
	if (m->absent || r > 7)
		return;
	int dlab = reg[3] & 0x80;
	if (r == 0 && dlab) {
		dll = v;
	} else if (r == 1 && dlab) {
		dlm = v;
	} else if (r == 0) {
		busy = m->slow;
		if ((reg[4] & 0x10) && !m->no_loopback) {
			rbr = v;
			rx_ready = 1;
		} else {
			wire++;
		}
	} else {
		reg[r] = v;
	}
}

int main(int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		m = NULL;
		for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
			if (strcmp(models[i].name, argv[a]) == 0)
				m = &models[i];
		if (!m) {
			fprintf(stderr, "uart_model: no model %s\n", argv[a]);
			return 2;
		}
		memset(reg, 0, sizeof reg);
		dll = dlm = rbr = 0;
		rx_ready = busy = 0;
		serial_init();
		wire = lsr_polls = 0;
		char msg[100];
		memset(msg, 'x', sizeof msg);
		msg[99] = '\n';
		serial_write(msg, sizeof msg);
		printf("%s present=%d status=\"%s\" timeouts=%u wire=%u lsr_polls=%u mcr=0x%02x\n", m->name,
		       serial_present(), serial_status(), serial_tx_timeouts(), wire, lsr_polls, reg[4]);
	}
	return 0;
}
