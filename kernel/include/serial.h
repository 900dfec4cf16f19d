/*
 * serial.h — COM1 16550 UART, polled output only.
 * If no UART answers at init, every call is a no-op (never hangs).
 */
#ifndef FLUID_SERIAL_H
#define FLUID_SERIAL_H

#include <stddef.h>

/* Probe and program COM1 (115200 8N1, FIFOs on). Safe to call again. */
void serial_init(void);
/* 1 if a UART answered the scratch and loopback tests at init. */
int serial_present(void);
/* Write one byte; '\n' goes out as "\r\n". */
void serial_putc(char c);
void serial_write(const char *buf, size_t len);
/* Number of times the transmit-empty poll gave up (then the byte was sent anyway). */
unsigned serial_tx_timeouts(void);

#endif
