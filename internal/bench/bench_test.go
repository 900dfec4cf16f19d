package bench

import (
	"bytes"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
