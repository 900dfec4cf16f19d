// Package gguf reads and writes GGUF version 3 files, the single-file model
// format of llama.cpp/ggml, for the F32, F16 and Q8_0 tensor types.
//
// Layout relied on (little-endian throughout), from ggml's docs/gguf.md
// (github.com/ggml-org/ggml/blob/master/docs/gguf.md) and ggml.h/gguf.h in
// llama.cpp (GGUF_MAGIC "GGUF", GGUF_VERSION 3, GGUF_DEFAULT_ALIGNMENT 32,
// enum gguf_type, enum ggml_type, block_q8_0):
//
//	header:      magic "GGUF" | version u32 = 3 | tensor_count u64 | metadata_kv_count u64
//	string:      len u64 | len bytes of UTF-8 (no NUL)
//	metadata kv: key string | value_type u32 | value
//	value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte),
//	             8 string, 9 array (elem_type u32 | count u64 | elems), 10 u64,
//	             11 i64, 12 f64
//	tensor info: name string | n_dims u32 | dims u64[n_dims] | type u32 | offset u64
//	padding:     zero bytes up to a multiple of general.alignment (u32, default 32)
//	tensor data: each tensor at data_start+offset, offset a multiple of the alignment
//
// dims[0] is the innermost (contiguous) dimension: a weight of dims [in, out]
// is out rows of in elements. Tensor types: 0 F32, 1 F16, 8 Q8_0 (blocks of 32
// elements: f16 scale d, then 32 int8 qs; value = d*qs[i]; 34 bytes a block).
//
// The reader trusts nothing: every count, length and offset is checked
// against the bytes present with overflow-safe arithmetic, and a malformed
// file is refused with an error naming the field.
package gguf

import (
	"fmt"
	"math"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the only GGUF version this package reads and writes.
const Version = 3

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// MaxKVs and MaxTensors are the most metadata pairs and tensors a file may
// declare (modules/llama/gguf.h GGUF_MAX_KVS, GGUF_MAX_TENSORS): TinyLlama
// has 23 and 201, the largest Llama files some hundreds. The module's C
// reader checks duplicate names by comparing every pair; the bound keeps
// that within a fraction of a second for any file.
const (
	MaxKVs     = 4096
	MaxTensors = 4096
)

// AlignmentKey is the metadata key that sets the data alignment.
const AlignmentKey = "general.alignment"

// ValueType is a GGUF metadata value type.
type ValueType uint32

// The GGUF metadata value types (enum gguf_type).
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

func (t ValueType) String() string {
	names := [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("value type %d", uint32(t))
}

// scalarSize is the encoded size of a fixed-size value type, 0 for string
// and array, -1 for an unknown type.
func scalarSize(t ValueType) int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	case TypeString, TypeArray:
		return 0
	}
	return -1
}

// Value is one metadata value. Scalars are held as the Go type of the same
// width (uint8, int8, ..., float64, bool, string); an array is an Array.
type Value struct {
	Type ValueType
	V    any
}

// Array is a GGUF array: Elem is the element type, and Values holds a Go
// slice of that type ([]uint8, []int32, []float32, []string, []bool, ...),
// or []Array for arrays of arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// KV is one metadata key/value pair; a file's pairs keep their order.
type KV struct {
	Key   string
	Value Value
}

// TensorType is a ggml tensor type.
type TensorType uint32

// The tensor types this package supports.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q8_0 TensorType = 8
)

// Q8Block is the number of elements in a Q8_0 block; Q8BlockBytes its size.
const (
	Q8Block      = 32
	Q8BlockBytes = 2 + Q8Block
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q8_0:
		return "Q8_0"
	}
	return fmt.Sprintf("tensor type %d", uint32(t))
}

// DataSize returns the bytes n elements of type t take, or an error if t
// is unsupported, n does not fill whole blocks, or the size overflows.
func (t TensorType) DataSize(n uint64) (uint64, error) {
	switch t {
	case F32:
		return mulU64(n, 4)
	case F16:
		return mulU64(n, 2)
	case Q8_0:
		if n%Q8Block != 0 {
			return 0, fmt.Errorf("%d elements is not a whole number of Q8_0 blocks of %d", n, Q8Block)
		}
		return mulU64(n/Q8Block, Q8BlockBytes)
	}
	return 0, fmt.Errorf("unknown tensor type %d (supported: F32=0, F16=1, Q8_0=8)", uint32(t))
}

// TensorInfo describes one tensor. Offset is relative to the start of the
// data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64
}

// Elements is the product of the dims (checked not to overflow by the reader).
func (ti TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range ti.Dims {
		n *= d
	}
	return n
}

func mulU64(a, b uint64) (uint64, error) {
	if a != 0 && b > math.MaxUint64/a {
		return 0, fmt.Errorf("%d*%d overflows uint64", a, b)
	}
	return a * b, nil
}

func addU64(a, b uint64) (uint64, error) {
	if a > math.MaxUint64-b {
		return 0, fmt.Errorf("%d+%d overflows uint64", a, b)
	}
	return a + b, nil
}

// alignUp rounds n up to a multiple of align (align > 0).
func alignUp(n, align uint64) (uint64, error) {
	r := n % align
	if r == 0 {
		return n, nil
	}
	return addU64(n, align-r)
}

// F16ToF32 converts an IEEE binary16 to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// F32ToF16 converts a float32 to binary16, rounding to nearest even.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is correct (up to inf)
	}
	return sign | uint16(r)
}
