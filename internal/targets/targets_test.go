package targets

import (
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/serial"
)

func TestGDBPort(t *testing.T) {
	for in, want := range map[string]int{"": 0, "1234": 1234} {
		if got, err := gdbPort(in); err != nil || got != want {
			t.Errorf("gdbPort(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "12x", "-1", "70000"} {
		if _, err := gdbPort(bad); err == nil {
			t.Errorf("gdbPort(%q) accepted", bad)
		}
	}
}

func TestLlamaSummary(t *testing.T) {
	p, err := serial.ReadLog(strings.NewReader(strings.Join([]string{
		"file /llama/run.txt: read 180 bytes in 20 us (9.00 MB/s)",
		"file /llama/model.gguf: read 277888 bytes in 5120 us (54.27 MB/s)",
		"llama: model /llama/model.gguf: 4 layers, dim 64, 8 heads (2 kv), hidden 192, vocab 512, context 128, Q8_0, 277888 bytes",
		`llama: prompt "once upon a time" = 5 tokens: 1 451 471 293 466`,
		"llama: tokens 396 87 371",
		`llama: text "abc"`,
		"llama: generated 3 tokens in 3000 tsc (1000 tsc/token, 2.000 ms/token)",
		"llama: model /llama/model.gguf: 4 layers, dim 64, 8 heads (2 kv), hidden 192, vocab 512, context 128, Q8_0, 277888 bytes",
		`llama: prompt "once upon a time" = 5 tokens: 1 451 471 293 466`,
		"llama: tokens 396 87 371",
		`llama: text "abc"`,
		"llama: generated 3 tokens in 2700 tsc (900 tsc/token, 1.500 ms/token)",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	got := LlamaSummary(p.Llama(), p.Files(), p.LineErrors())
	want := "llama summary: 2 calls, 3 tokens each, 900 tsc/token, 1.500 ms/token (fastest call); model /llama/model.gguf loaded at 54.27 MB/s (277888 bytes in 5120 us)"
	if got != want {
		t.Errorf("LlamaSummary =\n%s\nwant\n%s", got, want)
	}
	if s := LlamaSummary(nil, nil, nil); s != "" {
		t.Errorf("no llama lines: %q, want no line", s)
	}
	p.Line("llama: tokens x")
	if s := LlamaSummary(p.Llama(), p.Files(), p.LineErrors()); !strings.Contains(s, "malformed lines: serial line 13") {
		t.Errorf("a malformed line is not named: %s", s)
	}
}
