// Package llama is the host reference of the Llama architecture as
// TinyLlama uses it, read from a GGUF file: token embedding, RMSNorm,
// rotary position embeddings with llama.rope.freq_base, grouped-query
// attention with a KV cache, a SwiGLU feed-forward layer, the final norm,
// the output projection and greedy sampling, all in float32; and the
// SentencePiece tokenizer of the file's tokenizer.ggml.* metadata.
//
// It is the reference the ring-0 `llama` module is checked against, token
// for token. Conventions follow llama.cpp for LLM_ARCH_LLAMA: a weight of
// GGUF dims [in, out] is out rows of in elements (y = W x), RoPE is the
// "normal" mode rotating adjacent pairs (x[2i], x[2i+1]) of each head by
// pos * freq_base^(-2i/rope.dimension_count), the attention scale is
// 1/sqrt(head_dim), query head h uses KV head h/(heads/kv_heads), and
// RMSNorm is x * w / sqrt(mean(x^2) + eps). Q8_0 and F16 weights are
// dequantized to float32 when loaded; the arithmetic is float32
// throughout (sums accumulate in float32, in index order).
package llama

import (
	"fmt"
	"math"

	"github.com/fluid-os/fluid/internal/gguf"
)

// Config is the llama.* metadata.
type Config struct {
	Context  int
	Dim      int
	Layers   int
	Hidden   int
	Heads    int
	KVHeads  int
	HeadDim  int
	RopeDim  int
	RopeBase float32
	Eps      float32
	Vocab    int
}

type layer struct {
	attnNorm, wq, wk, wv, wo, ffnNorm, wGate, wUp, wDown []float32
}

// Model is a loaded model with its KV cache.
type Model struct {
	Config
	Tok     *Tokenizer
	embd    []float32
	layers  []layer
	outNorm []float32
	out     []float32
	kCache  [][]float32 // per layer: Context * kvDim
	vCache  [][]float32
	pos     int
	ropeCos []float32 // Context * RopeDim/2
	ropeSin []float32
}

// ReadConfig reads and checks the llama.* metadata.
func ReadConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, err := getString(f, "general.architecture")
	if err != nil {
		return c, err
	}
	if arch != "llama" {
		return c, fmt.Errorf("general.architecture is %q: only \"llama\" is supported", arch)
	}
	ints := []struct {
		key string
		dst *int
	}{
		{"llama.context_length", &c.Context}, {"llama.embedding_length", &c.Dim},
		{"llama.block_count", &c.Layers}, {"llama.feed_forward_length", &c.Hidden},
		{"llama.attention.head_count", &c.Heads}, {"llama.attention.head_count_kv", &c.KVHeads},
		{"llama.rope.dimension_count", &c.RopeDim},
	}
	for _, kv := range ints {
		v, err := getUint(f, kv.key)
		if err != nil {
			return c, err
		}
		if v == 0 || v > 1<<20 {
			return c, fmt.Errorf("metadata %s is %d: want 1..%d", kv.key, v, 1<<20)
		}
		*kv.dst = int(v)
	}
	if c.RopeBase, err = getFloat(f, "llama.rope.freq_base"); err != nil {
		return c, err
	}
	if c.Eps, err = getFloat(f, "llama.attention.layer_norm_rms_epsilon"); err != nil {
		return c, err
	}
	if c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("llama.embedding_length %d, head_count %d, head_count_kv %d: heads must divide the embedding and KV heads the heads", c.Dim, c.Heads, c.KVHeads)
	}
	c.HeadDim = c.Dim / c.Heads
	if c.RopeDim > c.HeadDim || c.RopeDim%2 != 0 {
		return c, fmt.Errorf("llama.rope.dimension_count %d: want an even number up to the head size %d", c.RopeDim, c.HeadDim)
	}
	return c, nil
}

// LoadBytes parses a GGUF file's bytes and loads the model from it.
func LoadBytes(data []byte) (*Model, error) {
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, err
	}
	return Load(f)
}

// Load reads the model and tokenizer from a parsed GGUF file.
func Load(f *gguf.File) (*Model, error) {
	c, err := ReadConfig(f)
	if err != nil {
		return nil, err
	}
	tok, err := NewTokenizer(f)
	if err != nil {
		return nil, err
	}
	c.Vocab = len(tok.Tokens)
	m := &Model{Config: c, Tok: tok}
	kvDim := c.HeadDim * c.KVHeads
	get := func(name string, dims ...int) ([]float32, error) {
		ti, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("tensor %s is missing", name)
		}
		if len(ti.Dims) != len(dims) {
			return nil, fmt.Errorf("tensor %s has dims %v, want %v", name, ti.Dims, dims)
		}
		for i, d := range dims {
			if ti.Dims[i] != uint64(d) {
				return nil, fmt.Errorf("tensor %s has dims %v, want %v", name, ti.Dims, dims)
			}
		}
		return f.Float32s(ti), nil
	}
	if m.embd, err = get("token_embd.weight", c.Dim, c.Vocab); err != nil {
		return nil, err
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		var ly layer
		for _, w := range []struct {
			dst  *[]float32
			name string
			dims []int
		}{
			{&ly.attnNorm, "attn_norm", []int{c.Dim}},
			{&ly.wq, "attn_q", []int{c.Dim, c.Dim}},
			{&ly.wk, "attn_k", []int{c.Dim, kvDim}},
			{&ly.wv, "attn_v", []int{c.Dim, kvDim}},
			{&ly.wo, "attn_output", []int{c.Dim, c.Dim}},
			{&ly.ffnNorm, "ffn_norm", []int{c.Dim}},
			{&ly.wGate, "ffn_gate", []int{c.Dim, c.Hidden}},
			{&ly.wUp, "ffn_up", []int{c.Dim, c.Hidden}},
			{&ly.wDown, "ffn_down", []int{c.Hidden, c.Dim}},
		} {
			if *w.dst, err = get(p+w.name+".weight", w.dims...); err != nil {
				return nil, err
			}
		}
		m.layers = append(m.layers, ly)
	}
	if m.outNorm, err = get("output_norm.weight", c.Dim); err != nil {
		return nil, err
	}
	if m.out, err = get("output.weight", c.Dim, c.Vocab); err != nil {
		return nil, err
	}
	m.Reset()
	m.ropeCos, m.ropeSin = RopeTable(c.Context, c.RopeDim, c.RopeBase)
	return m, nil
}

// RopeTable returns the RoPE table, context rows of ropeDim/2 entries
// (position-major): cos and sin of theta = p * base^(-2i/ropeDim) for
// position p and pair i, as this chain of float32 operations, each rounded
// once:
//
//	lb = logf(base); a = float32(2i) / float32(ropeDim); e = -(a * lb)
//	freq = expf(e); theta = float32(p) * freq; cos_t = cosf(theta); sin_t = sinf(theta)
//
// with logf(x) = float32(math.Log(float64(x))) and so on: the float64
// function rounded to float32, correctly rounded in practice. The C module
// computes the same chain with modules/llama/mathf.c's fl_logf, fl_expf,
// fl_cosf and fl_sinf, which are correctly rounded on their sweeps
// (internal/llama/mathf), and gives the same table bit for bit
// (internal/llama/guest TestRopeTable).
func RopeTable(context, ropeDim int, base float32) (cos, sin []float32) {
	half := ropeDim / 2
	cos = make([]float32, context*half)
	sin = make([]float32, context*half)
	lb := float32(math.Log(float64(base)))
	for i := 0; i < half; i++ {
		a := float32(2*i) / float32(ropeDim)
		e := -(a * lb)
		freq := float32(math.Exp(float64(e)))
		for p := 0; p < context; p++ {
			theta := float32(p) * freq
			cos[p*half+i] = float32(math.Cos(float64(theta)))
			sin[p*half+i] = float32(math.Sin(float64(theta)))
		}
	}
	return cos, sin
}

// Reset empties the KV cache.
func (m *Model) Reset() {
	kvDim := m.HeadDim * m.KVHeads
	m.kCache = make([][]float32, m.Layers)
	m.vCache = make([][]float32, m.Layers)
	for l := range m.kCache {
		m.kCache[l] = make([]float32, m.Context*kvDim)
		m.vCache[l] = make([]float32, m.Context*kvDim)
	}
	m.pos = 0
}

// Pos is the number of tokens in the KV cache.
func (m *Model) Pos() int { return m.pos }

// matmul: out[r] = sum_i w[r*in+i] * x[i], for len(out) rows.
func matmul(out, w, x []float32) {
	in := len(x)
	for r := range out {
		row := w[r*in : (r+1)*in]
		var s float32
		for i, v := range row {
			s += v * x[i]
		}
		out[r] = s
	}
}

func rmsnorm(out, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	scale := 1 / float32(math.Sqrt(float64(ss/float32(len(x))+eps)))
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

func (m *Model) rope(v []float32, nHeads, pos int) {
	half := m.RopeDim / 2
	cs, sn := m.ropeCos[pos*half:(pos+1)*half], m.ropeSin[pos*half:(pos+1)*half]
	for h := 0; h < nHeads; h++ {
		hv := v[h*m.HeadDim:]
		for i := 0; i < half; i++ {
			a, b := hv[2*i], hv[2*i+1]
			hv[2*i] = a*cs[i] - b*sn[i]
			hv[2*i+1] = a*sn[i] + b*cs[i]
		}
	}
}

func silu(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// Forward runs one token at the next position and returns its logits.
func (m *Model) Forward(token int) ([]float32, error) {
	if token < 0 || token >= m.Vocab {
		return nil, fmt.Errorf("token %d is outside the vocabulary of %d", token, m.Vocab)
	}
	if m.pos >= m.Context {
		return nil, fmt.Errorf("position %d: the context of %d tokens (llama.context_length) is full", m.pos, m.Context)
	}
	c := m.Config
	kvDim := c.HeadDim * c.KVHeads
	group := c.Heads / c.KVHeads
	pos := m.pos
	x := append([]float32(nil), m.embd[token*c.Dim:(token+1)*c.Dim]...)
	xb := make([]float32, c.Dim)
	q := make([]float32, c.Dim)
	att := make([]float32, c.Dim)
	proj := make([]float32, c.Dim)
	scores := make([]float32, pos+1)
	h1 := make([]float32, c.Hidden)
	h3 := make([]float32, c.Hidden)
	scale := 1 / float32(math.Sqrt(float64(c.HeadDim)))
	for l, ly := range m.layers {
		rmsnorm(xb, x, ly.attnNorm, c.Eps)
		matmul(q, ly.wq, xb)
		k := m.kCache[l][pos*kvDim : (pos+1)*kvDim]
		v := m.vCache[l][pos*kvDim : (pos+1)*kvDim]
		matmul(k, ly.wk, xb)
		matmul(v, ly.wv, xb)
		m.rope(q, c.Heads, pos)
		m.rope(k, c.KVHeads, pos)
		for h := 0; h < c.Heads; h++ {
			qh := q[h*c.HeadDim : (h+1)*c.HeadDim]
			kvOff := (h / group) * c.HeadDim
			maxS := float32(math.Inf(-1))
			for t := 0; t <= pos; t++ {
				kt := m.kCache[l][t*kvDim+kvOff:]
				var s float32
				for i, qv := range qh {
					s += qv * kt[i]
				}
				s *= scale
				scores[t] = s
				maxS = max(maxS, s)
			}
			var sum float32
			for t := 0; t <= pos; t++ {
				scores[t] = float32(math.Exp(float64(scores[t] - maxS)))
				sum += scores[t]
			}
			out := att[h*c.HeadDim : (h+1)*c.HeadDim]
			clear(out)
			for t := 0; t <= pos; t++ {
				a := scores[t] / sum
				vt := m.vCache[l][t*kvDim+kvOff:]
				for i := range out {
					out[i] += a * vt[i]
				}
			}
		}
		matmul(proj, ly.wo, att)
		for i := range x {
			x[i] += proj[i]
		}
		rmsnorm(xb, x, ly.ffnNorm, c.Eps)
		matmul(h1, ly.wGate, xb)
		matmul(h3, ly.wUp, xb)
		for i := range h1 {
			h1[i] = silu(h1[i]) * h3[i]
		}
		matmul(proj, ly.wDown, h1)
		for i := range x {
			x[i] += proj[i]
		}
	}
	rmsnorm(xb, x, m.outNorm, c.Eps)
	logits := make([]float32, c.Vocab)
	matmul(logits, m.out, xb)
	m.pos++
	return logits, nil
}

// Argmax is greedy sampling: the highest logit, the lowest id on a tie.
func Argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// Result is a generation: the generated ids and, for each step, the logits
// it was chosen from (the last prompt position's for the first).
type Result struct {
	Tokens []int
	Logits [][]float32
}

// Generate resets the cache, feeds prompt and greedily generates n tokens
// (stopping early at EOS). A prompt and n that do not fit the context are
// refused before any work.
func (m *Model) Generate(prompt []int, n int) (Result, error) {
	var r Result
	if len(prompt) == 0 {
		return r, fmt.Errorf("generate: the prompt is empty: it needs at least the BOS token")
	}
	if len(prompt)+n > m.Context {
		return r, fmt.Errorf("generate: a prompt of %d tokens plus %d to generate exceeds the context of %d tokens (llama.context_length): shorten the prompt or generate fewer", len(prompt), n, m.Context)
	}
	m.Reset()
	var logits []float32
	var err error
	for _, t := range prompt {
		if logits, err = m.Forward(t); err != nil {
			return r, err
		}
	}
	for i := 0; i < n; i++ {
		next := Argmax(logits)
		r.Tokens = append(r.Tokens, next)
		r.Logits = append(r.Logits, logits)
		if next == m.Tok.EOS || i == n-1 {
			break
		}
		if logits, err = m.Forward(next); err != nil {
			return r, err
		}
	}
	return r, nil
}
