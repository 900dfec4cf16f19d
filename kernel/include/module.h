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

#define FLUID_NO_SERVICES_RECORD 1 /* the kernel is not a module */
#include "../../modules/include/fluid_module.h"

/* ---- Parsing (pure: no kernel dependencies) ----------------------------- */

#define MODPARSE_ERR_MAX 160u

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
	uint32_t deadline_ms;    /* per entry call, <= FLUID_MOD_MAX_DEADLINE_MS; 0 = default */
	uint32_t services_version; /* always FLUID_SERVICES_VERSION (checked) */
};

/* Validate buf[0..len) as a module file. Returns 0 and fills *out, or -1 and
 * writes a one-line reason (no trailing newline) into err[0..errlen). */
int modparse(const uint8_t *buf, size_t len, struct modparse_info *out, char *err, size_t errlen);

/* Add base to every relocated 64-bit word of mem, the code + data bytes
 * of a module modparse accepted (info), to run at address base. */
void module_relocate(uint8_t *mem, uint64_t base, const struct modparse_info *info);

/* "baseline", "O3", "PGO", "instrumented" or "unknown". */
const char *module_variant_name(uint32_t variant);

/* Name of an x86_64 relocation type ("R_X86_64_PC32", ...) or "unknown". */
const char *module_reloc_name(uint32_t type);

/* ---- Loading and running (kernel) ---------------------------------------- */
#ifndef FLUID_MODPARSE_HOST

#include "backtrace.h"

struct jit_pool;

#define MODULE_MAX_RECORDS 32u
#define MODULE_FILE_MAX    64u
/* module_execute calls the entry this many times (once with LIGHT=1); every
 * call redoes the whole workload, so profile counts are per-run x calls. */
#define MODULE_RUNS        3u
#define MODULE_RUNS_LIGHT  1u
/* Deadline of one entry call when the module header names none (0); a module
 * gets deadline x runs for all its calls together, so with LIGHT=1 (one
 * call of a smaller workload) it gets a third of the full run's time. The
 * normal modules take well under 100 ms a call under TCG. */
#define MODULE_DEADLINE_MS 2000u

enum module_result {
	MODULE_PENDING = 0, /* loaded, not run yet                */
	MODULE_OK,          /* ran, returned FLUID_OK, all checks passed */
	MODULE_FAIL,        /* ran, returned nonzero or a check failed   */
	MODULE_REFUSED,     /* failed validation or placement; never ran */
	MODULE_CRASHED,     /* raised a CPU exception in its own code    */
	MODULE_TIMEOUT,     /* overran its deadline                      */
};

/* Why a module was stopped (MODULE_CRASHED or MODULE_TIMEOUT), filled by
 * the guard (guard.c) at the exception or the tick that stopped it. */
struct module_stop {
	uint32_t why;                    /* MODULE_CRASHED / MODULE_TIMEOUT, 0 = ran to the end */
	uintptr_t rip;                   /* where it stopped (absolute)          */
	uint32_t ms;                     /* time since its first call started    */
	uint32_t vector, err;            /* crashed: the exception and its error code */
	uintptr_t cr2;                   /* crashed with #PF: the faulting address */
	uintptr_t bt[BACKTRACE_MAX];     /* crashed: the frame chain's return addresses */
	uint32_t nbt;
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
	uint32_t deadline_ms;            /* for all calls together               */
	struct module_stop stop;         /* why it was stopped, if it was        */
};

/* A module placed in memory and ready to run. */
struct module {
	struct module_record *rec;
	fluid_entry_fn entry;
	void *mem;                       /* JIT pool block                       */
	uint32_t runs;                   /* calls module_execute makes           */
	uint32_t light;                  /* passed to the module as svc->light   */
	uint32_t deadline_ms;            /* per call; module_load: the header's or MODULE_DEADLINE_MS */
	struct jit_pool *pool;           /* mem's pool, released if the module is stopped */
};

/* Start a new record for file (refused or not). NULL when the table is full. */
struct module_record *module_record_new(const char *file);

/* Validate buf as a module, place it in pool (whole pages), zero its bss,
 * apply its relocations and make its code read-only and executable (W^X);
 * out->runs/light default to MODULE_RUNS and 0. 0 on success; -1 on refusal, with rec->result =
 * MODULE_REFUSED and rec->reason set (nothing was executed). */
int module_load(struct module_record *rec, const uint8_t *buf, size_t len,
		struct jit_pool *pool, struct module *out);

/* Give a loaded module's pool block back (its pages made RW+NX again
 * first); its record stays but loses the profile hook. No-op for a module
 * that holds no block (refused, or stopped by the guard, which released
 * it). Tests use it before reusing a pool. */
void module_unload(struct module *m);

/* Run m's entry m->runs times with the kernel services, measuring each call
 * with rdtsc, under a deadline of m->deadline_ms x m->runs for all calls.
 * Returns 0 when every call returned FLUID_OK and every check passed, else
 * -1 (rec->result says which: FAIL, or CRASHED / TIMEOUT with rec->stop
 * filled, the lines printed and the module's memory released). */
int module_execute(struct module *m);

/* "ok", "FAIL", "CRASHED", "TIMEOUT", "refused" or "pending". */
const char *module_result_word(enum module_result r);

/* ---- The guard (guard.c): deadline and fault containment ---------------- */

/* Watch r's image while it runs: an exception raised there, or a timer tick
 * there after deadline_ms, fills r->stop and makes module_call return 1. */
void module_guard_arm(struct module_record *r, uint32_t deadline_ms);
void module_guard_disarm(void);
/* Every kernel service calls this first (ret = its return address): an
 * overdue module is stopped there. */
void module_guard_service(void *ret);
/* Around a kernel service that does slow I/O for the module (read_file):
 * the ticks between pause and resume are added to the module's deadline,
 * so loading a file is not charged to the module's time. */
void module_guard_pause(void);
void module_guard_resume(void);
/* 1 once the guarded module is past its deadline (a service then stops
 * it); 0 when none is guarded. For the guard's in-kernel tests. */
int module_guard_overdue(void);
/* Put CR0/CR4 back as they were at the last module_guard_arm, the FPU in
 * the state fpu_init left, and disarm the debug registers (after every
 * module). */
void module_guard_reset_cpu(void);
/* "#PF", "#UD", ... for an exception vector. */
const char *module_exception_mnemonic(uint32_t vector);

/* arch/modcall.asm: call entry(svc) so that the guard can take control back;
 * 0 and *status = the entry's value, or 1 when the guard stopped it. */
int module_call(fluid_entry_fn entry, const struct fluid_services *svc, int32_t *status);
/* The same for a profile dump hook: hook(buf, cap). */
int module_call_hook(fluid_profile_fn hook, uint8_t *buf, uint32_t cap, int32_t *status);

/* How long one call of a module's profile dump hook may take. */
#define MODULE_HOOK_DEADLINE_MS 2000u

/* Call the profile hook of r (a record from module_records whose module ran
 * to the end) under the guard, as module_execute runs the entry: 0 and
 * *ret = the hook's value, or -1 when the hook crashed or timed out: why
 * (n bytes) says so with NAME+0xOFF, r->result and r->stop say how it
 * stopped, and the hook is forgotten (r->profile = NULL), so it is never
 * called again. */
int module_profile_call(const struct module_record *r, uint8_t *buf, uint32_t cap, int32_t *ret, char *why,
			size_t n);

/* All records so far (n receives the count). */
const struct module_record *module_records(size_t *n);

/* Forget all records (tests). */
void module_records_reset(void);

#endif /* !FLUID_MODPARSE_HOST */
#endif
