package cireport

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/serial"
)

func TestCollectAndMarkdown(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	log.WriteString("stage2: loading kernel\nFluid OS dev (BareFlow-LLVM)\n")
	for _, s := range []serial.Summary{
		{Module: "fib", Variant: "PGO", Calls: 3, CyclesMin: 800, Result: "ok"},
		{Module: "sort", Variant: "PGO", Calls: 3, CyclesMin: 900, Result: "fail"},
	} {
		b, _ := json.Marshal(s)
		if err := serial.EncodeFrame(&log, serial.KindSummary, s.Module, b); err != nil {
			t.Fatal(err)
		}
	}
	log.WriteString("module zip: skipped: not a .mod file\n")
	log.WriteString("FLUID-END fail module: sort: wrong checksum\n")
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("serial/boot.log", log.Bytes())
	write("serial/ok.log", []byte("Fluid OS dev\nFLUID-END pass\n"))
	write("serial/hung.log", []byte("stage2: A20 on\n"))
	write("build.log", []byte("CC kernel/main.c\n")) // not a guest log
	write("bench.json", []byte(benchJSON(t, map[string]uint64{"fib": 800, "sort": 1100})))

	o, err := Collect(dir, []Step{{"test", "failure"}, {"bench", "success"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Boots) != 3 || o.Passed() {
		t.Fatalf("boots = %+v, passed = %v", o.Boots, o.Passed())
	}
	var md strings.Builder
	o.Markdown(&md, nil)
	for _, want := range []string{
		"❌ failed", "| test | ❌ failure |",
		"| `serial/boot.log` | ❌ FLUID-END fail module: sort: wrong checksum | fib (PGO) ok, sort (PGO) **fail**; did not pass: zip: skipped: not a .mod file |",
		"| `serial/hung.log` | ❌ no FLUID-END line", "| `serial/ok.log` | ✅ FLUID-END pass |",
		"| fib | 1000 | 950 | 800 | 0.950 | 0.800 |", "| **geomean** |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "build.log") {
		t.Errorf("a build log was taken for a serial log:\n%s", md.String())
	}

	// Without bench.json the summary says why there is no table.
	os.Remove(filepath.Join(dir, "bench.json"))
	o, err = Collect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	md.Reset()
	o.Markdown(&md, nil)
	if !strings.Contains(md.String(), "No bench.json") {
		t.Errorf("no bench note:\n%s", md.String())
	}
}
