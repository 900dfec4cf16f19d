package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/gguf"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/llama"
	"github.com/fluid-os/fluid/internal/llama/llamarun"
	"github.com/fluid-os/fluid/internal/llama/testmodel"
)

// tinyKeyModel is a model with TinyLlama's exact metadata keys, tensor
// names and layout, its shapes scaled down (what a user's TinyLlama looks
// like to the build, in a few hundred KiB).
func tinyKeyModel() testmodel.Config {
	c := testmodel.Small(gguf.Q8_0)
	c.TinyLlamaKeys = true
	return c
}

// writeModel writes the model of c to a temporary file, after edit (which
// may change its metadata) when not nil.
func writeModel(t *testing.T, c testmodel.Config, edit func(b *gguf.Builder)) string {
	t.Helper()
	b, err := testmodel.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(b)
	}
	p := filepath.Join(t.TempDir(), "model.gguf")
	if err := b.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func setKV(key string, v any) func(b *gguf.Builder) {
	return func(b *gguf.Builder) {
		i := slices.IndexFunc(b.KVs, func(kv gguf.KV) bool { return kv.Key == key })
		if v == nil {
			b.KVs = slices.Delete(b.KVs, i, i+1)
		} else {
			b.KVs[i].Value = gguf.ValueOf(v)
		}
	}
}

func TestByoLlamaAcceptsTinyLlamaKeys(t *testing.T) {
	p := writeModel(t, tinyKeyModel(), nil)
	lf, err := ByoLlama(p, "", "")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	want := llamarun.Run{Prompt: DefaultLlamaPrompt, Generate: DefaultLlamaTokens, GenerateLight: DefaultLlamaTokens}
	if !slices.Equal(lf.Run.PromptIDs, nil) || !slices.Equal(lf.Run.Expect, nil) || lf.Run.Prompt != want.Prompt || lf.Run.Generate != want.Generate || lf.Run.GenerateLight != want.GenerateLight {
		t.Errorf("run %+v, want %+v (no prompt_ids, no expect)", lf.Run, want)
	}
	if lf.ModelBytes != st.Size() || lf.DeadlineMS != ByoDeadlineMS || lf.Config.Layers != 4 || lf.Config.Context != 128 {
		t.Errorf("files %+v", lf)
	}
	// 0.3 MiB model + 64 KiB KV + 256 MiB margin, rounded up to 64 MiB.
	if lf.Memory != "320M" || lf.ImageSize != 0 {
		t.Errorf("memory %s, image size %d; want 320M and the default image", lf.Memory, lf.ImageSize)
	}
	text, err := lf.Run.Text()
	if err != nil || strings.Contains(string(text), "expect") || strings.Contains(string(text), "prompt_ids") {
		t.Errorf("run.txt %q, %v: want no prompt_ids and no expect", text, err)
	}
	lf, err = ByoLlama(p, "there was a kernel", "7")
	if err != nil || lf.Run.Prompt != "there was a kernel" || lf.Run.Generate != 7 || lf.Run.GenerateLight != 7 {
		t.Errorf("prompt and tokens knobs: %+v, %v", lf, err)
	}
}

// TestByoLlamaRefuses: a bad model or knob is refused before anything is
// built, naming the field.
func TestByoLlamaRefuses(t *testing.T) {
	good := writeModel(t, tinyKeyModel(), nil)
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(bad, []byte("GGML not a gguf file at all, padding padding"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("once upon a time ", 40)
	for _, tc := range []struct {
		name, model, prompt, tokens, want string
	}{
		{"magic", bad, "", "", "magic"},
		{"missing file", filepath.Join(t.TempDir(), "nope.gguf"), "", "", "no such file"},
		{"architecture", writeModel(t, tinyKeyModel(), setKV("general.architecture", "gpt2")), "", "", "general.architecture"},
		{"missing key", writeModel(t, tinyKeyModel(), setKV("llama.context_length", nil)), "", "", "llama.context_length"},
		{"missing tensor", writeModel(t, tinyKeyModel(), setKV("llama.block_count", uint32(5))), "", "", "tensor blk.4.attn_norm.weight is missing"},
		{"tensor shape", writeModel(t, tinyKeyModel(), setKV("llama.feed_forward_length", uint32(96))), "", "", "tensor blk.0.ffn_gate.weight has dims"},
		{"tokens", good, "", "lots", "FLUID_LLAMA_TOKENS=\"lots\""},
		{"zero tokens", good, "", "0", "FLUID_LLAMA_TOKENS"},
		{"prompt line break", good, "a\nb", "", "FLUID_LLAMA_PROMPT"},
		{"context", good, long, "", "exceeds the model's context of 128 (llama.context_length)"},
	} {
		_, err := ByoLlama(tc.model, tc.prompt, tc.tokens)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := (byoEnv{prompt: "hello"}).resolve(); err == nil || !strings.Contains(err.Error(), EnvLlamaModel) {
		t.Errorf("a prompt without a model: %v", err)
	}
	if lf, err := (byoEnv{}).resolve(); lf != nil || err != nil {
		t.Errorf("no knobs: %v, %v; want the default files", lf, err)
	}
}

// tinyLlamaQ8Bytes is the size of TinyLlama-1.1B's tensors in Q8_0 (norms
// F32, as llama.cpp writes them): what a 1.17 GB download holds, less its
// few MiB of metadata.
func tinyLlamaQ8Bytes() int64 {
	var n int64
	for _, ts := range testmodel.Layout(testmodel.TinyLlamaShapes) {
		e := int64(1)
		for _, d := range ts.Dims {
			e *= int64(d)
		}
		if len(ts.Dims) == 1 {
			n += 4 * e
		} else {
			n += e / 32 * 34
		}
	}
	return n
}

// TestLlamaSizing pins the figures the README states for TinyLlama-1.1B
// Q8_0: the RAM a boot gets and the image that holds it.
func TestLlamaSizing(t *testing.T) {
	c := testmodel.TinyLlamaShapes
	cfg := llama.Config{Context: c.Context, Dim: c.Dim, Layers: c.Layers, Hidden: c.Hidden, Heads: c.Heads, KVHeads: c.KVHeads}
	model := tinyLlamaQ8Bytes() + 2<<20 // the tokenizer metadata
	if model < 1160e6 || model > 1180e6 {
		t.Fatalf("TinyLlama Q8_0 comes to %d bytes, not the 1.17 GB of the download", model)
	}
	if kv := LlamaKVBytes(cfg); kv != 88<<20 {
		t.Errorf("TinyLlama's KV cache over 2048 positions: %d bytes, want 88 MiB", kv)
	}
	if m := LlamaMemory(model, cfg); m != "1472M" {
		t.Errorf("TinyLlama Q8_0 boots with -m %s, want 1472M (README)", m)
	}
	size, err := LlamaImageSize(model)
	if err != nil || size != 1216<<20 {
		t.Errorf("TinyLlama Q8_0 image: %d MiB, %v; want 1216 MiB", size>>20, err)
	}
	if size, err := LlamaImageSize(300 << 10); size != 0 || err != nil {
		t.Errorf("a small model: image size %d, %v; want the default", size, err)
	}
	if _, err := LlamaImageSize(image.MaxSize); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a model as big as the image maximum: %v", err)
	}
	t.Logf("TinyLlama-1.1B Q8_0 (%d bytes): -m %s, image %d MiB", model, LlamaMemory(model, cfg), size>>20)
}

func TestLlamaDeadlineFlag(t *testing.T) {
	b := &Builder{opt: Options{Llama: &LlamaFiles{DeadlineMS: ByoDeadlineMS}}}
	if got := b.llamaCFlags("llama"); !slices.Equal(got, []string{"-DLLAMA_DEADLINE_MS=600000"}) {
		t.Errorf("llama flags %v", got)
	}
	if got := b.llamaCFlags("fib"); got != nil {
		t.Errorf("fib gets %v; the deadline is the llama module's only", got)
	}
	b.opt.Llama.DeadlineMS = 0
	if got := b.llamaCFlags("llama"); got != nil {
		t.Errorf("no deadline set: %v", got)
	}
}

func TestReleaseRefusesUsersModel(t *testing.T) {
	b := &Builder{opt: Options{Llama: &LlamaFiles{Model: "/models/tinyllama.gguf"}}}
	if _, err := b.Release(t.Context(), nil); err == nil || !strings.Contains(err.Error(), EnvLlamaModel) || !strings.Contains(err.Error(), "/models/tinyllama.gguf") {
		t.Errorf("release with a user's model: %v", err)
	}
}

func TestLlamaBootTimeout(t *testing.T) {
	lf := &LlamaFiles{DeadlineMS: ByoDeadlineMS, ModelBytes: 1_171_169_280}
	if got, want := lf.BootTimeout(false), 3*10*time.Minute+1171*time.Second+time.Minute; got != want {
		t.Errorf("TinyLlama boot timeout %v, want %v", got, want)
	}
	if got, want := lf.BootTimeout(true), 10*time.Minute+1171*time.Second+time.Minute; got != want {
		t.Errorf("LIGHT: %v, want %v", got, want)
	}
	if (*LlamaFiles)(nil).BootTimeout(false) != 0 || (&LlamaFiles{}).BootTimeout(false) != 0 {
		t.Error("the default files and files without a deadline keep the harness's timeout")
	}
}

// TestByoLlamaImageGetsTheCheckedBytes: the image carries the model bytes
// the build checked, not whatever the file holds when the image step runs
// (a download still being written, a file replaced by another), and the
// image step's key covers those bytes whatever the path (a model under
// /usr/ is a toolchain-image path to the sandbox's input hashing).
func TestByoLlamaImageGetsTheCheckedBytes(t *testing.T) {
	p := writeModel(t, tinyKeyModel(), nil)
	checked, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ByoLlama(p, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// The file changes after the check.
	if err := os.WriteFile(p, []byte("GGUF but no longer the model that was checked"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Builder{opt: Options{Llama: lf}}
	files, _, err := b.llamaImageFiles()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(files, func(f image.File) bool { return f.Path == llamarun.ModelPath })
	if i < 0 {
		t.Fatalf("no %s among %v", llamarun.ModelPath, files)
	}
	got := files[i].Data
	if got == nil {
		if got, err = os.ReadFile(files[i].Src); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, checked) {
		t.Errorf("the image's %s holds %d bytes that are not the %d bytes the build checked (it re-reads %s)", llamarun.ModelPath, len(got), len(checked), files[i].Src)
	}
}

// TestByoLlamaRefusesAHugePromptFast: a prompt far longer than the context
// is refused at once, naming the context, not after tokenizing it (the
// tokenizer's merge loop is quadratic: 20 KB took 9 s, 100 KB minutes).
func TestByoLlamaRefusesAHugePromptFast(t *testing.T) {
	p := writeModel(t, tinyKeyModel(), nil)
	prompt := strings.Repeat("once upon a time ", 100<<10/17)
	t0 := time.Now()
	_, err := ByoLlama(p, prompt, "")
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("a %d-byte prompt took %v to refuse", len(prompt), took)
	}
	if err == nil || !strings.Contains(err.Error(), "exceeds the model's context of 128 (llama.context_length)") {
		t.Errorf("a %d-byte prompt: %v", len(prompt), err)
	}
}

// TestMinPromptTokensIsALowerBound: the bound never exceeds the real count
// (else a prompt that fits would be refused).
func TestMinPromptTokensIsALowerBound(t *testing.T) {
	p := writeModel(t, tinyKeyModel(), nil)
	lf, err := ByoLlama(p, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "a", " ", "once upon a time", "the reader trusts nothing", "a  b   c", " leading", "trailing ",
		"naïve café — ünïcode ✓", "\xff\x00 é", "thethethe therethere", "where there is a file there is a format",
		strings.Repeat("the model ", 30), strings.Repeat("x", 300)} {
		ids, err := lf.tok.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		if least := minPromptTokens(lf.tok, s); least > len(ids) {
			t.Errorf("%q: bound %d > %d tokens", s, least, len(ids))
		}
	}
}
