/*
 * gguf.c — the GGUF v3 reader (see gguf.h). It trusts nothing in the file:
 * every count, length and offset is checked against the bytes that remain
 * before it is used, with arithmetic that cannot overflow, and a malformed
 * file is refused naming the field, as internal/gguf/read.go does.
 */
#include "gguf.h"
#include "fmt.h"

#define MAX_ARRAY_DEPTH 4
#define MAX_STRING_LEN  (1ull << 30)
#define DEFAULT_ALIGNMENT 32u

struct rd {
	const uint8_t *b;
	uint64_t size, off;
	char *err;
	size_t errcap;
};

static int fail(struct rd *r, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	fl_vfmt(r->err, r->errcap, f, ap);
	va_end(ap);
	return -1;
}

static uint64_t left(const struct rd *r) { return r->size - r->off; }

/* Invariant: r->off <= r->size always; take advances only past bytes that exist. */
static int take(struct rd *r, const char *field, uint64_t n, const uint8_t **p)
{
	if (n > left(r))
		return fail(r, "%s at byte %llu: truncated: needs %llu bytes, %llu left in the file",
			    field, r->off, n, left(r));
	*p = r->b + r->off;
	r->off += n;
	return 0;
}

static int rd_u32(struct rd *r, const char *field, uint32_t *v)
{
	const uint8_t *p = NULL;
	if (take(r, field, 4, &p))
		return -1;
	*v = gguf_u32(p);
	return 0;
}

static int rd_u64(struct rd *r, const char *field, uint64_t *v)
{
	const uint8_t *p = NULL;
	if (take(r, field, 8, &p))
		return -1;
	*v = gguf_u64(p);
	return 0;
}

/* Whether p[0..n) is valid UTF-8 as Go's utf8.Valid has it (no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static int utf8_valid(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		uint64_t w;
		uint8_t lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			w = 2;
		else if (c >= 0xe0 && c <= 0xef)
			w = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		else if (c >= 0xf0 && c <= 0xf4)
			w = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		else
			return 0;
		if (n - i < w || p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (uint64_t j = 2; j < w; j++)
			if (p[i + j] < 0x80 || p[i + j] > 0xbf)
				return 0;
		i += w;
	}
	return 1;
}

static int rd_str(struct rd *r, const char *field, struct gguf_str *s)
{
	char f[160];
	uint64_t at = r->off, n;
	fl_fmt(f, sizeof f, "%s.length", field);
	if (rd_u64(r, f, &n))
		return -1;
	if (n > MAX_STRING_LEN)
		return fail(r, "%s at byte %llu: string length %llu exceeds the limit %llu", f, at, n, MAX_STRING_LEN);
	const uint8_t *p = NULL;
	if (take(r, field, n, &p))
		return -1;
	if (!utf8_valid(p, n))
		return fail(r, "%s at byte %llu: string is not valid UTF-8", field, at + 8);
	s->p = (const char *)p;
	s->n = n;
	return 0;
}

/* Encoded size of a fixed-size value type; 0 for string/array, -1 unknown. */
static int scalar_size(uint32_t t)
{
	switch (t) {
	case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
	case GGUF_U16: case GGUF_I16: return 2;
	case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
	case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
	case GGUF_STRING: case GGUF_ARRAY: return 0;
	}
	return -1;
}

const char *gguf_type_name(uint32_t t)
{
	static const char *const names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32",
					    "float32", "bool", "string", "array", "uint64", "int64", "float64"};
	return t < 13 ? names[t] : "unknown value type";
}

const char *gguf_tensor_type_name(uint32_t t)
{
	switch (t) {
	case GGML_F32: return "F32";
	case GGML_F16: return "F16";
	case GGML_Q8_0: return "Q8_0";
	}
	return "unsupported";
}

/* Skips (and checks) one value of type t whose type field was at `at`. */
static int skip_value(struct rd *r, const char *field, uint32_t t, uint64_t at, int depth,
		      struct gguf_kv *kv)
{
	char f[160];
	if (kv)
		kv->val = r->b + r->off;
	if (t == GGUF_STRING) {
		struct gguf_str s;
		return rd_str(r, field, &s);
	}
	if (t == GGUF_ARRAY) {
		if (depth >= MAX_ARRAY_DEPTH)
			return fail(r, "%s at byte %llu: arrays nested deeper than %d", field, at, MAX_ARRAY_DEPTH);
		uint32_t et;
		uint64_t eat = r->off, n;
		fl_fmt(f, sizeof f, "%s.elem_type", field);
		if (rd_u32(r, f, &et))
			return -1;
		int es = scalar_size(et);
		if (es < 0)
			return fail(r, "%s at byte %llu: unknown value type %u", f, eat, et);
		uint64_t cat = r->off;
		fl_fmt(f, sizeof f, "%s.count", field);
		if (rd_u64(r, f, &n))
			return -1;
		uint64_t min = et == GGUF_STRING ? 8 : et == GGUF_ARRAY ? 12 : (uint64_t)es;
		if (n > left(r) / min)
			return fail(r, "%s at byte %llu: %llu elements of %s cannot fit in the %llu bytes left",
				    f, cat, n, gguf_type_name(et), left(r));
		if (kv) {
			kv->elem_type = et;
			kv->count = n;
			kv->elems = r->b + r->off;
		}
		if (es > 0) {
			const uint8_t *p = NULL;
			if (take(r, field, n * (uint64_t)es, &p)) /* n*es <= left: checked above */
				return -1;
			if (et == GGUF_BOOL)
				for (uint64_t i = 0; i < n; i++)
					if (p[i] > 1)
						return fail(r, "%s[%llu] at byte %llu: bool byte is %u, want 0 or 1",
							    field, i, (uint64_t)(p - r->b) + i, p[i]);
			return 0;
		}
		for (uint64_t i = 0; i < n; i++) {
			fl_fmt(f, sizeof f, "%s[%llu]", field, i);
			if (skip_value(r, f, et, r->off, depth + 1, NULL))
				return -1;
		}
		return 0;
	}
	int size = scalar_size(t);
	if (size <= 0)
		return fail(r, "%s at byte %llu: unknown value type %u", field, at, t);
	const uint8_t *p = NULL;
	if (take(r, field, (uint64_t)size, &p))
		return -1;
	if (t == GGUF_BOOL && p[0] > 1)
		return fail(r, "%s at byte %llu: bool byte is %u, want 0 or 1", field, at + 4, p[0]);
	return 0;
}

int gguf_streq(struct gguf_str s, const char *z)
{
	uint64_t i = 0;
	for (; i < s.n; i++)
		if (z[i] != s.p[i] || z[i] == 0)
			return 0;
	return z[i] == 0;
}

static int str_eq(struct gguf_str a, struct gguf_str b)
{
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* n = a*b unless it overflows uint64 (then returns -1). */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *n)
{
	if (a != 0 && b > UINT64_MAX / a)
		return -1;
	*n = a * b;
	return 0;
}

static int tensor_bytes(uint32_t type, uint64_t n, uint64_t *size)
{
	switch (type) {
	case GGML_F32: return mul_ok(n, 4, size);
	case GGML_F16: return mul_ok(n, 2, size);
	case GGML_Q8_0:
		if (n % GGUF_Q8_BLOCK)
			return -1;
		return mul_ok(n / GGUF_Q8_BLOCK, GGUF_Q8_BLOCK_BYTES, size);
	}
	return -1;
}

void gguf_free(struct gguf_file *f, const struct fluid_services *svc)
{
	if (f->kvs)
		svc->free(f->kvs);
	if (f->tensors)
		svc->free(f->tensors);
	f->kvs = NULL;
	f->tensors = NULL;
}

int gguf_parse(struct gguf_file *f, const void *buf, uint64_t size,
	       const struct fluid_services *svc, char *err, size_t errcap)
{
	struct rd r = {buf, size, 0, err, errcap};
	char field[160];
	const uint8_t *p = NULL;
	memset(f, 0, sizeof *f);
	f->b = buf;
	f->size = size;
	if (take(&r, "magic", 4, &p))
		return -1;
	if (memcmp(p, "GGUF", 4) != 0)
		return fail(&r, "magic at byte 0: got \"%S\", want \"GGUF\": not a GGUF file", (const char *)p, (uint64_t)4);
	uint32_t version;
	if (rd_u32(&r, "version", &version))
		return -1;
	if (version != 3)
		return fail(&r, "version at byte 4: version %u, only 3 is supported", version);
	if (rd_u64(&r, "tensor_count", &f->n_tensors) || rd_u64(&r, "metadata_kv_count", &f->n_kv))
		return -1;
	/* A kv takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8:
	 * counts beyond what the rest of the file holds are refused before any
	 * allocation (and so cannot overflow n * sizeof below). */
	if (f->n_kv > left(&r) / 13)
		return fail(&r, "metadata_kv_count at byte 16: %llu pairs cannot fit in the %llu bytes that follow the header",
			    f->n_kv, left(&r));
	if (f->n_tensors > left(&r) / 24)
		return fail(&r, "tensor_count at byte 8: %llu tensors cannot fit in the %llu bytes that follow the header",
			    f->n_tensors, left(&r));
	if (f->n_kv > GGUF_MAX_KVS)
		return fail(&r, "metadata_kv_count at byte 16: %llu pairs, more than the %llu this reader takes",
			    f->n_kv, (uint64_t)GGUF_MAX_KVS);
	if (f->n_tensors > GGUF_MAX_TENSORS)
		return fail(&r, "tensor_count at byte 8: %llu tensors, more than the %llu this reader takes",
			    f->n_tensors, (uint64_t)GGUF_MAX_TENSORS);
	f->kvs = svc->alloc((f->n_kv ? f->n_kv : 1) * sizeof *f->kvs);
	f->tensors = svc->alloc((f->n_tensors ? f->n_tensors : 1) * sizeof *f->tensors);
	if (!f->kvs || !f->tensors) {
		gguf_free(f, svc);
		return fail(&r, "metadata_kv_count/tensor_count: out of memory for %llu pairs and %llu tensors",
			    f->n_kv, f->n_tensors);
	}
	memset(f->kvs, 0, (f->n_kv ? f->n_kv : 1) * sizeof *f->kvs);
	for (uint64_t i = 0; i < f->n_kv; i++) {
		struct gguf_kv *kv = &f->kvs[i];
		fl_fmt(field, sizeof field, "kv[%llu].key", i);
		if (rd_str(&r, field, &kv->key))
			goto bad;
		for (uint64_t j = 0; j < i; j++)
			if (str_eq(f->kvs[j].key, kv->key)) {
				fail(&r, "kv[%llu] (%S).key at byte %llu: duplicate key", i, kv->key.p, kv->key.n, r.off);
				goto bad;
			}
		uint64_t at = r.off;
		fl_fmt(field, sizeof field, "kv[%llu] (%S).type", i, kv->key.p, kv->key.n);
		if (rd_u32(&r, field, &kv->type))
			goto bad;
		fl_fmt(field, sizeof field, "kv[%llu] (%S).value", i, kv->key.p, kv->key.n);
		if (scalar_size(kv->type) < 0) {
			fail(&r, "kv[%llu] (%S).type at byte %llu: unknown value type %u", i, kv->key.p, kv->key.n, at, kv->type);
			goto bad;
		}
		if (skip_value(&r, field, kv->type, at, 0, kv))
			goto bad;
	}
	f->alignment = DEFAULT_ALIGNMENT;
	const struct gguf_kv *al = gguf_find(f, "general.alignment");
	if (al) {
		uint32_t a = al->type == GGUF_U32 ? gguf_u32(al->val) : 0;
		if (a == 0 || (a & (a - 1)) != 0) {
			fail(&r, "general.alignment: must be a uint32 power of two, got a %s%s", gguf_type_name(al->type),
			     al->type == GGUF_U32 ? " that is not" : "");
			goto bad;
		}
		f->alignment = a;
	}
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		struct gguf_tensor *t = &f->tensors[i];
		fl_fmt(field, sizeof field, "tensor_infos[%llu].name", i);
		if (rd_str(&r, field, &t->name))
			goto bad;
		for (uint64_t j = 0; j < i; j++)
			if (str_eq(f->tensors[j].name, t->name)) {
				fail(&r, "tensor_infos[%llu].name: duplicate tensor name \"%S\"", i, t->name.p, t->name.n);
				goto bad;
			}
		uint64_t at = r.off;
		fl_fmt(field, sizeof field, "tensor_infos[%llu].n_dims", i);
		if (rd_u32(&r, field, &t->n_dims))
			goto bad;
		if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
			fail(&r, "tensor_infos[%llu].n_dims at byte %llu: %u dimensions, want 1..%u (tensor %S)", i, at,
			     t->n_dims, GGUF_MAX_DIMS, t->name.p, t->name.n);
			goto bad;
		}
		uint64_t n = 1;
		for (uint32_t d = 0; d < t->n_dims; d++) {
			at = r.off;
			fl_fmt(field, sizeof field, "tensor_infos[%llu].dims[%u]", i, d);
			if (rd_u64(&r, field, &t->dims[d]))
				goto bad;
			if (t->dims[d] == 0) {
				fail(&r, "%s at byte %llu: dimension is 0 (tensor %S)", field, at, t->name.p, t->name.n);
				goto bad;
			}
			if (mul_ok(n, t->dims[d], &n)) {
				fail(&r, "%s at byte %llu: the element count overflows uint64 (tensor %S)", field, at,
				     t->name.p, t->name.n);
				goto bad;
			}
		}
		t->elements = n;
		at = r.off;
		fl_fmt(field, sizeof field, "tensor_infos[%llu].type", i);
		if (rd_u32(&r, field, &t->type))
			goto bad;
		if (t->type != GGML_F32 && t->type != GGML_F16 && t->type != GGML_Q8_0) {
			fail(&r, "tensor_infos[%llu].type at byte %llu: tensor type %u is not supported (supported: F32=0, F16=1, Q8_0=8; tensor %S)",
			     i, at, t->type, t->name.p, t->name.n);
			goto bad;
		}
		if (t->type == GGML_Q8_0 && t->dims[0] % GGUF_Q8_BLOCK) {
			fail(&r, "tensor_infos[%llu].dims[0]: Q8_0 rows must be a multiple of %u elements, got %llu (tensor %S)",
			     i, GGUF_Q8_BLOCK, t->dims[0], t->name.p, t->name.n);
			goto bad;
		}
		if (tensor_bytes(t->type, n, &t->size)) {
			fail(&r, "tensor_infos[%llu].dims: %llu elements of %s overflow the byte size (tensor %S)", i, n,
			     gguf_tensor_type_name(t->type), t->name.p, t->name.n);
			goto bad;
		}
		at = r.off;
		fl_fmt(field, sizeof field, "tensor_infos[%llu].offset", i);
		if (rd_u64(&r, field, &t->offset))
			goto bad;
		if (t->offset % f->alignment) {
			fail(&r, "tensor_infos[%llu].offset at byte %llu: offset %llu is not a multiple of the alignment %llu",
			     i, at, t->offset, f->alignment);
			goto bad;
		}
	}
	/* The data section starts at the next multiple of the alignment. */
	uint64_t pad = r.off % f->alignment ? f->alignment - r.off % f->alignment : 0;
	if (pad > left(&r)) {
		if (!(f->n_tensors == 0 && left(&r) == 0)) {
			fail(&r, "padding at byte %llu: truncated: the data section should start at byte %llu, the file has %llu bytes",
			     r.off, r.off + pad, size);
			goto bad;
		}
		pad = 0;
	}
	f->data_offset = r.off + pad;
	uint64_t data_len = size - f->data_offset;
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		struct gguf_tensor *t = &f->tensors[i];
		if (t->offset > data_len || t->size > data_len - t->offset) {
			fail(&r, "tensor_infos[%llu].offset %llu + %llu bytes past the end of the data (%llu bytes)", i,
			     t->offset, t->size, data_len);
			goto bad;
		}
		t->data = f->b + f->data_offset + t->offset;
	}
	return 0;
bad:
	gguf_free(f, svc);
	return -1;
}

const struct gguf_kv *gguf_find(const struct gguf_file *f, const char *key)
{
	for (uint64_t i = 0; i < f->n_kv; i++)
		if (gguf_streq(f->kvs[i].key, key))
			return &f->kvs[i];
	return NULL;
}

const struct gguf_tensor *gguf_tensor(const struct gguf_file *f, const char *name)
{
	for (uint64_t i = 0; i < f->n_tensors; i++)
		if (gguf_streq(f->tensors[i].name, name))
			return &f->tensors[i];
	return NULL;
}

float gguf_f16(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
	if (exp == 0x1f) {
		bits = sign | 0x7f800000u | mant << 13;
	} else if (exp == 0) {
		if (mant == 0) {
			bits = sign;
		} else {
			float v = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24, exact */
			return sign ? -v : v;
		}
	} else {
		bits = sign | (exp + 112) << 23 | mant << 13;
	}
	float f;
	__builtin_memcpy(&f, &bits, 4);
	return f;
}
