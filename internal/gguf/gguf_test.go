package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleBuilder(t testing.TB) *Builder {
	var b Builder
	b.Add("general.architecture", "llama")
	b.Add("u8", uint8(200))
	b.Add("i8", int8(-7))
	b.Add("u16", uint16(60000))
	b.Add("i16", int16(-30000))
	b.Add("u32", uint32(4000000000))
	b.Add("i32", int32(-2000000000))
	b.Add("f32", float32(1.5))
	b.Add("bool", true)
	b.Add("u64", uint64(1)<<60)
	b.Add("i64", int64(-1)<<60)
	b.Add("f64", math.Pi)
	b.Add("strs", []string{"a", "", "▁hello"})
	b.Add("f32s", []float32{1, -2, 3.25})
	b.Add("i32s", []int32{1, -2, 3})
	b.Add("bools", []bool{true, false})
	b.Add("nested", []Array{{TypeUint8, []uint8{1, 2}}, {TypeString, []string{"x"}}})
	vals := make([]float32, 64)
	for i := range vals {
		vals[i] = float32(i)/8 - 4
	}
	for _, tc := range []struct {
		name string
		typ  TensorType
		dims []uint64
	}{{"a.f32", F32, []uint64{8, 8}}, {"b.f16", F16, []uint64{64}}, {"c.q8", Q8_0, []uint64{32, 2}}} {
		if err := b.AddFloat32s(tc.name, tc.typ, tc.dims, vals); err != nil {
			t.Fatal(err)
		}
	}
	return &b
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 64} {
		b := sampleBuilder(t)
		if align != 0 {
			b.Add(AlignmentKey, align)
		}
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := b.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		f, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(DefaultAlignment)
		if align != 0 {
			want = uint64(align)
		}
		if f.Alignment != want || f.DataOffset%want != 0 {
			t.Errorf("alignment %d, data offset %d; want alignment %d", f.Alignment, f.DataOffset, want)
		}
		if len(f.KVs) != len(b.KVs) {
			t.Fatalf("%d kvs, want %d", len(f.KVs), len(b.KVs))
		}
		for i, kv := range b.KVs {
			if !reflect.DeepEqual(f.KVs[i], kv) {
				t.Errorf("kv %d: got %#v, want %#v", i, f.KVs[i], kv)
			}
		}
		for _, name := range []string{"a.f32", "b.f16", "c.q8"} {
			ti, ok := f.Tensor(name)
			if !ok {
				t.Fatalf("tensor %s missing", name)
			}
			if ti.Offset%want != 0 {
				t.Errorf("%s offset %d not aligned to %d", name, ti.Offset, want)
			}
			got := f.Float32s(ti)
			for i, v := range got {
				x := float32(i)/8 - 4
				// The values are multiples of 1/8 within ±4: exact in F16;
				// Q8_0 within half a step of max|x|/127.
				tol := float32(0)
				if ti.Type == Q8_0 {
					tol = 4.0 / 127 / 2 * 1.001
				}
				if d := float32(math.Abs(float64(v - x))); d > tol {
					t.Errorf("%s[%d] = %g, want %g ± %g", name, i, v, x, tol)
				}
			}
		}
	}
}

func TestF16Conversion(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f { // NaN
			if back := F32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
	if F16ToF32(0x3c00) != 1 || F16ToF32(0xc000) != -2 || F16ToF32(0x0001) != float32(math.Ldexp(1, -24)) {
		t.Error("known binary16 values decode wrongly")
	}
}

// layout finds byte offsets in the sample file for the mutation tests.
func sampleBytes(t *testing.T) []byte {
	data, err := sampleBuilder(t).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data); err != nil {
		t.Fatalf("sample does not parse: %v", err)
	}
	return data
}

// tensorInfoAt returns the offset of the n_dims field of the named tensor.
func tensorInfoAt(t *testing.T, data []byte, name string) int {
	var key []byte
	key = binary.LittleEndian.AppendUint64(key, uint64(len(name)))
	key = append(key, name...)
	i := bytes.Index(data, key)
	if i < 0 {
		t.Fatalf("tensor %s not found in the sample", name)
	}
	return i + len(key)
}

func wantField(t *testing.T, data []byte, field, msg string) {
	t.Helper()
	_, err := Parse(data)
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("want a FormatError naming %s, got %v", field, err)
	}
	if !strings.Contains(fe.Field, field) || !strings.Contains(fe.Msg, msg) {
		t.Fatalf("got %v; want field %q and message containing %q", err, field, msg)
	}
}

func TestMalformed(t *testing.T) {
	le := binary.LittleEndian
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(sampleBytes(t))) }

	t.Run("bad magic", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte { b[0] = 'X'; return b }), "magic", "not a GGUF file")
	})
	t.Run("version", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte { le.PutUint32(b[4:], 2); return b }), "version", "only 3")
	})
	t.Run("tensor count overflows", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte { le.PutUint64(b[8:], math.MaxUint64); return b }), "tensor_count", "cannot fit")
	})
	t.Run("kv count overflows", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte { le.PutUint64(b[16:], 1<<62); return b }), "metadata_kv_count", "cannot fit")
	})
	// Counts the rest of the file could hold, but more than the readers take.
	padded := func(at int, n uint64) []byte {
		return mutate(func(b []byte) []byte { le.PutUint64(b[at:], n); return append(b, make([]byte, 128<<10)...) })
	}
	t.Run("too many tensors", func(t *testing.T) {
		wantField(t, padded(8, MaxTensors+1), "tensor_count", "more than the 4096 this reader takes")
	})
	t.Run("too many kvs", func(t *testing.T) {
		wantField(t, padded(16, MaxKVs+1), "metadata_kv_count", "more than the 4096 this reader takes")
	})
	t.Run("unknown tensor type", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			at := tensorInfoAt(t, b, "b.f16") + 4 + 8
			le.PutUint32(b[at:], 2) // Q4_0: not supported
			return b
		}), "tensor[1] (b.f16).type", "unknown tensor type 2")
	})
	t.Run("offset past the end", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			at := tensorInfoAt(t, b, "c.q8") + 4 + 16 + 4
			le.PutUint64(b[at:], le.Uint64(b[at:])+32)
			return b
		}), "tensor[2] (c.q8).offset", "runs past the end")
	})
	t.Run("offset overflows", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			at := tensorInfoAt(t, b, "c.q8") + 4 + 16 + 4
			le.PutUint64(b[at:], math.MaxUint64-31)
			return b
		}), "tensor[2] (c.q8).offset", "runs past the end")
	})
	t.Run("dims overflow", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			at := tensorInfoAt(t, b, "a.f32") + 4
			le.PutUint64(b[at:], 1<<40)
			le.PutUint64(b[at+8:], 1<<40)
			return b
		}), "tensor[0] (a.f32).dims[1]", "overflows")
	})
	t.Run("string length past the end", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte { le.PutUint64(b[24:], 1<<20); return b }), "kv[0].key", "truncated")
	})
	t.Run("array count overflows", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			key := []byte("f32s")
			at := bytes.Index(b, key) + len(key) + 4 + 4
			le.PutUint64(b[at:], 1<<61)
			return b
		}), "kv[13] (f32s).value.count", "cannot fit")
	})
	t.Run("unknown value type", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			key := []byte("u16")
			at := bytes.Index(b, key) + len(key)
			le.PutUint32(b[at:], 13)
			return b
		}), "kv[3] (u16).type", "unknown value type 13")
	})
	t.Run("alignment not a power of two", func(t *testing.T) {
		b := sampleBuilder(t)
		b.KVs = append(b.KVs, KV{AlignmentKey, ValueOf(uint32(48))})
		if _, err := b.Bytes(); err == nil {
			t.Fatal("the writer accepted alignment 48")
		}
		b.KVs[len(b.KVs)-1].Value = ValueOf(uint32(64))
		data, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		at := bytes.Index(data, []byte(AlignmentKey)) + len(AlignmentKey) + 4
		le.PutUint32(data[at:], 48)
		wantField(t, data, AlignmentKey, "power of two")
	})
	t.Run("duplicate key", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			at := bytes.Index(b, []byte("i16"))
			copy(b[at:], "u16")
			return b
		}), "kv[4] (u16).key", "duplicate key")
	})
	t.Run("bool not 0 or 1", func(t *testing.T) {
		wantField(t, mutate(func(b []byte) []byte {
			at := bytes.Index(b, []byte("bool")) + 4 + 4
			b[at] = 2
			return b
		}), "kv[8] (bool).value", "want 0 or 1")
	})
	t.Run("truncated everywhere", func(t *testing.T) {
		data := sampleBytes(t)
		for n := 0; n < len(data); n++ {
			_, err := Parse(data[:n])
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("prefix of %d/%d bytes: want a FormatError, got %v", n, len(data), err)
			}
		}
		wantField(t, data[:len(data)-1], "tensor[2] (c.q8).offset", "runs past the end")
		wantField(t, data[:10], "tensor_count", "truncated")
	})
}

func FuzzParse(f *testing.F) {
	var b Builder
	b.Add("k", []string{"x", "y"})
	b.Add("n", uint32(3))
	b.AddFloat32s("t", Q8_0, []uint64{32}, make([]float32, 32))
	small, _ := b.Bytes()
	f.Add(small)
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error without a named field: %v", err)
			}
			return
		}
		for _, ti := range file.Tensors {
			_ = file.Float32s(ti) // must not panic: Parse checked the bounds
		}
	})
}
