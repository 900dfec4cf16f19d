/*
 * fat32.c — read-only FAT32 (see fat32.h): mount from the BPB, walk
 * directories (8.3 and long names), follow cluster chains, read files.
 *
 * What the disk is trusted for: nothing. Every number read from it is
 * range-checked before it is used as an LBA, an index or a length:
 *   - fat32_mount accepts a BPB only if the geometry is consistent (see its
 *     comment); after that, every valid cluster (2..cluster_count + 1) lies
 *     in the data area and has a FAT entry inside the first FAT;
 *   - a cluster number from a directory entry or the FAT is used only after
 *     valid_cluster(); every chain is followed through struct chain_walk,
 *     which catches a chain that comes back on itself within a few hops
 *     (Brent's cycle detection) and refuses one longer than the most its
 *     owner can need: a directory at most the FAT specification's 65,536
 *     entries (2 MiB), a file the clusters its size needs. So a loop in the
 *     FAT ends in a precise error within milliseconds, never a hang;
 *   - long names are assembled only into name[0..FAT32_NAME_MAX - 2], so
 *     they stay NUL-terminated whatever the sequence numbers say.
 * The disk is never written. Only the first FAT is read; its mirrors are
 * ignored.
 *
 * Memory: struct fat32 is the caller's and holds all state, no globals, no
 * allocation. Its two sector buffers are shared scratch:
 *   - fat_buf holds FAT sector fat_cached (an index within the FAT), or
 *     nothing when fat_cached == UINT32_MAX (also after a failed read);
 *   - dir_buf is used by fat32_mount (the BPB), fat32_list (each directory
 *     sector) and fat32_read (a file's partial last sector). So a
 *     fat32_list callback must not call fat32_list or fat32_read on the
 *     same fs: it would overwrite the sector being listed. Callers collect
 *     entries first and read afterwards (kernel/module/workload.c).
 * One struct fat32 is used by one thread at a time (the kernel has one).
 *
 * Errors: every failure returns -1 after writing a one-line reason to
 * fs->err (ferr), which fat32_error returns until the next failure.
 */
#include "fat32.h"
#include "fmt.h"
#include "string.h"

/* BPB field offsets in the partition's first sector. */
#define BPB_BYTES_PER_SEC   11  /* u16 */
#define BPB_SEC_PER_CLUS    13  /* u8  */
#define BPB_RSVD_SEC_CNT    14  /* u16 */
#define BPB_NUM_FATS        16  /* u8  */
#define BPB_ROOT_ENT_CNT    17  /* u16, 0 on FAT32 */
#define BPB_TOT_SEC16       19  /* u16 */
#define BPB_FAT_SZ16        22  /* u16, 0 on FAT32 */
#define BPB_TOT_SEC32       32  /* u32 */
#define BPB_FAT_SZ32        36  /* u32 */
#define BPB_ROOT_CLUS       44  /* u32 */
#define BPB_SIGNATURE       510 /* 0x55 0xAA */

/* Directory entry layout (32 bytes). */
#define DIR_ENTRY_SIZE      32
#define DIR_NAME            0
#define DIR_ATTR            11
#define DIR_NTRES           12  /* bit 3: base lower case, bit 4: ext lower case */
#define DIR_FST_CLUS_HI     20
#define DIR_FST_CLUS_LO     26
#define DIR_FILE_SIZE       28
#define DIR_FREE            0xE5
#define DIR_MAX_ENTRIES     65536u /* FAT spec: a directory is at most 2 MiB */
#define DIR_END             0x00
#define NTRES_LOWER_BASE    0x08
#define NTRES_LOWER_EXT     0x10
#define LFN_LAST            0x40
#define LFN_SEQ_MASK        0x1F
#define LFN_CHARS           13

#define FAT_ENTRY_MASK      0x0FFFFFFFu
#define FAT_BAD             0x0FFFFFF7u
#define FAT_EOC_MIN         0x0FFFFFF8u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int ferr(struct fat32 *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ferr(struct fat32 *fs, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(fs->err, sizeof(fs->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* The only path to the disk: n sectors at absolute lba into buf, with the
 * read failure turned into fs->err. The sector source checks lba against
 * the device; LBAs here are 32-bit (a FAT32 volume ends below 2 TiB). */
static int rd_sectors(struct fat32 *fs, uint32_t lba, uint32_t n, void *buf)
{
	int rc = fs->read(fs->ctx, lba, n, buf);
	if (rc != 0)
		return ferr(fs, "disk read of %u sector(s) at LBA %u failed (%d)", n, lba, rc);
	return 0;
}

/*
 * fat32_mount: read the BPB at part_lba and derive the geometry.
 * Accepted only when: 55 AA signature, 512-byte sectors, a power-of-two
 * cluster of at most 128 sectors (64 KiB), 1..4 FATs, reserved sectors > 0,
 * FAT32 layout (no fixed root directory, no 16-bit FAT size), a data area
 * left after reserved + FATs, a FAT large enough to map every cluster
 * (clusters + 2 entries of 4 bytes), and a root cluster that is valid.
 * The size sums are done in 64 bits so a hostile BPB cannot wrap them.
 * On success fs holds the geometry (cluster_count = whole clusters in the
 * data area; a partial cluster at the end is not used) and an empty FAT
 * cache; on failure fs->err says why and fs must not be used.
 */
int fat32_mount(struct fat32 *fs, fat32_read_fn read, void *ctx, uint32_t part_lba)
{
	memset(fs, 0, sizeof(*fs));
	fs->read = read;
	fs->ctx = ctx;
	fs->part_lba = part_lba;
	fs->fat_cached = UINT32_MAX;
	uint8_t *b = fs->dir_buf;
	if (rd_sectors(fs, part_lba, 1, b))
		return -1;
	if (b[BPB_SIGNATURE] != 0x55 || b[BPB_SIGNATURE + 1] != 0xAA)
		return ferr(fs, "no boot sector signature (55 AA) at LBA %u: not a FAT filesystem", part_lba);
	uint32_t bps = rd16(b + BPB_BYTES_PER_SEC);
	uint32_t spc = b[BPB_SEC_PER_CLUS];
	uint32_t rsvd = rd16(b + BPB_RSVD_SEC_CNT);
	uint32_t nfats = b[BPB_NUM_FATS];
	uint32_t fatsz = rd32(b + BPB_FAT_SZ32);
	uint32_t total = rd16(b + BPB_TOT_SEC16) ? rd16(b + BPB_TOT_SEC16) : rd32(b + BPB_TOT_SEC32);
	if (bps != FAT32_SECTOR)
		return ferr(fs, "bytes per sector %u, only 512 is supported", bps);
	if (spc == 0 || (spc & (spc - 1)) || spc > 128)
		return ferr(fs, "sectors per cluster %u is not a power of two up to 128", spc);
	if (rsvd == 0 || nfats == 0 || nfats > 4)
		return ferr(fs, "bad BPB: %u reserved sectors, %u FATs", rsvd, nfats);
	if (rd16(b + BPB_ROOT_ENT_CNT) != 0 || rd16(b + BPB_FAT_SZ16) != 0 || fatsz == 0)
		return ferr(fs, "not FAT32 (FAT12/16 layout: root entries %u, 16-bit FAT size %u)",
			    rd16(b + BPB_ROOT_ENT_CNT), rd16(b + BPB_FAT_SZ16));
	uint64_t meta = (uint64_t)rsvd + (uint64_t)nfats * fatsz;
	if (total <= meta)
		return ferr(fs, "bad BPB: %u total sectors leave no data area", total);
	uint32_t clusters = (uint32_t)((total - meta) / spc);
	if ((uint64_t)clusters + 2 > (uint64_t)fatsz * (FAT32_SECTOR / 4))
		return ferr(fs, "bad BPB: FAT of %u sectors cannot map %u clusters", fatsz, clusters);
	fs->sectors_per_cluster = spc;
	fs->fat_lba = part_lba + rsvd;
	fs->fat_sectors = fatsz;
	fs->data_lba = (uint32_t)(part_lba + meta);
	fs->cluster_count = clusters;
	fs->root_cluster = rd32(b + BPB_ROOT_CLUS);
	if (fs->root_cluster < 2 || fs->root_cluster > clusters + 1)
		return ferr(fs, "root cluster %u out of range", fs->root_cluster);
	return 0;
}

const char *fat32_error(const struct fat32 *fs)
{
	return fs->err[0] ? fs->err : "no error";
}

void fat32_root(const struct fat32 *fs, struct fat32_dirent *out)
{
	memset(out, 0, sizeof(*out));
	out->name[0] = '/';
	out->attr = FAT32_ATTR_DIR;
	out->cluster = fs->root_cluster;
}

static int valid_cluster(const struct fat32 *fs, uint32_t c)
{
	return c >= 2 && c <= fs->cluster_count + 1;
}

/* Next cluster in the chain: 0 = end of chain, -1 = error. c must be a
 * valid cluster (callers check it): then its entry is inside the FAT, as
 * mount checked that the FAT maps every valid cluster; the sec check below
 * is the belt to those braces. The entry is masked to 28 bits (the top 4
 * are reserved); any value >= FAT_EOC_MIN ends the chain, FAT_BAD and
 * values outside 2..cluster_count + 1 (0, a free cluster, included) are
 * errors. On success *next is 0 or a valid cluster. */
static int next_cluster(struct fat32 *fs, uint32_t c, uint32_t *next)
{
	uint32_t sec = c / (FAT32_SECTOR / 4);
	if (sec >= fs->fat_sectors)
		return ferr(fs, "cluster %u beyond the FAT", c);
	if (fs->fat_cached != sec) {
		if (rd_sectors(fs, fs->fat_lba + sec, 1, fs->fat_buf)) {
			fs->fat_cached = UINT32_MAX;
			return -1;
		}
		fs->fat_cached = sec;
	}
	uint32_t v = rd32(fs->fat_buf + (c % (FAT32_SECTOR / 4)) * 4) & FAT_ENTRY_MASK;
	if (v >= FAT_EOC_MIN) {
		*next = 0;
		return 0;
	}
	if (v == FAT_BAD)
		return ferr(fs, "cluster chain runs into a bad cluster after %u", c);
	if (!valid_cluster(fs, v))
		return ferr(fs, "cluster chain after %u points to invalid cluster %u", c, v);
	*next = v;
	return 0;
}

/*
 * A cluster chain walk that cannot run away, for directories and files.
 * chain_next follows one FAT entry (next_cluster's checks) and then
 *   - refuses the chain if it came back to mark, a cluster met earlier on
 *     it: mark moves to the current cluster after 1, 2, 4, 8, ... further
 *     hops (Brent's cycle detection), so a chain of mu clusters before a
 *     loop of lambda clusters is caught within mu + 2 * lambda hops, in
 *     constant memory and whatever the size of the volume;
 *   - refuses the chain once it is longer than limit clusters.
 * Invariant: after chain_start or a chain_next that returned 0, w->c is a
 * valid cluster or 0 (end of chain), and w->n <= w->limit clusters of the
 * chain have been visited, each reachable without a loop so far.
 */
struct chain_walk {
	const char *kind;   /* "directory" or "file", for messages */
	const char *name;
	uint32_t c;         /* current cluster, 0 = end of chain          */
	uint32_t n;         /* clusters visited, c included               */
	uint32_t limit;     /* most clusters the chain may have           */
	uint32_t mark;      /* Brent: the cluster the chain is compared to */
	uint32_t power;     /* Brent: hops until mark moves on            */
	uint32_t lam;       /* Brent: hops since mark moved               */
};

static int chain_start(struct fat32 *fs, struct chain_walk *w, const char *kind, const char *name,
		       uint32_t first, uint32_t limit)
{
	w->kind = kind;
	w->name = name;
	w->c = first;
	w->n = 1;
	w->limit = limit;
	w->mark = first;
	w->power = 1;
	w->lam = 0;
	if (!valid_cluster(fs, first))
		return ferr(fs, "%s %s: first cluster %u is outside the data area (2..%u)", kind, name, first,
			    fs->cluster_count + 1);
	return 0;
}

static int chain_next(struct fat32 *fs, struct chain_walk *w)
{
	uint32_t prev = w->c;
	if (next_cluster(fs, prev, &w->c))
		return -1;
	if (w->c == 0)
		return 0;
	if (w->c == w->mark)
		return ferr(fs, "%s %s: cluster chain loops: cluster %u leads back to cluster %u after %u cluster(s)",
			    w->kind, w->name, prev, w->c, w->n);
	if (++w->n > w->limit)
		return ferr(fs, "%s %s: cluster chain longer than %u clusters of %u bytes%s", w->kind, w->name,
			    w->limit, fs->sectors_per_cluster * FAT32_SECTOR,
			    w->kind[0] == 'd' ? " (a FAT directory holds at most 65536 entries, 2 MiB)" : "");
	if (++w->lam == w->power) {
		w->mark = w->c;
		w->power *= 2;
		w->lam = 0;
	}
	return 0;
}

/* The most clusters a directory may span: DIR_MAX_ENTRIES entries of 32
 * bytes (2 MiB), at least one cluster. */
static uint32_t dir_max_clusters(const struct fat32 *fs)
{
	uint32_t n = DIR_MAX_ENTRIES * DIR_ENTRY_SIZE / (fs->sectors_per_cluster * FAT32_SECTOR);
	return n ? n : 1;
}

/* First sector of valid cluster c; the cluster's sectors_per_cluster
 * sectors all lie inside the partition (mount's cluster_count). */
static uint32_t cluster_lba(const struct fat32 *fs, uint32_t c)
{
	return fs->data_lba + (c - 2) * fs->sectors_per_cluster;
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* 1 if NUL-terminated a equals b[0..blen) ignoring ASCII case (the FAT
 * rule for lookups; names are ASCII here, see lfn_entry). */
static int name_eq(const char *a, const char *b, size_t blen)
{
	size_t i = 0;
	for (; i < blen; i++)
		if (!a[i] || lower(a[i]) != lower(b[i]))
			return 0;
	return a[i] == '\0';
}

/* The checksum every LFN entry carries of the 8.3 name it belongs to
 * (rotate right, add): ties a long name to its short entry, so a stale
 * long name left before another file's entry is not attached to it. */
static uint8_t lfn_checksum(const uint8_t *short_name)
{
	uint8_t sum = 0;
	for (int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + short_name[i]);
	return sum;
}

/* The 8.3 name of entry e as "NAME.EXT" (no dot without an extension),
 * space padding dropped, lower-cased where the NT flags say so (the
 * Windows NT convention for all-lower-case 8.3 names), and a leading
 * 0x05 turned back into 0xE5. At most 12 characters + NUL, so out needs 13
 * bytes (struct fat32_dirent's name has FAT32_NAME_MAX). */
static void short_name(const uint8_t *e, char *out)
{
	int n = 0;
	uint8_t nt = e[DIR_NTRES];
	for (int i = 0; i < 8 && e[i] != ' '; i++) {
		char c = (char)(i == 0 && e[0] == 0x05 ? 0xE5 : e[i]);
		out[n++] = (nt & NTRES_LOWER_BASE) ? lower(c) : c;
	}
	if (e[8] != ' ') {
		out[n++] = '.';
		for (int i = 8; i < 11 && e[i] != ' '; i++)
			out[n++] = (nt & NTRES_LOWER_EXT) ? lower((char)e[i]) : (char)e[i];
	}
	out[n] = '\0';
}

/* Long-name assembly state across directory entries.
 * LFN entries precede their short entry in descending sequence order: the
 * first one has LFN_LAST set and the highest number, the last one number 1.
 * expect is the number the next LFN entry must carry, so expect == 0 after
 * entry 1 means "a name is ready" (it is also 0 after a broken sequence,
 * which clears name, and after a deleted entry, which does not: the
 * checksum test still ties a name to its short entry). name[] is zeroed when a sequence starts, and each
 * entry writes its 13 characters at (seq - 1) * 13, so the name is
 * NUL-terminated at its first unwritten byte; characters past
 * FAT32_NAME_MAX - 2 set too_long, and the entry then gets its 8.3 name. */
struct lfn_state {
	char name[FAT32_NAME_MAX];
	uint8_t checksum;
	uint8_t expect;   /* next sequence number expected (counting down), 0 = none */
	uint8_t too_long;
};

/* Feed one LFN entry. Characters are UCS-2: ASCII is kept, anything
 * else becomes '?', 0x0000 ends the name and 0xFFFF is padding. An entry
 * out of sequence or with another checksum drops the partial name. */
static void lfn_entry(struct lfn_state *l, const uint8_t *e)
{
	static const uint8_t pos[LFN_CHARS] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	uint8_t seq = e[0] & LFN_SEQ_MASK;
	if (e[0] & LFN_LAST) {
		memset(l, 0, sizeof(*l));
		l->checksum = e[13];
		l->expect = seq;
	}
	if (seq == 0 || seq != l->expect || e[13] != l->checksum) {
		l->expect = 0; /* broken sequence: fall back to the short name */
		l->name[0] = '\0';
		return;
	}
	for (int i = 0; i < LFN_CHARS; i++) {
		uint16_t ch = rd16(e + pos[i]);
		uint32_t at = (uint32_t)(seq - 1) * LFN_CHARS + (uint32_t)i;
		if (ch == 0x0000 || ch == 0xFFFF)
			break;
		if (at >= FAT32_NAME_MAX - 1) {
			l->too_long = 1;
			break;
		}
		l->name[at] = ch < 0x80 ? (char)ch : '?';
	}
	l->expect = (uint8_t)(seq - 1);
}

/*
 * fat32_list: every entry of dir, in on-disk order, through cb (fat32.h).
 * Walks dir's cluster chain sector by sector through fs->dir_buf (see the
 * top of the file: cb must not use fs). Stops at the first DIR_END entry,
 * at the end of the chain, or when cb returns nonzero (still 0). Skipped:
 * deleted entries, LFN entries (assembled into the next short entry's
 * name), volume labels, "." and "..". The dirent passed to cb is a copy
 * on this stack frame: cb copies what it keeps. Its cluster is as on disk,
 * not yet validated: fat32_read and a nested fat32_list check it.
 * The whole chain is checked first (FAT reads only: no loop, at most
 * dir_max_clusters), so a damaged directory is refused before cb sees any
 * entry, and cb never sees an entry twice.
 */
int fat32_list(struct fat32 *fs, const struct fat32_dirent *dir,
	       int (*cb)(void *ctx, const struct fat32_dirent *e), void *ctx)
{
	if (!(dir->attr & FAT32_ATTR_DIR))
		return ferr(fs, "%s is not a directory", dir->name);
	struct chain_walk w;
	if (chain_start(fs, &w, "directory", dir->name, dir->cluster, dir_max_clusters(fs)))
		return -1;
	while (w.c)
		if (chain_next(fs, &w))
			return -1;
	struct lfn_state lfn;
	memset(&lfn, 0, sizeof(lfn));
	chain_start(fs, &w, "directory", dir->name, dir->cluster, dir_max_clusters(fs));
	for (uint32_t c = w.c; c; c = w.c) {
		for (uint32_t s = 0; s < fs->sectors_per_cluster; s++) {
			if (rd_sectors(fs, cluster_lba(fs, c) + s, 1, fs->dir_buf))
				return -1;
			for (uint32_t off = 0; off < FAT32_SECTOR; off += DIR_ENTRY_SIZE) {
				const uint8_t *e = fs->dir_buf + off;
				if (e[DIR_NAME] == DIR_END)
					return 0;
				if (e[DIR_NAME] == DIR_FREE) {
					lfn.expect = 0;
					continue;
				}
				if ((e[DIR_ATTR] & 0x3F) == FAT32_ATTR_LFN) {
					lfn_entry(&lfn, e);
					continue;
				}
				int have_lfn = lfn.expect == 0 && lfn.name[0] && !lfn.too_long &&
					       lfn.checksum == lfn_checksum(e);
				if ((e[DIR_ATTR] & FAT32_ATTR_VOLUME) || e[DIR_NAME] == '.') {
					memset(&lfn, 0, sizeof(lfn));
					continue;
				}
				struct fat32_dirent d;
				memset(&d, 0, sizeof(d));
				if (have_lfn)
					memcpy(d.name, lfn.name, sizeof(d.name));
				else
					short_name(e, d.name);
				memset(&lfn, 0, sizeof(lfn));
				d.attr = e[DIR_ATTR];
				d.cluster = (uint32_t)rd16(e + DIR_FST_CLUS_HI) << 16 | rd16(e + DIR_FST_CLUS_LO);
				d.size = (d.attr & FAT32_ATTR_DIR) ? 0 : rd32(e + DIR_FILE_SIZE);
				if (cb(ctx, &d))
					return 0;
			}
		}
		if (chain_next(fs, &w))
			return -1;
	}
	return 0;
}

struct find_ctx {
	const char *name;
	size_t len;
	struct fat32_dirent *out;
	int found;
};

static int find_cb(void *ctx, const struct fat32_dirent *e)
{
	struct find_ctx *f = ctx;
	if (name_eq(e->name, f->name, f->len)) {
		*f->out = *e;
		f->found = 1;
		return 1;
	}
	return 0;
}

/* fat32_lookup: one fat32_list per path component from the root; empty
 * components ("//", a trailing "/") are skipped, so "/" is the root. No
 * "." or ".." handling: the listing skips those entries, so they are "not
 * found". *out is written only on success (0). */
int fat32_lookup(struct fat32 *fs, const char *path, struct fat32_dirent *out)
{
	struct fat32_dirent cur;
	fat32_root(fs, &cur);
	if (path[0] != '/')
		return ferr(fs, "path %s is not absolute", path);
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = p;
		while (*end && *end != '/')
			end++;
		if (!(cur.attr & FAT32_ATTR_DIR))
			return ferr(fs, "%s: %s is not a directory", path, cur.name);
		struct fat32_dirent next;
		struct find_ctx f = { p, (size_t)(end - p), &next, 0 };
		if (fat32_list(fs, &cur, find_cb, &f))
			return -1;
		if (!f.found)
			return 1;
		cur = next;
		p = end;
	}
	*out = cur;
	return 0;
}

/*
 * fat32_read: the first len bytes of f into buf (len <= f->size, checked).
 * The chain is read in runs: clusters that follow each other on the disk
 * (c, c + 1, c + 2, ...) are one run, read with one call of the sector
 * source, so a file written in one piece costs one disk command per 256
 * sectors instead of one per cluster. Whole sectors are read straight into
 * buf; a partial last sector goes through fs->dir_buf, so exactly len
 * bytes of buf are written, never more. The chain is still walked one FAT
 * entry at a time through chain_walk (no loop, at most ceil(len / cluster
 * bytes) clusters, each valid): a run is only ever clusters the walk has
 * accepted, and a chain that ends early, loops or points outside the data
 * area is an error before any sector of the offending run is read. On
 * error, part of buf may have been written.
 */
int fat32_read(struct fat32 *fs, const struct fat32_dirent *f, void *buf, uint32_t len)
{
	if (f->attr & FAT32_ATTR_DIR)
		return ferr(fs, "%s is a directory", f->name);
	if (len > f->size)
		return ferr(fs, "%s: asked for %u bytes of a %u-byte file", f->name, len, f->size);
	if (len == 0)
		return 0;
	uint8_t *dst = buf;
	uint32_t cluster_bytes = fs->sectors_per_cluster * FAT32_SECTOR;
	struct chain_walk w;
	if (chain_start(fs, &w, "file", f->name, f->cluster, (len - 1) / cluster_bytes + 1))
		return -1;
	uint32_t first = w.c; /* the run being gathered starts here */
	while (len > 0) {
		/* Grow the run while the file needs more and the chain goes on
		 * to the next cluster on the disk; 64-bit: len + one cluster
		 * can pass 4 GiB. */
		uint64_t run = cluster_bytes;
		uint32_t next = 0; /* the first cluster of the next run, 0 = none yet */
		while (run < len) {
			if (chain_next(fs, &w))
				return -1;
			if (w.c == 0)
				return ferr(fs, "%s: cluster chain ends with %u bytes still to read", f->name,
					    (uint32_t)(len - run));
			if (w.c != first + (uint32_t)(run / cluster_bytes)) {
				next = w.c;
				break;
			}
			run += cluster_bytes;
		}
		uint32_t chunk = run < len ? (uint32_t)run : len;
		uint32_t whole = chunk / FAT32_SECTOR;
		if (whole && rd_sectors(fs, cluster_lba(fs, first), whole, dst))
			return -1;
		dst += whole * FAT32_SECTOR;
		uint32_t rest = chunk - whole * FAT32_SECTOR;
		if (rest) {
			if (rd_sectors(fs, cluster_lba(fs, first) + whole, 1, fs->dir_buf))
				return -1;
			memcpy(dst, fs->dir_buf, rest);
			dst += rest;
		}
		len -= chunk;
		first = next;
	}
	return 0;
}
