/*
 * modrun_host.c — runs packed x86_64 modules on the (x86_64 Linux) host, the
 * way the kernel's loader does, with host stand-ins for the kernel
 * services: so the modules' known answers, the packer and the relocation
 * step are checked end to end without booting a kernel.
 *
 *     modrun_host [--light] FILE.mod...
 *
 * Per file: modparse (the kernel's parser), a page-aligned mapping of whole
 * pages, copy, bss zeroed, module_relocate (the kernel's) at the mapping's
 * address, then W^X as the kernel does it: code pages PROT_READ|PROT_EXEC,
 * the rest PROT_READ|PROT_WRITE. The entry is called MODULE_RUNS = 3 times
 * (once with --light, which also sets svc->light). It prints one line per
 * file, "ok <name> calls=<n> checks=<k>" or "FAIL <name>: <why>", and exits
 * 1 if any failed. Each file runs in a child process, so a module that
 * crashes is named ("FAIL <file>: killed by signal N") and the others
 * still run. The profile hook is not called (it writes the FS_BASE
 * MSR, which only ring 0 may).
 *
 * It runs module code in this process: only feed it modules from this
 * tree's build.
 */
#define _GNU_SOURCE
#define FLUID_MODPARSE_HOST 1
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>
#include "module.h"

/* module.h's MODULE_RUNS and MODULE_RUNS_LIGHT (kernel-only part). */
#define RUNS       3u
#define RUNS_LIGHT 1u

static unsigned checks_ok, checks_failed;
static const char *current;

static void h_print(const char *s)
{
	fputs(s, stdout);
}

static void h_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void *h_alloc(size_t n)
{
	return malloc(n);
}

static void h_free(void *p)
{
	free(p);
}

static uint64_t h_rdtsc(void)
{
	return __rdtsc();
}

static int h_check(const char *name, uint64_t got, uint64_t want)
{
	if (got == want) {
		checks_ok++;
		return 1;
	}
	checks_failed++;
	printf("check %s: %s FAIL got=%llu want=%llu\n", current, name, (unsigned long long)got,
	       (unsigned long long)want);
	return 0;
}

static int run(const char *path, int light)
{
	static uint8_t buf[1 << 23];
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("FAIL %s: cannot open\n", path);
		return 1;
	}
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct modparse_info info;
	char err[MODPARSE_ERR_MAX];
	if (modparse(buf, n, &info, err, sizeof(err)) != 0) {
		printf("FAIL %s: refused: %s\n", path, err);
		return 1;
	}
	const size_t page = FLUID_MOD_PAGE_SIZE;
	size_t filed = (size_t)info.code_size + info.data_size;
	size_t total = (filed + info.bss_size + page - 1) / page * page;
	uint8_t *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("FAIL %s: mmap %zu bytes\n", info.name, total);
		return 1;
	}
	memcpy(mem, info.image, filed); /* the rest of the mapping is zero: bss */
	module_relocate(mem, (uint64_t)(uintptr_t)mem, &info);
	size_t code = (info.code_size + page - 1) / page * page;
	if (mprotect(mem, code, PROT_READ | PROT_EXEC) != 0) {
		printf("FAIL %s: mprotect code\n", info.name);
		return 1;
	}
	struct fluid_services svc = {
		.version = FLUID_SERVICES_VERSION,
		.light = (uint32_t)light,
		.print = h_print,
		.printf = h_printf,
		.alloc = h_alloc,
		.free = h_free,
		.rdtsc = h_rdtsc,
		.check = h_check,
	};
	fluid_entry_fn entry = (fluid_entry_fn)(uintptr_t)(mem + info.entry_offset);
	checks_ok = checks_failed = 0;
	current = info.name;
	unsigned calls = light ? RUNS_LIGHT : RUNS;
	int bad = 0;
	for (unsigned i = 0; i < calls; i++) {
		int32_t st = entry(&svc);
		if (st != FLUID_OK) {
			printf("FAIL %s: entry returned %d\n", info.name, st);
			bad = 1;
			break;
		}
	}
	fflush(stdout);
	munmap(mem, total);
	if (bad)
		return 1;
	if (checks_failed || !checks_ok) {
		printf("FAIL %s: %u checks failed, %u ok\n", info.name, checks_failed, checks_ok);
		return 1;
	}
	printf("ok %s calls=%u checks=%u\n", info.name, calls, checks_ok);
	return 0;
}

int main(int argc, char **argv)
{
	int light = 0, bad = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--light") == 0) {
			light = 1;
			continue;
		}
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			int rc = run(argv[i], light);
			fflush(stdout);
			_exit(rc);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid) {
			perror("waitpid");
			return 2;
		}
		if (WIFSIGNALED(st)) {
			printf("FAIL %s: killed by signal %d\n", argv[i], WTERMSIG(st));
			bad = 1;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			bad = 1;
		}
	}
	return bad;
}
