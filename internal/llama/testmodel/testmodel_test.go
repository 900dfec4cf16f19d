package testmodel

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/fluid-os/fluid/internal/gguf"
)

func TestVocabularyLayout(t *testing.T) {
	v := Vocabulary(512)
	if len(v.Tokens) != 512 || len(v.Scores) != 512 || len(v.Types) != 512 {
		t.Fatalf("%d tokens, %d scores, %d types; want 512 each", len(v.Tokens), len(v.Scores), len(v.Types))
	}
	if v.Tokens[0] != "<unk>" || v.Tokens[1] != "<s>" || v.Tokens[2] != "</s>" || v.Tokens[3] != "<0x00>" || v.Tokens[258] != "<0xFF>" {
		t.Errorf("specials and bytes not laid out like Llama's: %q %q", v.Tokens[:4], v.Tokens[258])
	}
	seen := map[string]bool{}
	for i, tok := range v.Tokens {
		if seen[tok] {
			t.Errorf("token %d %q appears twice", i, tok)
		}
		seen[tok] = true
	}
	if !seen["▁the"] || len(v.Merges) < 150 {
		t.Errorf("BPE learned %d merges and no ▁the: the corpus training is broken", len(v.Merges))
	}
}

func TestDeterministic(t *testing.T) {
	enc := func(c Config) []byte {
		data, err := Bytes(c)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	c := Small(gguf.Q8_0)
	a, b := enc(c), enc(c)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of one config differ")
	}
	c.Seed++
	if bytes.Equal(a, enc(c)) {
		t.Fatal("another seed gave the same file")
	}
}

// TestTinyLlamaKeySet: a file generated with TinyLlamaKeys carries exactly
// TinyLlama's metadata keys in its order, and the tensor names of its 22
// blocks (with scaled shapes).
func TestTinyLlamaKeySet(t *testing.T) {
	c := Small(gguf.Q8_0)
	c.Layers = TinyLlamaShapes.Layers
	c.TinyLlamaKeys = true
	data, err := Bytes(c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KVs) != len(TinyLlamaKeys) {
		t.Fatalf("%d keys, TinyLlama has %d", len(f.KVs), len(TinyLlamaKeys))
	}
	for i, kv := range f.KVs {
		if kv.Key != TinyLlamaKeys[i].Key {
			t.Errorf("key %d is %s, TinyLlama's is %s", i, kv.Key, TinyLlamaKeys[i].Key)
		}
	}
	full := Layout(TinyLlamaShapes)
	if len(full) != 201 || len(f.Tensors) != 201 {
		t.Fatalf("TinyLlama has 201 tensors; layout %d, file %d", len(full), len(f.Tensors))
	}
	for i, ti := range f.Tensors {
		if ti.Name != full[i].Name || len(ti.Dims) != len(full[i].Dims) {
			t.Errorf("tensor %d is %s %v, TinyLlama's is %s %v", i, ti.Name, ti.Dims, full[i].Name, full[i].Dims)
		}
	}
	// TinyLlama's real shapes, spot-checked.
	want := map[string]string{"token_embd.weight": "[2048 32000]", "blk.21.attn_k.weight": "[2048 256]", "blk.0.ffn_down.weight": "[5632 2048]", "output_norm.weight": "[2048]"}
	for _, tn := range full {
		if w, ok := want[tn.Name]; ok && fmt.Sprint(tn.Dims) != w {
			t.Errorf("%s: %v, want %s", tn.Name, tn.Dims, w)
		}
	}
}
