package build

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/gguf"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/llama"
	"github.com/fluid-os/fluid/internal/llama/llamarun"
	"github.com/fluid-os/fluid/internal/llama/testmodel"
)

// LlamaModule is the module whose compile flags carry -DLLAMA_DEADLINE_MS
// when LlamaFiles.DeadlineMS is set.
const LlamaModule = "llama"

// Bring-your-own-model defaults and limits.
const (
	// DefaultLlamaPrompt is the prompt of a user's model when
	// FLUID_LLAMA_PROMPT is unset: the test model's.
	DefaultLlamaPrompt = llamarun.DefaultPrompt
	// DefaultLlamaTokens is how many tokens a user's model generates when
	// FLUID_LLAMA_TOKENS is unset.
	DefaultLlamaTokens = 32
	// ByoDeadlineMS is the llama module's deadline per call for a user's
	// model: the loader's maximum (the default of 20000 ms is sized for
	// the test model under TCG).
	ByoDeadlineMS = 600000
	// llamaMemoryMargin is the RAM a boot gets on top of the model and its
	// KV cache: the kernel, its heap's other users, the modules.
	llamaMemoryMargin = 256 << 20
	// llamaMemoryStep rounds the RAM up to a multiple of it.
	llamaMemoryStep = 64 << 20
	// llamaImageSlack is partition room beyond the model: kernel, modules,
	// manifest and the FATs (a 64 MiB image leaves 48 MiB for them all).
	llamaImageSlack = 40 << 20
)

// LlamaFiles are the llama module's files in an image instead of the
// default ones (llamarun.Default: the generated Q8_0 test model and the run
// the Go reference computed for it). Tests pass their own; a user's model
// (FLUID_LLAMA_MODEL) comes through ByoLlama. Make one with NewLlamaFiles.
type LlamaFiles struct {
	Model string       // host path of the GGUF file, copied to llamarun.ModelPath
	Run   llamarun.Run // written to llamarun.RunPath (llamarun's Text)
	// DeadlineMS, when not 0, is the llama module's deadline per call,
	// compiled in as -DLLAMA_DEADLINE_MS (that module only).
	DeadlineMS int

	// Filled by NewLlamaFiles from the model.
	Config     llama.Config
	ModelBytes int64
	// Memory is the QEMU -m a boot of the image needs (LlamaMemory).
	Memory string
	// ImageSize is the disk image size that holds the model
	// (LlamaImageSize).
	ImageSize int64
	tok       *llama.Tokenizer
	// data is the model's bytes as checked: the image gets these, not a
	// second read of Model, which may have changed since (or be a path
	// the build's input hashing maps elsewhere, such as one under /usr/).
	data []byte
}

// NewLlamaFiles checks the model at path (GGUF, architecture llama, the
// llama.* metadata keys, every tensor of the llama layout present with its
// shape and a type the module reads: F32, F16 or Q8_0) and sizes the image
// and the boot's RAM for it. The error names the file and the bad field.
func NewLlamaFiles(path string, run llamarun.Run, deadlineMS int) (*LlamaFiles, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama model: %w", err)
	}
	cfg, tok, err := CheckLlamaModel(data)
	if err != nil {
		return nil, fmt.Errorf("llama model %s: %w (the llama module reads a GGUF v3 file of the llama architecture, e.g. TinyLlama-1.1B-Chat Q8_0)", path, err)
	}
	cfg.Vocab = len(tok.Tokens)
	if _, err := run.Text(); err != nil {
		return nil, fmt.Errorf("llama run for %s: %w", path, err)
	}
	lf := &LlamaFiles{Model: path, Run: run, DeadlineMS: deadlineMS, Config: cfg, ModelBytes: int64(len(data)), tok: tok, data: data}
	lf.Memory = LlamaMemory(lf.ModelBytes, cfg)
	if lf.ImageSize, err = LlamaImageSize(lf.ModelBytes); err != nil {
		return nil, fmt.Errorf("llama model %s: %w", path, err)
	}
	return lf, nil
}

// CheckLlamaModel parses a GGUF file and checks what the llama module
// needs from it: the llama.* metadata (llama.ReadConfig), the tokenizer
// and every tensor of the layout with its shape and a type the module
// reads.
func CheckLlamaModel(data []byte) (llama.Config, *llama.Tokenizer, error) {
	f, err := gguf.Parse(data)
	if err != nil {
		return llama.Config{}, nil, err
	}
	cfg, err := llama.ReadConfig(f)
	if err != nil {
		return cfg, nil, err
	}
	tok, err := llama.NewTokenizer(f)
	if err != nil {
		return cfg, nil, err
	}
	lay := testmodel.Layout(testmodel.Config{Dim: cfg.Dim, Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads, Hidden: cfg.Hidden, Vocab: len(tok.Tokens)})
	for _, want := range lay {
		ti, ok := f.Tensor(want.Name)
		if !ok {
			return cfg, nil, fmt.Errorf("tensor %s is missing", want.Name)
		}
		if fmt.Sprint(ti.Dims) != fmt.Sprint(want.Dims) {
			return cfg, nil, fmt.Errorf("tensor %s has dims %v, want %v (from the llama.* metadata)", want.Name, ti.Dims, want.Dims)
		}
		switch ti.Type {
		case gguf.F32, gguf.F16, gguf.Q8_0:
		default:
			return cfg, nil, fmt.Errorf("tensor %s has type %v: the llama module reads F32, F16 and Q8_0 (pick a Q8_0 or F16 download)", want.Name, ti.Type)
		}
	}
	return cfg, tok, nil
}

// LlamaKVBytes is the KV cache of a model over its whole context: keys and
// values, float32, per layer and position.
func LlamaKVBytes(c llama.Config) int64 {
	kvDim := int64(c.Dim / c.Heads * c.KVHeads)
	return 2 * int64(c.Layers) * int64(c.Context) * kvDim * 4
}

// LlamaMemory is the QEMU -m for a boot that loads a model of modelBytes:
// the model, its KV cache over the whole context and a 256 MiB margin,
// rounded up to 64 MiB, as QEMU's "<n>M". Above about 3 GiB the pc machine
// maps the rest of the RAM above 4 GiB, where the kernel's read_file falls
// back to.
func LlamaMemory(modelBytes int64, c llama.Config) string {
	need := modelBytes + LlamaKVBytes(c) + llamaMemoryMargin
	need = (need + llamaMemoryStep - 1) / llamaMemoryStep * llamaMemoryStep
	return strconv.FormatInt(need>>20, 10) + "M"
}

// LlamaImageSize is the disk image size that holds a model of modelBytes
// in partition 1 next to everything else: image.DefaultSize when that is
// enough, else the partition's offset, the model and 40 MiB, rounded up to
// 64 MiB. A model too big for image.MaxSize is an error.
func LlamaImageSize(modelBytes int64) (int64, error) {
	need := int64(layout.Part1LBA)*layout.SectorSize + modelBytes + llamaImageSlack
	need = (need + 64<<20 - 1) / (64 << 20) * (64 << 20)
	if need <= image.DefaultSize {
		return 0, nil
	}
	if need > image.MaxSize {
		return 0, fmt.Errorf("a model of %d MiB needs a %d MiB image, more than the %d MiB the image builder makes", modelBytes>>20, need>>20, image.MaxSize>>20)
	}
	return need, nil
}

// Environment knobs of a user's own model.
const (
	EnvLlamaModel  = "FLUID_LLAMA_MODEL"
	EnvLlamaPrompt = "FLUID_LLAMA_PROMPT"
	EnvLlamaTokens = "FLUID_LLAMA_TOKENS"
)

// ByoLlama makes the LlamaFiles of a user's model (FLUID_LLAMA_MODEL):
// the model checked (NewLlamaFiles), a run.txt that only generates
// (tokens for both the normal and the LIGHT run, no prompt_ids or expect:
// there is no reference to check against), the prompt checked against the
// model's context with the model's own tokenizer, and the module's deadline
// at its maximum. prompt "" is DefaultLlamaPrompt; tokens "" is
// DefaultLlamaTokens.
func ByoLlama(model, prompt, tokens string) (*LlamaFiles, error) {
	if prompt == "" {
		prompt = DefaultLlamaPrompt
	}
	if strings.ContainsAny(prompt, "\n\r") {
		return nil, fmt.Errorf("%s: the prompt is one line of run.txt: remove its line breaks", EnvLlamaPrompt)
	}
	n := DefaultLlamaTokens
	if tokens != "" {
		v, err := strconv.Atoi(tokens)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%s=%q: want a number of tokens to generate, 1 or more", EnvLlamaTokens, tokens)
		}
		n = v
	}
	run := llamarun.Run{Prompt: prompt, Generate: n, GenerateLight: n}
	lf, err := NewLlamaFiles(model, run, ByoDeadlineMS)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvLlamaModel, err)
	}
	// Refuse what the module would refuse, before anything is built. A
	// prompt far over the context is refused before it is tokenized (the
	// merge loop is quadratic in its length): no token spells more than
	// the longest token's bytes of the text the tokenizer sees.
	if least := minPromptTokens(lf.tok, prompt); least+n > lf.Config.Context {
		return nil, fmt.Errorf("%s and %s: a prompt of at least %d tokens + %d to generate exceeds the model's context of %d (llama.context_length): shorten the prompt or generate fewer", EnvLlamaPrompt, EnvLlamaTokens, least, n, lf.Config.Context)
	}
	ids, err := lf.tok.Encode(prompt, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvLlamaPrompt, err)
	}
	if len(ids)+n > lf.Config.Context {
		return nil, fmt.Errorf("%s and %s: a prompt of %d tokens + %d to generate exceeds the model's context of %d (llama.context_length): shorten the prompt or generate fewer", EnvLlamaPrompt, EnvLlamaTokens, len(ids), n, lf.Config.Context)
	}
	return lf, nil
}

// minPromptTokens is a lower bound on len(tok.Encode(prompt, true)):
// BOS, then the text as the tokenizer sees it (a leading "▁", each space
// "▁": 3 bytes) in pieces of at most the longest token's length (a piece
// that is no token becomes one byte token per byte).
func minPromptTokens(tok *llama.Tokenizer, prompt string) int {
	if prompt == "" {
		return 1
	}
	longest := 1
	for i, s := range tok.Tokens {
		if tok.Types[i] != 6 { // byte tokens stand for one byte
			longest = max(longest, len(s))
		}
	}
	seen := 3 + len(prompt) + 2*strings.Count(prompt, " ")
	return 1 + (seen+longest-1)/longest
}

// llamaImageFiles are the llama module's two files for an image, and the
// image size they need (0: the default). The default files are generated
// once per Builder (llamarun.Default, about 35 ms).
func (b *Builder) llamaImageFiles() ([]image.File, int64, error) {
	if lf := b.opt.Llama; lf != nil {
		run, err := lf.Run.Text()
		if err != nil {
			return nil, 0, fmt.Errorf("llama run.txt: %w", err)
		}
		model := image.File{Path: llamarun.ModelPath, Src: lf.Model}
		if lf.data != nil {
			model = image.File{Path: llamarun.ModelPath, Data: lf.data}
		}
		return []image.File{model, {Path: llamarun.RunPath, Data: run}}, lf.ImageSize, nil
	}
	b.llamaOnce.Do(func() {
		var run llamarun.Run
		b.llamaModel, run, b.llamaErr = llamarun.Default()
		if b.llamaErr == nil {
			b.llamaRun, b.llamaErr = run.Text()
		}
		if b.llamaErr != nil {
			b.llamaErr = fmt.Errorf("generate the default llama model and run: %w", b.llamaErr)
		}
	})
	if b.llamaErr != nil {
		return nil, 0, b.llamaErr
	}
	return []image.File{{Path: llamarun.ModelPath, Data: b.llamaModel}, {Path: llamarun.RunPath, Data: b.llamaRun}}, 0, nil
}

// withLlamaFiles adds the llama module's files to s when s holds the
// llama module and no file under /llama/ yet, with the image size they
// need when s leaves it at the default.
func (b *Builder) withLlamaFiles(s ImageSpec) (ImageSpec, error) {
	if !slices.ContainsFunc(s.Modules, func(m Module) bool { return m.Name == LlamaModule }) ||
		slices.ContainsFunc(s.Extra, func(f image.File) bool { return strings.HasPrefix(f.Path, llamaDir) }) {
		return s, nil
	}
	files, size, err := b.llamaImageFiles()
	if err != nil {
		return s, err
	}
	s.Extra = append(append([]image.File{}, s.Extra...), files...)
	if s.Size == 0 {
		s.Size = size
	}
	return s, nil
}

// llamaDir is the folder of the llama module's files in partition 1.
var llamaDir = path.Dir(llamarun.ModelPath) + "/"

// llamaCFlags are the extra compile flags of module m: the deadline of a
// LlamaFiles that sets one, for the llama module only.
func (b *Builder) llamaCFlags(m string) []string {
	if lf := b.opt.Llama; lf != nil && lf.DeadlineMS > 0 && m == LlamaModule {
		return []string{"-DLLAMA_DEADLINE_MS=" + strconv.Itoa(lf.DeadlineMS)}
	}
	return nil
}

// BootTimeout is how long a boot of an image with these files may take
// (0: the harness's default): the module's deadline for each of its calls
// (3, or 1 with LIGHT=1), the model read at a pessimistic 1 MB/s (the
// kernel's read is not charged to the deadline) and a minute for the rest.
func (lf *LlamaFiles) BootTimeout(light bool) time.Duration {
	if lf == nil || lf.DeadlineMS == 0 {
		return 0
	}
	calls := 3
	if light {
		calls = 1
	}
	return time.Duration(calls*lf.DeadlineMS)*time.Millisecond + time.Duration(lf.ModelBytes/1e6)*time.Second + time.Minute
}

// Memory is the QEMU -m the images of this Builder need ("" = the
// harness's default): a LlamaFiles' model sets it.
func (b *Builder) Memory() string {
	if b.opt.Llama != nil {
		return b.opt.Llama.Memory
	}
	return ""
}
