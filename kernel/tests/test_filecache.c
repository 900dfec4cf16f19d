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
#include "vm.h"

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

/* A tiny FAT32 in memory: LBA 0 the BPB, LBA 1 the FAT, cluster 2 the root
 * directory, one sector per cluster; /BIG.BIN claims `big` bytes but its
 * chain ends after one cluster, so every read of it fails. */
static uint8_t vol[16 * 512];

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static int vol_read(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	if (lba + count > sizeof(vol) / 512)
		return -4;
	memcpy(buf, vol + lba * 512, count * 512);
	return 0;
}

static void build_broken_volume(uint32_t big)
{
	memset(vol, 0, sizeof(vol));
	put16(vol + 11, 512);
	vol[13] = 1;
	put16(vol + 14, 1);
	vol[16] = 1;
	put32(vol + 32, sizeof(vol) / 512);
	put32(vol + 36, 1);
	put32(vol + 44, 2);
	vol[510] = 0x55;
	vol[511] = 0xAA;
	uint8_t *fat = vol + 512;
	put32(fat + 0, 0x0FFFFFF8);
	put32(fat + 4, 0x0FFFFFFF);
	put32(fat + 8, 0x0FFFFFFF);  /* root: one cluster */
	put32(fat + 12, 0x0FFFFFFF); /* BIG.BIN: one cluster, far short of its size */
	uint8_t *e = vol + 2 * 512;
	memcpy(e, "BIG     BIN", 11);
	e[11] = 0x20;
	put16(e + 26, 3);
	put32(e + 28, big);
}

/* A file the heap cannot hold goes to RAM above 4 GiB; when its read
 * fails, that RAM is given back (a failed request adds nothing), so a
 * retry fails for the same reason and not for want of memory, and a few
 * failed requests do not use up the RAM above 4 GiB. */
KTEST(filecache_failed_high_read_gives_ram_back)
{
	uint64_t base, end;
	vm_high_range(&base, &end);
	struct heap_stats st;
	heap_stats(&st);
	uint64_t big = (uint64_t)st.largest_free + (1u << 20);
	if (base == end || big > 0xFFFFFFFFull || big > vm_high_left())
		return; /* no RAM above 4 GiB, or not enough of it for the case */
	static struct fat32 bfs;
	build_broken_volume((uint32_t)big);
	KT_EQ_U(fat32_mount(&bfs, vol_read, NULL, 0), 0);
	filecache_reset();
	filecache_attach(&bfs);
	uint64_t left = vm_high_left(), n = 7;
	KT_ASSERT(filecache_get("/big.bin", &n) == NULL);
	KT_EQ_U(vm_high_left(), left);
	KT_ASSERT(filecache_get("/big.bin", &n) == NULL);
	KT_EQ_U(vm_high_left(), left);
	filecache_reset();
	filecache_attach(NULL);
}

/* The sector source with a count of the sectors it read. */
static uint32_t counted;

static int counting_source(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	counted += count;
	return ata_read(lba, count, buf);
}

/* Once a file is in the cache, a request for it under any spelling
 * fat32_lookup would resolve to it (another case, doubled or trailing
 * slashes) gets the cached bytes without reading the disk at all: not the
 * file, not a directory sector (CONTRACTS.md, read_file). */
KTEST(filecache_other_spelling_reads_no_disk)
{
	const struct boot_info *bi = (const struct boot_info *)BOOTINFO_ADDR;
	static struct fat32 sfs;
	KT_EQ_U(ata_init(), ATA_OK);
	KT_EQ_U(fat32_mount(&sfs, counting_source, NULL, bi->part1_lba), 0);
	filecache_reset();
	filecache_attach(&sfs);
	uint64_t n = 0, n2 = 0;
	const uint8_t *a = filecache_get("/kernel.elf", &n);
	KT_ASSERT(a != NULL);
	counted = 0;
	static const char *const spellings[] = { "/kernel.elf", "/KERNEL.ELF", "//Kernel.Elf", "/kernel.elf/" };
	for (unsigned i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		KT_EQ_U((uintptr_t)filecache_get(spellings[i], &n2), (uintptr_t)a);
		KT_EQ_U(n2, n);
		KT_EQ_U(counted, 0);
	}
	/* A different name still goes to the disk. */
	KT_ASSERT(filecache_get("/kernel.elg", &n2) == NULL);
	KT_ASSERT(counted > 0);
	filecache_reset();
	filecache_attach(NULL);
}
