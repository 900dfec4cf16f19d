/*
 * modparse_fuzz.c — libFuzzer target for the kernel's module parser
 * (kernel/module/modparse.c, built for the host). Besides "no crash, no
 * out-of-bounds access" (AddressSanitizer), it checks the parser's promise:
 * when modparse accepts a buffer, every region it reports lies inside it,
 * and module_relocate writes only inside the image it relocates.
 * Run by internal/modfmt's TestFuzzModparse.
 */
#define FLUID_MODPARSE_HOST 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "module.h"
#include "crc32.h"

static void must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "modparse accepted a buffer but %s\n", what);
		abort();
	}
}

static int check_one(const uint8_t *data, size_t size)
{
	struct modparse_info info;
	char err[MODPARSE_ERR_MAX];
	if (modparse(data, size, &info, err, sizeof(err)) != 0) {
		must(err[0] != '\0', "refused without a reason");
		return 0;
	}
	const uint8_t *end = data + size;
	uint64_t filed = (uint64_t)info.code_size + info.data_size;
	must(info.image >= data + FLUID_MOD_HDR_SIZE && info.image + filed <= end, "the image is outside the buffer");
	must(info.entry_offset < info.code_size, "the entry is outside the code");
	must(info.align && info.align <= FLUID_MOD_MAX_ALIGN && !(info.align & (info.align - 1)), "bad alignment");
	must(filed + info.bss_size <= FLUID_MOD_MAX_IMAGE, "the image is too large");
	if (info.reloc_count) {
		must(info.relocs >= info.image + filed && info.relocs + (uint64_t)info.reloc_count * 8 <= end,
		     "the relocation table is outside the buffer");
		for (uint32_t i = 0; i < info.reloc_count; i++) {
			const uint8_t *r = info.relocs + i * 8;
			uint32_t off = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
			uint32_t type = (uint32_t)r[4] | (uint32_t)r[5] << 8 | (uint32_t)r[6] << 16 | (uint32_t)r[7] << 24;
			must((uint64_t)off + 8 <= filed, "a relocation's 64-bit target is outside the image");
			must(type == FLUID_R_X86_64_64 || type == FLUID_R_X86_64_RELATIVE, "accepted another relocation type");
		}
	}
	must(!(info.data_size || info.bss_size) || info.code_size % FLUID_MOD_PAGE_SIZE == 0,
	     "code and data share a page");
	/* Relocating an exact-size copy (as the loader does) stays inside it:
	 * AddressSanitizer reports any byte module_relocate touches beyond. */
	uint8_t *img = malloc(filed ? (size_t)filed : 1);
	if (img) {
		memcpy(img, info.image, (size_t)filed);
		module_relocate(img, 0xFFFFFFFF80000000ull, &info);
		free(img);
	}
	must(info.name[0] && info.name[FLUID_MOD_NAME_MAX - 1] == '\0', "the name is not terminated");
	must(info.services_version == FLUID_SERVICES_VERSION, "accepted another services table version");
	return 0;
}

/* Each input is parsed as it is and, since random bytes almost never carry
 * a matching CRC, once more with the size and CRC fields made consistent, so
 * the checks behind the checksum get fuzzed too. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	if (size < FLUID_MOD_HDR_SIZE)
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	uint32_t n = (uint32_t)size;
	for (int i = 0; i < 4; i++)
		copy[FLUID_MOD_OFF_FILE_SIZE + i] = (uint8_t)(n >> (8 * i));
	uint32_t crc = crc32_ieee(copy + FLUID_MOD_CRC_START, size - FLUID_MOD_CRC_START);
	for (int i = 0; i < 4; i++)
		copy[FLUID_MOD_OFF_CRC32 + i] = (uint8_t)(crc >> (8 * i));
	check_one(copy, size);
	free(copy);
	return 0;
}
