/*
 * crc32.h — CRC-32 IEEE 802.3, the kernel's one implementation: the module
 * file checksum (kernel/module/modparse.c) and the profile frame checksum
 * (kernel/prof/frame.c) both use it.
 *
 * The parameters are those of Go's crc32.ChecksumIEEE, which the image and
 * module builders and the profile decoder use on the host: reflected,
 * polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF;
 * crc32_ieee("123456789", 9) == 0xCBF43926. Stage 2 computes the same CRC
 * in assembly (boot/stage2/crc32.inc) before the kernel exists.
 *
 * Pure (no kernel calls, no globals but a constant table), so it builds for
 * the host as well, with modparse.c, for internal/modfmt's checker and
 * fuzz target.
 */
#ifndef FLUID_CRC32_H
#define FLUID_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 IEEE of buf[0..len); 0 for len == 0. */
uint32_t crc32_ieee(const void *buf, size_t len);

#endif
