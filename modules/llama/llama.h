/*
 * llama.h — the llama module's model and tokenizer, mirroring the host
 * reference internal/llama (model.go, tokenizer.go) step for step. The
 * host harness (internal/llama/guest/testdata/llama_host.c) uses this API
 * too, to compare logits and tokenizations with Go.
 */
#ifndef LLAMA_LLAMA_H
#define LLAMA_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "fluid_module.h"
#include "gguf.h"

/* The SentencePiece tokenizer of tokenizer.ggml.* (tokenizer.go). */
struct llama_tok {
	uint32_t n;
	struct gguf_str *text;   /* token strings, inside the file */
	float *score;
	int32_t *type;
	uint32_t bos, eos;
	int32_t bytes[256];      /* byte value -> its <0xNN> token, or -1 */
	uint32_t *hash;          /* open addressing: id + 1, 0 = empty */
	uint64_t hmask;
};

/* A weight matrix of GGUF dims [cols, rows]: rows of cols elements. */
struct wmat {
	const uint8_t *p;
	uint32_t type;
	uint64_t rows, cols, row_bytes;
};

struct llama_layer {
	float *attn_norm, *ffn_norm;
	struct wmat wq, wk, wv, wo, gate, up, down;
};

struct llama_model {
	uint32_t context, dim, layers, hidden, heads, kv_heads, head_dim, rope_dim, vocab;
	float rope_base, eps;
	uint32_t wtype; /* type of blk.0.attn_q.weight, for the model line */
	struct llama_tok tok;
	struct wmat embd, out;
	float *out_norm;
	struct llama_layer *layer;
	float *kcache, *vcache;    /* layers * context * kv_dim each */
	float *rope_cos, *rope_sin; /* context * rope_dim/2 */
	float *f16;                 /* 65536-entry F16 -> F32 table */
	float *x, *xb, *q, *att, *proj, *scores, *h1, *h3, *logits;
	uint32_t pos;
	const struct fluid_services *svc;
};

int tok_load(struct llama_tok *t, const struct gguf_file *f, const struct fluid_services *svc,
	     char *err, size_t errcap);
void tok_free(struct llama_tok *t, const struct fluid_services *svc);
/* Encodes text[0..n) into out (room for 3*n + 4 ids always suffices). */
int tok_encode(const struct llama_tok *t, const uint8_t *text, uint64_t n, int bos, uint32_t *out,
	       uint64_t *nout, const struct fluid_services *svc, char *err, size_t errcap);
/* Decodes ids into a buffer from svc->alloc (free it), length in *len. */
uint8_t *tok_decode(const struct llama_tok *t, const uint32_t *ids, uint64_t n, uint64_t *len,
		    const struct fluid_services *svc);

int llama_load(struct llama_model *m, const struct gguf_file *f, const struct fluid_services *svc,
	       char *err, size_t errcap);
void llama_free(struct llama_model *m);
void llama_reset(struct llama_model *m);
/* Runs token (< vocab) at the next position (< context) and returns the
 * vocab logits, valid until the next call. */
const float *llama_forward(struct llama_model *m, uint32_t token);
uint32_t llama_argmax(const float *logits, uint32_t n);
/* Fills cos_t and sin_t (context * rope_dim/2 floats each, position-major)
 * with the RoPE table, bit for bit as Go's llama.RopeTable. */
void llama_rope_table(float *cos_t, float *sin_t, uint32_t context, uint32_t rope_dim, float base);

#endif
