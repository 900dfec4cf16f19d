// Package llamarun writes and reads /llama/run.txt, the file that tells the
// ring-0 `llama` module what to run, and computes the default /llama files
// (the test model and its expected tokens) from the Go reference.
//
// run.txt is text with LF line ends, one `key value` per line (the value is
// everything after the first space), keys in this order, unknown keys
// refused by name:
//
//	fluid-llama-run 1
//	prompt once upon a time
//	generate 24
//	generate_light 6
//	prompt_ids 1 451 471 293 466
//	expect 396 87 371 ...
//
// prompt_ids and expect are optional (a user's own model has none: the
// module then only generates and prints). The module checks the prompt's
// encoding against prompt_ids and the first generate (generate_light under
// LIGHT) generated ids against expect.
package llamarun

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/gguf"
	"github.com/fluid-os/fluid/internal/llama"
	"github.com/fluid-os/fluid/internal/llama/testmodel"
)

// Paths of the llama module's files in the image's FAT32 partition.
const (
	ModelPath = "/llama/model.gguf"
	RunPath   = "/llama/run.txt"
)

// Defaults of the run the default image carries.
const (
	DefaultPrompt        = "once upon a time"
	DefaultGenerate      = 24
	DefaultGenerateLight = 6
)

// Version is the run.txt format version (its first line).
const Version = 1

var keys = []string{"fluid-llama-run", "prompt", "generate", "generate_light", "prompt_ids", "expect"}

// Run is what the llama module runs.
type Run struct {
	Prompt        string
	Generate      int // tokens per call
	GenerateLight int // tokens per call under LIGHT
	PromptIDs     []int
	Expect        []int
}

func (r Run) check() error {
	if strings.ContainsAny(r.Prompt, "\n\r") {
		return fmt.Errorf("run.txt: the prompt %q holds a line break: run.txt has one line per key, so a prompt is one line", r.Prompt)
	}
	if r.Generate < 1 || r.GenerateLight < 1 || r.Generate > 1<<20 || r.GenerateLight > 1<<20 {
		return fmt.Errorf("run.txt: generate %d / generate_light %d: each must be 1..%d", r.Generate, r.GenerateLight, 1<<20)
	}
	if r.Expect != nil && (len(r.Expect) < r.Generate || len(r.Expect) < r.GenerateLight) {
		return fmt.Errorf("run.txt: expect lists %d ids, fewer than generate %d / generate_light %d", len(r.Expect), r.Generate, r.GenerateLight)
	}
	for _, ids := range [][]int{r.PromptIDs, r.Expect} {
		if ids != nil && len(ids) == 0 {
			return fmt.Errorf("run.txt: an empty prompt_ids or expect list: leave it out (nil) instead")
		}
		for _, id := range ids {
			if id < 0 || id > 1<<32-1 {
				return fmt.Errorf("run.txt: token id %d is outside 0..2^32-1", id)
			}
		}
	}
	return nil
}

// Text encodes r as run.txt.
func (r Run) Text() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "fluid-llama-run %d\nprompt %s\ngenerate %d\ngenerate_light %d\n", Version, r.Prompt, r.Generate, r.GenerateLight)
	if r.PromptIDs != nil {
		fmt.Fprintf(&b, "prompt_ids %s\n", joinIDs(r.PromptIDs))
	}
	if r.Expect != nil {
		fmt.Fprintf(&b, "expect %s\n", joinIDs(r.Expect))
	}
	return b.Bytes(), nil
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, " ")
}

// Parse reads run.txt as strictly as the module does.
func Parse(data []byte) (Run, error) {
	var r Run
	text := string(data)
	text = strings.TrimSuffix(text, "\n")
	next := 0
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if strings.Contains(line, "\r") {
			return r, fmt.Errorf("run.txt line %d: a carriage return: write LF line ends", n)
		}
		key, val, _ := strings.Cut(line, " ")
		k := indexOf(keys, key)
		if k < 0 {
			return r, fmt.Errorf("run.txt line %d: unknown key %q (keys, in order: %s)", n, key, strings.Join(keys, ", "))
		}
		if k < next || (k > next && next < 4) {
			want := "the end of the file"
			if next < len(keys) {
				want = keys[next]
			}
			return r, fmt.Errorf("run.txt line %d: key %s out of place: want %s here", n, key, want)
		}
		next = k + 1
		var err error
		switch key {
		case "fluid-llama-run":
			if val != strconv.Itoa(Version) {
				return r, fmt.Errorf("run.txt line 1: fluid-llama-run %q: this reader reads version %d", val, Version)
			}
		case "prompt":
			r.Prompt = val
		case "generate":
			r.Generate, err = count(val)
		case "generate_light":
			r.GenerateLight, err = count(val)
		case "prompt_ids":
			r.PromptIDs, err = ids(val)
		case "expect":
			r.Expect, err = ids(val)
		}
		if err != nil {
			return r, fmt.Errorf("run.txt line %d: %s: %w", n, key, err)
		}
	}
	if next < 4 {
		return r, fmt.Errorf("run.txt: key %s is missing (keys, in order: %s)", keys[next], strings.Join(keys, ", "))
	}
	return r, r.check()
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// maxDigits is the longest number the module reads (parse_uint in
// modules/llama/llama.c): 19 digits, leading zeros included.
const maxDigits = 19

func count(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || n > 1<<20 || len(s) > maxDigits || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not a token count (1..%d)", s, 1<<20)
	}
	return int(n), nil
}

func ids(s string) ([]int, error) {
	var out []int
	for i, f := range strings.Split(s, " ") {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil || len(f) > maxDigits || strings.HasPrefix(f, "+") {
			return nil, fmt.Errorf("item %d %q is not a token id (a decimal number below 2^32, one space between ids)", i, f)
		}
		out = append(out, int(n))
	}
	return out, nil
}

// ForModel computes the run of prompt on the GGUF model with the Go
// reference: the prompt's ids and the expected greedy tokens (the first
// max(generate, generateLight) of them; fewer if EOS comes first, which
// the module then also reports).
func ForModel(model []byte, prompt string, generate, generateLight int) (Run, error) {
	r := Run{Prompt: prompt, Generate: generate, GenerateLight: generateLight}
	m, err := llama.LoadBytes(model)
	if err != nil {
		return r, fmt.Errorf("llama run: load the model: %w", err)
	}
	if r.PromptIDs, err = m.Tok.Encode(prompt, true); err != nil {
		return r, fmt.Errorf("llama run: %w", err)
	}
	res, err := m.Generate(r.PromptIDs, max(generate, generateLight))
	if err != nil {
		return r, fmt.Errorf("llama run: %w", err)
	}
	r.Expect = res.Tokens
	return r, r.check()
}

// Model returns the bytes of the test model testmodel.Small(typ).
func Model(typ gguf.TensorType) ([]byte, error) {
	b, err := testmodel.Bytes(testmodel.Small(typ))
	if err != nil {
		return nil, fmt.Errorf("llama test model %s: %w", typ, err)
	}
	return b, nil
}

// Default returns the default image's /llama files: testmodel.Small(Q8_0)
// and the run of DefaultPrompt computed by the Go reference.
func Default() (model []byte, run Run, err error) {
	return ForType(gguf.Q8_0)
}

// ForType is Default with the test model's weights in typ (F32, F16, Q8_0).
func ForType(typ gguf.TensorType) (model []byte, run Run, err error) {
	if model, err = Model(typ); err != nil {
		return nil, run, err
	}
	run, err = ForModel(model, DefaultPrompt, DefaultGenerate, DefaultGenerateLight)
	return model, run, err
}
