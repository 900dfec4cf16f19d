/*
 * test_filecache.c — in-kernel tests of the read_file cache
 * (kernel/fs/filecache.c) over the boot disk's partition 1 (ATA): the same
 * bytes and pointer for every request of a file, under any spelling of its
 * name; NULL and size 0 for what is not a readable file.
 */
#include "ata.h"
#include "bootinfo.h"
#include "fat32.h"
#include "filecache.h"
#include "heap.h"
#include "ktest.h"
#include "string.h"

static struct fat32 cfs;

static int ata_source(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	return ata_read(lba, count, buf);
}

KTEST(filecache_reads_once_and_keeps)
{
	const struct boot_info *bi = (const struct boot_info *)BOOTINFO_ADDR;
	uint64_t n = 99;
	filecache_reset();
	filecache_attach(NULL);
	KT_ASSERT(filecache_get("/kernel.elf", &n) == NULL); /* nothing mounted */
	KT_EQ_U(n, 99); /* the service zeroes it; the cache leaves it */
	KT_EQ_U(ata_init(), ATA_OK);
	KT_EQ_U(fat32_mount(&cfs, ata_source, NULL, bi->part1_lba), 0);
	filecache_attach(&cfs);
	struct fat32_dirent e;
	KT_EQ_U(fat32_lookup(&cfs, "/kernel.elf", &e), 0);
	const uint8_t *a = filecache_get("/kernel.elf", &n);
	KT_ASSERT(a != NULL);
	KT_EQ_U(n, e.size);
	KT_EQ_U((uintptr_t)a & 15u, 0);
	KT_EQ_U(a[0], 0x7F);
	KT_EQ_U(a[1], 'E');
	/* The bytes are the file's: compare with a fresh read. */
	uint8_t *fresh = kmalloc(e.size);
	KT_ASSERT(fresh != NULL);
	KT_EQ_U(fat32_read(&cfs, &e, fresh, e.size), 0);
	KT_EQ_U(memcmp(a, fresh, e.size), 0);
	kfree(fresh);
	uint64_t n2 = 0;
	KT_EQ_U((uintptr_t)filecache_get("/kernel.elf", &n2), (uintptr_t)a);
	KT_EQ_U(n2, e.size);
	KT_EQ_U((uintptr_t)filecache_get("/KERNEL.ELF", &n2), (uintptr_t)a); /* FAT names ignore case */
	KT_EQ_U((uintptr_t)filecache_get("//kernel.elf", NULL), (uintptr_t)a);
	KT_ASSERT(filecache_get("/no-such-file.bin", &n2) == NULL);
	KT_ASSERT(filecache_get("/", &n2) == NULL);            /* the root: a directory */
	KT_ASSERT(filecache_get("kernel.elf", &n2) == NULL);   /* not absolute */
	KT_ASSERT(filecache_get(NULL, &n2) == NULL);
	static char longpath[FILECACHE_PATH_MAX + 8];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	KT_ASSERT(filecache_get(longpath, &n2) == NULL);
	filecache_reset();
	filecache_attach(NULL);
}
