/*
 * loader.c — place a validated module into a JIT pool, relocate it, run it
 * with the kernel services and measure every call (see module.h).
 * Nothing here executes module code that modparse() has not accepted.
 *
 * Ownership:
 *   - records[] is the kernel's, static, one per module file seen, in load
 *     order; a record pointer stays valid until module_records_reset (tests
 *     only). kernel/prof reads the table after the runs.
 *   - a loaded module's memory is one jit_alloc block of whole pages, freed
 *     only when the guard stopped the module (crashed or timed out; its
 *     profile hook is then forgotten) or by module_unload: the record's
 *     base and profile hook point into it, and the profiler calls that hook
 *     after all modules ran. A refused module allocates nothing (a block
 *     taken before the refusal is given back).
 *   - W^X: the block comes from the pool read-write and not executable; the
 *     loader writes the image and its relocations, then makes the code
 *     pages read-only and executable (vm_protect); data and bss stay
 *     read-write, never executable. Before the block goes back to the pool
 *     every page is made read-write again (module_release_block).
 *   - the file buffer (buf) stays the caller's: module_load copies the image
 *     out of it and keeps no pointer into it.
 *
 * Life of a record: MODULE_REFUSED (never ran, reason says why) or
 * MODULE_PENDING after module_load; module_execute turns PENDING into
 * MODULE_OK or MODULE_FAIL exactly once, and refuses to run any record
 * that is not PENDING, so a refused or already-run module is never entered.
 * After the runs, module_profile_call may turn OK or FAIL into CRASHED or
 * TIMEOUT once (the profile hook was stopped; it is then forgotten).
 */
#include "module.h"
#include "console.h"
#include "filecache.h"
#include "fmt.h"
#include "heap.h"
#include "idt.h"
#include "jit_allocator.h"
#include "string.h"
#include "timer.h"
#include "vm.h"

/* The unit of vm_protect, FLUID_MOD_PAGE_SIZE of the module format. */
#define MODULE_PAGE PAGE_SIZE

/* records[0..nrecords) are in use; nrecords <= MODULE_MAX_RECORDS. */
static struct module_record records[MODULE_MAX_RECORDS];
static size_t nrecords;
/* The record of the module currently running, for the check() service:
 * set by module_execute around the entry calls, NULL otherwise (a check()
 * from outside a run only prints). Single CPU, no interrupts run modules,
 * so one global suffices. */
static struct module_record *running;

/* A zeroed record for file (cut to MODULE_FILE_MAX - 1 bytes, always
 * NUL-terminated). NULL when the table is full: the caller must skip the
 * file, there is nowhere to report it but the console. */
struct module_record *module_record_new(const char *file)
{
	if (nrecords >= MODULE_MAX_RECORDS)
		return NULL;
	struct module_record *r = &records[nrecords++];
	memset(r, 0, sizeof(*r));
	strncpy(r->file, file, sizeof(r->file) - 1);
	return r;
}

const struct module_record *module_records(size_t *n)
{
	*n = nrecords;
	return records;
}

void module_records_reset(void)
{
	nrecords = 0;
	running = NULL;
}

/* 1 if file is "<name>.mod" (the suffix in any case), or has no .mod suffix. */
static int name_matches_file(const char *name, const char *file)
{
	size_t n = strlen(name), f = strlen(file);
	if (f < 4 || strncmp(file + f - 4, ".mod", 4) != 0) {
		if (f < 4 || strncmp(file + f - 4, ".MOD", 4) != 0)
			return 1;
	}
	if (f - 4 != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = file[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != name[i])
			return 0;
	}
	return 1;
}

/* Marks rec refused with why (cut to fit, NUL-terminated); returns -1 so
 * callers can "return refuse(...)". */
static int refuse(struct module_record *rec, const char *why)
{
	rec->result = MODULE_REFUSED;
	strncpy(rec->reason, why, sizeof(rec->reason) - 1);
	rec->reason[sizeof(rec->reason) - 1] = '\0';
	return -1;
}

/* n rounded up to whole MODULE_PAGEs (n <= 4 MiB: no overflow). */
static uint32_t module_round_page(uint32_t n)
{
	return (n + MODULE_PAGE - 1u) & ~(MODULE_PAGE - 1u);
}

/*
 * Give a module's block back to its pool: every page RW+NX again first
 * (the pool's next user writes it), then jit_free. pages is the block's
 * whole-page size, as module_load allocated it. A block whose permissions
 * cannot be restored is not freed (it would hand out read-only memory):
 * it stays allocated and the console says so.
 */
static void module_release_block(struct jit_pool *pool, void *mem, uint32_t pages)
{
	if (vm_protect(mem, pages, VM_R | VM_W) != 0) {
		kprintf("module loader: cannot make %p (%u bytes) writable again; leaving it allocated\n", mem,
			pages);
		return;
	}
	jit_free(pool, mem);
}

/*
 * module_load: validate, place, relocate (module.h has the contract).
 *
 * On entry: rec from module_record_new, buf[0..len) the whole file; out is
 * always reset first, so a refused load leaves out->entry NULL and
 * module_execute will not run it.
 *
 * Everything about the file that could be wrong is checked by modparse
 * (its comment lists the guarantees); this function relies on them and
 * checks nothing twice: code + data + bss <= 4 MiB (no overflow in total),
 * entry and profile offsets < code_size, every relocation target + 8 <=
 * code + data, only two relocation types, and code_size a multiple of
 * MODULE_PAGE whenever data or bss follow.
 *
 * Placement: the image is linked at address 0 (modules/module.ld) and the
 * packer wrote every addend into its word, so both allowed types,
 * R_X86_64_64 (S + A) and R_X86_64_RELATIVE (B + A), become "add the load
 * address to the 64-bit word in place". The block is whole pages, page
 * aligned (info.align <= MODULE_PAGE), so no other block shares a page
 * with it; the bss is zeroed here, not by the pool.
 *
 * W^X invariant: module code is never writable and executable at once.
 * The block is RW+NX while the image is copied and relocated; then the
 * code pages [mem, mem + round_up(code_size)) become R+X and the rest stays
 * RW+NX (modparse guarantees no data shares a code page). Only after that
 * are the entry and the profile hook turned into function pointers; when
 * vm_protect refuses, the module is refused and its block given back.
 */
int module_load(struct module_record *rec, const uint8_t *buf, size_t len,
		struct jit_pool *pool, struct module *out)
{
	struct modparse_info info;
	char err[MODPARSE_ERR_MAX];
	memset(out, 0, sizeof(*out));
	out->rec = rec;
	if (modparse(buf, len, &info, err, sizeof(err)) != 0)
		return refuse(rec, err);
	if (!name_matches_file(info.name, rec->file)) {
		ksnprintf(err, sizeof(err), "the header names module \"%s\": rename the file to %s.mod", info.name,
			  info.name);
		return refuse(rec, err);
	}
	memcpy(rec->name, info.name, sizeof(rec->name));
	rec->variant = info.variant;
	for (uint32_t i = 0; i < FLUID_MOD_HASH_SIZE; i++)
		ksnprintf(rec->hash + 2 * i, 3, "%02x", info.hash[i]);

	uint32_t filed = info.code_size + info.data_size; /* modparse bounded both */
	uint32_t total = filed + info.bss_size;
	uint32_t pages = module_round_page(total);
	uint8_t *mem = jit_alloc(pool, pages, MODULE_PAGE);
	if (!mem) {
		ksnprintf(err, sizeof(err), "no room in the JIT pool for %u bytes: %s", pages,
			  jit_last_error(pool));
		return refuse(rec, err);
	}
	memcpy(mem, info.image, filed);
	memset(mem + filed, 0, pages - filed); /* bss, and the last page's tail */
	module_relocate(mem, (uint64_t)(uintptr_t)mem, &info); /* modparse checked every entry */
	uint32_t code_pages = module_round_page(info.code_size);
	if (vm_protect(mem, code_pages, VM_R | VM_X) != 0) {
		module_release_block(pool, mem, pages);
		ksnprintf(err, sizeof(err), "cannot map its code read-only and executable (vm_protect %p, %u bytes)",
			  (void *)mem, code_pages);
		return refuse(rec, err);
	}
	rec->base = (uintptr_t)mem;
	rec->size = total;
	if (info.flags & FLUID_MOD_F_PROFILE)
		rec->profile = (fluid_profile_fn)(uintptr_t)(mem + info.profile_offset);
	rec->result = MODULE_PENDING;
	out->entry = (fluid_entry_fn)(uintptr_t)(mem + info.entry_offset);
	out->mem = mem;
	out->runs = MODULE_RUNS;
	out->deadline_ms = info.deadline_ms ? info.deadline_ms : MODULE_DEADLINE_MS;
	out->pool = pool;
	return 0;
}

/* ---- Services ------------------------------------------------------------ */

/*
 * The running module's heap blocks: svc_alloc puts a link in front of each
 * (32 bytes: a multiple of HEAP_ALIGN, so the
 * module's pointer keeps kmalloc's alignment), svc_free
 * takes it out, so a module that is stopped half-way has its blocks freed.
 * Invariant: every block on the list came from svc_alloc during the current
 * module_execute, carries SVC_BLOCK_MAGIC and was not passed to svc_free;
 * the list is emptied at the start of every module_execute and freed at
 * its end, whether the module returned or was stopped (a module that kept
 * the heap would otherwise starve every module after it, which would then
 * be refused in its place). A pointer without the magic is never
 * unlinked: kfree gets it as it is and names what is wrong with it.
 */
#define SVC_BLOCK_MAGIC 0x4B4C4253u /* "SBLK" */
struct svc_block {
	struct svc_block *prev, *next;
	uint32_t magic;
} __attribute__((aligned(HEAP_ALIGN)));
_Static_assert(sizeof(struct svc_block) % HEAP_ALIGN == 0, "svc_block keeps kmalloc's alignment");
static struct svc_block *svc_blocks;

static void svc_free_all(void)
{
	while (svc_blocks) {
		struct svc_block *b = svc_blocks;
		svc_blocks = b->next;
		b->magic = 0;
		kfree(b);
	}
}

static void svc_print(const char *s)
{
	module_guard_service(__builtin_return_address(0));
	kprintf("%s", s);
}

static void svc_printf(const char *fmt, ...)
{
	module_guard_service(__builtin_return_address(0));
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

static void *svc_alloc(size_t size)
{
	module_guard_service(__builtin_return_address(0));
	if (size > (size_t)-1 - sizeof(struct svc_block))
		return NULL;
	struct svc_block *b = kmalloc(size + sizeof(*b));
	if (!b)
		return NULL;
	b->magic = SVC_BLOCK_MAGIC;
	b->prev = NULL;
	b->next = svc_blocks;
	if (svc_blocks)
		svc_blocks->prev = b;
	svc_blocks = b;
	return b + 1;
}

static void svc_free(void *p)
{
	module_guard_service(__builtin_return_address(0));
	if (!p)
		return;
	struct svc_block *b = (struct svc_block *)p - 1;
	if (b->magic != SVC_BLOCK_MAGIC) {
		kfree(p); /* not from svc_alloc, or freed twice: kfree panics naming it */
		return;
	}
	b->magic = 0;
	if (b->prev)
		b->prev->next = b->next;
	else if (svc_blocks == b)
		svc_blocks = b->next;
	if (b->next)
		b->next->prev = b->prev;
	kfree(b);
}

static uint64_t svc_rdtsc(void)
{
	module_guard_service(__builtin_return_address(0));
	return rdtsc();
}

/* TSC cycles the running module's current entry call spent in kernel
 * work done on its behalf that is not its own (read_file's disk reads):
 * module_execute zeroes it before each call and takes it off the call's
 * cycles, so cycles_* measure the module, and a file read (whose length
 * under -icount depends on when the host's disk I/O completes) does not
 * move them. */
static uint64_t svc_kernel_cycles;

static uint64_t svc_ms(void)
{
	module_guard_service(__builtin_return_address(0));
	return timer_ticks() * 1000u / TIMER_HZ;
}

/* The read_file service: kernel/fs/filecache.c's per-boot cache. Its
 * buffers are the kernel's (kmalloc or RAM above 4 GiB, never on
 * svc_blocks), so they outlive the module's heap release in
 * module_execute, and every later request, from this module or another,
 * gets the same pointer. The time spent reading is not charged to the
 * module: not to its deadline (module_guard_pause), not to its cycles
 * (svc_kernel_cycles). *size is 0 on failure. */
static const void *svc_read_file(const char *path, uint64_t *size)
{
	module_guard_service(__builtin_return_address(0));
	module_guard_pause();
	uint64_t t0 = rdtsc();
	const void *p = filecache_get(path, size);
	svc_kernel_cycles += rdtsc() - t0;
	module_guard_resume();
	if (!p && size)
		*size = 0;
	return p;
}

/* The check() service: counts the result in the running module's record
 * and keeps the first failure as its reason (later ones only print). */
static int svc_check(const char *name, uint64_t got, uint64_t expected)
{
	module_guard_service(__builtin_return_address(0));
	struct module_record *r = running;
	if (got == expected) {
		if (r)
			r->checks_ok++;
		return 1;
	}
	if (r) {
		r->checks_failed++;
		if (!r->reason[0])
			ksnprintf(r->reason, sizeof(r->reason), "check %s failed", name);
	}
	console_line_start();
	kprintf("check %s: %s FAIL got=%llu (0x%llx) want=%llu (0x%llx)\n", r ? r->name : "?", name,
		(unsigned long long)got, (unsigned long long)got, (unsigned long long)expected,
		(unsigned long long)expected);
	return 0;
}

const char *module_result_word(enum module_result r)
{
	switch (r) {
	case MODULE_PENDING: return "pending";
	case MODULE_OK: return "ok";
	case MODULE_FAIL: return "FAIL";
	case MODULE_REFUSED: return "refused";
	case MODULE_CRASHED: return "CRASHED";
	case MODULE_TIMEOUT: return "TIMEOUT";
	}
	return "unknown";
}

/* "NAME+0xOFF" for an address in r's image, else "0xADDR". */
static void where(char *buf, size_t n, const struct module_record *r, uintptr_t a)
{
	if (a >= r->base && a - r->base < r->size)
		ksnprintf(buf, n, "%s+0x%x", r->name, (unsigned)(a - r->base));
	else
		ksnprintf(buf, n, "0x%lx", (unsigned long)a);
}

/* The lines for a stopped module (docs/CONTRACTS.md), and its reason. */
static void report_stop(struct module_record *r)
{
	const struct module_stop *s = &r->stop;
	char at[FLUID_MOD_NAME_MAX + 16];
	where(at, sizeof at, r, s->rip);
	if (s->why == MODULE_TIMEOUT) {
		kprintf("module %s: timed out after %u ms (at %s)\n", r->name, s->ms, at);
		ksnprintf(r->reason, sizeof(r->reason), "timed out after %u ms at %s", s->ms, at);
		return;
	}
	kprintf("module %s: crashed: exception %u (%s %s) err=0x%x at %s\n", r->name, s->vector,
		module_exception_mnemonic(s->vector), exception_name(s->vector), s->err, at);
	ksnprintf(r->reason, sizeof(r->reason), "crashed: exception %u (%s %s) at %s", s->vector,
		  module_exception_mnemonic(s->vector), exception_name(s->vector), at);
	/* #PF error code: bit 0 present (else not present), bit 1 write, bit 4
	 * instruction fetch (NX: a jump into the module's data). */
	if (s->vector == EXC_PAGE_FAULT)
		kprintf("module %s: page fault at 0x%lx: %s, %s access\n", r->name, (unsigned long)s->cr2,
			(s->err & 1u) ? "protection violation" : "page not present",
			(s->err & 0x10u) ? "instruction fetch" : (s->err & 2u) ? "write" : "read");
	/* Innermost first: the faulting RIP, then the RBP chain up to and
	 * including the first return address outside the module. */
	kprintf("module %s: backtrace: %s", r->name, at);
	for (uint32_t i = 0; i < s->nbt && i + 1 < BACKTRACE_MAX; i++) {
		where(at, sizeof at, r, s->bt[i]);
		kprintf(" %s", at);
		if (s->bt[i] < r->base || s->bt[i] - r->base >= r->size)
			break;
	}
	kprintf("\n");
}

/* Invariant: r is one of records[0..nrecords) (module_records hands out
 * only those), so the record may be written through its index. */
int module_profile_call(const struct module_record *cr, uint8_t *buf, uint32_t cap, int32_t *ret, char *why,
			size_t n)
{
	size_t i = (size_t)(cr - records);
	if (i >= nrecords || !records[i].profile) {
		ksnprintf(why, n, "no profile hook to call");
		return -1;
	}
	struct module_record *r = &records[i];
	struct module_stop ran = r->stop; /* empty: the module ran to the end */
	memset(&r->stop, 0, sizeof(r->stop));
	module_guard_arm(r, MODULE_HOOK_DEADLINE_MS);
	int stopped = module_call_hook(r->profile, buf, cap, ret);
	module_guard_disarm();
	module_guard_reset_cpu();
	if (!stopped) {
		r->stop = ran;
		return 0;
	}
	const struct module_stop *s = &r->stop;
	char at[FLUID_MOD_NAME_MAX + 16];
	where(at, sizeof at, r, s->rip);
	if (s->why == MODULE_TIMEOUT)
		ksnprintf(why, n, "profile hook timed out after %u ms at %s", s->ms, at);
	else
		ksnprintf(why, n, "profile hook crashed: exception %u (%s %s) at %s", s->vector,
			  module_exception_mnemonic(s->vector), exception_name(s->vector), at);
	kprintf("module %s: %s\n", r->name, why);
	r->result = (enum module_result)s->why; /* the module did not run clean */
	r->profile = NULL;
	return -1;
}

/*
 * module_execute: call the entry m->runs times (module.h has the contract).
 * Runs only a PENDING record with an entry (see the life of a record
 * above). Timing is rdtsc around each call only, so cycles_* exclude the
 * loader; cycles_min/max are over all calls, the first call included
 * (cold caches), less the cycles read_file spent reading files for it
 * (svc_kernel_cycles). The module runs in ring 0, on the caller's stack, with the
 * kernel's services: it is validated for shape, not sandboxed, but the
 * guard (guard.c) stops it at a CPU exception in its own code or when it
 * overruns m->deadline_ms x m->runs. A stopped module's call is not counted
 * (calls and cycles_* cover the calls that returned), its pool block is
 * freed and its profile hook forgotten: it gets no profile. Every module's
 * heap blocks are freed when module_execute returns, stopped or not.
 * reason keeps the first failure (a nonzero status, a failed check, or the
 * stop).
 */
int module_execute(struct module *m)
{
	struct module_record *r = m->rec;
	struct fluid_services svc = {
		.version = FLUID_SERVICES_VERSION,
		.light = m->light,
		.print = svc_print,
		.printf = svc_printf,
		.alloc = svc_alloc,
		.free = svc_free,
		.rdtsc = svc_rdtsc,
		.check = svc_check,
		.ms = svc_ms,
		.read_file = svc_read_file,
	};
	if (r->result != MODULE_PENDING || !m->entry)
		return -1; /* refused or already run: never execute */
	running = r;
	svc_blocks = NULL;
	memset(&r->stop, 0, sizeof(r->stop));
	r->deadline_ms = m->deadline_ms * (m->runs ? m->runs : 1u);
	int ok = 1, stopped = 0;
	module_guard_arm(r, r->deadline_ms);
	for (uint32_t i = 0; i < m->runs; i++) {
		int32_t st = 0;
		svc_kernel_cycles = 0;
		uint64_t t0 = rdtsc();
		stopped = module_call(m->entry, &svc, &st);
		uint64_t dt = rdtsc() - t0;
		dt -= svc_kernel_cycles < dt ? svc_kernel_cycles : dt;
		if (stopped)
			break;
		r->calls++;
		r->cycles_total += dt;
		if (r->calls == 1 || dt < r->cycles_min)
			r->cycles_min = dt;
		if (dt > r->cycles_max)
			r->cycles_max = dt;
		r->last_status = st;
		if (st != FLUID_OK) {
			ok = 0;
			if (!r->reason[0])
				ksnprintf(r->reason, sizeof(r->reason), "entry returned %d", (int)st);
		}
	}
	module_guard_disarm();
	running = NULL;
	console_line_start(); /* its last print may not have ended its line */
	/* Whether it returned or was stopped, the module may have changed
	 * the x87 control word or MXCSR: the next module starts clean. */
	module_guard_reset_cpu();
	if (stopped) {
		svc_free_all();
		r->result = (enum module_result)r->stop.why;
		r->reason[0] = '\0'; /* the stop is the reason, not an earlier check */
		report_stop(r);
		r->profile = NULL;
		if (m->pool && m->mem)
			module_release_block(m->pool, m->mem, module_round_page(r->size));
		m->mem = NULL;
		m->entry = NULL;
		return -1;
	}
	/* The module will not run again (its profile hook uses no heap):
	 * what it kept would starve the modules after it. */
	svc_free_all();
	if (r->checks_failed)
		ok = 0;
	r->result = ok ? MODULE_OK : MODULE_FAIL;
	return ok ? 0 : -1;
}

/*
 * module_unload: give a loaded module's memory back (module.h). Its record
 * stays (the run's report reads it) but forgets base-relative pointers
 * into the block: the profile hook. Safe on a refused or already stopped
 * module (mem is NULL then): nothing happens.
 */
void module_unload(struct module *m)
{
	if (!m->mem || !m->pool)
		return;
	module_release_block(m->pool, m->mem, module_round_page(m->rec->size));
	m->rec->profile = NULL;
	m->mem = NULL;
	m->entry = NULL;
}
