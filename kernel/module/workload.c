/*
 * workload.c — the kernel's workload: mount partition 1 (FAT32, ATA),
 * load every .mod file in /modules, in name order, into a JIT pool, run each one,
 * print what ran and how it went, then export the profile frames.
 * Replacing a .mod file in the image changes what runs; no kernel rebuild.
 */
#include "ata.h"
#include "console.h"
#include "fat32.h"
#include "filecache.h"
#include "fmt.h"
#include "heap.h"
#include "jit_allocator.h"
#include "module.h"
#include "profiling.h"
#include "string.h"
#include "workload.h"

#define MODULES_DIR        "/modules"
#define MODULE_SUFFIX      ".mod"
#define JIT_POOL_BYTES     (2u << 20)  /* 2 MiB: every module stays resident */
#define MODULE_FILE_LIMIT  (4u << 20)  /* larger files are refused unread   */

#ifdef FLUID_LIGHT
#define WORKLOAD_LIGHT 1u
#else
#define WORKLOAD_LIGHT 0u
#endif

/*
 * The /modules listing (collect_cb over fat32_list). Every entry is
 * either kept to be loaded or reported with `module FILE: skipped: <why>`:
 * a directory, a file without the .mod suffix, or a .mod file over the
 * limit of MODULE_MAX_RECORDS. Invariants, after each collect_cb call:
 *   - ent[0..n) are the .mod files seen so far that come first in strcmp
 *     name order, ascending (insertion sort), n <= MODULE_MAX_RECORDS; so
 *     which modules run, and in which order, does not depend on the order
 *     the image writer chose for the directory;
 *   - over counts the .mod files seen so far that are not in ent[]: once
 *     the list is full, a file that sorts before ent[n - 1] displaces it.
 * Which files were left out is known only at the end of the listing, so
 * they are named by a second listing (report_over_cb), only when over > 0.
 * bad counts skipped entries that fail the run (a directory named *.mod);
 * other skipped entries (README.txt) are reported and the run goes on.
 */
struct mod_list {
	struct fat32_dirent ent[MODULE_MAX_RECORDS];
	uint32_t n;
	uint32_t over; /* .mod files beyond MODULE_MAX_RECORDS, not in ent[] */
	uint32_t bad;  /* skipped entries that fail the run */
};

static int ends_with_mod(const char *s)
{
	size_t n = strlen(s), k = strlen(MODULE_SUFFIX);
	if (n <= k)
		return 0;
	for (size_t i = 0; i < k; i++) {
		char c = s[n - k + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != MODULE_SUFFIX[i])
			return 0;
	}
	return 1;
}

static int collect_cb(void *ctx, const struct fat32_dirent *e)
{
	struct mod_list *l = ctx;
	if (e->attr & FAT32_ATTR_DIR) {
		int looks_like_module = ends_with_mod(e->name);
		kprintf("module %s: skipped: a directory, not a module file%s\n", e->name,
			looks_like_module ? " (a module must be a file " MODULES_DIR "/NAME" MODULE_SUFFIX ")" : "");
		l->bad += (uint32_t)looks_like_module;
		return 0;
	}
	if (!ends_with_mod(e->name)) {
		kprintf("module %s: skipped: not a " MODULE_SUFFIX " file (only " MODULES_DIR "/*" MODULE_SUFFIX
			" files are loaded)\n", e->name);
		return 0;
	}
	uint32_t i = l->n;
	if (i == MODULE_MAX_RECORDS) {
		l->over++;
		if (strcmp(e->name, l->ent[i - 1].name) >= 0)
			return 0; /* e itself is left out */
		i--;              /* e displaces the last one */
	} else {
		l->n++;
	}
	while (i > 0 && strcmp(l->ent[i - 1].name, e->name) > 0) {
		l->ent[i] = l->ent[i - 1];
		i--;
	}
	l->ent[i] = *e;
	return 0;
}

/* 1 if e is one of the kept entries l->ent[0..n) (same name, cluster and
 * size: a damaged directory may hold one name twice). */
static int kept(const struct mod_list *l, const struct fat32_dirent *e)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->ent[i].cluster == e->cluster && l->ent[i].size == e->size &&
		    strcmp(l->ent[i].name, e->name) == 0)
			return 1;
	return 0;
}

/* Second listing, when the limit was exceeded: name every .mod file that
 * collect_cb left out. */
static int report_over_cb(void *ctx, const struct fat32_dirent *e)
{
	const struct mod_list *l = ctx;
	if ((e->attr & FAT32_ATTR_DIR) || !ends_with_mod(e->name) || kept(l, e))
		return 0;
	kprintf("module %s: skipped: over the limit of %u modules (the first %u " MODULE_SUFFIX
		" files in name order are loaded): remove modules from " MODULES_DIR "\n",
		e->name, MODULE_MAX_RECORDS, MODULE_MAX_RECORDS);
	return 0;
}

static int ata_source(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	return ata_read(lba, count, buf);
}

/* Load and run one module file; 0 = ran and passed. */
static int run_one(struct fat32 *fs, const struct fat32_dirent *e, struct jit_pool *pool)
{
	struct module_record *rec = module_record_new(e->name);
	if (!rec) {
		kprintf("module %s: refused: more than %u modules\n", e->name, MODULE_MAX_RECORDS);
		return -1;
	}
	if (e->size > MODULE_FILE_LIMIT || e->size == 0) {
		ksnprintf(rec->reason, sizeof(rec->reason), "file size %u is not in 1..%u", e->size,
			  MODULE_FILE_LIMIT);
		rec->result = MODULE_REFUSED;
		kprintf("module %s: refused: %s\n", e->name, rec->reason);
		return -1;
	}
	uint8_t *buf = kmalloc(e->size);
	if (!buf) {
		ksnprintf(rec->reason, sizeof(rec->reason), "out of kernel heap reading %u bytes", e->size);
		rec->result = MODULE_REFUSED;
		kprintf("module %s: refused: %s\n", e->name, rec->reason);
		return -1;
	}
	if (fat32_read(fs, e, buf, e->size) != 0) {
		ksnprintf(rec->reason, sizeof(rec->reason), "read failed: %s", fat32_error(fs));
		rec->result = MODULE_REFUSED;
		kprintf("module %s: refused: %s\n", e->name, rec->reason);
		kfree(buf);
		return -1;
	}
	struct module m;
	int rc = module_load(rec, buf, e->size, pool, &m);
	kfree(buf); /* the image now lives in the pool */
	if (rc != 0) {
		kprintf("module %s: refused: %s\n", e->name, rec->reason);
		return -1;
	}
	m.light = WORKLOAD_LIGHT;
	m.runs = WORKLOAD_LIGHT ? MODULE_RUNS_LIGHT : MODULE_RUNS;
	kprintf("module %s: loaded (%s %s) from %s/%s at %p, %u bytes%s\n", rec->name,
		module_variant_name(rec->variant), rec->hash, MODULES_DIR, e->name, (void *)rec->base,
		rec->size, rec->profile ? ", profile hook" : "");
	rc = module_execute(&m);
	kprintf("module %s: result %s calls=%u cycles total=%llu min=%llu max=%llu checks=%u/%u%s%s\n",
		rec->name, module_result_word(rec->result), rec->calls, (unsigned long long)rec->cycles_total,
		(unsigned long long)rec->cycles_min, (unsigned long long)rec->cycles_max,
		rec->checks_ok, rec->checks_ok + rec->checks_failed, rc == 0 ? "" : ": ",
		rc == 0 ? "" : rec->reason);
	return rc;
}

/* How many records say MODULE_OK. */
static uint32_t count_ok(void)
{
	size_t n;
	uint32_t ok = 0;
	const struct module_record *recs = module_records(&n);
	for (size_t i = 0; i < n; i++)
		ok += recs[i].result == MODULE_OK;
	return ok;
}

/*
 * failed_names: why = everything that failed the run, for its FLUID-END
 * line: the modules that did not pass, in run order ("spin, nullwrite"; a
 * refused module by its file name), then the .mod files over the limit and
 * the directories named *.mod that were not run ("3 module files over the
 * limit of 32", "1 directory named *.mod").
 *
 * Invariant: the counts are never cut off. They are formatted first and
 * room is kept for them; names that do not fit in what is left are
 * counted instead ("and 5 more modules"), never cut in the middle. why
 * is always NUL-terminated and never written past why[whylen - 1].
 */
static void failed_names(char *why, size_t whylen, uint32_t over, uint32_t bad)
{
	char tail[96];
	size_t tlen = 0;
	tail[0] = '\0';
	if (over)
		tlen += (size_t)ksnprintf(tail, sizeof(tail), "%u module file%s over the limit of %u", over,
					  over == 1 ? "" : "s", MODULE_MAX_RECORDS);
	if (bad && tlen < sizeof(tail))
		tlen += (size_t)ksnprintf(tail + tlen, sizeof(tail) - tlen, "%s%u director%s named *" MODULE_SUFFIX,
					  tlen ? ", " : "", bad, bad == 1 ? "y" : "ies");
	if (tlen >= sizeof(tail))
		tlen = sizeof(tail) - 1;
	why[0] = '\0';
	if (whylen == 0)
		return;
	/* Room for names: what the tail and ", and 32 more modules, " leave. */
	const size_t more_max = 24;
	size_t room = whylen > tlen + more_max + 1 ? whylen - tlen - more_max - 1 : 0;
	size_t n, len = 0;
	uint32_t untold = 0;
	const struct module_record *recs = module_records(&n);
	for (size_t i = 0; i < n; i++) {
		if (recs[i].result == MODULE_OK)
			continue;
		const char *name = recs[i].name[0] ? recs[i].name : recs[i].file;
		size_t need = strlen(name) + (len ? 2 : 0);
		if (untold || len + need > room) {
			untold++;
			continue;
		}
		ksnprintf(why + len, whylen - len, "%s%s", len ? ", " : "", name);
		len += need;
	}
	if (untold)
		len += (size_t)ksnprintf(why + len, whylen - len, "%sand %u more module%s", len ? ", " : "", untold,
					 untold == 1 ? "" : "s");
	if (tlen && len < whylen)
		ksnprintf(why + len, whylen - len, "%s%s", len ? ", " : "", tail);
}

int workload_run(const struct boot_info *bi, char *why, size_t whylen)
{
	static struct fat32 fs; /* 1 KiB of buffers: keep it off the stack */
	kprintf("workload: modules from partition 1 (LBA %u, %u sectors)%s\n", bi->part1_lba,
		bi->part1_sectors, WORKLOAD_LIGHT ? ", LIGHT" : "");
	int rc = ata_init();
	if (rc != ATA_OK) {
		kprintf("workload: ATA primary master: %s: %s\n", ata_strerror(rc), ata_last_detail());
		kprintf("workload: boot the image as the first IDE disk (-drive file=...,format=raw,if=ide,index=0)\n");
		return 1;
	}
	kprintf("workload: ATA primary master \"%s\", %u sectors\n", ata_model(), ata_sectors());
	kprintf("workload: disk reads by %s\n", ata_transfer_mode());
	if (fat32_mount(&fs, ata_source, NULL, bi->part1_lba) != 0) {
		kprintf("workload: partition 1 at LBA %u: %s\n", bi->part1_lba, fat32_error(&fs));
		return 1;
	}
	filecache_attach(&fs); /* the read_file service reads this partition */
	struct fat32_dirent dir;
	rc = fat32_lookup(&fs, MODULES_DIR, &dir);
	if (rc != 0 || !(dir.attr & FAT32_ATTR_DIR)) {
		kprintf("workload: %s: %s\n", MODULES_DIR,
			rc < 0 ? fat32_error(&fs) : "no such directory on partition 1: rebuild the image with modules");
		return 1;
	}
	static struct mod_list list;
	memset(&list, 0, sizeof(list));
	if (fat32_list(&fs, &dir, collect_cb, &list) != 0) {
		kprintf("workload: listing %s: %s (partition 1 is damaged: rebuild the image with `go tool mage build`)\n",
			MODULES_DIR, fat32_error(&fs));
		return 1;
	}
	if (list.over && fat32_list(&fs, &dir, report_over_cb, &list) != 0) {
		kprintf("workload: listing %s again: %s\n", MODULES_DIR, fat32_error(&fs));
		return 1;
	}
	if (list.n == 0) {
		kprintf("workload: no *.mod files in %s: nothing to run\n", MODULES_DIR);
		return 1;
	}
	struct jit_pool *pool = jit_pool_create(JIT_POOL_BYTES);
	if (!pool) {
		kprintf("workload: cannot allocate the %u-byte JIT pool from the kernel heap\n", JIT_POOL_BYTES);
		return 1;
	}
	module_records_reset();
	uint32_t failed = 0;
	for (uint32_t i = 0; i < list.n; i++)
		if (run_one(&fs, &list.ent[i], pool) != 0)
			failed++;
	/* A run with a module fewer than the image holds never passes. */
	if (list.over) {
		kprintf("workload: %u " MODULE_SUFFIX " file(s) in %s over the limit of %u were not run (named above)\n",
			list.over, MODULES_DIR, MODULE_MAX_RECORDS);
		failed++;
	}
	if (list.bad) {
		kprintf("workload: %u director(ies) named *" MODULE_SUFFIX " in %s were not run (named above)\n",
			list.bad, MODULES_DIR);
		failed++;
	}
	struct jit_stats st;
	jit_stats(pool, &st);
	kprintf("workload: %u module(s), %u failed or refused; JIT pool %u/%u bytes used in %u blocks\n",
		list.n, failed, st.used, st.size, st.blocks);
	uint32_t ok_before = count_ok();
	int export_errors = profiling_trigger_export();
	if (export_errors)
		kprintf("workload: profile export reported %d error(s)\n", export_errors);
	/* A profile hook that crashed or timed out is its module's failure. */
	failed += ok_before - count_ok();
	if (failed)
		failed_names(why, whylen, list.over, list.bad);
	return failed ? 1 : 0;
}
