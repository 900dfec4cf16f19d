/*
 * gguf.h — a GGUF version 3 reader over a const byte buffer (the layout is
 * described in internal/gguf/gguf.go): header, typed metadata, tensor
 * infos, general.alignment, aligned tensor data of types F32, F16, Q8_0.
 */
#ifndef LLAMA_GGUF_H
#define LLAMA_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "fluid_module.h"

enum {
	GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32,
	GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64,
};

enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8 };
#define GGUF_Q8_BLOCK       32u
#define GGUF_Q8_BLOCK_BYTES 34u
#define GGUF_MAX_DIMS       4u
/* The most metadata pairs and tensors a file may declare (internal/gguf
 * MaxKVs, MaxTensors): TinyLlama has 23 and 201, the largest Llama files
 * some hundreds. The bound keeps the duplicate-name checks, which compare
 * every pair, within a fraction of a second for any file. */
#define GGUF_MAX_KVS        4096u
#define GGUF_MAX_TENSORS    4096u

/* A string inside the file: not NUL-terminated. */
struct gguf_str {
	const char *p;
	uint64_t n;
};

struct gguf_kv {
	struct gguf_str key;
	uint32_t type;
	const uint8_t *val;   /* the value's bytes (for a string: its length field) */
	uint32_t elem_type;   /* arrays: element type, count and first element */
	uint64_t count;
	const uint8_t *elems;
};

struct gguf_tensor {
	struct gguf_str name;
	uint32_t n_dims;
	uint64_t dims[GGUF_MAX_DIMS];
	uint32_t type;
	uint64_t offset;
	uint64_t elements;
	uint64_t size;        /* bytes of data */
	const uint8_t *data;  /* inside the file, bounds checked */
};

struct gguf_file {
	const uint8_t *b;
	uint64_t size;
	uint64_t n_kv, n_tensors;
	struct gguf_kv *kvs;
	struct gguf_tensor *tensors;
	uint64_t alignment;
	uint64_t data_offset;
};

/* Parses buf[0..size). On success returns 0 and fills f (free with
 * gguf_free); on a malformed file returns -1 with err naming the bad field
 * ("magic: ...", "tensor_infos[3].offset ..."). */
int gguf_parse(struct gguf_file *f, const void *buf, uint64_t size,
	       const struct fluid_services *svc, char *err, size_t errcap);
void gguf_free(struct gguf_file *f, const struct fluid_services *svc);

const struct gguf_kv *gguf_find(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_tensor(const struct gguf_file *f, const char *name);
const char *gguf_type_name(uint32_t value_type);
const char *gguf_tensor_type_name(uint32_t tensor_type);

/* Little-endian loads from any address. */
static inline uint16_t gguf_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t gguf_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t gguf_u64(const uint8_t *p) { return gguf_u32(p) | (uint64_t)gguf_u32(p + 4) << 32; }
static inline float gguf_f32(const uint8_t *p)
{
	float f;
	__builtin_memcpy(&f, p, 4);
	return f;
}

/* IEEE binary16 to float32, exactly (as internal/gguf F16ToF32). */
float gguf_f16(uint16_t h);

int gguf_streq(struct gguf_str s, const char *z);

#endif
