/*
 * tok.c — the SentencePiece tokenizer of tokenizer.ggml.*, exactly as
 * internal/llama/tokenizer.go does it: a leading "▁", spaces become "▁",
 * the text is split into UTF-8 characters (an invalid byte is one symbol,
 * like Go's utf8.DecodeRuneInString), the adjacent pair whose
 * concatenation is a token with the highest score is merged (leftmost on a
 * tie) until none is, and a piece that is no token falls back to its
 * <0xNN> byte tokens.
 */
#include "fmt.h"
#include "llama.h"

#define TYPE_CONTROL 3
#define TYPE_BYTE    6

static const uint8_t space_mark[3] = {0xe2, 0x96, 0x81}; /* U+2581 "▁" */

static uint64_t hash_bytes(const uint8_t *p, uint64_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* The id of the token spelled p[0..n) (byte tokens excluded, first id of
 * a duplicate), or -1. */
static int64_t lookup(const struct llama_tok *t, const uint8_t *p, uint64_t n)
{
	for (uint64_t h = hash_bytes(p, n) & t->hmask;; h = (h + 1) & t->hmask) {
		uint32_t e = t->hash[h];
		if (e == 0)
			return -1;
		const struct gguf_str *s = &t->text[e - 1];
		if (s->n == n && memcmp(s->p, p, n) == 0)
			return e - 1;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of a "<0xNN>" byte token, or -1. */
static int byte_value(struct gguf_str s)
{
	if (s.n != 6 || memcmp(s.p, "<0x", 3) != 0 || s.p[5] != '>')
		return -1;
	int hi = hexval(s.p[3]), lo = hexval(s.p[4]);
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static const struct gguf_kv *need(const struct gguf_file *f, const char *key, uint32_t type,
				  uint32_t elem, char *err, size_t errcap)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) {
		fl_fmt(err, errcap, "metadata %s is missing", key);
		return NULL;
	}
	if (kv->type != type || (type == GGUF_ARRAY && kv->elem_type != elem)) {
		fl_fmt(err, errcap, "metadata %s is a %s, want %s%s", key, gguf_type_name(kv->type),
		       type == GGUF_ARRAY ? "an array of " : "a ",
		       gguf_type_name(type == GGUF_ARRAY ? elem : type));
		return NULL;
	}
	return kv;
}

int llama_get_uint(const struct gguf_file *f, const char *key, uint64_t *v, char *err, size_t errcap);

void tok_free(struct llama_tok *t, const struct fluid_services *svc)
{
	void *ps[] = {t->text, t->score, t->type, t->hash};
	for (unsigned i = 0; i < sizeof ps / sizeof ps[0]; i++)
		if (ps[i])
			svc->free(ps[i]);
	memset(t, 0, sizeof *t);
}

int tok_load(struct llama_tok *t, const struct gguf_file *f, const struct fluid_services *svc,
	     char *err, size_t errcap)
{
	memset(t, 0, sizeof *t);
	const struct gguf_kv *model = need(f, "tokenizer.ggml.model", GGUF_STRING, 0, err, errcap);
	if (!model)
		return -1;
	struct gguf_str ms = {(const char *)model->val + 8, gguf_u64(model->val)};
	if (!gguf_streq(ms, "llama")) {
		fl_fmt(err, errcap, "tokenizer.ggml.model is \"%S\": only the SentencePiece \"llama\" tokenizer is supported",
		       ms.p, ms.n);
		return -1;
	}
	const struct gguf_kv *toks = need(f, "tokenizer.ggml.tokens", GGUF_ARRAY, GGUF_STRING, err, errcap);
	const struct gguf_kv *scores = toks ? need(f, "tokenizer.ggml.scores", GGUF_ARRAY, GGUF_F32, err, errcap) : NULL;
	const struct gguf_kv *types = scores ? need(f, "tokenizer.ggml.token_type", GGUF_ARRAY, GGUF_I32, err, errcap) : NULL;
	if (!types)
		return -1;
	if (scores->count != toks->count || types->count != toks->count || toks->count == 0 ||
	    toks->count > (1u << 24)) {
		fl_fmt(err, errcap, "tokenizer.ggml: %llu tokens but %llu scores and %llu token types: they must agree (and be 1..%u)",
		       toks->count, scores->count, types->count, 1u << 24);
		return -1;
	}
	uint64_t bos, eos;
	if (llama_get_uint(f, "tokenizer.ggml.bos_token_id", &bos, err, errcap) ||
	    llama_get_uint(f, "tokenizer.ggml.eos_token_id", &eos, err, errcap))
		return -1;
	uint32_t n = (uint32_t)toks->count;
	if (bos >= n || eos >= n) {
		fl_fmt(err, errcap, "tokenizer.ggml.bos_token_id %llu / eos_token_id %llu: not below the vocabulary size %u",
		       bos, eos, n);
		return -1;
	}
	t->n = n;
	t->bos = (uint32_t)bos;
	t->eos = (uint32_t)eos;
	uint64_t hsize = 1;
	while (hsize < 2ull * n)
		hsize <<= 1;
	t->hmask = hsize - 1;
	t->text = svc->alloc(n * sizeof *t->text);
	t->score = svc->alloc(n * sizeof *t->score);
	t->type = svc->alloc(n * sizeof *t->type);
	t->hash = svc->alloc(hsize * sizeof *t->hash);
	if (!t->text || !t->score || !t->type || !t->hash) {
		tok_free(t, svc);
		fl_fmt(err, errcap, "tokenizer.ggml.tokens: out of memory for %u tokens", n);
		return -1;
	}
	memset(t->hash, 0, hsize * sizeof *t->hash);
	for (int i = 0; i < 256; i++)
		t->bytes[i] = -1;
	/* The array's strings were bounds checked by gguf_parse: walk them again. */
	const uint8_t *p = toks->elems;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t len = gguf_u64(p);
		t->text[i].p = (const char *)p + 8;
		t->text[i].n = len;
		p += 8 + len;
		t->score[i] = gguf_f32(scores->elems + 4 * (uint64_t)i);
		t->type[i] = (int32_t)gguf_u32(types->elems + 4 * (uint64_t)i);
		if (t->type[i] == TYPE_BYTE) {
			int b = byte_value(t->text[i]);
			if (b < 0) {
				fl_fmt(err, errcap, "tokenizer.ggml.tokens[%u] \"%S\" has the byte type but is not <0xXX>", i,
				       t->text[i].p, t->text[i].n);
				tok_free(t, svc);
				return -1;
			}
			t->bytes[b] = (int32_t)i;
			continue;
		}
		if (lookup(t, (const uint8_t *)t->text[i].p, t->text[i].n) >= 0)
			continue; /* a duplicate: the first id keeps the string */
		uint64_t h = hash_bytes((const uint8_t *)t->text[i].p, t->text[i].n) & t->hmask;
		while (t->hash[h])
			h = (h + 1) & t->hmask;
		t->hash[h] = i + 1;
	}
	return 0;
}

/* The width of the UTF-8 character at s[0..n) as utf8.DecodeRuneInString
 * counts it: its length when valid, 1 for any invalid byte. */
static uint64_t rune_len(const uint8_t *s, uint64_t n)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	uint64_t w;
	uint8_t lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		w = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		w = 3;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		w = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return 1;
	if (n < w || s[1] < lo || s[1] > hi)
		return 1;
	for (uint64_t i = 2; i < w; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 1;
	return w;
}

int tok_encode(const struct llama_tok *t, const uint8_t *text, uint64_t n, int bos, uint32_t *out,
	       uint64_t *nout, const struct fluid_services *svc, char *err, size_t errcap)
{
	uint64_t k = 0;
	if (bos)
		out[k++] = t->bos;
	*nout = k;
	if (n == 0)
		return 0;
	uint64_t spaces = 0;
	for (uint64_t i = 0; i < n; i++)
		spaces += text[i] == ' ';
	uint64_t len = 3 + n + 2 * spaces;
	uint8_t *s = svc->alloc(len);
	uint64_t *start = svc->alloc(len * sizeof *start), *end = svc->alloc(len * sizeof *end);
	if (!s || !start || !end) {
		if (s)
			svc->free(s);
		if (start)
			svc->free(start);
		if (end)
			svc->free(end);
		fl_fmt(err, errcap, "tokenize: out of memory for a text of %llu bytes", n);
		return -1;
	}
	memcpy(s, space_mark, 3);
	uint64_t j = 3;
	for (uint64_t i = 0; i < n; i++) {
		if (text[i] == ' ') {
			memcpy(s + j, space_mark, 3);
			j += 3;
		} else
			s[j++] = text[i];
	}
	uint64_t ns = 0;
	for (uint64_t i = 0; i < len;) {
		uint64_t w = rune_len(s + i, len - i);
		start[ns] = i;
		end[ns++] = i + w;
		i += w;
	}
	/* Merge the best-scoring adjacent pair (strictly greater wins, so the
	 * leftmost on a tie) until no pair spells a token. Symbols stay
	 * contiguous: end[i] == start[i+1]. */
	for (;;) {
		int64_t best = -1;
		float best_score = 0;
		for (uint64_t i = 0; i + 1 < ns; i++) {
			int64_t id = lookup(t, s + start[i], end[i + 1] - start[i]);
			if (id >= 0 && (best < 0 || t->score[id] > best_score)) {
				best = (int64_t)i;
				best_score = t->score[id];
			}
		}
		if (best < 0)
			break;
		end[best] = end[best + 1];
		for (uint64_t i = (uint64_t)best + 1; i + 1 < ns; i++) {
			start[i] = start[i + 1];
			end[i] = end[i + 1];
		}
		ns--;
	}
	int rc = 0;
	for (uint64_t i = 0; i < ns && rc == 0; i++) {
		int64_t id = lookup(t, s + start[i], end[i] - start[i]);
		if (id >= 0) {
			out[k++] = (uint32_t)id;
			continue;
		}
		for (uint64_t b = start[i]; b < end[i]; b++) {
			if (t->bytes[s[b]] < 0) {
				fl_fmt(err, errcap, "tokenize \"%S\": byte 0x%02x has no token and no <0x%02x> byte token exists",
				       (const char *)text, n, s[b], s[b]);
				rc = -1;
				break;
			}
			out[k++] = (uint32_t)t->bytes[s[b]];
		}
	}
	svc->free(s);
	svc->free(start);
	svc->free(end);
	*nout = k;
	return rc;
}

uint8_t *tok_decode(const struct llama_tok *t, const uint32_t *ids, uint64_t n, uint64_t *len,
		    const struct fluid_services *svc)
{
	uint64_t cap = 1;
	for (uint64_t i = 0; i < n; i++)
		if (ids[i] < t->n)
			cap += t->text[ids[i]].n;
	uint8_t *b = svc->alloc(cap);
	if (!b)
		return NULL;
	uint64_t k = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (ids[i] >= t->n)
			continue;
		uint32_t id = ids[i];
		if (t->type[id] == TYPE_CONTROL)
			continue;
		if (t->type[id] == TYPE_BYTE) {
			/* As Go: the byte whose byte token is this id (none for a
			 * duplicate byte token that lost the slot). */
			int v = byte_value(t->text[id]);
			if (v >= 0 && t->bytes[v] == (int32_t)id)
				b[k++] = (uint8_t)v;
			continue;
		}
		const uint8_t *p = (const uint8_t *)t->text[id].p;
		uint64_t m = t->text[id].n;
		for (uint64_t j = 0; j < m;) {
			if (j + 3 <= m && memcmp(p + j, space_mark, 3) == 0) {
				b[k++] = ' ';
				j += 3;
			} else
				b[k++] = p[j++];
		}
	}
	/* The one leading space Encode adds is removed. */
	if (k > 0 && b[0] == ' ') {
		memmove(b, b + 1, k - 1);
		k--;
	}
	b[k] = 0;
	*len = k;
	return b;
}
