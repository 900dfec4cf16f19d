/*
 * export.c — profiling_export: after every module ran, send per module a
 * JSON summary frame and, for modules with a profile hook (instrumented
 * builds), a profraw frame with the bytes the hook wrote, then the
 * FRAMES-DONE line. Frame format: profiling.h. Host side: internal/profile.
 */
#include "profiling.h"
#include "cpu.h"
#include "gdt.h"
#include "vm.h"
#include "fmt.h"
#include "heap.h"
#include "module.h"
#include "serial.h"
#include "string.h"

/*
 * compiler-rt's x86_64 objects (linked into instrumented modules) are built
 * with -fstack-protector for the Linux ABI: they read the canary at
 * %fs:FS_SSP_CANARY_OFFSET. gdt.c points the FS base (MSR) at a block
 * holding a canary; call_hook checks that the address is mapped before
 * calling into the module, so an FS base that was changed is refused with a
 * reason instead of page-faulting.
 */
static void serial_sink_write(void *ctx, const char *s, size_t n)
{
	(void)ctx;
	serial_write(s, n);
}

/* Calls r's hook(buf, cap) under the module guard, with the
 * stack-protector canary address readable. Returns the hook's value, or
 * INT32_MIN when the canary address is not mapped or the hook crashed or
 * timed out (reason in *why). */
static int32_t call_hook(const struct module_record *r, uint8_t *buf, uint32_t cap, const char **why)
{
	static char stopped[MODPARSE_ERR_MAX];
	uint64_t canary = rdmsr(MSR_FS_BASE) + FS_SSP_CANARY_OFFSET;
	if (!(vm_prot(canary) & VM_R)) {
		/* gdt.c sets the FS base to a canary block; reaching this means it
		 * was changed (e.g. to 0: the canary in unmapped page 0). */
		*why = "the stack-protector canary address %fs:0x28 is not mapped (the FS base must be gdt.c's canary block)";
		return INT32_MIN;
	}
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
