/*
 * edgeprof.c — a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that
 * records, for one guest address range (a loaded module), what an LBR
 * would: every taken branch (from the last instruction of a translation
 * block to the start of the next one that does not follow it in memory)
 * and every straight-line trace between two taken branches, aggregated,
 * in BOLT's pre-aggregated profile format (perf2bolt --pa):
 *     B <from> <to> <count> 0      taken branch
 *     F <start> <end> <count>      fall-through trace [start, end]
 * Addresses are written relative to `base` plus `link` (the module's link
 * address), so they are addresses in the module ELF. It also counts the
 * guest instructions executed inside the range.
 *
 *   qemu-x86_64 -plugin ./edgeprof.so,base=0x10000000,size=0x800000,link=0,out=p.pa PROG...
 *   qemu-system-x86_64 ... -plugin ./edgeprof.so,base=<module load address>,...
 *
 * The plugin ABI is declared below (the few calls used), not included:
 * Debian's QEMU packages ship no qemu-plugin.h.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct {
	const char *target_name;
	struct { int min, cur; } version;
	bool system_emulation;
	union { struct { int smp_vcpus, max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, void (*)(unsigned int, void *), enum qemu_plugin_cb_flags, void *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, void *), void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

struct tb { uint64_t start, last, end, n; };
struct ent { char kind; uint64_t a, b, count; };

static uint64_t base, size, link_addr;
static const char *out = "edgeprof.pa";
static struct ent *tab;
static size_t cap = 1 << 16, used;
static const struct tb *prev;   /* last executed in-range block, NULL after leaving the range */
static uint64_t trace_start;    /* start of the current fall-through trace */
static uint64_t insns, blocks;

static bool in_range(uint64_t pc) { return pc - base < size; }

static void add(char kind, uint64_t a, uint64_t b)
{
	if (used * 2 >= cap) {
		struct ent *old = tab;
		size_t oc = cap;
		cap *= 2;
		tab = calloc(cap, sizeof *tab);
		used = 0;
		for (size_t i = 0; i < oc; i++)
			if (old[i].kind) {
				size_t h = (old[i].a * 0x9E3779B97F4A7C15ull ^ old[i].b * 31 ^ (uint64_t)old[i].kind) & (cap - 1);
				while (tab[h].kind)
					h = (h + 1) & (cap - 1);
				tab[h] = old[i];
				used++;
			}
		free(old);
	}
	size_t h = (a * 0x9E3779B97F4A7C15ull ^ b * 31 ^ (uint64_t)kind) & (cap - 1);
	while (tab[h].kind && !(tab[h].kind == kind && tab[h].a == a && tab[h].b == b))
		h = (h + 1) & (cap - 1);
	if (!tab[h].kind) {
		tab[h] = (struct ent){kind, a, b, 0};
		used++;
	}
	tab[h].count++;
}

static void exec_tb(unsigned int vcpu, void *udata)
{
	const struct tb *t = udata;
	(void)vcpu;
	insns += t->n;
	blocks++;
	if (prev && t->start != prev->end) {
		/* prev ended in a taken branch: close the trace, record the branch */
		add('F', trace_start, prev->last);
		add('B', prev->last, t->start);
		trace_start = t->start;
	} else if (!prev) {
		trace_start = t->start; /* entered the range from outside */
	}
	prev = t;
}

static void exec_outside(unsigned int vcpu, void *udata)
{
	(void)vcpu;
	(void)udata;
	if (prev) {
		add('F', trace_start, prev->last); /* left the range (call out, return to the caller) */
		prev = NULL;
	}
}

static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	uint64_t start = qemu_plugin_tb_vaddr(tb);
	if (!in_range(start)) {
		qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_outside, QEMU_PLUGIN_CB_NO_REGS, NULL);
		return;
	}
	size_t n = qemu_plugin_tb_n_insns(tb);
	struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
	struct tb *t = malloc(sizeof *t); /* one per translation; QEMU may retranslate */
	t->start = start;
	t->last = qemu_plugin_insn_vaddr(last);
	t->end = t->last + qemu_plugin_insn_size(last);
	t->n = n;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_tb, QEMU_PLUGIN_CB_NO_REGS, t);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	(void)id;
	(void)p;
	exec_outside(0, NULL);
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "edgeprof: cannot write %s\n", tmp);
		return;
	}
	uint64_t nb = 0, nf = 0, taken = 0;
	for (size_t i = 0; i < cap; i++) {
		struct ent *e = &tab[i];
		if (!e->kind)
			continue;
		uint64_t a = e->a - base + link_addr, b = e->b - base + link_addr;
		if (e->kind == 'B')
			fprintf(f, "B %" PRIx64 " %" PRIx64 " %" PRIu64 " 0\n", a, b, e->count), nb++, taken += e->count;
		else
			fprintf(f, "F %" PRIx64 " %" PRIx64 " %" PRIu64 "\n", a, b, e->count), nf++;
	}
	fclose(f);
	rename(tmp, out);
	fprintf(stderr, "edgeprof: %s: insns=%" PRIu64 " blocks=%" PRIu64 " taken=%" PRIu64 " (%" PRIu64
		" branch and %" PRIu64 " trace records)\n", out, insns, blocks, taken, nb, nf);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
							       char **argv)
{
	(void)info;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "base=", 5))
			base = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "size=", 5))
			size = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "link=", 5))
			link_addr = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "out=", 4))
			out = argv[i] + 4;
		else {
			fprintf(stderr, "edgeprof: unknown argument %s (base= size= link= out=)\n", argv[i]);
			return 1;
		}
	}
	if (!size) {
		fprintf(stderr, "edgeprof: size= is required (the module's address range)\n");
		return 1;
	}
	tab = calloc(cap, sizeof *tab);
	qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
