/*
 * modrun_host.c — runs packed x86_64 modules on the (x86_64 Linux) host, the
 * way the kernel's loader does, with host stand-ins for the kernel
 * services: so the modules' known answers, the packer and the relocation
 * step are checked end to end without booting a kernel.
 *
 *     modrun_host [--light] [--root DIR] FILE.mod...
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
 * The ms service counts milliseconds of CLOCK_MONOTONIC since the start.
 * read_file serves files under --root DIR, as the kernel serves the FAT32
 * partition: "/llama/model.gguf" is DIR/llama/model.gguf, each name
 * matched ignoring case (FAT lookups do), the whole file read on the
 * first request and the same 16-byte aligned pointer returned for every
 * later one (per module: each runs in its own process); NULL and size 0
 * after a line "file PATH: <reason>" when there is no --root, the file is
 * missing or is a directory, as the kernel prints them.
 *
 * It runs module code in this process: only feed it modules from this
 * tree's build.
 */
#define _GNU_SOURCE
#define FLUID_MODPARSE_HOST 1
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

static struct timespec start;
static const char *root; /* --root DIR, or NULL */

static uint64_t h_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - start.tv_sec) * 1000u + (uint64_t)(now.tv_nsec / 1000000) -
	       (uint64_t)(start.tv_nsec / 1000000);
}

/* The files read so far: path as asked, the file (device, inode), bytes. */
#define HOST_FILES 8
static struct {
	char path[256];
	dev_t dev;
	ino_t ino;
	void *bytes;
	uint64_t size;
} files[HOST_FILES];
static int nfiles;

/* out = root + path with each component matched ignoring case, as a FAT
 * lookup does; 0, or -1 when a component is missing. */
static int resolve(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", root);
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = 0; /* (kernel/include's string.h has no strcspn) */
		while (p[len] && p[len] != '/')
			len++;
		DIR *d = opendir(out);
		if (!d)
			return -1;
		struct dirent *e;
		int found = 0;
		while ((e = readdir(d)) != NULL)
			if (strlen(e->d_name) == len && strncasecmp(e->d_name, p, len) == 0 && strcmp(e->d_name, ".") &&
			    strcmp(e->d_name, "..")) {
				size_t at = strlen(out);
				snprintf(out + at, n - at, "/%s", e->d_name);
				found = 1;
				break;
			}
		closedir(d);
		if (!found)
			return -1;
		p += len;
	}
	return 0;
}

static const void *h_read_file(const char *path, uint64_t *size)
{
	if (size)
		*size = 0;
	for (int i = 0; i < nfiles; i++)
		if (strcmp(files[i].path, path) == 0) {
			if (size)
				*size = files[i].size;
			return files[i].bytes;
		}
	if (!root) {
		printf("file %s: no files on the host: run modrun_host with --root DIR\n", path);
		return NULL;
	}
	char full[4096];
	struct stat st;
	if (path[0] != '/') {
		printf("file %s: not an absolute path (it must start with /)\n", path);
		return NULL;
	}
	if (resolve(path, full, sizeof(full)) != 0 || stat(full, &st) != 0) {
		printf("file %s: not found\n", path);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		printf("file %s: a directory, not a file\n", path);
		return NULL;
	}
	for (int i = 0; i < nfiles; i++)
		if (files[i].dev == st.st_dev && files[i].ino == st.st_ino) {
			if (size)
				*size = files[i].size;
			return files[i].bytes; /* the same file, spelled differently */
		}
	if (nfiles == HOST_FILES || strlen(path) >= sizeof(files[0].path)) {
		printf("file %s: the host stand-in keeps at most %d files of paths below %zu characters\n", path,
		       HOST_FILES, sizeof(files[0].path));
		return NULL;
	}
	void *buf = NULL;
	if (posix_memalign(&buf, 16, st.st_size ? (size_t)st.st_size : 16) != 0) {
		printf("file %s: %lld bytes do not fit in the host's memory\n", path, (long long)st.st_size);
		return NULL;
	}
	FILE *f = fopen(full, "rb");
	if (!f || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		printf("file %s: unreadable: %s\n", path, full);
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	snprintf(files[nfiles].path, sizeof(files[nfiles].path), "%s", path);
	files[nfiles].dev = st.st_dev;
	files[nfiles].ino = st.st_ino;
	files[nfiles].bytes = buf;
	files[nfiles].size = (uint64_t)st.st_size;
	nfiles++;
	printf("file %s: read %lld bytes from %s\n", path, (long long)st.st_size, full);
	if (size)
		*size = (uint64_t)st.st_size;
	return buf;
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
		.ms = h_ms,
		.read_file = h_read_file,
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
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--light") == 0) {
			light = 1;
			continue;
		}
		if (strcmp(argv[i], "--root") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "modrun_host: --root needs a directory\n");
				return 2;
			}
			root = argv[++i];
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
