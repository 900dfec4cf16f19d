package boottest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/gguf"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/llama"
	"github.com/fluid-os/fluid/internal/llama/llamarun"
	"github.com/fluid-os/fluid/internal/llama/testmodel"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/serial"
)

// llamaBootTimeout bounds one boot of an image with the llama module.
const llamaBootTimeout = 4 * time.Minute

// llamaImage builds the baseline recipe into build/<name> with the llama
// files lf (nil: the default ones) and returns it with its artifacts.
// out, when not "", is a build directory of its own (a LIGHT build, or
// module flags that differ from the default build's).
func llamaImage(t *testing.T, name string, light bool, out string, lf *build.LlamaFiles) *build.Artifacts {
	t.Helper()
	opt := build.Options{Light: light, Llama: lf}
	if out != "" {
		root, err := filepath.Abs(filepath.Join("..", "..", "build", out))
		if err != nil {
			t.Fatal(err)
		}
		opt.Out = root
	}
	b := buildtest.New(t, opt)
	return buildtest.Locked(t, b, name, func() (*build.Artifacts, error) {
		return b.RecipeImage(t.Context(), recipe.Baseline, nil, name)
	})
}

// reference is what the Go reference says a run of model gives: the
// prompt's ids, the tokens and their decoded text.
type reference struct {
	prompt string
	ids    []int
	tokens []int
	text   []byte
	model  []byte
	cfg    llama.Config
}

func referenceRun(t *testing.T, model []byte, prompt string, n int) reference {
	t.Helper()
	m, err := llama.LoadBytes(model)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Tok.Encode(prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Generate(ids, n)
	if err != nil {
		t.Fatal(err)
	}
	text, err := m.Tok.Decode(g.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	return reference{prompt: prompt, ids: ids, tokens: g.Tokens, text: []byte(text), model: model, cfg: m.Config}
}

// bootLlama boots img with the memory a needs and returns the result.
func bootLlama(t *testing.T, a *build.Artifacts) *qemu.Result {
	t.Helper()
	log := filepath.Join(t.TempDir(), "serial.log")
	r, _ := boot(t, qemu.Options{Image: a.Image, Memory: a.Memory, Timeout: llamaBootTimeout, SerialLog: log})
	for _, c := range r.Llama {
		t.Logf("llama call at serial line %d: tokens %v, %d tsc/token, %.3f ms/token%s", c.Line, c.Tokens, c.TSCPerToken, c.MsPerToken, c.Refused)
	}
	if r.LineErrors != nil {
		t.Errorf("malformed llama or file lines: %v", r.LineErrors)
	}
	return r
}

// wantLlama checks that the run passed and that every llama call printed
// the reference's prompt, ids, tokens and text (as EscapeText quotes it),
// and that the kernel read the model.
func wantLlama(t *testing.T, r *qemu.Result, want reference, calls int, modelType string) {
	t.Helper()
	if r.Outcome != qemu.Passed {
		t.Fatalf("llama boot did not pass:\n%s", r)
	}
	if len(r.Llama) != calls {
		t.Fatalf("%d llama calls, want %d:\n%s", len(r.Llama), calls, r)
	}
	for i, c := range r.Llama {
		m := c.Model
		if m.Path != llamarun.ModelPath || m.Layers != want.cfg.Layers || m.Dim != want.cfg.Dim || m.Heads != want.cfg.Heads ||
			m.KVHeads != want.cfg.KVHeads || m.Hidden != want.cfg.Hidden || m.Context != want.cfg.Context || m.Vocab != want.cfg.Vocab ||
			m.Type != modelType || m.Bytes != uint64(len(want.model)) {
			t.Errorf("call %d: model line %+v, want %s %+v of %d bytes", i, m, modelType, want.cfg, len(want.model))
		}
		if string(c.Prompt) != want.prompt || !slices.Equal(c.PromptIDs, want.ids) {
			t.Errorf("call %d: prompt %q = %v, want %q = %v", i, c.Prompt, c.PromptIDs, want.prompt, want.ids)
		}
		if !slices.Equal(c.Tokens, want.tokens) {
			t.Errorf("call %d: tokens %v, want the reference's %v", i, c.Tokens, want.tokens)
		}
		if got, w := serial.EscapeText(c.Text), serial.EscapeText(want.text); got != w {
			t.Errorf("call %d: text %q, want the reference's %q", i, got, w)
		}
		if c.Generated != len(want.tokens) || c.TSCPerToken == 0 {
			t.Errorf("call %d: generated %d tokens at %d tsc/token, want %d tokens", i, c.Generated, c.TSCPerToken, len(want.tokens))
		}
	}
	read := false
	for _, f := range r.Files {
		read = read || (f.Path == llamarun.ModelPath && f.Failed == "" && f.Bytes == uint64(len(want.model)))
	}
	if !read {
		t.Errorf("no kernel line says it read %s (%d bytes): %+v", llamarun.ModelPath, len(want.model), r.Files)
	}
	for _, m := range r.Modules {
		if m.Name == "llama" && m.Result != serial.LineOK {
			t.Errorf("module llama: result %q", m.Result)
		}
	}
}

// TestLlamaDefault boots the default image (every module, as `mage qemu`
// does): the llama module's three calls print the Go reference's prompt
// ids, tokens and text for the generated Q8_0 model.
func TestLlamaDefault(t *testing.T) {
	qemutest.Need(t)
	model, run, err := llamarun.Default()
	if err != nil {
		t.Fatal(err)
	}
	a := llamaImage(t, "llama-default.img", false, "", nil)
	want := referenceRun(t, model, run.Prompt, run.Generate)
	if !slices.Equal(want.tokens, run.Expect[:run.Generate]) {
		t.Fatalf("the reference gives %v, run.txt expects %v", want.tokens, run.Expect)
	}
	wantLlama(t, bootLlama(t, a), want, 3, "Q8_0")
}

// TestLlamaLight is TestLlamaDefault for a LIGHT=1 build: one call,
// generate_light tokens.
func TestLlamaLight(t *testing.T) {
	qemutest.Need(t)
	model, run, err := llamarun.Default()
	if err != nil {
		t.Fatal(err)
	}
	a := llamaImage(t, "llama-light.img", true, "llama-light", nil)
	wantLlama(t, bootLlama(t, a), referenceRun(t, model, run.Prompt, run.GenerateLight), 1, "Q8_0")
}

// TestLlamaF32 boots an image whose model is the F32 test model with its
// own reference run (build.Options.Llama, the path a user's model takes).
func TestLlamaF32(t *testing.T) {
	qemutest.Need(t)
	model, run, err := llamarun.ForType(gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "f32.gguf")
	if err := os.WriteFile(p, model, 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := build.NewLlamaFiles(p, run, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := llamaImage(t, "llama-f32.img", false, "", lf)
	if a.Memory != lf.Memory || a.Memory == "" {
		t.Errorf("the image boots with -m %q, want the computed %q", a.Memory, lf.Memory)
	}
	wantLlama(t, bootLlama(t, a), referenceRun(t, model, run.Prompt, run.Generate), 3, "F32")
}

// TestLlamaPromptTooLong: a prompt that with the tokens to generate does
// not fit the model's context is refused by the module with the contract's
// message, and the run fails naming llama.
func TestLlamaPromptTooLong(t *testing.T) {
	qemutest.Need(t)
	model, _, err := llamarun.Default()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "model.gguf")
	if err := os.WriteFile(p, model, 0o644); err != nil {
		t.Fatal(err)
	}
	prompt := strings.TrimSpace(strings.Repeat("once upon a time ", 28))
	long := referenceRun(t, model, prompt, 1)
	lf, err := build.NewLlamaFiles(p, llamarun.Run{Prompt: prompt, Generate: 24, GenerateLight: 24}, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := llamaImage(t, "llama-long.img", false, "", lf)
	r := bootLlama(t, a)
	if r.Outcome != qemu.Failed || r.ExitStatus != layout.StatusModuleFail || !strings.Contains(r.EndLine, "llama") {
		t.Fatalf("outcome %v exit %d end %q, want Failed, exit %d, the end line naming llama:\n%s", r.Outcome, r.ExitStatus, r.EndLine, layout.StatusModuleFail, r)
	}
	want := fmt.Sprintf("prompt of %d tokens + 24 to generate exceeds the model's context of 128 (llama.context_length)", len(long.ids))
	if len(r.Llama) == 0 || r.Llama[0].Refused != want {
		t.Errorf("llama calls %+v, want a refusal %q", r.Llama, want)
	}
	failed := false
	for _, m := range r.FailedModules() {
		failed = failed || m.Name == "llama"
	}
	if !failed {
		t.Errorf("llama is not among the failed modules:\n%s", r)
	}
}

// TestLlamaBringYourOwn takes a user's model the way FLUID_LLAMA_MODEL
// does (build.ByoLlama): a file with TinyLlama's exact metadata keys,
// tensor names and layout, small shapes. The build accepts it, sizes the
// memory, compiles the module with the long deadline, and the boot
// generates text with nothing to check it against: it must still be the
// reference's.
func TestLlamaBringYourOwn(t *testing.T) {
	qemutest.Need(t)
	c := testmodel.Small(gguf.Q8_0)
	c.TinyLlamaKeys = true
	b, err := testmodel.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tinyllama-keys.gguf")
	if err := b.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	lf, err := build.ByoLlama(p, "there was a little kernel", "10")
	if err != nil {
		t.Fatal(err)
	}
	if lf.Run.Expect != nil || lf.Run.PromptIDs != nil || lf.Memory != "320M" || lf.DeadlineMS != build.ByoDeadlineMS {
		t.Errorf("user's model files %+v: want no expect or prompt_ids, -m 320M, the %d ms deadline", lf, build.ByoDeadlineMS)
	}
	a := llamaImage(t, "llama-byo.img", false, "llama-byo", lf)
	model, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	r := bootLlama(t, a)
	want := referenceRun(t, model, "there was a little kernel", 10)
	wantLlama(t, r, want, 3, "Q8_0")
	if len(r.Llama) > 0 && len(r.Llama[0].Text) == 0 {
		t.Error("the user's model generated no text")
	}
}
