/*
 * llama_host.c — runs the llama module (the C files of modules/llama, compiled for the
 * host) as a Linux program, with host stand-ins for the kernel services, so
 * internal/llama/guest can compare it with the Go reference.
 *
 *   llama_host run DIR [--light|--services-v1]
 *                                       fluid_main with read_file("/llama/x") = DIR/llama/x
 *                                       (--services-v1: a table without ms/read_file)
 *   llama_host logits MODEL N ID...     prompt ids, then N greedy steps: one
 *                                       "logits <hex float32 bits>..." line per step
 *   llama_host mutate MODEL SEED N      N corrupted copies through the whole load path
 *   llama_host rope CONTEXT DIM BASE    llama_rope_table for that config (BASE: hex float32
 *                                       bits): "cos <hex bits>..." and "sin ..." lines,
 *                                       position-major as Go's llama.RopeTable
 *   llama_host encode MODEL HEX...      per hex-encoded text: "ids ..." (with BOS)
 *                                       and "dec <hex of the decoded ids>"
 *
 * Exit status: run: 0 when fluid_main returned FLUID_OK and every check
 * passed, 1 otherwise (its last line counts the allocations not freed); other modes: 0, or 2 with the reason on stdout.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../../modules/llama/gguf.h"
#include "../../../../modules/llama/llama.h"

static const char *root;
static int failed;
static long outstanding; /* svc->alloc calls not yet matched by svc->free */

static void h_print(const char *s) { fputs(s, stdout); }
static void h_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}
static void *h_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	outstanding += p != NULL;
	return p;
}
static void h_free(void *p)
{
	outstanding -= p != NULL;
	free(p);
}
static uint64_t h_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static int h_check(const char *name, uint64_t got, uint64_t want)
{
	if (got != want) {
		printf("check llama: %s FAIL got=%llu want=%llu\n", name, (unsigned long long)got,
		       (unsigned long long)want);
		failed++;
	}
	return got == want;
}
static uint64_t h_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whole files, kept for the process (the kernel keeps them for the boot). */
static const void *h_read_file(const char *path, uint64_t *size)
{
	char full[4096];
	snprintf(full, sizeof full, "%s%s", root, path);
	FILE *f = fopen(full, "rb");
	if (!f) {
		printf("file %s: missing\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *b = aligned_alloc(16, (size_t)(n + 16) & ~(size_t)15);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		printf("file %s: cannot be read\n", path);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*size = (uint64_t)n;
	printf("file %s: read %ld bytes\n", path, n);
	return b;
}

static struct fluid_services svc = {
	.version = FLUID_SERVICES_VERSION,
	.print = h_print,
	.printf = h_printf,
	.alloc = h_alloc,
	.free = h_free,
	.rdtsc = h_rdtsc,
	.check = h_check,
	.ms = h_ms,
	.read_file = h_read_file,
};

static int load(const char *path, struct gguf_file *f, struct llama_model *m)
{
	char err[512];
	uint64_t size;
	root = "";
	const void *b = h_read_file(path, &size);
	if (!b)
		return -1;
	if (gguf_parse(f, b, size, &svc, err, sizeof err) || llama_load(m, f, &svc, err, sizeof err)) {
		printf("refused: %s\n", err);
		return -1;
	}
	return 0;
}

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* Read by AddressSanitizer when the harness is built with it (the test's
 * environment does not reach the toolchain sandbox): a huge request from a
 * corrupted header must return NULL, as the kernel's alloc does; read_file's
 * buffers are kept on purpose, and the module's own allocations are
 * counted by h_alloc/h_free, so LeakSanitizer stays off. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:detect_leaks=0"; }

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* n corrupted copies of the model (seeded, reproducible): bytes, 64-bit
 * words and lengths changed, mostly in the header and metadata; each goes
 * through gguf_parse, llama_load, the tokenizer and a few forward steps.
 * Built with -fsanitize=address,undefined, an out-of-bounds access or an
 * overflow aborts; a refusal is the expected outcome. */
static int mutate(const char *path, uint64_t seed, int n)
{
	uint64_t size;
	root = "";
	const uint8_t *orig = h_read_file(path, &size);
	struct gguf_file f;
	struct llama_model m;
	char err[512];
	if (!orig || gguf_parse(&f, orig, size, &svc, err, sizeof err))
		return 2;
	uint64_t header = f.data_offset;
	gguf_free(&f, &svc);
	int parsed = 0, loaded = 0;
	for (int i = 0; i < n; i++) {
		uint64_t len = size;
		uint8_t *b = malloc(size);
		memcpy(b, orig, size);
		int edits = 1 + (int)(rnd(&seed) % 4);
		for (int e = 0; e < edits; e++) {
			uint64_t at = rnd(&seed) % 5 ? rnd(&seed) % header : rnd(&seed) % size;
			static const uint64_t words[] = {0, 1, 2, 31, 32, 0xffffffffu, 0x100000000ull,
							 0x7fffffffffffffffull, 0xffffffffffffffffull, 0xfffffffffffffff0ull};
			switch (rnd(&seed) % 4) {
			case 0:
			case 1:
				b[at] = (uint8_t)rnd(&seed);
				break;
			case 2:
				if (at + 8 <= size) {
					uint64_t w = words[rnd(&seed) % (sizeof words / sizeof words[0])];
					memcpy(b + at, &w, 8);
				}
				break;
			default:
				len = at;
			}
		}
		/* An exact-size copy, so ASan sees a read past the end. */
		uint8_t *c = malloc(len ? len : 1);
		memcpy(c, b, len);
		free(b);
		if (gguf_parse(&f, c, len, &svc, err, sizeof err) == 0) {
			parsed++;
			if (llama_load(&m, &f, &svc, err, sizeof err) == 0) {
				loaded++;
				uint32_t ids[3 * 16 + 4];
				uint64_t k;
				if (tok_encode(&m.tok, (const uint8_t *)"once upon a time", 16, 1, ids, &k, &svc, err, sizeof err) == 0)
					for (uint64_t j = 0; j < k && j < m.context && j < 3; j++)
						llama_argmax(llama_forward(&m, ids[j] < m.vocab ? ids[j] : 0), m.vocab);
				llama_free(&m);
			}
			gguf_free(&f, &svc);
		}
		free(c);
	}
	free((void *)orig);
	printf("mutate: %d files, %d parsed, %d loaded, %ld allocations not freed\n", n, parsed, loaded, outstanding);
	return outstanding ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "run") == 0) {
		root = argv[2];
		svc.light = argc > 3 && strcmp(argv[3], "--light") == 0;
		if (argc > 3 && strcmp(argv[3], "--services-v1") == 0) {
			/* A kernel of services version 1: no ms, no read_file. */
			svc.version = 1;
			svc.ms = NULL;
			svc.read_file = NULL;
		}
		int rc = fluid_main(&svc);
		printf("fluid_main returned %d, %d checks failed, %ld allocations not freed\n", rc, failed, outstanding);
		return rc != FLUID_OK || failed ? 1 : 0;
	}
	struct gguf_file f;
	struct llama_model m;
	if (argc >= 4 && strcmp(argv[1], "logits") == 0) {
		if (load(argv[2], &f, &m))
			return 2;
		int n = atoi(argv[3]);
		const float *lg = NULL;
		for (int i = 4; i < argc; i++)
			lg = llama_forward(&m, (uint32_t)atoi(argv[i]));
		for (int s = 0; s < n; s++) {
			printf("logits");
			for (uint32_t v = 0; v < m.vocab; v++) {
				uint32_t bits;
				memcpy(&bits, &lg[v], 4);
				printf(" %08x", bits);
			}
			printf("\n");
			uint32_t next = llama_argmax(lg, m.vocab);
			if (next == m.tok.eos || s == n - 1)
				break;
			lg = llama_forward(&m, next);
		}
		llama_free(&m);
		gguf_free(&f, &svc);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "encode") == 0) {
		if (load(argv[2], &f, &m))
			return 2;
		for (int i = 3; i < argc; i++) {
			uint8_t text[4096];
			char err[512];
			size_t n = unhex(argv[i], text);
			uint32_t *ids = malloc((3 * n + 4) * sizeof *ids);
			uint64_t k;
			if (tok_encode(&m.tok, text, n, 1, ids, &k, &svc, err, sizeof err)) {
				printf("refused: %s\n", err);
				return 2;
			}
			printf("ids");
			for (uint64_t j = 0; j < k; j++)
				printf(" %u", ids[j]);
			uint64_t len;
			uint8_t *dec = tok_decode(&m.tok, ids, k, &len, &svc);
			printf("\ndec ");
			for (uint64_t j = 0; j < len; j++)
				printf("%02x", dec[j]);
			printf("\n");
			free(dec);
			free(ids);
		}
		llama_free(&m);
		gguf_free(&f, &svc);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "rope") == 0) {
		uint32_t context = (uint32_t)strtoul(argv[2], NULL, 10), dim = (uint32_t)strtoul(argv[3], NULL, 10);
		uint32_t bbits = (uint32_t)strtoul(argv[4], NULL, 16);
		float base;
		memcpy(&base, &bbits, 4);
		size_t n = (size_t)context * (dim / 2);
		float *c = malloc(n * sizeof *c + 1), *s = malloc(n * sizeof *s + 1);
		llama_rope_table(c, s, context, dim, base);
		for (int t = 0; t < 2; t++) {
			const float *v = t ? s : c;
			printf(t ? "sin" : "cos");
			for (size_t i = 0; i < n; i++) {
				uint32_t bits;
				memcpy(&bits, &v[i], 4);
				printf(" %08x", bits);
			}
			printf("\n");
		}
		free(c);
		free(s);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "mutate") == 0)
		return mutate(argv[2], strtoull(argv[3], NULL, 0), atoi(argv[4]));
	fprintf(stderr, "usage: llama_host run DIR [--light] | logits MODEL N ID... | encode MODEL HEX... | mutate MODEL SEED N | rope CONTEXT DIM BASE\n");
	return 2;
}
