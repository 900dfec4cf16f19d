package bench

import (
	"bytes"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/serial"
)

func sample() *Report {
	mk := func(name string, base, o3, pgo uint64) ModuleResult {
		return ModuleResult{Module: name,
			Instructions: map[string]uint64{Baseline: base, O3: o3, PGO: pgo},
			Ratio:        map[string]float64{Baseline: 1, O3: float64(o3) / float64(base), PGO: float64(pgo) / float64(base)},
		}
	}
	r := &Report{Variants: []string{Baseline, O3, PGO}, Geomean: map[string]float64{},
		Modules: []ModuleResult{mk("fib", 1000, 1000, 500), mk("sort", 1000, 900, 1100), mk("a<b&c", 1000, 1000, 800)}}
	for _, v := range r.Variants {
		r.Geomean[v] = Geomean(r.Modules, v)
	}
	return r
}

func TestGeomean(t *testing.T) {
	tests := []struct {
		ratios []float64
		want   float64
	}{
		{[]float64{1, 1, 1}, 1},
		{[]float64{0.5, 2}, 1},
		{[]float64{0.25, 1}, 0.5},
		{[]float64{0.9}, 0.9},
	}
	for _, tt := range tests {
		var mods []ModuleResult
		for _, r := range tt.ratios {
			mods = append(mods, ModuleResult{Ratio: map[string]float64{PGO: r}})
		}
		if got := Geomean(mods, PGO); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Geomean(%v) = %v, want %v", tt.ratios, got, tt.want)
		}
	}
}

func TestVerdict(t *testing.T) {
	r := sample() // PGO geomean = cbrt(0.5*1.1*0.8) = 0.760; O3 = cbrt(0.9) = 0.965; sort worse
	v := strings.Join(r.Verdict(), "\n")
	for _, want := range []string{"0.900 of baseline: 0.761, met", "beats O3 in geomean: 0.761 vs 0.965, met", "NOT met: sort (1.100)"} {
		if !strings.Contains(v, want) {
			t.Errorf("verdict lacks %q:\n%s", want, v)
		}
	}
}

func TestTableAndFiles(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fib", "500", "0.500", "geomean", "0.761"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, SVGFile))
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed XML (module names are escaped) with one bar per module
	// and variant plus the geomean group.
	dec := xml.NewDecoder(bytes.NewReader(svg))
	rects := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("bench.svg is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "fill" && (a.Value == svgColors[PGO] || a.Value == svgColors[O3] || a.Value == svgColors[Baseline]) {
					rects++
				}
			}
		}
	}
	// 4 groups x 3 bars + 3 legend swatches.
	if rects != 4*3+3 {
		t.Errorf("bench.svg has %d coloured rects, want %d", rects, 4*3+3)
	}
	if !strings.Contains(string(svg), "a&lt;b&amp;c") {
		t.Error("module name not escaped in bench.svg")
	}
	if _, err := os.Stat(filepath.Join(dir, JSONFile)); err != nil {
		t.Error(err)
	}
}

// writeLlamaLog writes a serial log with one llama call per tsc/token.
func writeLlamaLog(t *testing.T, extra string, perToken ...uint64) string {
	t.Helper()
	var lines []string
	for _, pt := range perToken {
		lines = append(lines, serial.EncodeLlamaLines(serial.LlamaRun{
			Model:  serial.LlamaModel{Path: "/llama/model.gguf", Layers: 4, Dim: 64, Heads: 8, KVHeads: 2, Hidden: 192, Vocab: 512, Context: 128, Type: "Q8_0", Bytes: 277888},
			Prompt: []byte("once upon a time"), PromptIDs: []int{1, 451}, Tokens: []int{3, 4, 5}, Text: []byte("x"),
			Generated: 3, TSC: 3 * pt, TSCPerToken: pt, MsPerToken: 1,
		})...)
	}
	lines = append(lines, extra)
	p := filepath.Join(t.TempDir(), "serial.log")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLlamaPerToken(t *testing.T) {
	per, tokens, err := LlamaPerToken(writeLlamaLog(t, "", 520, 500, 510))
	if err != nil || per != 500 || tokens != 3 {
		t.Fatalf("LlamaPerToken = %d, %d, %v; want the minimum 500 over 3 calls, 3 tokens", per, tokens, err)
	}
	for extra, want := range map[string]string{
		"llama: generated 3 tokens in lots": "serial line 16",
		"llama: refused: no room":           "the module refused",
	} {
		if _, _, err := LlamaPerToken(writeLlamaLog(t, extra, 500, 500, 500)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("with %q: error %v, want one containing %q", extra, err, want)
		}
	}
	if _, _, err := LlamaPerToken(writeLlamaLog(t, "")); err == nil || !strings.Contains(err.Error(), "no llama call") {
		t.Errorf("a log without llama lines: %v", err)
	}

	r := sample()
	r.Llama = &LlamaResult{InstructionsPerToken: map[string]uint64{Baseline: 1000, O3: 950, PGO: 800}, Ratio: map[string]float64{}, Tokens: 24}
	r.Llama.ratios(r.Variants)
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if want := "llama guest instructions per token (24 tokens per call, minimum over calls): baseline 1000, O3 950 (0.950), PGO 800 (0.800); PGO gain +20.0%"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}
