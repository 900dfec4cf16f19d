/*
 * model.c — the Llama forward pass as internal/llama/model.go does it:
 * token embedding, RMSNorm, RoPE (adjacent pairs, freq_base), grouped-query
 * attention with a KV cache, SwiGLU, final norm, output projection, greedy
 * argmax. float32 throughout; the operations and their order follow Go's
 * except that the matrix-vector dot products sum in 8 SSE lanes (Go sums
 * in index order), which moves logits by about 1e-6. Weights stay in the
 * file: F32, F16 and Q8_0 rows are read in place (Q8_0 values d*q are
 * exact in float32, as Go's dequantized values are).
 *
 * Modules are built -ffreestanding, which implies -fno-builtin: a plain
 * memcpy is a call into modules/lib/runtime.c's byte loop, so the small
 * fixed-size loads here use __builtin_memcpy, which clang turns into one
 * (unaligned) load.
 */
#include "fmt.h"
#include "llama.h"
#include "mathf.h"

typedef float v4f __attribute__((vector_size(16)));
typedef int8_t v16c __attribute__((vector_size(16)));
typedef float v16f __attribute__((vector_size(64)));

/* ---- RoPE tables ----------------------------------------------------------
 * The same chain of float32 operations as Go's llama.RopeTable, each
 * rounded once, with the tested, correctly rounded (on their sweeps)
 * fl_logf, fl_expf, fl_cosf, fl_sinf in place of Go's float32(math.F(float64(x))):
 *   lb = logf(base); a = (float)(2i) / (float)rope_dim; e = -(a * lb);
 *   freq = expf(e); theta = (float)p * freq; cos, sin of theta.
 * Bit-identical to Go's table (internal/llama/guest TestRopeTable).
 * FP_CONTRACT OFF: a * lb must not become part of a fused operation. */
void llama_rope_table(float *cos_t, float *sin_t, uint32_t context, uint32_t rope_dim, float base)
{
#pragma STDC FP_CONTRACT OFF
	uint32_t half = rope_dim / 2;
	float lb = fl_logf(base);
	for (uint32_t i = 0; i < half; i++) {
		float a = (float)(2 * i) / (float)rope_dim;
		float e = -(a * lb);
		float freq = fl_expf(e);
		for (uint32_t p = 0; p < context; p++) {
			float theta = (float)p * freq;
			cos_t[(uint64_t)p * half + i] = fl_cosf(theta);
			sin_t[(uint64_t)p * half + i] = fl_sinf(theta);
		}
	}
}

/* ---- metadata ------------------------------------------------------------ */
int llama_get_uint(const struct gguf_file *f, const char *key, uint64_t *v, char *err, size_t errcap)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) {
		fl_fmt(err, errcap, "metadata %s is missing", key);
		return -1;
	}
	if (kv->type == GGUF_U32) {
		*v = gguf_u32(kv->val);
		return 0;
	}
	if (kv->type == GGUF_U64) {
		*v = gguf_u64(kv->val);
		return 0;
	}
	if (kv->type == GGUF_I32 && (int32_t)gguf_u32(kv->val) >= 0) {
		*v = gguf_u32(kv->val);
		return 0;
	}
	fl_fmt(err, errcap, "metadata %s is a %s, want a non-negative integer", key, gguf_type_name(kv->type));
	return -1;
}

static int get_f32(const struct gguf_file *f, const char *key, float *v, char *err, size_t errcap)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) {
		fl_fmt(err, errcap, "metadata %s is missing", key);
		return -1;
	}
	if (kv->type != GGUF_F32) {
		fl_fmt(err, errcap, "metadata %s is a %s, want a float32", key, gguf_type_name(kv->type));
		return -1;
	}
	*v = gguf_f32(kv->val);
	return 0;
}

static uint64_t row_bytes(uint32_t type, uint64_t cols)
{
	return type == GGML_F32 ? cols * 4 : type == GGML_F16 ? cols * 2 : cols / GGUF_Q8_BLOCK * GGUF_Q8_BLOCK_BYTES;
}

/* Finds tensor name with exactly the dims given (1 or 2 of them). */
static int get_tensor(const struct gguf_file *f, const char *name, uint64_t d0, uint64_t d1, struct wmat *w,
		      char *err, size_t errcap)
{
	const struct gguf_tensor *t = gguf_tensor(f, name);
	if (!t) {
		fl_fmt(err, errcap, "tensor %s is missing", name);
		return -1;
	}
	uint32_t nd = d1 ? 2 : 1;
	if (t->n_dims != nd || t->dims[0] != d0 || (d1 && t->dims[1] != d1)) {
		char got[96];
		size_t k = fl_fmt(got, sizeof got, "%llu", t->dims[0]);
		for (uint32_t i = 1; i < t->n_dims; i++)
			k += fl_fmt(got + k, sizeof got - k, " %llu", t->dims[i]);
		if (d1)
			fl_fmt(err, errcap, "tensor %s has dims [%s], want [%llu %llu]", name, got, d0, d1);
		else
			fl_fmt(err, errcap, "tensor %s has dims [%s], want [%llu]", name, got, d0);
		return -1;
	}
	w->p = t->data;
	w->type = t->type;
	w->cols = d0;
	w->rows = d1 ? d1 : 1;
	w->row_bytes = row_bytes(t->type, d0);
	return 0;
}

/* Dequantizes row r of w into out[0..cols), as gguf.Dequantize does. */
static void dequant_row(const struct llama_model *m, const struct wmat *w, uint64_t r, float *out)
{
	const uint8_t *p = w->p + r * w->row_bytes;
	for (uint64_t i = 0; i < w->cols; i++) {
		switch (w->type) {
		case GGML_F32:
			out[i] = gguf_f32(p + 4 * i);
			break;
		case GGML_F16:
			out[i] = m->f16[gguf_u16(p + 2 * i)];
			break;
		default: {
			const uint8_t *b = p + i / GGUF_Q8_BLOCK * GGUF_Q8_BLOCK_BYTES;
			out[i] = m->f16[gguf_u16(b)] * (float)(int8_t)b[2 + i % GGUF_Q8_BLOCK];
		}
		}
	}
}

static float *norm_weights(struct llama_model *m, const struct gguf_file *f, const char *name, char *err,
			   size_t errcap)
{
	struct wmat w;
	if (get_tensor(f, name, m->dim, 0, &w, err, errcap))
		return NULL;
	float *v = m->svc->alloc(m->dim * sizeof(float));
	if (!v) {
		fl_fmt(err, errcap, "tensor %s: out of memory", name);
		return NULL;
	}
	dequant_row(m, &w, 0, v);
	return v;
}

void llama_free(struct llama_model *m)
{
	const struct fluid_services *svc = m->svc;
	if (!svc)
		return;
	if (m->layer) {
		for (uint32_t l = 0; l < m->layers; l++) {
			if (m->layer[l].attn_norm)
				svc->free(m->layer[l].attn_norm);
			if (m->layer[l].ffn_norm)
				svc->free(m->layer[l].ffn_norm);
		}
		svc->free(m->layer);
	}
	float *bufs[] = {m->out_norm, m->kcache, m->vcache, m->rope_cos, m->rope_sin, m->f16, m->x, m->xb,
			 m->q, m->att, m->proj, m->scores, m->h1, m->h3, m->logits};
	for (unsigned i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		if (bufs[i])
			svc->free(bufs[i]);
	tok_free(&m->tok, svc);
	memset(m, 0, sizeof *m);
}

static float *falloc(struct llama_model *m, uint64_t n, const char *what, char *err, size_t errcap)
{
	float *p = n <= (UINT64_MAX >> 3) ? m->svc->alloc(n * sizeof(float)) : NULL;
	if (!p)
		fl_fmt(err, errcap, "out of memory for %s (%llu bytes)", what, n * sizeof(float));
	return p;
}

int llama_load(struct llama_model *m, const struct gguf_file *f, const struct fluid_services *svc,
	       char *err, size_t errcap)
{
	memset(m, 0, sizeof *m);
	m->svc = svc;
	const struct gguf_kv *arch = gguf_find(f, "general.architecture");
	if (!arch || arch->type != GGUF_STRING) {
		fl_fmt(err, errcap, "metadata general.architecture is %s", arch ? "not a string" : "missing");
		return -1;
	}
	struct gguf_str as = {(const char *)arch->val + 8, gguf_u64(arch->val)};
	if (!gguf_streq(as, "llama")) {
		fl_fmt(err, errcap, "general.architecture is \"%S\": only \"llama\" is supported", as.p, as.n);
		return -1;
	}
	static const char *const keys[] = {"llama.context_length", "llama.embedding_length", "llama.block_count",
					   "llama.feed_forward_length", "llama.attention.head_count",
					   "llama.attention.head_count_kv", "llama.rope.dimension_count"};
	uint32_t *dst[] = {&m->context, &m->dim, &m->layers, &m->hidden, &m->heads, &m->kv_heads, &m->rope_dim};
	for (int i = 0; i < 7; i++) {
		uint64_t v;
		if (llama_get_uint(f, keys[i], &v, err, errcap))
			return -1;
		if (v == 0 || v > (1u << 20)) {
			fl_fmt(err, errcap, "metadata %s is %llu: want 1..%u", keys[i], v, 1u << 20);
			return -1;
		}
		*dst[i] = (uint32_t)v;
	}
	if (get_f32(f, "llama.rope.freq_base", &m->rope_base, err, errcap) ||
	    get_f32(f, "llama.attention.layer_norm_rms_epsilon", &m->eps, err, errcap))
		return -1;
	if (m->dim % m->heads || m->heads % m->kv_heads) {
		fl_fmt(err, errcap, "llama.embedding_length %u, head_count %u, head_count_kv %u: heads must divide the embedding and KV heads the heads",
		       m->dim, m->heads, m->kv_heads);
		return -1;
	}
	m->head_dim = m->dim / m->heads;
	if (m->rope_dim > m->head_dim || m->rope_dim % 2) {
		fl_fmt(err, errcap, "llama.rope.dimension_count %u: want an even number up to the head size %u", m->rope_dim,
		       m->head_dim);
		return -1;
	}
	if (tok_load(&m->tok, f, svc, err, errcap))
		return -1;
	m->vocab = m->tok.n;
	if (!(m->f16 = falloc(m, 65536, "the F16 table", err, errcap)))
		goto bad;
	for (uint32_t h = 0; h < 65536; h++)
		m->f16[h] = gguf_f16((uint16_t)h);
	uint64_t kv_dim = (uint64_t)m->head_dim * m->kv_heads;
	if (get_tensor(f, "token_embd.weight", m->dim, m->vocab, &m->embd, err, errcap))
		goto bad;
	m->layer = svc->alloc(m->layers * sizeof *m->layer);
	if (!m->layer) {
		fl_fmt(err, errcap, "out of memory for %u layers", m->layers);
		goto bad;
	}
	memset(m->layer, 0, m->layers * sizeof *m->layer);
	for (uint32_t l = 0; l < m->layers; l++) {
		struct llama_layer *ly = &m->layer[l];
		char name[64];
		struct {
			struct wmat *w;
			const char *n;
			uint64_t d0, d1;
		} ws[] = {
			{&ly->wq, "attn_q", m->dim, m->dim},       {&ly->wk, "attn_k", m->dim, kv_dim},
			{&ly->wv, "attn_v", m->dim, kv_dim},       {&ly->wo, "attn_output", m->dim, m->dim},
			{&ly->gate, "ffn_gate", m->dim, m->hidden}, {&ly->up, "ffn_up", m->dim, m->hidden},
			{&ly->down, "ffn_down", m->hidden, m->dim},
		};
		fl_fmt(name, sizeof name, "blk.%u.attn_norm.weight", l);
		if (!(ly->attn_norm = norm_weights(m, f, name, err, errcap)))
			goto bad;
		fl_fmt(name, sizeof name, "blk.%u.ffn_norm.weight", l);
		if (!(ly->ffn_norm = norm_weights(m, f, name, err, errcap)))
			goto bad;
		for (unsigned i = 0; i < sizeof ws / sizeof ws[0]; i++) {
			fl_fmt(name, sizeof name, "blk.%u.%s.weight", l, ws[i].n);
			if (get_tensor(f, name, ws[i].d0, ws[i].d1, ws[i].w, err, errcap))
				goto bad;
		}
	}
	m->wtype = m->layer[0].wq.type;
	if (!(m->out_norm = norm_weights(m, f, "output_norm.weight", err, errcap)) ||
	    get_tensor(f, "output.weight", m->dim, m->vocab, &m->out, err, errcap))
		goto bad;
	uint64_t cache = (uint64_t)m->layers * m->context * kv_dim; /* each factor <= 2^20 */
	uint64_t half = m->rope_dim / 2;
	if (!(m->kcache = falloc(m, cache, "the K cache", err, errcap)) ||
	    !(m->vcache = falloc(m, cache, "the V cache", err, errcap)) ||
	    !(m->rope_cos = falloc(m, (uint64_t)m->context * half, "the RoPE table", err, errcap)) ||
	    !(m->rope_sin = falloc(m, (uint64_t)m->context * half, "the RoPE table", err, errcap)) ||
	    !(m->x = falloc(m, m->dim, "activations", err, errcap)) ||
	    !(m->xb = falloc(m, m->dim, "activations", err, errcap)) ||
	    !(m->q = falloc(m, m->dim, "activations", err, errcap)) ||
	    !(m->att = falloc(m, m->dim, "activations", err, errcap)) ||
	    !(m->proj = falloc(m, m->dim, "activations", err, errcap)) ||
	    !(m->scores = falloc(m, m->context, "attention scores", err, errcap)) ||
	    !(m->h1 = falloc(m, m->hidden, "activations", err, errcap)) ||
	    !(m->h3 = falloc(m, m->hidden, "activations", err, errcap)) ||
	    !(m->logits = falloc(m, m->vocab, "logits", err, errcap)))
		goto bad;
	llama_rope_table(m->rope_cos, m->rope_sin, m->context, m->rope_dim, m->rope_base);
	llama_reset(m);
	return 0;
bad:
	llama_free(m);
	return -1;
}

void llama_reset(struct llama_model *m) { m->pos = 0; }

/* ---- kernels --------------------------------------------------------------- */
static inline v4f ld4(const float *p)
{
	v4f v;
	__builtin_memcpy(&v, p, 16);
	return v;
}

static inline float hsum(v4f a, v4f b)
{
	v4f s = a + b;
	return (s[0] + s[1]) + (s[2] + s[3]);
}

static inline void st4(float *p, v4f v) { __builtin_memcpy(p, &v, 16); }

#define LANES(v, k) __builtin_shufflevector(v, v, 4 * (k), 4 * (k) + 1, 4 * (k) + 2, 4 * (k) + 3)

/* One Q8_0 block (scale, 32 int8 quants) times x[0..32): (d * q) * x per
 * lane (d * q is exact), lanes 0-3, 8-11, ... added into a and 4-7, 12-15,
 * ... into b, in index order. The quants by two 16-byte loads, sign-extended
 * by unpacking (15 SSE2 instructions per 16 where 4-byte loads took 20). */
static inline void q8_block(const float *f16, const uint8_t *blk, const float *x, v4f *a, v4f *b)
{
	float d = f16[gguf_u16(blk)];
	v4f dv = {d, d, d, d};
	v16c c0, c1;
	__builtin_memcpy(&c0, blk + 2, 16);
	__builtin_memcpy(&c1, blk + 18, 16);
	v16f q0 = __builtin_convertvector(c0, v16f), q1 = __builtin_convertvector(c1, v16f);
	*a += (LANES(q0, 0) * dv) * ld4(x);
	*b += (LANES(q0, 1) * dv) * ld4(x + 4);
	*a += (LANES(q0, 2) * dv) * ld4(x + 8);
	*b += (LANES(q0, 3) * dv) * ld4(x + 12);
	*a += (LANES(q1, 0) * dv) * ld4(x + 16);
	*b += (LANES(q1, 1) * dv) * ld4(x + 20);
	*a += (LANES(q1, 2) * dv) * ld4(x + 24);
	*b += (LANES(q1, 3) * dv) * ld4(x + 28);
}

/* A Q8_0 row times x, n (a multiple of 32, checked by gguf_parse) long. */
static float dot_q8(const float *f16, const uint8_t *row, const float *x, uint64_t n)
{
	v4f a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
	for (uint64_t i = 0; i < n; i += GGUF_Q8_BLOCK, row += GGUF_Q8_BLOCK_BYTES)
		q8_block(f16, row, x + i, &a, &b);
	return hsum(a, b);
}

/* dot(row, x) over n = w->cols elements, summed in 8 lanes. */
static float dot(const struct llama_model *m, const struct wmat *w, const uint8_t *row, const float *x)
{
	uint64_t n = w->cols, i = 0;
	v4f a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
	float s;
	switch (w->type) {
	case GGML_Q8_0:
		return dot_q8(m->f16, row, x, n);
	case GGML_F16:
		for (; i + 8 <= n; i += 8) {
			const uint8_t *p = row + 2 * i;
			v4f w0 = {m->f16[gguf_u16(p)], m->f16[gguf_u16(p + 2)], m->f16[gguf_u16(p + 4)],
				  m->f16[gguf_u16(p + 6)]};
			v4f w1 = {m->f16[gguf_u16(p + 8)], m->f16[gguf_u16(p + 10)], m->f16[gguf_u16(p + 12)],
				  m->f16[gguf_u16(p + 14)]};
			a += w0 * ld4(x + i);
			b += w1 * ld4(x + i + 4);
		}
		s = hsum(a, b);
		for (; i < n; i++)
			s += m->f16[gguf_u16(row + 2 * i)] * x[i];
		return s;
	default:
		for (; i + 8 <= n; i += 8) {
			a += ld4((const float *)(const void *)(row + 4 * i)) * ld4(x + i);
			b += ld4((const float *)(const void *)(row + 4 * i + 16)) * ld4(x + i + 4);
		}
		s = hsum(a, b);
		for (; i < n; i++)
			s += gguf_f32(row + 4 * i) * x[i];
		return s;
	}
}

/* out[r] = dot(row r of w, x) for every row. */
static void matmul(const struct llama_model *m, float *out, const struct wmat *w, const float *x)
{
	const uint8_t *row = w->p;
	uint64_t r = 0, rows = w->rows, rb = w->row_bytes;
	if (w->type == GGML_Q8_0) {
		/* Q8_0, the format of the test model and of TinyLlama's Q8_0
		 * file, picked once per matrix, not per row; two rows per step
		 * share each load of x. Every row keeps its own sums in
		 * dot_q8's order, so out[] is the same as row by row. */
		const float *f16 = m->f16;
		uint64_t n = w->cols;
		for (; r + 2 <= rows; r += 2, row += 2 * rb) {
			v4f a0 = {0, 0, 0, 0}, b0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0}, b1 = {0, 0, 0, 0};
			const uint8_t *r0 = row, *r1 = row + rb;
			for (uint64_t i = 0; i < n; i += GGUF_Q8_BLOCK, r0 += GGUF_Q8_BLOCK_BYTES, r1 += GGUF_Q8_BLOCK_BYTES) {
				q8_block(f16, r0, x + i, &a0, &b0);
				q8_block(f16, r1, x + i, &a1, &b1);
			}
			out[r] = hsum(a0, b0);
			out[r + 1] = hsum(a1, b1);
		}
		if (r < rows)
			out[r] = dot_q8(f16, row, x, n);
		return;
	}
	for (; r < rows; r++, row += rb)
		out[r] = dot(m, w, row, x);
}

static void rmsnorm(float *out, const float *x, const float *w, uint32_t n, float eps)
{
	float ss = 0;
	for (uint32_t i = 0; i < n; i++)
		ss += x[i] * x[i];
	float scale = 1 / fl_sqrtf_inline(ss / (float)n + eps);
	for (uint32_t i = 0; i < n; i++)
		out[i] = x[i] * scale * w[i];
}

static void rope(const struct llama_model *m, float *v, uint32_t n_heads, uint32_t pos)
{
	uint32_t half = m->rope_dim / 2;
	const float *cs = m->rope_cos + (uint64_t)pos * half, *sn = m->rope_sin + (uint64_t)pos * half;
	for (uint32_t h = 0; h < n_heads; h++) {
		float *hv = v + (uint64_t)h * m->head_dim;
		for (uint32_t i = 0; i < half; i++) {
			float a = hv[2 * i], b = hv[2 * i + 1];
			hv[2 * i] = a * cs[i] - b * sn[i];
			hv[2 * i + 1] = a * sn[i] + b * cs[i];
		}
	}
}

static float silu(float x) { return x / (1 + fl_expf_inline(-x)); }

/* Invariant (kept by the caller, llama.c and the harness): token < vocab
 * and m->pos < context, so every cache index below is in bounds. */
const float *llama_forward(struct llama_model *m, uint32_t token)
{
	uint64_t kv_dim = (uint64_t)m->head_dim * m->kv_heads, cache_l = (uint64_t)m->context * kv_dim;
	uint32_t group = m->heads / m->kv_heads, pos = m->pos, dim = m->dim;
	dequant_row(m, &m->embd, token, m->x);
	uint32_t hd = m->head_dim;
	float scale = 1 / fl_sqrtf_inline((float)hd);
	float *scores = m->scores;
	for (uint32_t l = 0; l < m->layers; l++) {
		const struct llama_layer *ly = &m->layer[l];
		float *kc = m->kcache + l * cache_l, *vc = m->vcache + l * cache_l;
		float *k = kc + pos * kv_dim, *v = vc + pos * kv_dim;
		rmsnorm(m->xb, m->x, ly->attn_norm, dim, m->eps);
		matmul(m, m->q, &ly->wq, m->xb);
		matmul(m, k, &ly->wk, m->xb);
		matmul(m, v, &ly->wv, m->xb);
		rope(m, m->q, m->heads, pos);
		rope(m, k, m->kv_heads, pos);
		/* The loops over a head (head_dim long: 8 in the test model) are
		 * written in 4-lane vectors with a scalar tail, the same
		 * operations per element as scalar code. Left to the loop
		 * vectorizer, a PGO build saw their short trip count and folded
		 * the tail into emulated masked stores (SSE2 has none), slower
		 * than the -O2 build's plain vector loop. */
		for (uint32_t h = 0; h < m->heads; h++) {
			const float *qh = m->q + (uint64_t)h * hd;
			uint64_t kv_off = (uint64_t)(h / group) * hd;
			float max_s = -__builtin_inff();
			for (uint32_t t = 0; t <= pos; t++) {
				const float *kt = kc + t * kv_dim + kv_off;
				float s = 0;
				for (uint32_t i = 0; i < hd; i++)
					s += qh[i] * kt[i]; /* in index order, as Go */
				s *= scale;
				scores[t] = s;
				if (s > max_s)
					max_s = s;
			}
			float sum = 0;
			for (uint32_t t = 0; t <= pos; t++) {
				scores[t] = fl_expf_inline(scores[t] - max_s);
				sum += scores[t];
			}
			float *out = m->att + (uint64_t)h * hd;
			uint32_t i = 0;
			for (; i + 4 <= hd; i += 4)
				st4(out + i, (v4f){0, 0, 0, 0});
#pragma clang loop vectorize(disable) unroll(disable)
			for (; i < hd; i++)
				out[i] = 0;
			for (uint32_t t = 0; t <= pos; t++) {
				float a = scores[t] / sum;
				v4f av = {a, a, a, a};
				const float *vt = vc + t * kv_dim + kv_off;
				for (i = 0; i + 4 <= hd; i += 4)
					st4(out + i, ld4(out + i) + av * ld4(vt + i));
#pragma clang loop vectorize(disable) unroll(disable)
				for (; i < hd; i++)
					out[i] += a * vt[i];
			}
		}
		matmul(m, m->proj, &ly->wo, m->att);
		for (uint32_t i = 0; i < dim; i++)
			m->x[i] += m->proj[i];
		rmsnorm(m->xb, m->x, ly->ffn_norm, dim, m->eps);
		matmul(m, m->h1, &ly->gate, m->xb);
		matmul(m, m->h3, &ly->up, m->xb);
		float *h1 = m->h1;
		const float *h3 = m->h3;
		for (uint32_t i = 0; i < m->hidden; i++)
			h1[i] = silu(h1[i]) * h3[i];
		matmul(m, m->proj, &ly->down, m->h1);
		for (uint32_t i = 0; i < dim; i++)
			m->x[i] += m->proj[i];
	}
	rmsnorm(m->xb, m->x, m->out_norm, dim, m->eps);
	matmul(m, m->logits, &m->out, m->xb);
	m->pos++;
	return m->logits;
}

/* Greedy sampling as Go's Argmax: the highest logit, the lowest id on a tie. */
uint32_t llama_argmax(const float *logits, uint32_t n)
{
	uint32_t best = 0;
	for (uint32_t i = 1; i < n; i++)
		if (logits[i] > logits[best])
			best = i;
	return best;
}
