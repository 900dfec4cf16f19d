/*
 * filecache.c — the read_file service's per-boot file cache (filecache.h).
 * A file is read from the partition on its first request, timed with the
 * TSC, and kept until the machine stops; later requests get the same
 * pointer without touching the disk.
 */
#include "filecache.h"
#include "console.h"
#include "heap.h"
#include "string.h"
#include "timer.h"
#include "vm.h"

struct entry {
	char path[FILECACHE_PATH_MAX]; /* as the first caller spelled it */
	uint32_t cluster, size;        /* the file on the partition        */
	const void *bytes;             /* 16-byte aligned, kernel-owned    */
	int on_heap;                   /* bytes came from kmalloc           */
};

/*
 * Invariants:
 *   - ent[0..n) are files read whole and successfully, n <= FILECACHE_ENTRIES;
 *     every bytes pointer stays valid and unchanged for the rest of the boot
 *     (nothing but filecache_reset, a test helper, ever frees one), so a
 *     module may keep it across calls and across its heap release: the
 *     blocks are the kernel's own kmalloc blocks, never svc_alloc blocks, so
 *     the guard's release of a module's heap does not see them;
 *   - no two entries hold the same file (cluster and size): a second
 *     spelling of a path ("/LLAMA/Model.gguf", FAT names ignore case) gets
 *     the first entry's bytes, not a second copy;
 *   - a failed request adds nothing, so a later request tries again.
 */
static struct {
	struct fat32 *fs;
	struct entry ent[FILECACHE_ENTRIES];
	uint32_t n;
} cache;

/* A zero-length file has no block: every one gets this (aligned) address. */
static const uint8_t empty_file[16] __attribute__((aligned(16)));

void filecache_attach(struct fat32 *fs)
{
	cache.fs = fs;
}

void filecache_reset(void)
{
	for (uint32_t i = 0; i < cache.n; i++)
		if (cache.ent[i].on_heap)
			kfree((void *)(uintptr_t)cache.ent[i].bytes);
	memset(cache.ent, 0, sizeof(cache.ent));
	cache.n = 0;
}

static const void *fail(const char *path, const char *why)
{
	kprintf("file %s: %s\n", path, why);
	return NULL;
}

/* Memory for a file of size bytes: the heap first (16-byte aligned), then
 * RAM above 4 GiB (page aligned, never freed: the cache keeps files for
 * the whole boot anyway). NULL when neither has room. */
static void *file_memory(uint32_t size, int *on_heap)
{
	void *p = kmalloc(size);
	*on_heap = p != NULL;
	if (!p)
		p = vm_high_alloc(size);
	return p;
}

/* "read N bytes in US us (R.RR MB/s)": us from the TSC cycles dt (the
 * calibrated tsc_khz), MB/s = bytes per microsecond, two decimals. */
static void report_read(const char *path, uint32_t size, uint64_t dt)
{
	uint32_t khz = tsc_khz();
	uint64_t us = khz ? dt * 1000u / khz : 0;
	uint64_t div = us ? us : 1; /* a read under a microsecond: rate as for 1 us */
	uint64_t centi = (uint64_t)size * 100u / div;
	kprintf("file %s: read %u bytes in %llu us (%llu.%02llu MB/s)\n", path, size, (unsigned long long)us,
		(unsigned long long)(centi / 100u), (unsigned long long)(centi % 100u));
}

static char lower_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* 1 if absolute paths a and b name the same file as fat32_lookup reads
 * them: the same components, compared ignoring ASCII case (FAT's rule),
 * empty components ("//", a trailing "/") skipped. */
static int same_path(const char *a, const char *b)
{
	for (;;) {
		while (*a == '/')
			a++;
		while (*b == '/')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		for (; *a && *a != '/'; a++, b++)
			if (lower_ascii(*a) != lower_ascii(*b))
				return 0;
		if (*b && *b != '/')
			return 0;
	}
}

/*
 * filecache_get: the cached bytes of path, reading the file on a miss.
 * The path is validated before any disk access (absolute, shorter than
 * FILECACHE_PATH_MAX); a path already in the cache, under any spelling
 * fat32_lookup resolves the same way (case, doubled or trailing slashes),
 * costs a path compare per entry and no disk read, and prints nothing.
 */
const void *filecache_get(const char *path, uint64_t *size)
{
	if (!path)
		return fail("(null)", "no path given: pass an absolute path such as /llama/model.gguf");
	size_t len = strnlen(path, FILECACHE_PATH_MAX);
	if (len == FILECACHE_PATH_MAX) {
		kprintf("file %.60s...: path longer than %u characters\n", path, FILECACHE_PATH_MAX - 1);
		return NULL;
	}
	if (path[0] != '/')
		return fail(path, "not an absolute path (it must start with /)");
	for (uint32_t i = 0; i < cache.n; i++)
		if (same_path(cache.ent[i].path, path)) {
			if (size)
				*size = cache.ent[i].size;
			return cache.ent[i].bytes; /* any spelling: no disk access */
		}
	if (!cache.fs)
		return fail(path, "no FAT32 partition is mounted");
	struct fat32_dirent d;
	int rc = fat32_lookup(cache.fs, path, &d);
	if (rc < 0) {
		kprintf("file %s: %s\n", path, fat32_error(cache.fs));
		return NULL;
	}
	if (rc > 0)
		return fail(path, "not found");
	if (d.attr & FAT32_ATTR_DIR)
		return fail(path, "a directory, not a file");
	for (uint32_t i = 0; i < cache.n; i++)
		if (cache.ent[i].cluster == d.cluster && cache.ent[i].size == d.size) {
			if (size)
				*size = d.size;
			return cache.ent[i].bytes; /* the same file, spelled differently */
		}
	if (cache.n == FILECACHE_ENTRIES) {
		kprintf("file %s: the kernel keeps at most %u files per boot and holds %u already\n", path,
			FILECACHE_ENTRIES, FILECACHE_ENTRIES);
		return NULL;
	}
	int on_heap = 0;
	void *buf = d.size ? file_memory(d.size, &on_heap) : (void *)(uintptr_t)empty_file;
	if (!buf) {
		struct heap_stats st;
		heap_stats(&st);
		kprintf("file %s: %u bytes do not fit in the %u MiB of free heap%s; boot with more RAM (-m)\n", path,
			d.size, (unsigned)(st.largest_free >> 20),
			vm_high_left() ? " nor in the RAM left above 4 GiB" : "");
		return NULL;
	}
	uint64_t t0 = rdtsc();
	if (d.size && fat32_read(cache.fs, &d, buf, d.size) != 0) {
		kprintf("file %s: unreadable: %s\n", path, fat32_error(cache.fs));
		if (on_heap)
			kfree(buf);
		else
			vm_high_release(buf, d.size); /* else a retry, or the next file, finds it gone */
		return NULL;
	}
	uint64_t dt = rdtsc() - t0;
	struct entry *e = &cache.ent[cache.n++];
	memcpy(e->path, path, len + 1);
	e->cluster = d.cluster;
	e->size = d.size;
	e->bytes = buf;
	e->on_heap = on_heap;
	report_read(path, d.size, dt);
	if (size)
		*size = d.size;
	return buf;
}
