package llamarun

import (
	"slices"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/gguf"
)

func TestDefault(t *testing.T) {
	model, r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.Parse(model); err != nil {
		t.Fatalf("the default model does not parse: %v", err)
	}
	// The reference's golden ids (internal/llama/llama_test.go), computed here.
	wantPrompt := []int{1, 451, 471, 293, 466}
	wantExpect := []int{396, 87, 371, 264, 409, 300, 214, 488, 184, 342, 85, 89, 301, 506, 246, 307, 446, 319, 445, 296, 147, 368, 459, 296}
	if r.Prompt != DefaultPrompt || r.Generate != 24 || r.GenerateLight != 6 ||
		!slices.Equal(r.PromptIDs, wantPrompt) || !slices.Equal(r.Expect, wantExpect) {
		t.Errorf("Default run = %+v", r)
	}
	text, err := r.Text()
	if err != nil {
		t.Fatal(err)
	}
	want := "fluid-llama-run 1\nprompt once upon a time\ngenerate 24\ngenerate_light 6\nprompt_ids 1 451 471 293 466\n" +
		"expect 396 87 371 264 409 300 214 488 184 342 85 89 301 506 246 307 446 319 445 296 147 368 459 296\n"
	if string(text) != want {
		t.Errorf("run.txt:\n%s\nwant:\n%s", text, want)
	}
	back, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if back.Prompt != r.Prompt || back.Generate != r.Generate || back.GenerateLight != r.GenerateLight ||
		!slices.Equal(back.PromptIDs, r.PromptIDs) || !slices.Equal(back.Expect, r.Expect) {
		t.Errorf("Parse(Text()) = %+v, want %+v", back, r)
	}
}

func TestForTypes(t *testing.T) {
	_, q8, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
		_, r, err := ForType(typ)
		if err != nil {
			t.Fatal(err)
		}
		// The golden tokens hold for every weight type of the test model.
		if !slices.Equal(r.Expect, q8.Expect) || !slices.Equal(r.PromptIDs, q8.PromptIDs) {
			t.Errorf("%s: run %+v differs from Q8_0's %+v", typ, r, q8)
		}
	}
}

func TestOptionalKeys(t *testing.T) {
	r := Run{Prompt: "a user's prompt", Generate: 32, GenerateLight: 4}
	text, err := r.Text()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), "expect") || strings.Contains(string(text), "prompt_ids") {
		t.Errorf("absent keys written:\n%s", text)
	}
	back, err := Parse(text)
	if err != nil || back.Expect != nil || back.PromptIDs != nil || back.Prompt != r.Prompt {
		t.Errorf("Parse = %+v, %v", back, err)
	}
	// expect without prompt_ids is fine; an empty prompt too.
	if _, err := Parse([]byte("fluid-llama-run 1\nprompt \ngenerate 2\ngenerate_light 1\nexpect 5 6\n")); err != nil {
		t.Errorf("expect without prompt_ids: %v", err)
	}
}

func TestRefused(t *testing.T) {
	good := "fluid-llama-run 1\nprompt x\ngenerate 2\ngenerate_light 1\nprompt_ids 1 2\nexpect 5 6\n"
	for _, c := range []struct{ name, text, want string }{
		{"unknown key", strings.Replace(good, "generate 2", "generat 2", 1), `line 3: unknown key "generat"`},
		{"missing", "fluid-llama-run 1\nprompt x\ngenerate 2\n", "key generate_light is missing"},
		{"skipped", strings.Replace(good, "generate_light 1\n", "", 1), "line 4: key prompt_ids out of place: want generate_light here"},
		{"order", strings.Replace(good, "prompt_ids 1 2\nexpect 5 6\n", "expect 5 6\nprompt_ids 1 2\n", 1), "line 6: key prompt_ids out of place"},
		{"version", strings.Replace(good, "run 1", "run 2", 1), "this reader reads version 1"},
		{"count", strings.Replace(good, "generate 2", "generate -2", 1), `generate: "-2" is not a token count`},
		{"plus", strings.Replace(good, "generate 2", "generate +2", 1), `generate: "+2" is not a token count`},
		{"ids", strings.Replace(good, "expect 5 6", "expect 5,6", 1), `expect: item 0 "5,6" is not a token id`},
		{"short expect", strings.Replace(good, "generate 2", "generate 3", 1), "expect lists 2 ids, fewer than generate 3"},
		{"crlf", strings.ReplaceAll(good, "\n", "\r\n"), "carriage return"},
	} {
		if _, err := Parse([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := (Run{Prompt: "two\nlines", Generate: 1, GenerateLight: 1}).Text(); err == nil || !strings.Contains(err.Error(), "line break") {
		t.Errorf("a prompt with a newline: got %v", err)
	}
	if _, err := (Run{Prompt: "x", Generate: 0, GenerateLight: 1}).Text(); err == nil {
		t.Error("generate 0 accepted")
	}
}
