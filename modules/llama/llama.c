/*
 * llama.c — the llama workload: reads /llama/run.txt (what to run) and
 * /llama/model.gguf (a TinyLlama-architecture model) through the kernel's
 * read_file, encodes the prompt, runs it, generates greedily, prints the
 * lines the host parses (docs: modules/README.md, the `llama` row) and
 * checks the tokens against the expected ones in run.txt.
 */
#include "fluid_module.h"
#include "fmt.h"
#include "gguf.h"
#include "llama.h"

#ifndef LLAMA_DEADLINE_MS
#define LLAMA_DEADLINE_MS 20000
#endif
FLUID_DEADLINE_MS(LLAMA_DEADLINE_MS);

#define RUN_PATH   "/llama/run.txt"
#define MODEL_PATH "/llama/model.gguf"
#define ERR_CAP    512
#define MAX_IDS    (1u << 20)

struct run {
	const uint8_t *prompt;
	uint64_t prompt_len;
	uint64_t generate, generate_light;
	uint32_t *prompt_ids, *expect; /* NULL when absent */
	uint64_t n_prompt_ids, n_expect;
};

static int strlen_eq(const char *z, const uint8_t *s, uint64_t n)
{
	uint64_t i = 0;
	for (; i < n; i++)
		if (z[i] == 0 || (uint8_t)z[i] != s[i])
			return 0;
	return z[i] == 0;
}

static int refuse(const struct fluid_services *svc, const char *msg)
{
	svc->printf("llama: refused: %s\n", msg);
	return FLUID_FAIL;
}

/* A decimal number in [0, max] spanning exactly s[0..n). */
static int parse_uint(const uint8_t *s, uint64_t n, uint64_t max, uint64_t *v)
{
	if (n == 0 || n > 19)
		return -1;
	uint64_t x = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > max)
		return -1;
	*v = x;
	return 0;
}

/* Space-separated ids into a fresh array (svc->alloc). */
static int parse_ids(const struct fluid_services *svc, const char *key, const uint8_t *s, uint64_t n,
		     uint32_t **out, uint64_t *count, char *err)
{
	uint64_t k = 1;
	for (uint64_t i = 0; i < n; i++)
		k += s[i] == ' ';
	uint32_t *ids = svc->alloc(k * sizeof *ids);
	if (!ids) {
		fl_fmt(err, ERR_CAP, "%s: %s: out of memory for %llu ids", RUN_PATH, key, k);
		return -1;
	}
	uint64_t m = 0;
	for (uint64_t i = 0; i <= n;) {
		uint64_t j = i;
		while (j < n && s[j] != ' ')
			j++;
		uint64_t v;
		if (parse_uint(s + i, j - i, UINT32_MAX, &v)) {
			fl_fmt(err, ERR_CAP, "%s: %s: item %llu \"%S\" is not a token id (a decimal number below 2^32, one space between ids)",
			       RUN_PATH, key, m, (const char *)s + i, j - i);
			svc->free(ids);
			return -1;
		}
		ids[m++] = (uint32_t)v;
		i = j + 1;
	}
	*out = ids;
	*count = m;
	return 0;
}

/* Parses run.txt: LF lines, `key value` with keys in the contract's order
 * (fluid-llama-run 1, prompt, generate, generate_light, then optionally
 * prompt_ids and expect), unknown or misplaced keys refused by name. */
static int parse_run(const struct fluid_services *svc, const uint8_t *b, uint64_t n, struct run *r, char *err)
{
	static const char *const keys[] = {"fluid-llama-run", "prompt", "generate", "generate_light",
					   "prompt_ids", "expect"};
	memset(r, 0, sizeof *r);
	unsigned next = 0, line = 0;
	for (uint64_t i = 0; i < n;) {
		uint64_t e = i;
		while (e < n && b[e] != '\n')
			e++;
		line++;
		const uint8_t *s = b + i;
		uint64_t len = e - i;
		i = e + 1;
		uint64_t sp = 0;
		while (sp < len && s[sp] != ' ')
			sp++;
		for (uint64_t j = 0; j < len; j++)
			if (s[j] == '\r') {
				fl_fmt(err, ERR_CAP, "%s: line %u: a carriage return: write LF line ends", RUN_PATH, line);
				return -1;
			}
		unsigned k = 0;
		while (k < 6 && !(strlen_eq(keys[k], s, sp)))
			k++;
		if (k == 6) {
			fl_fmt(err, ERR_CAP, "%s: line %u: unknown key \"%S\" (keys, in order: fluid-llama-run, prompt, generate, generate_light, prompt_ids, expect)",
			       RUN_PATH, line, (const char *)s, sp);
			return -1;
		}
		if (k < next || (k > next && next < 4)) {
			fl_fmt(err, ERR_CAP, "%s: line %u: key %s out of place: want %s here (keys, in order: fluid-llama-run, prompt, generate, generate_light, prompt_ids, expect)",
			       RUN_PATH, line, keys[k], next < 6 ? keys[next] : "the end of the file");
			return -1;
		}
		next = k + 1;
		const uint8_t *v = sp < len ? s + sp + 1 : s + len;
		uint64_t vn = sp < len ? len - sp - 1 : 0;
		uint64_t x;
		switch (k) {
		case 0:
			if (vn != 1 || v[0] != '1') {
				fl_fmt(err, ERR_CAP, "%s: line 1: fluid-llama-run \"%S\": this module reads version 1", RUN_PATH,
				       (const char *)v, vn);
				return -1;
			}
			break;
		case 1:
			r->prompt = v;
			r->prompt_len = vn;
			break;
		case 2:
		case 3:
			if (parse_uint(v, vn, MAX_IDS, &x) || x == 0) {
				fl_fmt(err, ERR_CAP, "%s: line %u: %s \"%S\" is not a token count (1..%u)", RUN_PATH, line, keys[k],
				       (const char *)v, vn, MAX_IDS);
				return -1;
			}
			*(k == 2 ? &r->generate : &r->generate_light) = x;
			break;
		case 4:
			if (parse_ids(svc, keys[k], v, vn, &r->prompt_ids, &r->n_prompt_ids, err))
				return -1;
			break;
		case 5:
			if (parse_ids(svc, keys[k], v, vn, &r->expect, &r->n_expect, err))
				return -1;
			break;
		}
		if (e == n)
			break;
	}
	if (next < 4) {
		fl_fmt(err, ERR_CAP, "%s: key %s is missing (keys, in order: fluid-llama-run, prompt, generate, generate_light, prompt_ids, expect)",
		       RUN_PATH, keys[next]);
		return -1;
	}
	if (r->expect && (r->n_expect < r->generate || r->n_expect < r->generate_light)) {
		fl_fmt(err, ERR_CAP, "%s: expect lists %llu ids, fewer than generate %llu / generate_light %llu", RUN_PATH,
		       r->n_expect, r->generate, r->generate_light);
		return -1;
	}
	return 0;
}

static void free_run(const struct fluid_services *svc, struct run *r)
{
	if (r->prompt_ids)
		svc->free(r->prompt_ids);
	if (r->expect)
		svc->free(r->expect);
	r->prompt_ids = r->expect = NULL;
}

/* Prints `prefix id id ...` as one line from a scratch buffer. */
static void print_ids(const struct fluid_services *svc, const char *prefix, const uint32_t *ids, uint64_t n)
{
	uint64_t cap = 64 + n * 11;
	char *line = svc->alloc(cap);
	if (!line)
		return;
	size_t k = fl_fmt(line, cap, "%s", prefix);
	for (uint64_t i = 0; i < n; i++)
		k += fl_fmt(line + k, cap - k, i ? " %u" : "%u", ids[i]);
	fl_fmt(line + k, cap - k, "\n");
	svc->print(line);
	svc->free(line);
}

/* Prints `prefix"<escaped bytes>"suffix\n` as one line. */
static void print_quoted(const struct fluid_services *svc, const char *prefix, const uint8_t *b, uint64_t n,
			 const char *suffix)
{
	uint64_t cap = 128 + 4 * n + 64;
	char *line = svc->alloc(cap);
	if (!line)
		return;
	size_t k = fl_fmt(line, cap, "%s\"", prefix);
	k += fl_escape(line + k, cap - k, b, n);
	fl_fmt(line + k, cap - k, "\"%s\n", suffix);
	svc->print(line);
	svc->free(line);
}

static int generate(const struct fluid_services *svc, const struct run *r, struct llama_model *m,
		    const uint8_t *model_bytes, uint64_t model_size, char *err)
{
	(void)model_bytes;
	svc->printf("llama: model %s: %u layers, dim %u, %u heads (%u kv), hidden %u, vocab %u, context %u, %s, %llu bytes\n",
		    MODEL_PATH, m->layers, m->dim, m->heads, m->kv_heads, m->hidden, m->vocab, m->context,
		    gguf_tensor_type_name(m->wtype), (unsigned long long)model_size);
	uint64_t cap = 3 * r->prompt_len + 4;
	uint32_t *ids = svc->alloc(cap * sizeof *ids);
	if (!ids)
		return refuse(svc, "out of memory for the prompt's tokens");
	uint64_t n_ids;
	if (tok_encode(&m->tok, r->prompt, r->prompt_len, 1, ids, &n_ids, svc, err, ERR_CAP)) {
		svc->free(ids);
		return refuse(svc, err);
	}
	char pre[64];
	fl_fmt(pre, sizeof pre, " = %llu tokens: ", n_ids);
	uint64_t lcap = 64 + 4 * r->prompt_len + n_ids * 11;
	char *line = svc->alloc(lcap);
	if (line) {
		size_t k = fl_fmt(line, lcap, "llama: prompt \"");
		k += fl_escape(line + k, lcap - k, r->prompt, r->prompt_len);
		k += fl_fmt(line + k, lcap - k, "\"%s", pre);
		for (uint64_t i = 0; i < n_ids; i++)
			k += fl_fmt(line + k, lcap - k, i ? " %u" : "%u", ids[i]);
		fl_fmt(line + k, lcap - k, "\n");
		svc->print(line);
		svc->free(line);
	}
	int ok = 1;
	if (r->prompt_ids) {
		ok &= svc->check("prompt_ids.count", n_ids, r->n_prompt_ids);
		for (uint64_t i = 0; i < n_ids && i < r->n_prompt_ids; i++) {
			char name[32];
			fl_fmt(name, sizeof name, "prompt_ids[%llu]", i);
			ok &= svc->check(name, ids[i], r->prompt_ids[i]);
		}
	}
	uint64_t want = svc->light ? r->generate_light : r->generate;
	if (n_ids + want > m->context) {
		svc->free(ids);
		fl_fmt(err, ERR_CAP, "prompt of %llu tokens + %llu to generate exceeds the model's context of %u (llama.context_length)",
		       n_ids, want, m->context);
		return refuse(svc, err);
	}
	uint32_t *out = svc->alloc(want * sizeof *out);
	if (!out) {
		svc->free(ids);
		return refuse(svc, "out of memory for the generated tokens");
	}
	const float *logits = NULL;
	for (uint64_t i = 0; i < n_ids; i++) {
		if (ids[i] >= m->vocab) {
			svc->free(ids);
			svc->free(out);
			fl_fmt(err, ERR_CAP, "prompt token %u is outside the vocabulary of %u", ids[i], m->vocab);
			return refuse(svc, err);
		}
		logits = llama_forward(m, ids[i]);
	}
	svc->free(ids);
	uint64_t got = 0, ms0 = svc->ms(), t0 = svc->rdtsc();
	for (;;) {
		uint32_t next = llama_argmax(logits, m->vocab);
		out[got++] = next;
		if (next == m->tok.eos || got == want)
			break;
		logits = llama_forward(m, next);
	}
	uint64_t t1 = svc->rdtsc(), ms1 = svc->ms();
	print_ids(svc, "llama: tokens ", out, got);
	uint64_t tlen;
	uint8_t *text = tok_decode(&m->tok, out, got, &tlen, svc);
	if (text) {
		print_quoted(svc, "llama: text ", text, tlen, "");
		svc->free(text);
	}
	uint64_t per_ms = (ms1 - ms0) * 1000 / got;
	svc->printf("llama: generated %llu tokens in %llu tsc (%llu tsc/token, %llu.%03llu ms/token)\n",
		    (unsigned long long)got, (unsigned long long)(t1 - t0), (unsigned long long)((t1 - t0) / got),
		    (unsigned long long)(per_ms / 1000), (unsigned long long)(per_ms % 1000));
	if (r->expect) {
		ok &= svc->check("tokens generated", got, want);
		for (uint64_t i = 0; i < got; i++) {
			char name[32];
			fl_fmt(name, sizeof name, "token[%llu]", i);
			ok &= svc->check(name, out[i], r->expect[i]);
		}
	}
	svc->free(out);
	return ok ? FLUID_OK : FLUID_FAIL;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	char err[ERR_CAP], msg[ERR_CAP + 64];
	uint64_t run_size, model_size;
	if (svc->version < 2 || !svc->read_file || !svc->ms)
		return refuse(svc, "the kernel's services table has no read_file/ms (services version 2): run this module on a kernel built from this tree");
	const uint8_t *run_txt = svc->read_file(RUN_PATH, &run_size);
	if (!run_txt)
		return refuse(svc, RUN_PATH ": cannot be read (the kernel said why above); the image's FAT32 partition must hold it");
	struct run r;
	if (parse_run(svc, run_txt, run_size, &r, err)) {
		free_run(svc, &r);
		return refuse(svc, err);
	}
	const uint8_t *model = svc->read_file(MODEL_PATH, &model_size);
	if (!model) {
		free_run(svc, &r);
		return refuse(svc, MODEL_PATH ": cannot be read (the kernel said why above); the image's FAT32 partition must hold it");
	}
	struct gguf_file f;
	if (gguf_parse(&f, model, model_size, svc, err, ERR_CAP)) {
		free_run(svc, &r);
		fl_fmt(msg, sizeof msg, "%s: %s", MODEL_PATH, err);
		return refuse(svc, msg);
	}
	struct llama_model m;
	if (llama_load(&m, &f, svc, err, ERR_CAP)) {
		gguf_free(&f, svc);
		free_run(svc, &r);
		fl_fmt(msg, sizeof msg, "%s: %s", MODEL_PATH, err);
		return refuse(svc, msg);
	}
	int rc = generate(svc, &r, &m, model, model_size, err);
	llama_free(&m);
	gguf_free(&f, svc);
	free_run(svc, &r);
	return rc;
}
