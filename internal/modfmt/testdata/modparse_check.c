/*
 * modparse_check.c — runs the kernel's module parser on the host over the
 * files named on the command line and prints, per file, "ok" or
 * "refused: <reason>" — the differential test compares this with Go's
 * modfmt.Parse. With the single argument --reloc-names it prints
 * "<type> <module_reloc_name(type)>" for types 0..63 instead (compared with
 * Go's relocTypeName). With --relocate BASE IN OUT it parses IN, relocates
 * a copy of its code + data to run at BASE (module_relocate, as the loader
 * does) and writes those bytes to OUT.
 */
#define FLUID_MODPARSE_HOST 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "module.h"

static int relocate(uint64_t base, const char *in, const char *out)
{
	static uint8_t buf[1 << 23];
	FILE *f = fopen(in, "rb");
	if (!f) {
		perror(in);
		return 2;
	}
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct modparse_info info;
	char err[MODPARSE_ERR_MAX];
	if (modparse(buf, n, &info, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: refused: %s\n", in, err);
		return 1;
	}
	size_t filed = (size_t)info.code_size + info.data_size;
	uint8_t *mem = malloc(filed + 1);
	if (!mem)
		return 2;
	memcpy(mem + 1, info.image, filed); /* an odd address: no alignment assumed */
	module_relocate(mem + 1, base, &info);
	f = fopen(out, "wb");
	if (!f || fwrite(mem + 1, 1, filed, f) != filed || fclose(f) != 0) {
		perror(out);
		return 2;
	}
	free(mem);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--reloc-names") == 0) {
		for (uint32_t t = 0; t < 64; t++)
			printf("%u %s\n", t, module_reloc_name(t));
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "--relocate") == 0)
		return relocate(strtoull(argv[2], NULL, 0), argv[3], argv[4]);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 2;
		}
		static uint8_t buf[1 << 23];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct modparse_info info;
		char err[MODPARSE_ERR_MAX];
		/* a copy at an odd address: the parser must not assume alignment */
		uint8_t *p = malloc(n + 1);
		if (!p)
			return 2;
		for (size_t k = 0; k < n; k++)
			p[k + 1] = buf[k];
		if (modparse(p + 1, n, &info, err, sizeof(err)) == 0)
			printf("ok\n");
		else
			printf("refused: %s\n", err);
		free(p);
	}
	return 0;
}
