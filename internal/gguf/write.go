package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/fluid-os/fluid/internal/atomicfile"
)

// Builder assembles a GGUF v3 file: metadata in the order added, then the
// tensors in the order added, each at the next aligned offset.
type Builder struct {
	KVs     []KV
	tensors []builtTensor
}

type builtTensor struct {
	info TensorInfo
	data []byte
}

// Add appends a metadata pair. v is a Go value of a GGUF type: uint8 ...
// float64, bool, string, or a slice of one of them (an array), or an Array.
func (b *Builder) Add(key string, v any) {
	b.KVs = append(b.KVs, KV{Key: key, Value: ValueOf(v)})
}

// ValueOf wraps a Go value as a GGUF Value; it panics on a type GGUF has
// no encoding for (a programming error in the caller).
func ValueOf(v any) Value {
	switch x := v.(type) {
	case Value:
		return x
	case uint8:
		return Value{TypeUint8, x}
	case int8:
		return Value{TypeInt8, x}
	case uint16:
		return Value{TypeUint16, x}
	case int16:
		return Value{TypeInt16, x}
	case uint32:
		return Value{TypeUint32, x}
	case int32:
		return Value{TypeInt32, x}
	case float32:
		return Value{TypeFloat32, x}
	case bool:
		return Value{TypeBool, x}
	case string:
		return Value{TypeString, x}
	case uint64:
		return Value{TypeUint64, x}
	case int64:
		return Value{TypeInt64, x}
	case float64:
		return Value{TypeFloat64, x}
	case Array:
		return Value{TypeArray, x}
	case []uint8:
		return Value{TypeArray, Array{TypeUint8, x}}
	case []int8:
		return Value{TypeArray, Array{TypeInt8, x}}
	case []uint16:
		return Value{TypeArray, Array{TypeUint16, x}}
	case []int16:
		return Value{TypeArray, Array{TypeInt16, x}}
	case []uint32:
		return Value{TypeArray, Array{TypeUint32, x}}
	case []int32:
		return Value{TypeArray, Array{TypeInt32, x}}
	case []float32:
		return Value{TypeArray, Array{TypeFloat32, x}}
	case []bool:
		return Value{TypeArray, Array{TypeBool, x}}
	case []string:
		return Value{TypeArray, Array{TypeString, x}}
	case []uint64:
		return Value{TypeArray, Array{TypeUint64, x}}
	case []int64:
		return Value{TypeArray, Array{TypeInt64, x}}
	case []float64:
		return Value{TypeArray, Array{TypeFloat64, x}}
	case []Array:
		return Value{TypeArray, Array{TypeArray, x}}
	}
	panic(fmt.Sprintf("gguf: no GGUF encoding for %T", v))
}

// AddTensor appends a tensor of the given dims (dims[0] innermost) whose
// encoded data is data; it must be exactly t.DataSize(elements) bytes.
func (b *Builder) AddTensor(name string, t TensorType, dims []uint64, data []byte) error {
	ti := TensorInfo{Name: name, Type: t, Dims: append([]uint64(nil), dims...)}
	size, err := t.DataSize(ti.Elements())
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("tensor %s: %d bytes of data, its type %s and dims %v need %d", name, len(data), t, dims, size)
	}
	b.tensors = append(b.tensors, builtTensor{ti, data})
	return nil
}

// AddFloat32s encodes values as type t (F32, F16 or Q8_0) and adds them.
func (b *Builder) AddFloat32s(name string, t TensorType, dims []uint64, values []float32) error {
	data, err := Encode(t, values)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	return b.AddTensor(name, t, dims, data)
}

// Encode converts float32 values to the encoding of type t. Q8_0 follows
// ggml's quantize_row_q8_0_ref: d = max|x|/127, q = round(x/d).
func Encode(t TensorType, values []float32) ([]byte, error) {
	le := binary.LittleEndian
	switch t {
	case F32:
		out := make([]byte, 4*len(values))
		for i, v := range values {
			le.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, nil
	case F16:
		out := make([]byte, 2*len(values))
		for i, v := range values {
			le.PutUint16(out[2*i:], F32ToF16(v))
		}
		return out, nil
	case Q8_0:
		if len(values)%Q8Block != 0 {
			return nil, fmt.Errorf("%d values is not a whole number of Q8_0 blocks of %d", len(values), Q8Block)
		}
		out := make([]byte, len(values)/Q8Block*Q8BlockBytes)
		for blk := 0; blk < len(values)/Q8Block; blk++ {
			x := values[blk*Q8Block : (blk+1)*Q8Block]
			var amax float32
			for _, v := range x {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			d := amax / 127
			var id float32
			if d != 0 {
				id = 1 / d
			}
			q := out[blk*Q8BlockBytes:]
			le.PutUint16(q, F32ToF16(d))
			for j, v := range x {
				q[2+j] = byte(int8(math.Round(float64(v * id)))) // roundf: half away from zero
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot encode tensor type %s (supported: F32, F16, Q8_0)", t)
}

// alignment is general.alignment if set (as a uint32), else the default.
func (b *Builder) alignment() (uint64, error) {
	for _, kv := range b.KVs {
		if kv.Key == AlignmentKey {
			a, ok := kv.Value.V.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return 0, fmt.Errorf("%s must be a uint32 power of two, got %s %v", AlignmentKey, kv.Value.Type, kv.Value.V)
			}
			return uint64(a), nil
		}
	}
	return DefaultAlignment, nil
}

// Bytes encodes the file.
func (b *Builder) Bytes() ([]byte, error) {
	align, err := b.alignment()
	if err != nil {
		return nil, err
	}
	var w bytes.Buffer
	le := binary.LittleEndian
	w.WriteString(Magic)
	binary.Write(&w, le, uint32(Version))
	binary.Write(&w, le, uint64(len(b.tensors)))
	binary.Write(&w, le, uint64(len(b.KVs)))
	for _, kv := range b.KVs {
		writeString(&w, kv.Key)
		binary.Write(&w, le, uint32(kv.Value.Type))
		if err := writeValue(&w, kv.Value.Type, kv.Value.V); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", kv.Key, err)
		}
	}
	var off uint64
	for i := range b.tensors {
		t := &b.tensors[i]
		t.info.Offset = off
		writeString(&w, t.info.Name)
		binary.Write(&w, le, uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			binary.Write(&w, le, d)
		}
		binary.Write(&w, le, uint32(t.info.Type))
		binary.Write(&w, le, off)
		off += uint64(len(t.data))
		off = (off + align - 1) / align * align
	}
	pad := func() {
		for uint64(w.Len())%align != 0 {
			w.WriteByte(0)
		}
	}
	if len(b.tensors) > 0 {
		pad()
	}
	for i, t := range b.tensors {
		w.Write(t.data)
		if i < len(b.tensors)-1 {
			pad()
		}
	}
	return w.Bytes(), nil
}

// WriteFile encodes the file and writes it to path atomically.
func (b *Builder) WriteFile(path string) error {
	data, err := b.Bytes()
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReadFile reads and parses the GGUF file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func writeString(w *bytes.Buffer, s string) {
	binary.Write(w, binary.LittleEndian, uint64(len(s)))
	w.WriteString(s)
}

func writeValue(w *bytes.Buffer, t ValueType, v any) error {
	le := binary.LittleEndian
	switch t {
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("string value holds %T", v)
		}
		writeString(w, s)
		return nil
	case TypeBool:
		x, ok := v.(bool)
		if !ok {
			return fmt.Errorf("bool value holds %T", v)
		}
		if x {
			w.WriteByte(1)
		} else {
			w.WriteByte(0)
		}
		return nil
	case TypeArray:
		a, ok := v.(Array)
		if !ok {
			return fmt.Errorf("array value holds %T", v)
		}
		binary.Write(w, le, uint32(a.Elem))
		switch vs := a.Values.(type) {
		case []string:
			binary.Write(w, le, uint64(len(vs)))
			for _, s := range vs {
				writeString(w, s)
			}
		case []bool:
			binary.Write(w, le, uint64(len(vs)))
			for _, x := range vs {
				writeValue(w, TypeBool, x)
			}
		case []Array:
			binary.Write(w, le, uint64(len(vs)))
			for _, x := range vs {
				if err := writeValue(w, TypeArray, x); err != nil {
					return err
				}
			}
		default:
			// fixed-size numeric slices: binary.Size checks the type.
			n := binary.Size(vs)
			es := scalarSize(a.Elem)
			if n < 0 || es <= 0 || n%es != 0 {
				return fmt.Errorf("array of %s holds %T", a.Elem, vs)
			}
			binary.Write(w, le, uint64(n/es))
			binary.Write(w, le, vs)
		}
		return nil
	}
	if scalarSize(t) <= 0 {
		return fmt.Errorf("unknown value type %d", uint32(t))
	}
	if binary.Size(v) != scalarSize(t) {
		return fmt.Errorf("%s value holds %T", t, v)
	}
	return binary.Write(w, le, v)
}
