/*
 * module.h — the module loader: parse and validate a .mod file (modparse.c,
 * a pure function over a byte buffer, also built for the host and fuzzed),
 * place it into a JIT pool and relocate it (loader.c), run and measure it
 * (module_execute), and keep one record per module for the profiler.
 *
 * The module file format and the services ABI live in
 * modules/include/fluid_module.h.
 */
#ifndef FLUID_MODULE_LOADER_H
#define FLUID_MODULE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "../../modules/include/fluid_module.h"

/* ---- Parsing (pure: no kernel dependencies) ----------------------------- */

#define MODPARSE_ERR_MAX 96u

/* A validated module file: every offset and size below has been checked
 * against the buffer it came from. */
struct modparse_info {
	char name[FLUID_MOD_NAME_MAX];
	uint32_t variant;
	uint32_t flags;
	uint8_t hash[FLUID_MOD_HASH_SIZE];
	const uint8_t *image;   /* code + data bytes inside the buffer */
	uint32_t code_size, data_size, bss_size;
	uint32_t align;
	uint32_t entry_offset;
	const uint8_t *relocs;  /* reloc_count * struct fluid_mod_reloc, unaligned */
	uint32_t reloc_count;
	uint32_t profile_offset; /* FLUID_MOD_NO_OFFSET when the module has no hook */
};

/* Validate buf[0..len) as a module file. Returns 0 and fills *out, or -1 and
 * writes a one-line reason (no trailing newline) into err[0..errlen). */
int modparse(const uint8_t *buf, size_t len, struct modparse_info *out, char *err, size_t errlen);

/* "baseline", "O3", "PGO", "instrumented" or "unknown". */
const char *module_variant_name(uint32_t variant);

/* Name of an i386 relocation type ("R_386_PC32", ...) or "unknown". */
const char *module_reloc_name(uint32_t type);

/* ---- Loading and running (kernel) ---------------------------------------- */
#ifndef FLUID_MODPARSE_HOST

struct jit_pool;

#define MODULE_MAX_RECORDS 32u
#define MODULE_FILE_MAX    64u
/* module_execute calls the entry this many times (once with LIGHT=1); every
 * call redoes the whole workload, so profile counts are per-run x calls. */
#define MODULE_RUNS        3u
#define MODULE_RUNS_LIGHT  1u

enum module_result {
	MODULE_PENDING = 0, /* loaded, not run yet                */
	MODULE_OK,          /* ran, returned FLUID_OK, all checks passed */
	MODULE_FAIL,        /* ran, returned nonzero or a check failed   */
	MODULE_REFUSED,     /* failed validation or placement; never ran */
};

/* One per module file seen, in load order; read by kernel/prof. */
struct module_record {
	char file[MODULE_FILE_MAX];      /* path on the FAT32 partition        */
	char name[FLUID_MOD_NAME_MAX];   /* from the header ("" when refused early) */
	uint32_t variant;                /* FLUID_VARIANT_*                      */
	char hash[2 * FLUID_MOD_HASH_SIZE + 1]; /* hex content hash             */
	enum module_result result;
	char reason[MODPARSE_ERR_MAX];   /* why refused / failed                 */
	uint32_t calls;                  /* entry invocations                    */
	uint64_t cycles_total, cycles_min, cycles_max; /* rdtsc per call        */
	uint32_t checks_ok, checks_failed;
	int32_t last_status;             /* last value the entry returned        */
	uintptr_t base;                  /* load address in the JIT pool         */
	uint32_t size;                   /* code + data + bss bytes              */
	fluid_profile_fn profile;        /* fluid_profile_dump, NULL if none     */
};

/* A module placed in memory and ready to run. */
struct module {
	struct module_record *rec;
	fluid_entry_fn entry;
	void *mem;                       /* JIT pool block                       */
	uint32_t runs;                   /* calls module_execute makes           */
	uint32_t light;                  /* passed to the module as svc->light   */
};

/* Start a new record for file (refused or not). NULL when the table is full. */
struct module_record *module_record_new(const char *file);

/* Validate buf as a module, place it in pool, zero its bss and apply its
 * relocations; out->runs/light default to MODULE_RUNS and 0. 0 on success; -1 on refusal, with rec->result =
 * MODULE_REFUSED and rec->reason set (nothing was executed). */
int module_load(struct module_record *rec, const uint8_t *buf, size_t len,
		struct jit_pool *pool, struct module *out);

/* Run m's entry m->runs times with the kernel services, measuring each call
 * with rdtsc. Returns 0 when every call returned FLUID_OK and every check
 * passed, else -1 (rec->result says which). */
int module_execute(struct module *m);

/* All records so far (n receives the count). */
const struct module_record *module_records(size_t *n);

/* Forget all records (tests). */
void module_records_reset(void);

#endif /* !FLUID_MODPARSE_HOST */
#endif
