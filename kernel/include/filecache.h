/*
 * filecache.h — whole files from the FAT32 partition, read once per boot
 * and kept (the read_file kernel service, fluid_module.h). A handful of
 * entries, keyed by path; the bytes live in kernel memory (the heap, or
 * RAM above 4 GiB for a file the heap cannot hold) until the machine stops.
 */
#ifndef FLUID_FILECACHE_H
#define FLUID_FILECACHE_H

#include <stdint.h>
#include "fat32.h"

#define FILECACHE_ENTRIES  8u    /* files kept per boot                  */
#define FILECACHE_PATH_MAX 128u  /* longest path, including the NUL      */

/* The mounted partition files are read from (workload_run, after
 * fat32_mount); NULL detaches it. The cache keeps the pointer. */
void filecache_attach(struct fat32 *fs);

/* The whole file at absolute path; *size gets its length. The same
 * pointer for every later request of the same file. NULL after a line
 * "file PATH: <reason>" when it is missing, a directory, unreadable or too
 * big for the RAM left. A successful first read prints
 * "file PATH: read N bytes in US us (MBPS MB/s)". */
const void *filecache_get(const char *path, uint64_t *size);

/* Forget every entry (the bytes stay allocated: callers may still hold
 * them). For in-kernel tests only. */
void filecache_reset(void);

#endif
