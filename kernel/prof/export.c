/*
 * export.c — profiling_export: after every module ran, send per module a
 * JSON summary frame and, for modules with a profile hook (instrumented
 * builds), a profraw frame with the bytes the hook wrote, then the
 * FRAMES-DONE line. Frame format: profiling.h. Host side: internal/profile.
 */
#include "profiling.h"
#include "fmt.h"
#include "heap.h"
#include "module.h"
#include "serial.h"
#include "string.h"

/*
 * compiler-rt's i386 objects (linked into instrumented modules) are built
 * with -fstack-protector for the Linux ABI: they read the canary at
 * %gs:SSP_CANARY_OFFSET. gdt.c loads GS with a segment whose base points at
 * a block holding a canary (GDT_KERNEL_GS); call_hook checks that the
 * address is mapped before calling into the module, so a GS that was
 * changed is refused with a reason instead of page-faulting.
 */
#define SSP_CANARY_OFFSET  0x14u
#define PAGE_BYTES         4096u
#define PDE_PRESENT        0x001u
#define PDE_LARGE          0x080u
#define PTE_PRESENT        0x001u
#define PT_INDEX_MASK      0x3FFu
#define SEL_TI_LDT         0x4u
#define SEL_INDEX_MASK     0xFFF8u

struct gdtr {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

static void serial_sink_write(void *ctx, const char *s, size_t n)
{
	(void)ctx;
	serial_write(s, n);
}

/* Linear base of the segment in GS, or -1 if it cannot be read. */
static int gs_base(uint32_t *base)
{
	struct gdtr g;
	uint16_t sel;
	__asm__ volatile("sgdt %0" : "=m"(g));
	__asm__ volatile("mov %%gs, %0" : "=r"(sel));
	if ((sel & SEL_TI_LDT) || (uint32_t)(sel & SEL_INDEX_MASK) + 7u > g.limit)
		return -1;
	const uint8_t *d = (const uint8_t *)(uintptr_t)(g.base + (sel & SEL_INDEX_MASK));
	*base = (uint32_t)d[2] | (uint32_t)d[3] << 8 | (uint32_t)d[4] << 16 | (uint32_t)d[7] << 24;
	return 0;
}

static uint32_t *pte_for(uint32_t addr)
{
	uint32_t cr0, cr3;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	if (!(cr0 & 0x80000000u))
		return NULL; /* paging off: every address is reachable */
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	uint32_t *pd = (uint32_t *)(uintptr_t)(cr3 & ~(PAGE_BYTES - 1));
	uint32_t pde = pd[addr >> 22];
	if (!(pde & PDE_PRESENT) || (pde & PDE_LARGE))
		return NULL;
	uint32_t *pt = (uint32_t *)(uintptr_t)(pde & ~(PAGE_BYTES - 1));
	return &pt[(addr >> 12) & PT_INDEX_MASK];
}

/* Calls r's hook(buf, cap) under the module guard, with the
 * stack-protector canary address readable. Returns the hook's value, or
 * INT32_MIN when the canary address cannot be made readable or the hook
 * crashed or timed out (reason in *why). */
static int32_t call_hook(const struct module_record *r, uint8_t *buf, uint32_t cap, const char **why)
{
	static char stopped[MODPARSE_ERR_MAX];
	uint32_t base;
	if (gs_base(&base) != 0) {
		*why = "GS does not hold a readable GDT selector (compiler-rt reads its canary at %gs:0x14)";
		return INT32_MIN;
	}
	uint32_t canary = base + SSP_CANARY_OFFSET;
	uint32_t *pte = pte_for(canary);
	if (pte != NULL && !(*pte & PTE_PRESENT)) {
		/* gdt.c gives GS a base pointing at a canary block; reaching this
		 * means GS was changed (e.g. flat again, canary in unmapped page 0). */
		*why = "the stack-protector canary address %gs:0x14 is not mapped (GS must be GDT_KERNEL_GS)";
		return INT32_MIN;
	}
	/* mapped (or paging off / large page) */
	int32_t ret = 0;
	if (module_profile_call(r, buf, cap, &ret, stopped, sizeof stopped) != 0) {
		*why = stopped; /* r->result now says CRASHED or TIMEOUT */
		return INT32_MIN;
	}
	return ret;
}

static const char *result_name(enum module_result r)
{
	switch (r) {
	case MODULE_PENDING:
		return "pending";
	case MODULE_OK:
		return "ok";
	case MODULE_FAIL:
		return "fail";
	case MODULE_REFUSED:
		return "refused";
	case MODULE_CRASHED:
		return "crashed";
	case MODULE_TIMEOUT:
		return "timeout";
	}
	return "unknown";
}

/* The module's name for frames: its header name, else its file name. */
static const char *rec_name(const struct module_record *r)
{
	return r->name[0] ? r->name : r->file;
}

static int export_summary(const struct prof_sink *sink, const struct module_record *r)
{
	char json[512];
	int n = ksnprintf(json, sizeof json,
			  "{\"module\":\"%s\",\"variant\":\"%s\",\"hash\":\"%s\",\"calls\":%u,"
			  "\"cycles_total\":%llu,\"cycles_min\":%llu,\"cycles_max\":%llu,\"result\":\"%s\"}",
			  rec_name(r), module_variant_name(r->variant), r->hash, (unsigned)r->calls,
			  (unsigned long long)r->cycles_total,
			  (unsigned long long)(r->calls ? r->cycles_min : 0),
			  (unsigned long long)r->cycles_max, result_name(r->result));
	if (n < 0 || (size_t)n >= sizeof json) {
		prof_frame_error(sink, PROF_KIND_SUMMARY, rec_name(r), "summary JSON does not fit its buffer");
		return -1;
	}
	prof_frame_write(sink, PROF_KIND_SUMMARY, rec_name(r), json, (size_t)n);
	return 0;
}

/* A module's raw profile, made before its frames are sent. */
struct profraw {
	uint8_t *buf;      /* kmalloc'd, n bytes; NULL when there is none */
	int32_t n;
	char reason[96];   /* why there is none; "" when the hook was stopped */
};

/* Calls r's hook for the size, then for the bytes. When the guard stops
 * the hook, r->result says so (CRASHED / TIMEOUT) and p->reason stays
 * empty: like a module stopped in its entry, it gets no profraw frame and
 * no FRAME-ERROR, and its summary, sent after this, says why. */
static void make_profraw(const struct module_record *r, struct profraw *p)
{
	const char *why = "";
	p->buf = NULL;
	p->n = 0;
	p->reason[0] = '\0';
	int32_t need = call_hook(r, NULL, 0, &why);
	if (need == INT32_MIN) {
		if (r->result == MODULE_OK || r->result == MODULE_FAIL)
			ksnprintf(p->reason, sizeof p->reason, "%s", why);
		return;
	}
	if (need <= 0) {
		ksnprintf(p->reason, sizeof p->reason, "profile hook returned size %d", (int)need);
		return;
	}
	uint8_t *buf = kmalloc((size_t)need);
	if (buf == NULL) {
		ksnprintf(p->reason, sizeof p->reason, "out of kernel heap for a %d-byte profile", (int)need);
		return;
	}
	int32_t got = call_hook(r, buf, (uint32_t)need, &why);
	if (got == INT32_MIN) {
		if (r->result == MODULE_OK || r->result == MODULE_FAIL)
			ksnprintf(p->reason, sizeof p->reason, "%s", why);
	} else if (got != need) {
		ksnprintf(p->reason, sizeof p->reason, "profile hook wrote %d bytes, announced %d", (int)got, (int)need);
	} else {
		p->buf = buf;
		p->n = got;
		return;
	}
	kfree(buf);
}

int profiling_export(void)
{
	const struct prof_sink sink = { serial_sink_write, NULL };
	size_t n;
	const struct module_record *recs = module_records(&n);
	int frames = 0, errors = 0;
	char line[96];

	for (size_t i = 0; i < n; i++) {
		const struct module_record *r = &recs[i];
		/* Only a module that ran to the end has a hook that may be
		 * called and counters that are whole: a refused module was
		 * never relocated, a stopped one (crashed, timed out) was
		 * released; its summary says why there is no profile. The
		 * hook runs before the summary is sent, so that a hook the
		 * guard stops is in the summary's result too. */
		int hook = r->profile != NULL && (r->result == MODULE_OK || r->result == MODULE_FAIL);
		struct profraw p = { NULL, 0, "" };
		if (hook)
			make_profraw(r, &p);
		if (export_summary(&sink, r) == 0)
			frames++;
		else
			errors++;
		if (p.buf) {
			prof_frame_write(&sink, PROF_KIND_PROFRAW, rec_name(r), p.buf, (size_t)p.n);
			kfree(p.buf);
			frames++;
		} else if (hook && p.reason[0]) {
			prof_frame_error(&sink, PROF_KIND_PROFRAW, rec_name(r), p.reason);
			errors++;
		}
	}
	ksnprintf(line, sizeof line, "@@FLUID-FRAMES-DONE frames=%d errors=%d\n", frames, errors);
	serial_write(line, strlen(line));
	return errors;
}

__attribute__((noinline)) int profiling_trigger_export(void)
{
	/* Keep the call from being turned into a jump, so the frame (and a gdb
	 * breakpoint on this function) stays visible in backtraces. */
	int errors = profiling_export();
	__asm__ volatile("" ::: "memory");
	return errors;
}
