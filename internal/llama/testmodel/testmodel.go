// Package testmodel writes small GGUF files with the `llama` architecture
// as TinyLlama uses it: the same metadata keys and tensor names, shapes
// scaled down, weights drawn deterministically from a seed (no weights are
// downloaded), and a small SentencePiece-style vocabulary learned by BPE
// from a fixed corpus.
package testmodel

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/gguf"
)

// Config sizes a generated model.
type Config struct {
	Dim      int // llama.embedding_length
	Layers   int // llama.block_count
	Heads    int // llama.attention.head_count
	KVHeads  int // llama.attention.head_count_kv
	Hidden   int // llama.feed_forward_length
	Vocab    int // number of tokens
	Context  int // llama.context_length
	RopeBase float32
	Eps      float32
	Seed     uint64
	// Type is the type of the 2-D weights (F32, F16 or Q8_0); norms are
	// always F32, as in llama.cpp's quantized files.
	Type gguf.TensorType
	// TinyLlamaKeys adds every other metadata key TinyLlama-1.1B-Chat's
	// GGUF carries (see TinyLlamaKeys), so a loader meets exactly its key set.
	TinyLlamaKeys bool
}

// Small is the model the issue names: dim 64, 4 layers, 8 query heads and
// 2 KV heads, vocab 512. The FFN is 192 wide, not 176: Q8_0 rows are whole
// 32-element blocks, and ffn_down's rows are Hidden long (TinyLlama's 5632
// is 176*32, so it has no such problem).
func Small(t gguf.TensorType) Config {
	return Config{Dim: 64, Layers: 4, Heads: 8, KVHeads: 2, Hidden: 192, Vocab: 512,
		Context: 128, RopeBase: 10000, Eps: 1e-5, Seed: 14, Type: t}
}

// TinyLlamaShapes is TinyLlama-1.1B's real configuration (for the table
// and for sizing; too big to generate here).
var TinyLlamaShapes = Config{Dim: 2048, Layers: 22, Heads: 32, KVHeads: 4, Hidden: 5632,
	Vocab: 32000, Context: 2048, RopeBase: 10000, Eps: 1e-5, Type: gguf.Q8_0}

// TinyLlamaKeys lists the metadata of TinyLlama-1.1B-Chat-v1.0's Q8_0 GGUF
// (TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF) with their types, in file order.
// Keys 0-15 (through token_type, with file_type 7 = Q8_0) are as
// llama.cpp's loader prints them for that file in
// github.com/argilla-io/distilabel/issues/593; keys 16-22 (merges, the
// special token ids, chat_template, quantization_version) are recorded from
// memory of the same listing: check them against a real file when one is at
// hand (`llama-cli -m FILE` prints every key).
var TinyLlamaKeys = []struct {
	Key  string
	Type string
}{
	{"general.architecture", "str = llama"},
	{"general.name", "str"},
	{"llama.context_length", "u32 = 2048"},
	{"llama.embedding_length", "u32 = 2048"},
	{"llama.block_count", "u32 = 22"},
	{"llama.feed_forward_length", "u32 = 5632"},
	{"llama.rope.dimension_count", "u32 = 64"},
	{"llama.attention.head_count", "u32 = 32"},
	{"llama.attention.head_count_kv", "u32 = 4"},
	{"llama.attention.layer_norm_rms_epsilon", "f32 = 1e-5"},
	{"llama.rope.freq_base", "f32 = 10000"},
	{"general.file_type", "u32 = 7 (MOSTLY_Q8_0)"},
	{"tokenizer.ggml.model", "str = llama"},
	{"tokenizer.ggml.tokens", "arr[str,32000]"},
	{"tokenizer.ggml.scores", "arr[f32,32000]"},
	{"tokenizer.ggml.token_type", "arr[i32,32000]"},
	{"tokenizer.ggml.merges", "arr[str,61249]"},
	{"tokenizer.ggml.bos_token_id", "u32 = 1"},
	{"tokenizer.ggml.eos_token_id", "u32 = 2"},
	{"tokenizer.ggml.unknown_token_id", "u32 = 0"},
	{"tokenizer.ggml.padding_token_id", "u32 = 2"},
	{"tokenizer.chat_template", "str"},
	{"general.quantization_version", "u32 = 2"},
}

// Tensor is one tensor of the layout: its name and dims (dims[0] innermost).
type Tensor struct {
	Name string
	Dims []uint64
}

// Layout lists the tensors of a llama model of config c: token_embd, then
// per block attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
// ffn_gate, ffn_up, ffn_down, then output_norm and output. For
// TinyLlamaShapes that is 201 tensors, as llama.cpp reports for TinyLlama
// (github.com/ggml-org/llama.cpp/issues/3018). Real files order the tensors
// differently from one converter to the next (ollama/ollama#969 lists a
// TinyLlama file in sorted-name order), so a loader must find them by name.
func Layout(c Config) []Tensor {
	d, kv, h, v := uint64(c.Dim), uint64(c.Dim/c.Heads*c.KVHeads), uint64(c.Hidden), uint64(c.Vocab)
	ts := []Tensor{{"token_embd.weight", []uint64{d, v}}}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			Tensor{p + "attn_norm.weight", []uint64{d}},
			Tensor{p + "attn_q.weight", []uint64{d, d}},
			Tensor{p + "attn_k.weight", []uint64{d, kv}},
			Tensor{p + "attn_v.weight", []uint64{d, kv}},
			Tensor{p + "attn_output.weight", []uint64{d, d}},
			Tensor{p + "ffn_norm.weight", []uint64{d}},
			Tensor{p + "ffn_gate.weight", []uint64{d, h}},
			Tensor{p + "ffn_up.weight", []uint64{d, h}},
			Tensor{p + "ffn_down.weight", []uint64{h, d}},
		)
	}
	return append(ts, Tensor{"output_norm.weight", []uint64{d}}, Tensor{"output.weight", []uint64{d, v}})
}

// rng is splitmix64: tiny, fixed forever, easy to reproduce in C.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform returns a float32 in [-1, 1).
func (r *rng) uniform() float32 { return float32(r.next()>>40)/float32(1<<23) - 1 }

// Build returns the GGUF builder of the model of config c.
func Build(c Config) (*gguf.Builder, error) {
	if c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 || (c.Dim/c.Heads)%2 != 0 {
		return nil, fmt.Errorf("testmodel: dim %d, heads %d, kv heads %d: heads must divide dim into even head sizes and kv heads divide heads", c.Dim, c.Heads, c.KVHeads)
	}
	vocab := Vocabulary(c.Vocab)
	var b gguf.Builder
	b.Add("general.architecture", "llama")
	if c.TinyLlamaKeys {
		b.Add("general.name", "fluid-testmodel (TinyLlama key set, scaled shapes)")
	}
	b.Add("llama.context_length", uint32(c.Context))
	b.Add("llama.embedding_length", uint32(c.Dim))
	b.Add("llama.block_count", uint32(c.Layers))
	b.Add("llama.feed_forward_length", uint32(c.Hidden))
	b.Add("llama.rope.dimension_count", uint32(c.Dim/c.Heads))
	b.Add("llama.attention.head_count", uint32(c.Heads))
	b.Add("llama.attention.head_count_kv", uint32(c.KVHeads))
	b.Add("llama.attention.layer_norm_rms_epsilon", c.Eps)
	b.Add("llama.rope.freq_base", c.RopeBase)
	if c.TinyLlamaKeys {
		fileType := map[gguf.TensorType]uint32{gguf.F32: 0, gguf.F16: 1, gguf.Q8_0: 7}[c.Type]
		b.Add("general.file_type", fileType)
	}
	b.Add("tokenizer.ggml.model", "llama")
	b.Add("tokenizer.ggml.tokens", vocab.Tokens)
	b.Add("tokenizer.ggml.scores", vocab.Scores)
	b.Add("tokenizer.ggml.token_type", vocab.Types)
	if c.TinyLlamaKeys {
		b.Add("tokenizer.ggml.merges", vocab.Merges)
	}
	b.Add("tokenizer.ggml.bos_token_id", uint32(1))
	b.Add("tokenizer.ggml.eos_token_id", uint32(2))
	if c.TinyLlamaKeys {
		b.Add("tokenizer.ggml.unknown_token_id", uint32(0))
		b.Add("tokenizer.ggml.padding_token_id", uint32(2))
		b.Add("tokenizer.chat_template", "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}")
		b.Add("general.quantization_version", uint32(2))
	}
	r := &rng{s: c.Seed}
	for _, t := range Layout(c) {
		n := uint64(1)
		for _, d := range t.Dims {
			n *= d
		}
		vals := make([]float32, n)
		typ := c.Type
		if len(t.Dims) == 1 {
			// norms: around 1, F32
			typ = gguf.F32
			for i := range vals {
				vals[i] = 1 + 0.1*r.uniform()
			}
		} else {
			scale := float32(1 / math.Sqrt(float64(t.Dims[0])))
			if t.Name == "token_embd.weight" {
				scale = 1
			}
			for i := range vals {
				vals[i] = scale * r.uniform()
			}
		}
		if err := b.AddFloat32s(t.Name, typ, t.Dims, vals); err != nil {
			return nil, err
		}
	}
	return &b, nil
}

// Bytes is the GGUF file of config c.
func Bytes(c Config) ([]byte, error) {
	b, err := Build(c)
	if err != nil {
		return nil, err
	}
	return b.Bytes()
}

// Write writes the model of config c to path.
func Write(path string, c Config) error {
	b, err := Build(c)
	if err != nil {
		return err
	}
	return b.WriteFile(path)
}

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TypeNormal  = 1
	TypeUnknown = 2
	TypeControl = 3
	TypeByte    = 6
)

// Vocab is a SentencePiece-style vocabulary laid out like Llama's: <unk>,
// <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then pieces; a space is
// "▁" (U+2581). Piece scores fall with their rank, so the merge learned
// first wins.
type Vocab struct {
	Tokens []string
	Scores []float32
	Types  []int32
	Merges []string // "a b" pairs in merge order, as tokenizer.ggml.merges
}

// corpus trains the test vocabulary's merges.
const corpus = `once upon a time there was a little fluid kernel that ran one workload in ring zero .
it measured itself , it learned from its own profiles , and it made the next build faster .
the model reads the prompt , the tokens go in , and the next token comes out of the model .
a small model runs fast ; a large model runs slow , but the same code runs them both .
where there is a file there is a format , and where there is a format there is a reader .
the reader trusts nothing : every size and every offset is checked before it is used .`

// Vocabulary returns a vocabulary of n tokens (n >= 259+chars): specials,
// bytes, the corpus's characters, then BPE merges learned on the corpus
// until n tokens exist (or no pair repeats).
func Vocabulary(n int) Vocab {
	var v Vocab
	add := func(tok string, typ int32) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, 0)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", TypeUnknown)
	add("<s>", TypeControl)
	add("</s>", TypeControl)
	for i := 0; i < 256; i++ {
		add(fmt.Sprintf("<0x%02X>", i), TypeByte)
	}
	// words as sequences of symbols, each word led by ▁
	words := map[string]int{}
	for _, w := range strings.Fields(corpus) {
		words["▁"+w]++
	}
	chars := map[string]bool{}
	for w := range words {
		for _, ch := range w {
			chars[string(ch)] = true
		}
	}
	sortedChars := make([]string, 0, len(chars))
	for ch := range chars {
		sortedChars = append(sortedChars, ch)
	}
	sort.Strings(sortedChars)
	rank := 0
	addPiece := func(p string) {
		add(p, TypeNormal)
		v.Scores[len(v.Scores)-1] = -float32(rank)
		rank++
	}
	for _, ch := range sortedChars {
		addPiece(ch)
	}
	type word struct {
		syms  []string
		count int
	}
	var ws []word
	wordKeys := make([]string, 0, len(words))
	for w := range words {
		wordKeys = append(wordKeys, w)
	}
	sort.Strings(wordKeys)
	for _, w := range wordKeys {
		var syms []string
		for _, ch := range w {
			syms = append(syms, string(ch))
		}
		ws = append(ws, word{syms, words[w]})
	}
	for len(v.Tokens) < n {
		pairs := map[[2]string]int{}
		for _, w := range ws {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		var best [2]string
		bestN := 0
		for p, c := range pairs {
			if c > bestN || (c == bestN && p[0]+"\x00"+p[1] < best[0]+"\x00"+best[1]) {
				best, bestN = p, c
			}
		}
		if bestN < 1 {
			break
		}
		merged := best[0] + best[1]
		v.Merges = append(v.Merges, best[0]+" "+best[1])
		if !slices.Contains(v.Tokens, merged) { // two merge paths can spell one piece
			addPiece(merged)
		}
		for i := range ws {
			s := ws[i].syms
			var out []string
			for j := 0; j < len(s); j++ {
				if j+1 < len(s) && s[j] == best[0] && s[j+1] == best[1] {
					out = append(out, merged)
					j++
				} else {
					out = append(out, s[j])
				}
			}
			ws[i].syms = out
		}
	}
	// If the corpus ran out of pairs, pad with unused tokens so the
	// vocabulary has exactly n entries (as the model's output rows do).
	for i := 0; len(v.Tokens) < n; i++ {
		add(fmt.Sprintf("<unused%d>", i), TypeControl)
	}
	return v
}
