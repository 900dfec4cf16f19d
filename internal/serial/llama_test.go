package serial

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEscapeText(t *testing.T) {
	for in, want := range map[string]string{
		"once upon a time":   "once upon a time",
		"a\"b\\c\n":          `a\x22b\x5cc\x0a`,
		"\x00\x1f\x7f\xff ~": `\x00\x1f\x7f\xff ~`,
		"▁":                  `\xe2\x96\x81`,
		"":                   "",
	} {
		if got := EscapeText([]byte(in)); got != want {
			t.Errorf("EscapeText(%q) = %s, want %s", in, got, want)
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	back, err := UnescapeText(EscapeText(all))
	if err != nil || !bytes.Equal(back, all) {
		t.Fatalf("round trip of every byte: %v, %x", err, back)
	}
	if e := EscapeText(all); strings.ContainsAny(e, "\"") || strings.Count(e, `\`) != 256-95+2 {
		t.Errorf("escaped text %s: want no raw quote and a backslash for each of the %d escaped bytes", e, 256-95+2)
	}
}

func TestUnescapeTextRefuses(t *testing.T) {
	for _, s := range []string{
		`\x0A`,      // upper-case hex
		`\x4`,       // one digit
		`\`,         // bare backslash at the end
		`\n`,        // not \x
		`\x41`,      // 'A' is written as itself
		"a\"b",      // raw quote
		"tab\there", // raw control byte
		"\xe2\x96\x81",
	} {
		if b, err := UnescapeText(s); err == nil {
			t.Errorf("UnescapeText(%q) = %q, want an error", s, b)
		} else if !strings.Contains(err.Error(), "byte ") {
			t.Errorf("UnescapeText(%q): %v does not say where", s, err)
		}
	}
}

// llamaCall is one call as the contract's example prints it.
func llamaCall(text string) LlamaRun {
	return LlamaRun{
		Model:  LlamaModel{Path: "/llama/model.gguf", Layers: 4, Dim: 64, Heads: 8, KVHeads: 2, Hidden: 192, Vocab: 512, Context: 128, Type: "Q8_0", Bytes: 277888},
		Prompt: []byte("once upon a time"), PromptIDs: []int{1, 451, 471, 293, 466},
		Tokens: []int{396, 87, 371, 264, 409, 300}, Text: []byte(text),
		Generated: 6, TSC: 3000000, TSCPerToken: 500000, MsPerToken: 1.234,
	}
}

func TestParserLlama(t *testing.T) {
	contract := []string{
		"file /llama/model.gguf: read 277888 bytes in 5120 us (54.27 MB/s)",
		"file /llama/run.txt: read 180 bytes in 20 us (9.00 MB/s)",
		"module llama: loaded (baseline 0011223344556677) from /modules/llama.mod",
		`llama: model /llama/model.gguf: 4 layers, dim 64, 8 heads (2 kv), hidden 192, vocab 512, context 128, Q8_0, 277888 bytes`,
		`llama: prompt "once upon a time" = 5 tokens: 1 451 471 293 466`,
		`llama: tokens 396 87 371 264 409 300`,
		`llama: text " there was a \x22fluid\x22\x0a"`,
		`llama: generated 6 tokens in 3000000 tsc (500000 tsc/token, 1.234 ms/token)`,
	}
	log := append([]string{"Fluid OS dev (BareFlow-LLVM)"}, contract...)
	second := llamaCall("x")
	second.TSCPerToken, second.MsPerToken = 400000, 0.5
	log = append(log, EncodeLlamaLines(second)...)
	log = append(log, "file /llama/missing.txt: not found in the FAT32 partition",
		"llama: refused: prompt of 140 tokens + 24 to generate exceeds the model's context of 128 (llama.context_length)",
		"module llama: result FAIL calls=3", "FLUID-END fail module: llama")
	p, err := ReadLog(strings.NewReader(strings.Join(log, "\r\n") + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LineErrors(); err != nil {
		t.Fatalf("line errors on the contract's lines: %v", err)
	}
	runs := p.Llama()
	if len(runs) != 3 {
		t.Fatalf("got %d llama calls, want 3: %+v", len(runs), runs)
	}
	want := llamaCall(" there was a \"fluid\"\n")
	want.Line, want.ended = 5, true
	if !reflect.DeepEqual(*runs[0], want) {
		t.Errorf("first call:\n got %+v\nwant %+v", *runs[0], want)
	}
	if r := runs[1]; r.TSCPerToken != 400000 || r.MsPerToken != 0.5 || string(r.Text) != "x" || r.Line != 10 {
		t.Errorf("second call: %+v", r)
	}
	if r := runs[2]; !strings.HasPrefix(r.Refused, "prompt of 140 tokens") || r.Model.Path != "" || !r.Done() {
		t.Errorf("third call (a refusal without a model line): %+v", r)
	}
	files := p.Files()
	if len(files) != 3 {
		t.Fatalf("files: %+v", files)
	}
	if f := files[0]; f != (FileRead{Path: "/llama/model.gguf", Bytes: 277888, Micros: 5120, MBps: 54.27, Line: 2}) {
		t.Errorf("file line: %+v", f)
	}
	if f := files[2]; f.Path != "/llama/missing.txt" || f.Failed != "not found in the FAT32 partition" {
		t.Errorf("failed file line: %+v", f)
	}
	// The encoder writes the contract's lines.
	for i, l := range EncodeLlamaLines(want) {
		if l != contract[3+i] && i != 3 {
			t.Errorf("EncodeLlamaLines line %d = %q, want %q", i, l, contract[3+i])
		}
	}
	if l := EncodeFileRead(files[0]); l != contract[0] {
		t.Errorf("EncodeFileRead = %q, want %q", l, contract[0])
	}
}

// TestParserLlamaMalformed: a llama or file line that breaks the syntax is
// a LineError naming the serial line and quoting it, never dropped.
func TestParserLlamaMalformed(t *testing.T) {
	good := EncodeLlamaLines(llamaCall("ok"))
	for _, bad := range []string{
		`llama: model /llama/model.gguf: 4 layers, dim 64`,
		`llama: prompt "once upon a time" = 4 tokens: 1 451 471 293 466`,
		`llama: prompt "once "upon" a time" = 1 tokens: 1`,
		`llama: prompt "\x41" = 1 tokens: 1`,
		`llama: tokens 396 87 x`,
		`llama: tokens 396  87`,
		`llama: tokens -3`,
		`llama: text unquoted`,
		`llama: text "bad \q"`,
		`llama: generated 6 tokens in 3000000 tsc`,
		`llama: generated six tokens in 3000000 tsc (500000 tsc/token, 1.234 ms/token)`,
		`llama: refused: `,
		`llama: mystery line`,
		`file /llama/model.gguf: read 277888 bytes in fast`,
		`file /llama/model.gguf`,
	} {
		log := append([]string{"Fluid OS dev (BareFlow-LLVM)"}, good[:1]...)
		log = append(log, bad)
		p, _ := ReadLog(strings.NewReader(strings.Join(log, "\n")))
		err := p.LineErrors()
		var le *LineError
		if err == nil || !errors.As(err, &le) {
			t.Errorf("%q: no line error (calls %+v)", bad, p.Llama())
			continue
		}
		if le.Line != 3 || !strings.Contains(err.Error(), "serial line 3") || !strings.Contains(err.Error(), clip(bad)[:12]) {
			t.Errorf("%q: error %q does not name serial line 3 and quote the line", bad, err)
		}
	}
	// A line twice in one call.
	log := append(append([]string{}, good[:3]...), good[2])
	p, _ := ReadLog(strings.NewReader(strings.Join(log, "\n")))
	if err := p.LineErrors(); err == nil || !strings.Contains(err.Error(), "a second") || !strings.Contains(err.Error(), "serial line 4") {
		t.Errorf("a repeated tokens line: %v", err)
	}
}

// TestLlamaLineMutations is a fuzz-ish sweep: every single-byte deletion,
// duplication and replacement (by a few bytes that matter to the syntax)
// of each contract line either parses to values that encode back to a line
// that parses the same, or is a LineError; none is dropped or panics.
func TestLlamaLineMutations(t *testing.T) {
	lines := append(EncodeLlamaLines(llamaCall(`a"b\ c`)), "llama: refused: no", EncodeFileRead(FileRead{Path: "/llama/model.gguf", Bytes: 1, Micros: 2, MBps: 0.5}))
	accepted, refused := 0, 0
	for _, l := range lines {
		var muts []string
		for i := range len(l) {
			muts = append(muts, l[:i]+l[i+1:], l[:i]+l[i:i+1]+l[i:])
			for _, c := range []byte{' ', '"', '\\', '0', 'x', ':', '(', '\n'} {
				muts = append(muts, l[:i]+string(c)+l[i+1:])
			}
		}
		for _, m := range muts {
			ll, ok, err := ParseLlamaLine(m)
			if _, fok, ferr := ParseFileLine(m); fok {
				if ferr != nil {
					refused++
				} else {
					accepted++
				}
				continue
			}
			if !ok {
				continue // no longer starts with the marker: not a llama line
			}
			if err != nil {
				refused++
				if !strings.Contains(err.Error(), "garbled llama line") {
					t.Errorf("%q: error %v", m, err)
				}
				continue
			}
			accepted++
			again, ok2, err2 := ParseLlamaLine(EncodeLlamaLine(ll))
			if !ok2 || err2 != nil || !reflect.DeepEqual(again, ll) {
				t.Errorf("%q parsed to %+v, which encodes to %q and parses back to %+v, %v", m, ll, EncodeLlamaLine(ll), again, err2)
			}
		}
	}
	if refused < 500 || accepted == 0 {
		t.Errorf("%d mutations refused, %d accepted: the sweep did not exercise both", refused, accepted)
	}
}

// TestParserLlamaNumbersAndOrder: a number too big for its field is a line
// error, not a value silently clamped to the type's maximum; a prompt,
// tokens, text or generated line that no model line opened a call for
// (only a refusal may come without one: run.txt is read before the model)
// is a line error, and so is a generated line whose count is not the
// number of ids its tokens line listed.
func TestParserLlamaNumbersAndOrder(t *testing.T) {
	good := EncodeLlamaLines(llamaCall("ok"))
	for _, c := range []struct {
		name string
		log  []string
		line int
	}{
		{"model number", []string{strings.Replace(good[0], "dim 64", "dim 99999999999999999999999", 1)}, 2},
		{"tsc", append(good[:4:4], "llama: generated 6 tokens in 99999999999999999999999 tsc (1 tsc/token, 0.000 ms/token)"), 6},
		{"file bytes", []string{"file /llama/model.gguf: read 99999999999999999999999 bytes in 1 us (5.00 MB/s)"}, 2},
		{"no model line", append(append([]string{}, good...), "llama: tokens 5", "llama: generated 1 tokens in 10 tsc (10 tsc/token, 0.000 ms/token)"), 2 + len(good)},
		{"count", append(good[:4:4], "llama: generated 7 tokens in 3000000 tsc (428571 tsc/token, 1.000 ms/token)"), 6},
	} {
		log := append([]string{"Fluid OS dev (BareFlow-LLVM)"}, c.log...)
		p, _ := ReadLog(strings.NewReader(strings.Join(log, "\n")))
		err := p.LineErrors()
		var le *LineError
		if err == nil || !errors.As(err, &le) || le.Line != c.line {
			t.Errorf("%s: line errors %v, want one for serial line %d (calls %+v)", c.name, err, c.line, p.Llama())
		}
	}
	// A refusal without a model line is a whole call.
	p, _ := ReadLog(strings.NewReader("llama: refused: /llama/run.txt: line 3: unknown key \"x\"\n" + strings.Join(good, "\n")))
	if err := p.LineErrors(); err != nil || len(p.Llama()) != 2 {
		t.Errorf("a refusal, then a good call: %v, %d calls", err, len(p.Llama()))
	}
}
