/*
 * test_fat32.c — in-kernel tests of the ATA driver and the FAT32 reader:
 * a tiny FAT32 built in memory (long names, a cluster-chain loop, a chain
 * that ends early, a chain into an invalid cluster, bad BPBs), directory
 * chains that loop or pass the FAT's 2 MiB directory limit, then the real
 * partition 1 of the boot disk over ATA PIO.
 */
#include "ata.h"
#include "bootinfo.h"
#include "cpu.h"
#include "fat32.h"
#include "heap.h"
#include "ktest.h"
#include "string.h"

/* In-memory volume: LBA 0 BPB, LBA 1 the FAT, data from LBA 2 (cluster 2),
 * one sector per cluster. */
#define RAM_SECTORS   64u
#define RAM_PART_LBA  1000u /* pretend partition start */

static uint8_t ram[RAM_SECTORS * 512];

static int ram_read(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	if (lba < RAM_PART_LBA || lba - RAM_PART_LBA + count > RAM_SECTORS)
		return -4;
	memcpy(buf, ram + (lba - RAM_PART_LBA) * 512, count * 512);
	return 0;
}

static void w16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void w32(uint8_t *p, uint32_t v)
{
	w16(p, (uint16_t)v);
	w16(p + 2, (uint16_t)(v >> 16));
}

static uint8_t *cluster(uint32_t c)
{
	return ram + (2 + (c - 2)) * 512;
}

static void dirent(uint8_t *e, const char *name11, uint8_t attr, uint32_t clus, uint32_t size)
{
	memcpy(e, name11, 11);
	e[11] = attr;
	w16(e + 20, (uint16_t)(clus >> 16));
	w16(e + 26, (uint16_t)clus);
	w32(e + 28, size);
}

static uint8_t sum83(const char *n)
{
	uint8_t s = 0;
	for (int i = 0; i < 11; i++)
		s = (uint8_t)(((s & 1) << 7) + (s >> 1) + (uint8_t)n[i]);
	return s;
}

/* The LFN entries for name, written from e on (highest sequence first, as
 * on disk); returns how many 32-byte entries were used. */
static int lfn(uint8_t *e, const char *name, uint8_t csum)
{
	static const uint8_t pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	size_t n = strlen(name);
	int count = (int)((n + 12) / 13);
	for (int k = 0; k < count; k++) {
		uint8_t *d = e + 32 * k;
		int seq = count - k;
		memset(d, 0xFF, 32);
		d[0] = (uint8_t)(seq | (k == 0 ? 0x40 : 0));
		d[11] = FAT32_ATTR_LFN;
		d[12] = 0;
		d[13] = csum;
		w16(d + 26, 0);
		for (size_t i = 0; i < 13; i++) {
			size_t at = (size_t)(seq - 1) * 13 + i;
			if (at < n)
				w16(d + pos[i], (uint16_t)name[at]);
			else if (at == n)
				w16(d + pos[i], 0);
		}
	}
	return count;
}

static void build_volume(void)
{
	memset(ram, 0, sizeof(ram));
	uint8_t *b = ram;
	w16(b + 11, 512);  /* bytes per sector */
	b[13] = 1;         /* sectors per cluster */
	w16(b + 14, 1);    /* reserved sectors */
	b[16] = 1;         /* FATs */
	w32(b + 32, RAM_SECTORS);
	w32(b + 36, 1);    /* sectors per FAT */
	w32(b + 44, 2);    /* root cluster */
	b[510] = 0x55;
	b[511] = 0xAA;
	uint8_t *fat = ram + 512;
	w32(fat + 0 * 4, 0x0FFFFFF8);
	w32(fat + 1 * 4, 0x0FFFFFFF);
	w32(fat + 2 * 4, 0x0FFFFFFF); /* root: one cluster */
	w32(fat + 3 * 4, 4);          /* loop: 3 -> 4 -> 3 */
	w32(fat + 4 * 4, 3);
	w32(fat + 5 * 4, 6);          /* hello: 5 -> 6 -> end */
	w32(fat + 6 * 4, 0x0FFFFFFF);
	w32(fat + 7 * 4, 0x0FFFFFFF); /* short: 1 cluster, size says 3 */
	w32(fat + 8 * 4, 0x0FFFFFF0); /* wild: points at an invalid cluster */
	w32(fat + 9 * 4, 0x0FFFFFFF); /* subdir */
	uint8_t *root = cluster(2);
	static const char hello83[] = "HELLO-~1MOD";
	int used = lfn(root, "Hello-World.mod", sum83(hello83)); /* two LFN entries */
	dirent(root + 32 * used, hello83, FAT32_ATTR_ARCHIVE, 5, 600);
	root += 32 * (used - 1);
	dirent(root + 64, "LOOP    BIN", FAT32_ATTR_ARCHIVE, 3, 512 * 200);
	dirent(root + 96, "SHORT   BIN", FAT32_ATTR_ARCHIVE, 7, 1500);
	dirent(root + 128, "WILD    BIN", FAT32_ATTR_ARCHIVE, 8, 1024);
	root[160] = 0xE5; /* a deleted entry is skipped */
	dirent(root + 192, "SUB        ", FAT32_ATTR_DIR, 9, 0);
	dirent(cluster(9), "INNER   TXT", FAT32_ATTR_ARCHIVE, 0, 0);
	for (int i = 0; i < 512; i++) {
		cluster(5)[i] = (uint8_t)('a' + i % 26);
		cluster(6)[i] = (uint8_t)('A' + i % 26);
	}
}

static int has(const char *s, const char *sub)
{
	size_t n = strlen(sub);
	for (; *s; s++)
		if (strncmp(s, sub, n) == 0)
			return 1;
	return 0;
}

static struct fat32 fs;

KTEST(fat32_ram_volume_names_and_reads)
{
	build_volume();
	if (fat32_mount(&fs, ram_read, NULL, RAM_PART_LBA) != 0)
		ktest_fail(__FILE__, __LINE__, "mount: %s", fat32_error(&fs));
	KT_EQ_U(fs.cluster_count, RAM_SECTORS - 2);
	struct fat32_dirent e;
	KT_EQ_U(fat32_lookup(&fs, "/hello-world.MOD", &e), 0);
	KT_EQ_STR(e.name, "Hello-World.mod");
	KT_EQ_U(e.size, 600);
	static uint8_t buf[600];
	KT_EQ_U(fat32_read(&fs, &e, buf, 600), 0);
	KT_EQ_U(buf[0], 'a');
	KT_EQ_U(buf[511], 'a' + 511 % 26);
	KT_EQ_U(buf[512], 'A');       /* second cluster via the FAT */
	KT_EQ_U(buf[599], 'A' + 87 % 26);
	KT_EQ_U(fat32_lookup(&fs, "/sub/inner.txt", &e), 0);
	KT_EQ_STR(e.name, "INNER.TXT");
	KT_EQ_U(fat32_lookup(&fs, "/nope.bin", &e), 1);
	KT_EQ_U(fat32_lookup(&fs, "/sub/nope", &e), 1);
	KT_ASSERT(fat32_lookup(&fs, "/loop.bin/x", &e) == -1);
	KT_ASSERT(has(fat32_error(&fs), "not a directory"));
}

/* The data-area reads one fat32_read makes (lba relative to the volume). */
static struct {
	uint32_t n;
	uint32_t lba[8], count[8];
} reads;

static int ram_read_logged(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	if (lba >= RAM_PART_LBA + 2 && reads.n < 8) { /* data area: cluster 2 is LBA 2 */
		reads.lba[reads.n] = lba - RAM_PART_LBA;
		reads.count[reads.n] = count;
		reads.n++;
	}
	return ram_read(ctx, lba, count, buf);
}

/* A file on clusters 10, 11, 12, 14, 15 is read in two runs: 10..12 in one
 * call of the sector source, then 14 and the partial last sector (15)
 * through the sector buffer; the bytes land where they belong. */
KTEST(fat32_read_joins_contiguous_clusters)
{
	build_volume();
	uint8_t *fat = ram + 512;
	w32(fat + 10 * 4, 11);
	w32(fat + 11 * 4, 12);
	w32(fat + 12 * 4, 14);
	w32(fat + 14 * 4, 15);
	w32(fat + 15 * 4, 0x0FFFFFFF);
	for (uint32_t c = 10; c <= 15; c++)
		memset(cluster(c), (int)c, 512);
	dirent(cluster(2) + 256, "RUNS    BIN", FAT32_ATTR_ARCHIVE, 10, 4 * 512 + 100);
	KT_EQ_U(fat32_mount(&fs, ram_read_logged, NULL, RAM_PART_LBA), 0);
	struct fat32_dirent e;
	KT_EQ_U(fat32_lookup(&fs, "/runs.bin", &e), 0);
	static uint8_t buf[4 * 512 + 100 + 16];
	memset(buf, 0xEE, sizeof(buf));
	memset(&reads, 0, sizeof(reads));
	if (fat32_read(&fs, &e, buf, e.size) != 0)
		ktest_fail(__FILE__, __LINE__, "read /runs.bin: %s", fat32_error(&fs));
	KT_EQ_U(reads.n, 3);
	KT_EQ_U(reads.lba[0], 10);   /* clusters 10, 11, 12: one call */
	KT_EQ_U(reads.count[0], 3);
	KT_EQ_U(reads.lba[1], 14);   /* cluster 14 */
	KT_EQ_U(reads.count[1], 1);
	KT_EQ_U(reads.lba[2], 15);   /* the partial tail, through dir_buf */
	KT_EQ_U(reads.count[2], 1);
	KT_EQ_U(buf[0], 10);
	KT_EQ_U(buf[3 * 512 - 1], 12);
	KT_EQ_U(buf[3 * 512], 14);
	KT_EQ_U(buf[4 * 512], 15);
	KT_EQ_U(buf[4 * 512 + 99], 15);
	KT_EQ_U(buf[4 * 512 + 100], 0xEE); /* not one byte more */
	/* Cut the chain after 12: the second run is never read. */
	w32(fat + 12 * 4, 0x0FFFFFFF);
	fs.fat_cached = UINT32_MAX;
	memset(&reads, 0, sizeof(reads));
	KT_ASSERT(fat32_read(&fs, &e, buf, e.size) == -1);
	KT_EQ_STR(fat32_error(&fs), "RUNS.BIN: cluster chain ends with 612 bytes still to read");
	KT_EQ_U(reads.n, 0);
}

KTEST(fat32_damaged_chains_are_errors)
{
	build_volume();
	KT_EQ_U(fat32_mount(&fs, ram_read, NULL, RAM_PART_LBA), 0);
	static uint8_t buf[512 * 200];
	struct fat32_dirent e;
	KT_EQ_U(fat32_lookup(&fs, "/loop.bin", &e), 0);
	KT_ASSERT(fat32_read(&fs, &e, buf, e.size) == -1);
	KT_EQ_STR(fat32_error(&fs), "file LOOP.BIN: cluster chain loops: cluster 3 leads back to cluster 4 after 3 cluster(s)");
	KT_EQ_U(fat32_lookup(&fs, "/short.bin", &e), 0);
	KT_ASSERT(fat32_read(&fs, &e, buf, e.size) == -1);
	KT_ASSERT(has(fat32_error(&fs), "chain ends"));
	KT_EQ_U(fat32_lookup(&fs, "/wild.bin", &e), 0);
	KT_ASSERT(fat32_read(&fs, &e, buf, e.size) == -1);
	KT_ASSERT(has(fat32_error(&fs), "invalid cluster"));
	KT_EQ_U(fat32_lookup(&fs, "/hello-world.mod", &e), 0);
	KT_ASSERT(fat32_read(&fs, &e, buf, e.size + 1) == -1);
	KT_ASSERT(has(fat32_error(&fs), "asked for"));
}

static int count_cb(void *ctx, const struct fat32_dirent *e)
{
	(void)e;
	(*(unsigned *)ctx)++;
	return 0;
}

/* A directory whose chain comes back to itself is refused before any
 * entry is listed, on the first hop back, whether or not an end entry
 * would have stopped the walk earlier. */
KTEST(fat32_directory_loop_refused)
{
	build_volume();
	uint8_t *fat = ram + 512;
	w32(fat + 9 * 4, 9); /* SUB: 9 -> 9 */
	KT_EQ_U(fat32_mount(&fs, ram_read, NULL, RAM_PART_LBA), 0);
	struct fat32_dirent d;
	KT_EQ_U(fat32_lookup(&fs, "/sub", &d), 0);
	unsigned n = 0;
	KT_ASSERT(fat32_list(&fs, &d, count_cb, &n) == -1);
	KT_EQ_U(n, 0);
	KT_EQ_STR(fat32_error(&fs), "directory SUB: cluster chain loops: cluster 9 leads back to cluster 9 after 1 cluster(s)");
	/* a longer loop, no end entry: 9 -> 10 -> 11 -> 12 -> 10, all entries deleted */
	build_volume();
	w32(fat + 9 * 4, 10);
	w32(fat + 10 * 4, 11);
	w32(fat + 11 * 4, 12);
	w32(fat + 12 * 4, 10);
	for (uint32_t c = 9; c <= 12; c++)
		for (int off = 0; off < 512; off += 32)
			cluster(c)[off] = 0xE5;
	KT_EQ_U(fat32_mount(&fs, ram_read, NULL, RAM_PART_LBA), 0);
	KT_EQ_U(fat32_lookup(&fs, "/sub", &d), 0);
	KT_ASSERT(fat32_list(&fs, &d, count_cb, &n) == -1);
	KT_EQ_U(n, 0);
	KT_ASSERT(has(fat32_error(&fs), "directory SUB: cluster chain loops"));
}

/* A synthetic volume of 64 KiB clusters (so the 2 MiB directory limit is
 * 32 clusters) whose root directory is a straight chain of big_root_len
 * clusters 2, 3, ... full of deleted entries; no data is stored. */
#define BIG_SPC       128u
#define BIG_CLUSTERS  100u
static uint32_t big_root_len;

static int big_read(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	uint8_t *b = buf;
	for (uint32_t k = 0; k < count; k++, lba++, b += 512) {
		memset(b, 0, 512);
		uint32_t rel = lba - RAM_PART_LBA;
		if (lba < RAM_PART_LBA || rel >= 2 + BIG_CLUSTERS * BIG_SPC)
			return -4;
		if (rel == 0) { /* BPB: 1 reserved sector, 1 FAT of 1 sector */
			w16(b + 11, 512);
			b[13] = BIG_SPC;
			w16(b + 14, 1);
			b[16] = 1;
			w32(b + 32, 2 + BIG_CLUSTERS * BIG_SPC);
			w32(b + 36, 1);
			w32(b + 44, 2);
			b[510] = 0x55;
			b[511] = 0xAA;
		} else if (rel == 1) {
			for (uint32_t c = 2; c < 2 + big_root_len; c++)
				w32(b + c * 4, c + 1 < 2 + big_root_len ? c + 1 : 0x0FFFFFFF);
		} else {
			for (int off = 0; off < 512; off += 32)
				b[off] = 0xE5;
		}
	}
	return 0;
}

KTEST(fat32_directory_over_2mib_refused)
{
	struct fat32_dirent root;
	unsigned n = 0;
	big_root_len = 32; /* exactly 2 MiB: allowed */
	KT_EQ_U(fat32_mount(&fs, big_read, NULL, RAM_PART_LBA), 0);
	fat32_root(&fs, &root);
	KT_EQ_U(fat32_list(&fs, &root, count_cb, &n), 0);
	KT_EQ_U(n, 0);
	big_root_len = 33;
	KT_EQ_U(fat32_mount(&fs, big_read, NULL, RAM_PART_LBA), 0);
	KT_ASSERT(fat32_list(&fs, &root, count_cb, &n) == -1);
	KT_EQ_STR(fat32_error(&fs), "directory /: cluster chain longer than 32 clusters of 65536 bytes (a FAT directory holds at most 65536 entries, 2 MiB)");
}

KTEST(fat32_bad_bpb_refused)
{
	struct {
		uint32_t off, width, value;
		const char *want;
	} cases[] = {
		{ 510, 1, 0, "signature" },
		{ 11, 2, 1024, "bytes per sector 1024" },
		{ 13, 1, 3, "sectors per cluster 3" },
		{ 16, 1, 0, "0 FATs" },
		{ 22, 2, 9, "not FAT32" },
		{ 32, 4, 2, "no data area" },
		{ 44, 4, 1, "root cluster 1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build_volume();
		if (cases[i].width == 1)
			ram[cases[i].off] = (uint8_t)cases[i].value;
		else if (cases[i].width == 2)
			w16(ram + cases[i].off, (uint16_t)cases[i].value);
		else
			w32(ram + cases[i].off, cases[i].value);
		KT_ASSERT(fat32_mount(&fs, ram_read, NULL, RAM_PART_LBA) == -1);
		if (!has(fat32_error(&fs), cases[i].want))
			ktest_fail(__FILE__, __LINE__, "case %u: \"%s\" lacks \"%s\"", (unsigned)i, fat32_error(&fs),
				   cases[i].want);
		KT_ASSERT(has(fat32_error(&fs), cases[i].want));
	}
	KT_ASSERT(fat32_mount(&fs, ram_read, NULL, 5) == -1); /* read error */
	KT_ASSERT(has(fat32_error(&fs), "disk read"));
}

KTEST(ata_reads_partition1_kernel_elf)
{
	const struct boot_info *bi = (const struct boot_info *)BOOTINFO_ADDR;
	int rc = ata_init();
	if (rc != ATA_OK)
		ktest_fail(__FILE__, __LINE__, "ata_init: %s: %s", ata_strerror(rc), ata_last_detail());
	KT_EQ_U(rc, ATA_OK);
	KT_ASSERT(ata_sectors() > bi->part1_lba);
	/* the MBR: signature 55 AA and Fluid's disk signature */
	static uint8_t sec[512];
	KT_EQ_U(ata_read(0, 1, sec), ATA_OK);
	KT_EQ_U(sec[510], 0x55);
	KT_EQ_U(sec[511], 0xAA);
	KT_EQ_U((uint32_t)sec[440] | (uint32_t)sec[441] << 8 | (uint32_t)sec[442] << 16 | (uint32_t)sec[443] << 24,
		DISK_SIGNATURE);
	KT_ASSERT(ata_read(ata_sectors(), 1, sec) == ATA_ERR_RANGE);
}

/* The same 300 sectors of partition 1 (two commands: 256 + 44) read four
 * ways agree byte for byte: by DMA straight into a heap buffer, by DMA
 * through the bounce buffer (an odd destination the controller cannot
 * take), into the kernel's .bss (KERNEL_VMA + physical), and by PIO. On a
 * machine without a bus-master controller all four are PIO. */
KTEST(ata_dma_and_pio_agree)
{
	const struct boot_info *bi = (const struct boot_info *)BOOTINFO_ADDR;
	KT_EQ_U(ata_init(), ATA_OK);
	const uint32_t n = 300, bytes = n * 512;
	uint8_t *dma = kmalloc(bytes), *odd = kmalloc(bytes + 1), *pio = kmalloc(bytes);
	static uint8_t bss[2 * 512];
	KT_ASSERT(dma && odd && pio);
	memset(dma, 0x11, bytes);
	memset(odd, 0x22, bytes + 1);
	memset(pio, 0x33, bytes);
	KT_EQ_U(ata_read(bi->part1_lba, n, dma), ATA_OK);
	KT_EQ_U(ata_read(bi->part1_lba, n, odd + 1), ATA_OK);
	KT_EQ_U(ata_read(bi->part1_lba + n - 2, 2, bss), ATA_OK);
	ata_force_pio(1);
	int rc = ata_read(bi->part1_lba, n, pio);
	ata_force_pio(0);
	KT_EQ_U(rc, ATA_OK);
	KT_EQ_U(dma[510], 0x55); /* the partition's boot sector */
	KT_EQ_U(dma[511], 0xAA);
	KT_EQ_U(memcmp(dma, pio, bytes), 0);
	KT_EQ_U(memcmp(odd + 1, pio, bytes), 0);
	KT_EQ_U(odd[0], 0x22); /* not one byte before the destination */
	KT_EQ_U(memcmp(bss, pio + bytes - 1024, 1024), 0);
	kfree(dma);
	kfree(odd);
	kfree(pio);
}

/* The bus-master status register's bits 5 and 6 ("drive 0/1 DMA
 * capable", SFF-8038i) are the firmware's to set and every driver's to
 * keep: a read clears the error and interrupt bits (write 1) and nothing
 * else. The register block is the one ata_transfer_mode names. */
KTEST(ata_dma_keeps_bus_master_capable_bits)
{
	const struct boot_info *bi = (const struct boot_info *)BOOTINFO_ADDR;
	KT_EQ_U(ata_init(), ATA_OK);
	const char *mode = ata_transfer_mode(), *at = NULL;
	for (const char *p = mode; *p; p++)
		if (strncmp(p, "registers at 0x", 15) == 0)
			at = p + 15;
	if (!at)
		return; /* PIO only: no bus-master registers to look at */
	uint16_t bm = 0;
	for (; (*at >= '0' && *at <= '9') || (*at >= 'a' && *at <= 'f'); at++)
		bm = (uint16_t)(bm * 16u + (uint16_t)(*at <= '9' ? *at - '0' : *at - 'a' + 10));
	KT_ASSERT(bm != 0);
	uint8_t before = inb((uint16_t)(bm + 2));
	outb((uint16_t)(bm + 2), (uint8_t)(before | 0x60));
	KT_EQ_U(inb((uint16_t)(bm + 2)) & 0x60u, 0x60u);
	static uint8_t sec[2 * 512];
	KT_EQ_U(ata_read(bi->part1_lba, 2, sec), ATA_OK);
	uint8_t after = inb((uint16_t)(bm + 2));
	outb((uint16_t)(bm + 2), (uint8_t)((before & 0x60) | 0x06)); /* as the firmware left them */
	KT_EQ_U(after & 0x60u, 0x60u);
	KT_EQ_U(after & 0x07u, 0); /* not active, no error, interrupt acknowledged */
}

static int ata_src(void *ctx, uint32_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	return ata_read(lba, count, buf);
}

KTEST(fat32_partition1_over_ata)
{
	const struct boot_info *bi = (const struct boot_info *)BOOTINFO_ADDR;
	KT_EQ_U(ata_init(), ATA_OK);
	KT_ASSERT(fat32_mount(&fs, ata_src, NULL, 0) == -1); /* LBA 0 is the MBR */
	if (fat32_mount(&fs, ata_src, NULL, bi->part1_lba) != 0)
		ktest_fail(__FILE__, __LINE__, "mount partition 1 at LBA %u: %s", bi->part1_lba, fat32_error(&fs));
	struct fat32_dirent e;
	KT_EQ_U(fat32_lookup(&fs, "/kernel.elf", &e), 0);
	KT_ASSERT(e.size > 4096);
	uint8_t *buf = kmalloc(e.size);
	KT_ASSERT(buf != NULL);
	if (fat32_read(&fs, &e, buf, e.size) != 0)
		ktest_fail(__FILE__, __LINE__, "read /kernel.elf: %s", fat32_error(&fs));
	KT_EQ_U(buf[0], 0x7F);
	KT_EQ_U(buf[1], 'E');
	KT_EQ_U(buf[2], 'L');
	KT_EQ_U(buf[3], 'F');
	/* the ELF's section header table ends exactly at or before the file end */
	uint32_t shoff = (uint32_t)buf[32] | (uint32_t)buf[33] << 8 | (uint32_t)buf[34] << 16 | (uint32_t)buf[35] << 24;
	uint32_t shnum = (uint32_t)buf[48] | (uint32_t)buf[49] << 8;
	KT_ASSERT(shoff + shnum * 40 <= e.size);
	kfree(buf);
}
