/*
 * fat32.h — a read-only FAT32 reader over any sector source (the ATA
 * driver in the kernel, a memory buffer in tests). Long file names are
 * assembled from LFN entries (ASCII; other characters read as '?'); lookups
 * are case-insensitive. Every cluster number and chain is range-checked, so
 * a damaged filesystem gives an error, never a wild read or a loop.
 */
#ifndef FLUID_FAT32_H
#define FLUID_FAT32_H

#include <stdint.h>

#define FAT32_SECTOR        512u
#define FAT32_NAME_MAX      64u   /* longest name kept, incl. NUL      */
#define FAT32_ERR_MAX       128u

#define FAT32_ATTR_RO       0x01
#define FAT32_ATTR_HIDDEN   0x02
#define FAT32_ATTR_SYSTEM   0x04
#define FAT32_ATTR_VOLUME   0x08
#define FAT32_ATTR_DIR      0x10
#define FAT32_ATTR_ARCHIVE  0x20
#define FAT32_ATTR_LFN      0x0F

/* Read count 512-byte sectors at absolute lba into buf; 0 or negative. */
typedef int (*fat32_read_fn)(void *ctx, uint32_t lba, uint32_t count, void *buf);

struct fat32 {
	fat32_read_fn read;
	void *ctx;
	uint32_t part_lba;
	uint32_t sectors_per_cluster;
	uint32_t fat_lba;          /* first FAT, absolute                    */
	uint32_t fat_sectors;      /* sectors per FAT                        */
	uint32_t data_lba;         /* cluster 2, absolute                    */
	uint32_t cluster_count;    /* valid clusters are 2..cluster_count+1  */
	uint32_t root_cluster;
	uint32_t fat_cached;       /* FAT sector in fat_buf, or UINT32_MAX    */
	uint8_t fat_buf[FAT32_SECTOR];
	uint8_t dir_buf[FAT32_SECTOR];
	char err[FAT32_ERR_MAX];
};

struct fat32_dirent {
	char name[FAT32_NAME_MAX]; /* long name if present, else 8.3 "NAME.EXT" */
	uint8_t attr;
	uint32_t cluster;          /* first cluster (0 for an empty file)    */
	uint32_t size;             /* bytes (0 for directories)              */
};

/* Check the BPB at part_lba and fill fs. 0, or -1 with fat32_error(fs). */
int fat32_mount(struct fat32 *fs, fat32_read_fn read, void *ctx, uint32_t part_lba);

/* The root directory as a dirent (for fat32_list). */
void fat32_root(const struct fat32 *fs, struct fat32_dirent *out);

/* Resolve an absolute path ("/modules/fib.mod"). 0 (found), 1 (not found),
 * -1 (I/O or filesystem error, see fat32_error). */
int fat32_lookup(struct fat32 *fs, const char *path, struct fat32_dirent *out);

/* Call cb for every file and directory in dir (not ".", "..", volume
 * labels or deleted entries), in on-disk order. cb returns nonzero to
 * stop. 0, or -1 on error. */
int fat32_list(struct fat32 *fs, const struct fat32_dirent *dir,
	       int (*cb)(void *ctx, const struct fat32_dirent *e), void *ctx);

/* Read the first len bytes of file f (len <= f->size) into buf. 0 or -1. */
int fat32_read(struct fat32 *fs, const struct fat32_dirent *f, void *buf, uint32_t len);

const char *fat32_error(const struct fat32 *fs);

#endif
