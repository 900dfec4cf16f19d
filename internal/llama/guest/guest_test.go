// Package guest tests the ring-0 llama module (modules/llama) on the host:
// its C files are compiled with the pinned toolchain's clang as a Linux
// program together with testdata/llama_host.c, which supplies the kernel
// services, and its output is compared with the Go reference
// (internal/llama): tokens, text, every step's logits, tokenizations, and
// the refusals of malformed models and run files.
package guest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/gguf"
	"github.com/fluid-os/fluid/internal/llama"
	"github.com/fluid-os/fluid/internal/llama/llamarun"
	"github.com/fluid-os/fluid/internal/llama/testmodel"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

// LogitTolerance is the contract's bound on |logit C - logit Go| for the
// same model: the C module sums dot products in 8 SSE lanes and computes
// exp with its own fl_expf, Go sums in index order.
const LogitTolerance = 1e-4

type harness struct {
	tc  *toolchain.Toolchain
	bin string
}

// build compiles the harness with every C file of modules/llama (extra:
// more clang flags).
func build(t *testing.T, extra ...string) *harness {
	t.Helper()
	tc, root := toolchaintest.Find(t), toolchaintest.Root(t)
	srcs, err := filepath.Glob(filepath.Join(root, "modules/llama/*.c"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no C files in modules/llama (%v)", err)
	}
	bin := filepath.Join(t.TempDir(), "llama_host")
	argv := []string{tc.Path("clang"), "-fuse-ld=lld", "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
		"-I" + filepath.Join(root, "modules/include"), filepath.Join(root, "internal/llama/guest/testdata/llama_host.c")}
	argv = append(append(argv, extra...), srcs...)
	if out, err := toolchaintest.Run(tc, "", append(argv, "-o", bin)...); err != nil {
		t.Fatalf("build llama_host: %v\n%s", err, out)
	}
	return &harness{tc, bin}
}

// module runs fluid_main on the files in dir; every call must free all
// it allocated, whether it passed or refused.
func (h *harness) module(t *testing.T, dir string, flags ...string) (string, error) {
	t.Helper()
	out, err := h.run(append([]string{"run", dir}, flags...)...)
	if !strings.Contains(out, " checks failed, 0 allocations not freed\n") {
		t.Errorf("the module did not free everything it allocated:\n%s", out)
	}
	return out, err
}

func (h *harness) run(args ...string) (string, error) {
	out, err := toolchaintest.Run(h.tc, "", append([]string{h.bin}, args...)...)
	return string(out), err
}

// files writes a directory holding llama/model.gguf and llama/run.txt.
func files(t *testing.T, model, run []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "llama"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"model.gguf": model, "run.txt": run} {
		if err := os.WriteFile(filepath.Join(dir, "llama", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runText(t *testing.T, r llamarun.Run) []byte {
	t.Helper()
	b, err := r.Text()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t *testing.T, model []byte) *llama.Model {
	t.Helper()
	m, err := llama.LoadBytes(model)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func line(out, prefix string) (string, bool) {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix), true
		}
	}
	return "", false
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// sanitize builds the harness with AddressSanitizer and
// UndefinedBehaviorSanitizer: an out-of-bounds access, an overflow of a
// signed integer or a misaligned load anywhere in the module aborts it.
var sanitize = []string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"}

func TestGuest(t *testing.T) {
	h := build(t, sanitize...)
	q8, q8run, err := llamarun.Default()
	if err != nil {
		t.Fatal(err)
	}

	for _, typ := range []gguf.TensorType{gguf.Q8_0, gguf.F32, gguf.F16} {
		t.Run("model/"+typ.String(), func(t *testing.T) {
			model, err := llamarun.Model(typ)
			if err != nil {
				t.Fatal(err)
			}
			testModel(t, h, model, typ)
		})
	}
	// A file with TinyLlama-1.1B-Chat's exact key set (merges, chat
	// template, special ids...) and 22 layers, as a user's file has.
	t.Run("model/TinyLlama keys", func(t *testing.T) {
		c := testmodel.Small(gguf.Q8_0)
		c.Layers = testmodel.TinyLlamaShapes.Layers
		c.TinyLlamaKeys = true
		model, err := testmodel.Bytes(c)
		if err != nil {
			t.Fatal(err)
		}
		testModel(t, h, model, gguf.Q8_0)
	})

	// Heads of 6: model.c's attention loops run in 4-lane vectors with a
	// scalar tail, which the test model's heads of 8 never reach.
	t.Run("model/head size 6", func(t *testing.T) {
		c := testmodel.Small(gguf.Q8_0)
		c.Dim, c.Heads, c.KVHeads = 96, 16, 4
		model, err := testmodel.Bytes(c)
		if err != nil {
			t.Fatal(err)
		}
		testModel(t, h, model, gguf.Q8_0)
	})

	t.Run("light", func(t *testing.T) {
		out, err := h.module(t, files(t, q8, runText(t, q8run)), "--light")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		toks, _ := line(out, "llama: tokens ")
		if want := q8run.Expect[:llamarun.DefaultGenerateLight]; !slices.Equal(ints(toks), want) {
			t.Errorf("LIGHT: tokens %v, want %v\n%s", toks, want, out)
		}
	})

	t.Run("wrong expect fails", func(t *testing.T) {
		r := q8run
		r.Expect = slices.Clone(r.Expect)
		r.Expect[3]++
		out, err := h.module(t, files(t, q8, runText(t, r)))
		if err == nil || !strings.Contains(out, "check llama: token[3] FAIL") {
			t.Errorf("a wrong expected token[3] did not fail the run (%v):\n%s", err, out)
		}
	})

	t.Run("old services table refused", func(t *testing.T) {
		out, err := h.module(t, files(t, q8, runText(t, q8run)), "--services-v1")
		if err == nil || !strings.Contains(out, "llama: refused: the kernel's services table has no read_file/ms (services version 2)") {
			t.Errorf("a services table without read_file was not refused (%v):\n%s", err, out)
		}
	})

	t.Run("tokenizer", func(t *testing.T) { testTokenizer(t, h, q8) })
	// Equal scores everywhere: every merge is a tie, so the tie-break
	// (leftmost pair first) decides the encoding.
	t.Run("tokenizer ties", func(t *testing.T) {
		b, err := testmodel.Build(testmodel.Small(gguf.Q8_0))
		if err != nil {
			t.Fatal(err)
		}
		for i, kv := range b.KVs {
			if kv.Key == "tokenizer.ggml.scores" {
				b.KVs[i].Value = gguf.ValueOf(make([]float32, 512))
			}
		}
		flat, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		testTokenizer(t, h, flat)
	})
	t.Run("context", func(t *testing.T) { testContext(t, h, q8) })
	t.Run("malformed gguf", func(t *testing.T) { testMalformedGGUF(t, h, q8, runText(t, q8run)) })
	t.Run("malformed run.txt", func(t *testing.T) { testMalformedRun(t, h, q8, runText(t, q8run)) })
}

// testModel: the module's tokens, text and every step's logits agree with
// the Go reference for the test model in typ.
func testModel(t *testing.T, h *harness, model []byte, typ gguf.TensorType) {
	run, err := llamarun.ForModel(model, llamarun.DefaultPrompt, llamarun.DefaultGenerate, llamarun.DefaultGenerateLight)
	if err != nil {
		t.Fatal(err)
	}
	m := load(t, model)
	res, err := m.Generate(run.PromptIDs, run.Generate)
	if err != nil {
		t.Fatal(err)
	}
	text, err := m.Tok.Decode(res.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.module(t, files(t, model, runText(t, run)))
	if err != nil {
		t.Fatalf("the module failed: %v\n%s", err, out)
	}
	want := []string{
		fmt.Sprintf("llama: model /llama/model.gguf: %d layers, dim %d, %d heads (%d kv), hidden %d, vocab %d, context %d, %s, %d bytes",
			m.Layers, m.Dim, m.Heads, m.KVHeads, m.Hidden, m.Vocab, m.Context, typ, len(model)),
		fmt.Sprintf("llama: prompt %q = 5 tokens: 1 451 471 293 466", llamarun.DefaultPrompt),
		"llama: tokens " + strings.Trim(fmt.Sprint(res.Tokens), "[]"),
		`llama: text "` + serial.EscapeText([]byte(text)) + `"`,
	}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("no line %q in the module's output:\n%s", w, out)
		}
	}
	if g, ok := line(out, "llama: generated 24 tokens in "); !ok || !strings.Contains(g, " tsc/token, ") || !strings.HasSuffix(g, " ms/token)") {
		t.Errorf("no `llama: generated 24 tokens in N tsc (N tsc/token, X.YYY ms/token)` line:\n%s", out)
	}

	args := []string{"logits", filepath.Join(files(t, model, nil), "llama/model.gguf"), strconv.Itoa(run.Generate)}
	for _, id := range run.PromptIDs {
		args = append(args, strconv.Itoa(id))
	}
	out, err = h.run(args...)
	if err != nil {
		t.Fatalf("logits: %v\n%s", err, out)
	}
	var steps [][]float32
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "logits ") {
			continue
		}
		var step []float32
		for _, f := range strings.Fields(l)[1:] {
			bits, err := strconv.ParseUint(f, 16, 32)
			if err != nil {
				t.Fatalf("logits line: %v", err)
			}
			step = append(step, math.Float32frombits(uint32(bits)))
		}
		steps = append(steps, step)
	}
	if len(steps) != len(res.Logits) {
		t.Fatalf("C gave %d steps of logits, Go %d", len(steps), len(res.Logits))
	}
	var worst float64
	for i := range steps {
		if len(steps[i]) != len(res.Logits[i]) {
			t.Fatalf("step %d: C gave %d logits, Go %d", i, len(steps[i]), len(res.Logits[i]))
		}
		for j := range steps[i] {
			worst = max(worst, math.Abs(float64(steps[i][j])-float64(res.Logits[i][j])))
		}
	}
	t.Logf("%s: max |logit C - logit Go| over %d steps x %d logits = %.3g (tolerance %g)", typ, len(steps), len(steps[0]), worst, LogitTolerance)
	if worst > LogitTolerance || math.IsNaN(worst) {
		t.Errorf("%s: C logits differ from Go's by %g, more than %g", typ, worst, LogitTolerance)
	}
}

// testTokenizer: the C tokenizer encodes exactly as Go's and decodes back.
func testTokenizer(t *testing.T, h *harness, model []byte) {
	m := load(t, model)
	texts := []string{
		"once upon a time", "the reader trusts nothing", "a  b   c", " leading space", "trailing ",
		"UPPER case and digits 0123", "naïve café — ünïcode ✓", "tab\tnewline\n", "", "é",
		"\xff\x00 é", "\xe2\x82", "\xed\xa0\x80 surrogate", "\xf0\x9f\x98\x80 emoji \xf4\x90\x80\x80",
		"where there is a file there is a format , and where there is a format there is a reader .",
		"thethethe therethere", `quote " and \ backslash`,
	}
	args := []string{"encode", filepath.Join(files(t, model, nil), "llama/model.gguf")}
	for _, s := range texts {
		args = append(args, hex.EncodeToString([]byte(s))+"") // "" keeps an empty text an argument
	}
	out, err := h.run(args...)
	if err != nil {
		t.Fatalf("encode: %v\n%s", err, out)
	}
	var idsLines, decLines []string
	for _, l := range strings.Split(out, "\n") {
		if l == "ids" || strings.HasPrefix(l, "ids ") {
			idsLines = append(idsLines, strings.TrimPrefix(strings.TrimPrefix(l, "ids"), " "))
		} else if strings.HasPrefix(l, "dec ") {
			decLines = append(decLines, strings.TrimPrefix(l, "dec "))
		}
	}
	if len(idsLines) != len(texts) || len(decLines) != len(texts) {
		t.Fatalf("%d texts, %d ids lines and %d dec lines:\n%s", len(texts), len(idsLines), len(decLines), out)
	}
	for i, s := range texts {
		want, err := m.Tok.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := ints(idsLines[i]); !slices.Equal(got, want) {
			t.Errorf("encode %q: C %v, Go %v", s, got, want)
		}
		dec, _ := hex.DecodeString(decLines[i])
		if goDec, _ := m.Tok.Decode(want); string(dec) != goDec || goDec != s {
			t.Errorf("decode(encode(%q)): C %q, Go %q", s, dec, goDec)
		}
	}
}

// testContext: a prompt and generate count over the context is refused
// with the contract's message.
func testContext(t *testing.T, h *harness, model []byte) {
	m := load(t, model)
	prompt := strings.Repeat("the model ", 80)
	ids, _ := m.Tok.Encode(prompt, true)
	r := llamarun.Run{Prompt: prompt, Generate: 24, GenerateLight: 6}
	out, err := h.module(t, files(t, model, runText(t, r)))
	want := fmt.Sprintf("llama: refused: prompt of %d tokens + 24 to generate exceeds the model's context of 128 (llama.context_length)\n", len(ids))
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("a prompt of %d tokens was not refused with %q (%v):\n%s", len(ids), want, err, out)
	}
	// A prompt that fills the context exactly with the tokens to generate runs.
	fit := llamarun.DefaultPrompt
	ids, _ = m.Tok.Encode(fit, true)
	r = llamarun.Run{Prompt: fit, Generate: 128 - len(ids), GenerateLight: 1}
	if out, err := h.module(t, files(t, model, runText(t, r))); err != nil {
		t.Errorf("a prompt of %d tokens + %d to generate (= the context) was refused: %v\n%s", len(ids), r.Generate, err, out)
	}
}

// tensorInfo returns the file offset of tensor name's n_dims field.
func tensorInfo(t *testing.T, b []byte, name string) int {
	t.Helper()
	i := bytes.Index(b, []byte(name))
	if i < 0 {
		t.Fatalf("no tensor %s in the file", name)
	}
	return i + len(name)
}

func testMalformedGGUF(t *testing.T, h *harness, model, run []byte) {
	le := binary.LittleEndian
	f, err := gguf.Parse(model)
	if err != nil {
		t.Fatal(err)
	}
	// token_embd.weight is tensor 0: n_dims u32, dims u64[2], type u32, offset u64.
	emb := tensorInfo(t, model, "token_embd.weight")
	last := len(f.Tensors) - 1
	mutate := func(fn func(b []byte) []byte) []byte { return fn(slices.Clone(model)) }
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"truncated header", "kv[", model[:8000]},
		{"truncated counts", "metadata_kv_count at byte 16: 16 pairs cannot fit in the 76 bytes", model[:100]},
		{"truncated data", fmt.Sprintf("tensor_infos[%d].offset", last), model[:len(model)-100]},
		{"empty", "magic at byte 0: truncated", nil},
		{"bad magic", `magic at byte 0: got "GGUQ"`, mutate(func(b []byte) []byte { b[3] = 'Q'; return b })},
		{"version", "version at byte 4: version 2, only 3 is supported", mutate(func(b []byte) []byte { le.PutUint32(b[4:], 2); return b })},
		{"tensor count overflows", "tensor_count at byte 8: 18446744073709551615 tensors cannot fit", mutate(func(b []byte) []byte { le.PutUint64(b[8:], math.MaxUint64); return b })},
		{"too many tensors", "tensor_count at byte 8: 4097 tensors, more than the 4096 this reader takes", mutate(func(b []byte) []byte { le.PutUint64(b[8:], 4097); return b })},
		{"too many kvs", "metadata_kv_count at byte 16: 4097 pairs, more than the 4096 this reader takes", mutate(func(b []byte) []byte { le.PutUint64(b[16:], 4097); return b })},
		{"kv count overflows", "metadata_kv_count at byte 16: 1152921504606846976 pairs cannot fit", mutate(func(b []byte) []byte { le.PutUint64(b[16:], 1<<60); return b })},
		{"unknown tensor type", fmt.Sprintf("tensor_infos[0].type at byte %d: tensor type 2 is not supported (supported: F32=0, F16=1, Q8_0=8; tensor token_embd.weight)", emb+4+16), mutate(func(b []byte) []byte { le.PutUint32(b[emb+4+16:], 2); return b })},
		{"offset past the end", fmt.Sprintf("tensor_infos[0].offset %d + %d bytes past the end of the data", 1<<40, 64*512*34/32), mutate(func(b []byte) []byte { le.PutUint64(b[emb+4+16+4:], 1<<40); return b })},
		{"offset overflows", "tensor_infos[0].offset 18446744073709551584 +", mutate(func(b []byte) []byte { le.PutUint64(b[emb+4+16+4:], math.MaxUint64-31); return b })},
		{"unaligned offset", "tensor_infos[0].offset at byte", mutate(func(b []byte) []byte { le.PutUint64(b[emb+4+16+4:], 4); return b })},
		{"element count overflows", "tensor_infos[0].dims[1] at byte", mutate(func(b []byte) []byte { le.PutUint64(b[emb+4:], 1<<40); le.PutUint64(b[emb+12:], 1<<40); return b })},
		{"n_dims", "tensor_infos[0].n_dims at byte", mutate(func(b []byte) []byte { le.PutUint32(b[emb:], 5); return b })},
		{"invalid UTF-8", "kv[0].key at byte 32: string is not valid UTF-8", mutate(func(b []byte) []byte { b[33] = 0xff; return b })},
		{"string length", "kv[0].key.length at byte 24: string length", mutate(func(b []byte) []byte { le.PutUint64(b[24:], 1<<40); return b })},
		{"value type", "kv[0] (general.architecture).type at byte 52: unknown value type 99", mutate(func(b []byte) []byte { le.PutUint32(b[24+8+len("general.architecture"):], 99); return b })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The Go reader refuses it too (the cases are real corruptions).
			if _, err := gguf.Parse(c.file); err == nil {
				t.Fatalf("the Go reader accepts the %s file: the case is not malformed", c.name)
			}
			out, err := h.module(t, files(t, c.file, run))
			want := "llama: refused: /llama/model.gguf: " + c.want
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("want %q (%v):\n%s", want, err, out)
			}
		})
	}
}

func testMalformedRun(t *testing.T, h *harness, model, good []byte) {
	cases := []struct{ name, run, want string }{
		{"unknown key", strings.Replace(string(good), "generate 24", "generat 24", 1), `line 3: unknown key "generat"`},
		{"missing key", strings.Replace(string(good), "generate_light 6\n", "", 1), "line 4: key prompt_ids out of place: want generate_light here"},
		{"order", "fluid-llama-run 1\ngenerate 24\nprompt x\n", "line 2: key generate out of place: want prompt here"},
		{"duplicate", strings.Replace(string(good), "generate 24\n", "generate 24\ngenerate 24\n", 1), "line 4: key generate out of place: want generate_light here"},
		{"version", strings.Replace(string(good), "fluid-llama-run 1", "fluid-llama-run 2", 1), `line 1: fluid-llama-run "2": this module reads version 1`},
		{"count", strings.Replace(string(good), "generate 24", "generate 2x", 1), `line 3: generate "2x" is not a token count`},
		{"zero", strings.Replace(string(good), "generate_light 6", "generate_light 0", 1), `line 4: generate_light "0" is not a token count`},
		{"ids", strings.Replace(string(good), "prompt_ids 1 ", "prompt_ids 1  ", 1), `prompt_ids: item 1 "" is not a token id`},
		{"crlf", strings.ReplaceAll(string(good), "\n", "\r\n"), "line 1: a carriage return: write LF line ends"},
		{"short expect", strings.Replace(string(good), "generate 24", "generate 25", 1), "expect lists 24 ids, fewer than generate 25"},
		{"empty", "", "key fluid-llama-run is missing"},
		// More than 19 digits (leading zeros): the module reads at most 19.
		{"long count", strings.Replace(string(good), "generate 24", "generate 0000000000000000000024", 1), `line 3: generate "0000000000000000000024" is not a token count`},
		{"long id", strings.Replace(string(good), "prompt_ids 1 ", "prompt_ids 00000000000000000001 ", 1), `prompt_ids: item 0 "00000000000000000001" is not a token id`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := llamarun.Parse([]byte(c.run)); err == nil {
				t.Errorf("llamarun.Parse accepts it too")
			}
			out, err := h.module(t, files(t, model, []byte(c.run)))
			want := "llama: refused: /llama/run.txt: " + c.want
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("want %q (%v):\n%s", want, err, out)
			}
		})
	}
}

// TestCorruptModels: corrupted copies of the test model (bytes, 64-bit
// words and lengths changed, mostly in the header and metadata) go through
// the whole load path of the module built with AddressSanitizer and
// UndefinedBehaviorSanitizer: a read outside the file, an overflow or a
// leak fails the test; refusing is the expected outcome.
func TestCorruptModels(t *testing.T) {
	h := build(t, sanitize...)
	model, err := llamarun.Model(gguf.Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(files(t, model, nil), "llama/model.gguf")
	out, err := h.run("mutate", path, "14", "3000")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res, _ := line(out, "mutate: ")
	t.Logf("mutate: %s", res)
	if !strings.Contains(res, ", 0 allocations not freed") {
		t.Errorf("leaks: %s", res)
	}
}

// TestRopeTable: the module's RoPE table (llama_rope_table, built from
// mathf.c's fl_logf, fl_expf, fl_cosf, fl_sinf) equals the Go reference's
// (llama.RopeTable) bit for bit, for the test model's configuration (read
// from its file) and for TinyLlama-1.1B's (context 2048, rope dim 64 =
// 2048/32, base 10000).
func TestRopeTable(t *testing.T) {
	h := build(t)
	model, err := llamarun.Model(gguf.Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	small := load(t, model).Config
	tl := testmodel.TinyLlamaShapes
	for _, c := range []struct {
		name             string
		context, dim     int
		base             float32
		wantCtx, wantDim int
	}{
		{"Small", small.Context, small.RopeDim, small.RopeBase, 128, 8},
		{"TinyLlama", tl.Context, tl.Dim / tl.Heads, tl.RopeBase, 2048, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.context != c.wantCtx || c.dim != c.wantDim || c.base != 10000 {
				t.Fatalf("config: context %d, rope dim %d, base %g; want %d, %d, 10000", c.context, c.dim, c.base, c.wantCtx, c.wantDim)
			}
			out, err := h.run("rope", strconv.Itoa(c.context), strconv.Itoa(c.dim), fmt.Sprintf("%08x", math.Float32bits(c.base)))
			if err != nil {
				t.Fatalf("rope: %v\n%.2000s", err, out)
			}
			goCos, goSin := llama.RopeTable(c.context, c.dim, c.base)
			for _, tab := range []struct {
				name string
				want []float32
			}{{"cos", goCos}, {"sin", goSin}} {
				l, ok := line(out, tab.name+" ")
				if !ok {
					t.Fatalf("no %s line in the harness's output:\n%.2000s", tab.name, out)
				}
				f := strings.Fields(l)
				if len(f) != len(tab.want) {
					t.Fatalf("%s: C gave %d entries, Go %d", tab.name, len(f), len(tab.want))
				}
				half := c.dim / 2
				var diff int
				for k, s := range f {
					bits, err := strconv.ParseUint(s, 16, 32)
					if err != nil {
						t.Fatalf("%s: %v", tab.name, err)
					}
					if w := math.Float32bits(tab.want[k]); uint32(bits) != w {
						if diff++; diff <= 5 {
							t.Errorf("%s[p=%d][i=%d]: C %08x (%g), Go %08x (%g)", tab.name, k/half, k%half,
								bits, math.Float32frombits(uint32(bits)), w, tab.want[k])
						}
					}
				}
				if diff > 0 {
					t.Errorf("%s: %d of %d entries differ", tab.name, diff, len(f))
				}
				t.Logf("%s: %d %s entries (context %d x %d pairs), %d differ", c.name, len(f), tab.name, c.context, half, diff)
			}
		})
	}
}
