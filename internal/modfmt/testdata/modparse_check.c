/*
 * modparse_check.c — runs the kernel's module parser on the host over the
 * files named on the command line and prints, per file, "ok" or
 * "refused: <reason>" — the differential test compares this with Go's
 * modfmt.Parse. With the single argument --reloc-names it prints
 * "<type> <module_reloc_name(type)>" for types 0..63 instead (compared with
 * Go's relocTypeName).
 */
#define FLUID_MODPARSE_HOST 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "module.h"

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--reloc-names") == 0) {
		for (uint32_t t = 0; t < 64; t++)
			printf("%u %s\n", t, module_reloc_name(t));
		return 0;
	}
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
