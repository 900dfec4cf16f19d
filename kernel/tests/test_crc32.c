/*
 * test_crc32.c — in-kernel tests of the one CRC-32 (kernel/lib/crc32.c)
 * against published CRC-32 IEEE vectors (the values Go's
 * crc32.ChecksumIEEE gives, which the host side of every checksum uses).
 */
#include "crc32.h"
#include "ktest.h"

KTEST(crc32_ieee_vectors)
{
	KT_EQ_U(crc32_ieee("", 0), 0x00000000u);
	KT_EQ_U(crc32_ieee("a", 1), 0xE8B7BE43u);
	KT_EQ_U(crc32_ieee("123456789", 9), 0xCBF43926u);
	KT_EQ_U(crc32_ieee("The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
}

/* A length that is not a multiple of 4 or 16 and bytes with the high bit
 * set: the value Go's crc32.ChecksumIEEE gives for bytes 0..255. */
KTEST(crc32_ieee_all_bytes)
{
	uint8_t b[256];
	for (int i = 0; i < 256; i++)
		b[i] = (uint8_t)i;
	KT_EQ_U(crc32_ieee(b, sizeof b), 0x29058C73u);
}
