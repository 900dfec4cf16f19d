/*
 * serial.h — COM1 16550 UART, polled output only.
 * If no UART answers at init, every call is a no-op (never hangs); if it
 * stops taking bytes, one transmit timeout marks it unresponsive and later
 * bytes are written without waiting.
 */
#ifndef FLUID_SERIAL_H
#define FLUID_SERIAL_H

#include <stddef.h>

/* Probe and program COM1 (115200 8N1, FIFOs on). Safe to call again. */
void serial_init(void);
/* 1 if a UART answered at init (line status and line control registers;
 * the loopback echo is not required). */
int serial_present(void);
/* What init found and how transmit goes, for the boot log: "absent",
 * "present (...)" or "unresponsive (...)". */
const char *serial_status(void);
/* Write one byte; '\n' goes out as "\r\n". */
void serial_putc(char c);
void serial_write(const char *buf, size_t len);
/* Number of times the transmit-empty poll gave up: 0 or 1, as the first
 * timeout marks the UART unresponsive (the byte was sent anyway). */
unsigned serial_tx_timeouts(void);

#endif
