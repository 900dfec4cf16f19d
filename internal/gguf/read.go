package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// FormatError is a refusal of a malformed file. Field names the bad field
// ("magic", "version", "tensor_count", "kv[3].value", "tensor[2].offset", ...)
// and Offset is where in the file it starts.
type FormatError struct {
	Field  string
	Offset uint64
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("gguf: bad %s at byte %d: %s", e.Field, e.Offset, e.Msg)
}

// File is a parsed GGUF file. Its tensor data aliases the bytes given to Parse.
type File struct {
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // where the data section starts in the file
	data       []byte // the whole file
	byName     map[string]int
	kvByKey    map[string]int
}

// Limits cap what the reader will allocate; they keep a hostile header
// from demanding more memory than the file could possibly describe.
const (
	maxDims       = 4       // GGML_MAX_DIMS
	maxStringLen  = 1 << 30 // no key, name or token is this long
	maxArrayDepth = 4
)

type reader struct {
	b   []byte
	off uint64
}

func (r *reader) fail(field string, at uint64, format string, args ...any) error {
	return &FormatError{Field: field, Offset: at, Msg: fmt.Sprintf(format, args...)}
}

func (r *reader) remaining() uint64 { return uint64(len(r.b)) - r.off }

func (r *reader) take(field string, n uint64) ([]byte, error) {
	if n > r.remaining() {
		return nil, r.fail(field, r.off, "truncated: needs %d bytes, %d left in the file", n, r.remaining())
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) u32(field string) (uint32, error) {
	s, err := r.take(field, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (r *reader) u64(field string) (uint64, error) {
	s, err := r.take(field, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (r *reader) str(field string) (string, error) {
	at := r.off
	n, err := r.u64(field + ".length")
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", r.fail(field+".length", at, "string length %d exceeds the limit %d", n, maxStringLen)
	}
	s, err := r.take(field, n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(s) {
		return "", r.fail(field, at+8, "string is not valid UTF-8")
	}
	return string(s), nil
}

// Parse reads a GGUF v3 file held in memory.
func Parse(b []byte) (*File, error) {
	r := &reader{b: b}
	m, err := r.take("magic", 4)
	if err != nil {
		return nil, err
	}
	if string(m) != Magic {
		return nil, r.fail("magic", 0, "got %q, want %q: not a GGUF file", m, Magic)
	}
	f := &File{data: b, byName: map[string]int{}, kvByKey: map[string]int{}}
	if f.Version, err = r.u32("version"); err != nil {
		return nil, err
	}
	if f.Version != Version {
		return nil, r.fail("version", 4, "version %d, only %d is supported", f.Version, Version)
	}
	nTensors, err := r.u64("tensor_count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata_kv_count")
	if err != nil {
		return nil, err
	}
	// A kv takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor
	// info at least 8 + 4 + 4 + 8: a count beyond what the rest of the file
	// can hold is refused before anything is allocated for it.
	if nKV > r.remaining()/13 {
		return nil, r.fail("metadata_kv_count", 16, "%d pairs cannot fit in the %d bytes that follow the header", nKV, r.remaining())
	}
	if nTensors > r.remaining()/24 {
		return nil, r.fail("tensor_count", 8, "%d tensors cannot fit in the %d bytes that follow the header", nTensors, r.remaining())
	}
	if nKV > MaxKVs {
		return nil, r.fail("metadata_kv_count", 16, "%d pairs, more than the %d this reader takes", nKV, MaxKVs)
	}
	if nTensors > MaxTensors {
		return nil, r.fail("tensor_count", 8, "%d tensors, more than the %d this reader takes", nTensors, MaxTensors)
	}
	f.KVs = make([]KV, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		field := fmt.Sprintf("kv[%d]", i)
		key, err := r.str(field + ".key")
		if err != nil {
			return nil, err
		}
		field = fmt.Sprintf("kv[%d] (%s)", i, key)
		if _, dup := f.kvByKey[key]; dup {
			return nil, r.fail(field+".key", r.off, "duplicate key %q", key)
		}
		at := r.off
		t, err := r.u32(field + ".type")
		if err != nil {
			return nil, err
		}
		v, err := r.value(field+".value", ValueType(t), at, 0)
		if err != nil {
			return nil, err
		}
		f.kvByKey[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	f.Alignment = DefaultAlignment
	if i, ok := f.kvByKey[AlignmentKey]; ok {
		v := f.KVs[i].Value
		a, isU32 := v.V.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, r.fail(AlignmentKey, 0, "must be a uint32 power of two, got %s %v", v.Type, v.V)
		}
		f.Alignment = uint64(a)
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		field := fmt.Sprintf("tensor[%d]", i)
		name, err := r.str(field + ".name")
		if err != nil {
			return nil, err
		}
		field = fmt.Sprintf("tensor[%d] (%s)", i, name)
		if _, dup := f.byName[name]; dup {
			return nil, r.fail(field+".name", r.off, "duplicate tensor name %q", name)
		}
		at := r.off
		nd, err := r.u32(field + ".n_dims")
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > maxDims {
			return nil, r.fail(field+".n_dims", at, "%d dimensions, want 1..%d", nd, maxDims)
		}
		ti := TensorInfo{Name: name, Dims: make([]uint64, nd)}
		n := uint64(1)
		for d := range ti.Dims {
			at := r.off
			if ti.Dims[d], err = r.u64(fmt.Sprintf("%s.dims[%d]", field, d)); err != nil {
				return nil, err
			}
			if ti.Dims[d] == 0 {
				return nil, r.fail(fmt.Sprintf("%s.dims[%d]", field, d), at, "dimension is 0")
			}
			if n, err = mulU64(n, ti.Dims[d]); err != nil {
				return nil, r.fail(fmt.Sprintf("%s.dims[%d]", field, d), at, "element count %v", err)
			}
		}
		at = r.off
		tt, err := r.u32(field + ".type")
		if err != nil {
			return nil, err
		}
		ti.Type = TensorType(tt)
		if _, err := ti.Type.DataSize(Q8Block); err != nil {
			return nil, r.fail(field+".type", at, "%v", err)
		}
		if ti.Type == Q8_0 && ti.Dims[0]%Q8Block != 0 {
			return nil, r.fail(field+".dims[0]", at, "Q8_0 rows must be a multiple of %d elements, got %d", Q8Block, ti.Dims[0])
		}
		at = r.off
		if ti.Offset, err = r.u64(field + ".offset"); err != nil {
			return nil, err
		}
		if ti.Offset%f.Alignment != 0 {
			return nil, r.fail(field+".offset", at, "offset %d is not a multiple of the alignment %d", ti.Offset, f.Alignment)
		}
		f.byName[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	start, err := alignUp(r.off, f.Alignment)
	if err != nil || start > uint64(len(b)) {
		if nTensors == 0 && r.off == uint64(len(b)) {
			start = r.off
		} else {
			return nil, r.fail("padding", r.off, "truncated: the data section should start at byte %d, the file has %d bytes", start, len(b))
		}
	}
	f.DataOffset = start
	dataLen := uint64(len(b)) - start
	for i, ti := range f.Tensors {
		field := fmt.Sprintf("tensor[%d] (%s).offset", i, ti.Name)
		size, err := ti.Type.DataSize(ti.Elements())
		if err != nil {
			return nil, r.fail(fmt.Sprintf("tensor[%d] (%s).dims", i, ti.Name), 0, "%v", err)
		}
		end, err := addU64(ti.Offset, size)
		if err != nil || end > dataLen {
			return nil, r.fail(field, start, "data [%d, +%d) runs past the end of the data section (%d bytes)", ti.Offset, size, dataLen)
		}
	}
	return f, nil
}

// value reads one value of type t; at is where its type field started.
func (r *reader) value(field string, t ValueType, at uint64, depth int) (Value, error) {
	switch t {
	case TypeString:
		s, err := r.str(field)
		return Value{t, s}, err
	case TypeArray:
		if depth >= maxArrayDepth {
			return Value{}, r.fail(field, at, "arrays nested deeper than %d", maxArrayDepth)
		}
		eat := r.off
		et, err := r.u32(field + ".elem_type")
		if err != nil {
			return Value{}, err
		}
		elem := ValueType(et)
		cat := r.off
		n, err := r.u64(field + ".count")
		if err != nil {
			return Value{}, err
		}
		min := uint64(scalarSize(elem))
		switch elem {
		case TypeString:
			min = 8
		case TypeArray:
			min = 12
		}
		if scalarSize(elem) < 0 {
			return Value{}, r.fail(field+".elem_type", eat, "unknown value type %d", et)
		}
		if n > r.remaining()/min {
			return Value{}, r.fail(field+".count", cat, "%d elements of %s cannot fit in the %d bytes left", n, elem, r.remaining())
		}
		arr, err := r.array(field, elem, n, depth)
		return Value{t, arr}, err
	}
	size := scalarSize(t)
	if size <= 0 {
		return Value{}, r.fail(field[:len(field)-len(".value")]+".type", at, "unknown value type %d", uint32(t))
	}
	s, err := r.take(field, uint64(size))
	if err != nil {
		return Value{}, err
	}
	v, err := decodeScalar(t, s)
	if err != nil {
		return Value{}, r.fail(field, r.off-uint64(size), "%v", err)
	}
	return Value{t, v}, nil
}

func decodeScalar(t ValueType, s []byte) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return s[0], nil
	case TypeInt8:
		return int8(s[0]), nil
	case TypeBool:
		if s[0] > 1 {
			return nil, fmt.Errorf("bool byte is %d, want 0 or 1", s[0])
		}
		return s[0] == 1, nil
	case TypeUint16:
		return le.Uint16(s), nil
	case TypeInt16:
		return int16(le.Uint16(s)), nil
	case TypeUint32:
		return le.Uint32(s), nil
	case TypeInt32:
		return int32(le.Uint32(s)), nil
	case TypeFloat32:
		return math.Float32frombits(le.Uint32(s)), nil
	case TypeUint64:
		return le.Uint64(s), nil
	case TypeInt64:
		return int64(le.Uint64(s)), nil
	case TypeFloat64:
		return math.Float64frombits(le.Uint64(s)), nil
	}
	return nil, fmt.Errorf("not a scalar type: %s", t)
}

// array reads n elements; n was already checked to fit in the bytes left.
func (r *reader) array(field string, elem ValueType, n uint64, depth int) (Array, error) {
	a := Array{Elem: elem}
	elemField := func(i uint64) string { return fmt.Sprintf("%s[%d]", field, i) }
	switch elem {
	case TypeString:
		vs := make([]string, n)
		for i := range vs {
			s, err := r.str(elemField(uint64(i)))
			if err != nil {
				return a, err
			}
			vs[i] = s
		}
		a.Values = vs
		return a, nil
	case TypeArray:
		vs := make([]Array, n)
		for i := range vs {
			at := r.off
			v, err := r.value(elemField(uint64(i)), TypeArray, at, depth+1)
			if err != nil {
				return a, err
			}
			// value for TypeArray reads elem_type/count itself.
			vs[i] = v.V.(Array)
		}
		a.Values = vs
		return a, nil
	}
	size := uint64(scalarSize(elem))
	s, err := r.take(field, n*size) // n*size <= remaining, checked by the caller
	if err != nil {
		return a, err
	}
	le := binary.LittleEndian
	switch elem {
	case TypeUint8:
		a.Values = append([]uint8(nil), s...)
	case TypeInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(s[i])
		}
		a.Values = v
	case TypeBool:
		v := make([]bool, n)
		for i := range v {
			if s[i] > 1 {
				return a, r.fail(elemField(uint64(i)), r.off-n+uint64(i), "bool byte is %d, want 0 or 1", s[i])
			}
			v[i] = s[i] == 1
		}
		a.Values = v
	case TypeUint16:
		a.Values = decodeAll(s, 2, le.Uint16)
	case TypeInt16:
		a.Values = decodeAll(s, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
	case TypeUint32:
		a.Values = decodeAll(s, 4, le.Uint32)
	case TypeInt32:
		a.Values = decodeAll(s, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
	case TypeFloat32:
		a.Values = decodeAll(s, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
	case TypeUint64:
		a.Values = decodeAll(s, 8, le.Uint64)
	case TypeInt64:
		a.Values = decodeAll(s, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
	case TypeFloat64:
		a.Values = decodeAll(s, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
	}
	return a, nil
}

// decodeAll decodes s as consecutive little-endian elements of size bytes.
func decodeAll[T any](s []byte, size int, dec func([]byte) T) []T {
	v := make([]T, len(s)/size)
	for i := range v {
		v[i] = dec(s[size*i:])
	}
	return v
}

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvByKey[key]
	if !ok {
		return Value{}, false
	}
	return f.KVs[i].Value, true
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData returns the raw bytes of a tensor (bounds checked by Parse).
func (f *File) TensorData(ti TensorInfo) []byte {
	size, _ := ti.Type.DataSize(ti.Elements())
	start := f.DataOffset + ti.Offset
	return f.data[start : start+size]
}

// Float32s dequantizes a tensor to float32, in file (row-major, dims[0]
// innermost) order.
func (f *File) Float32s(ti TensorInfo) []float32 {
	return Dequantize(ti.Type, f.TensorData(ti), ti.Elements())
}

// Dequantize converts n elements of type t held in b to float32. b must
// hold exactly t.DataSize(n) bytes.
func Dequantize(t TensorType, b []byte, n uint64) []float32 {
	out := make([]float32, n)
	le := binary.LittleEndian
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToF32(le.Uint16(b[2*i:]))
		}
	case Q8_0:
		for blk := 0; blk < len(out)/Q8Block; blk++ {
			q := b[blk*Q8BlockBytes:]
			d := F16ToF32(le.Uint16(q))
			for j := 0; j < Q8Block; j++ {
				out[blk*Q8Block+j] = d * float32(int8(q[2+j]))
			}
		}
	}
	return out
}
