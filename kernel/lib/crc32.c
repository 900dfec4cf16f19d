/*
 * crc32.c — CRC-32 IEEE (see crc32.h for the parameters and the users).
 *
 * Half-byte table: 16 entries (64 bytes of .rodata), two lookups per byte.
 * tab[i] is the CRC register after shifting the 4-bit value i through the
 * reflected polynomial 0xEDB88320, so (c >> 4) ^ tab[c & 15] consumes the low
 * nibble of c. That is 4x fewer steps than the bitwise loop and 1 KiB less
 * than the byte table; module files and profile frames are a few KiB to a
 * few hundred KiB, so the checksum never dominates a load or an export.
 */
#include "crc32.h"

uint32_t crc32_ieee(const void *buf, size_t len)
{
	static const uint32_t tab[16] = {
		0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
		0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
		0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
	};
	const uint8_t *p = buf;
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		c = (c >> 4) ^ tab[c & 15];
		c = (c >> 4) ^ tab[c & 15];
	}
	return c ^ 0xFFFFFFFFu;
}
