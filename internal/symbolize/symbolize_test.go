package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/serial"
)

// baseline builds the baseline modules and returns the builder and fib.
// It holds the build lock until the test ends, so no other test rebuilds
// the ELF it reads.
func baseline(t *testing.T) (*build.Builder, build.Module) {
	t.Helper()
	b := buildtest.Builder(t)
	t.Cleanup(buildtest.Lock(t, b))
	mods, err := b.RecipeModules(t.Context(), recipe.Baseline, nil)
	if err != nil {
		t.Fatalf("build the baseline modules: %v", err)
	}
	for _, m := range mods {
		if m.Name == "fib" {
			return b, m
		}
	}
	t.Fatal("no fib module")
	return nil, build.Module{}
}

// openELF opens the ELF at path for the rest of the test (closed at its
// end), failing the test when it cannot.
func openELF(t *testing.T, path string) *elf.File {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s as an ELF: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// symbolAddr is the address (= offset from the load base) of a function
// in the ELF's symbol table.
func symbolAddr(t *testing.T, path, name string) uint32 {
	t.Helper()
	syms, err := openELF(t, path).Symbols()
	if err != nil {
		t.Fatalf("%s: read the symbol table: %v", path, err)
	}
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return uint32(s.Value)
		}
	}
	t.Fatalf("%s has no function %s", path, name)
	return 0
}

// dwarfLine is what Go's own DWARF reader says of an address: the row of
// the line table that covers it.
func dwarfLine(t *testing.T, path string, addr uint32) (string, int) {
	t.Helper()
	d, err := openELF(t, path).DWARF()
	if err != nil {
		t.Fatalf("%s has no DWARF (are modules built with -g?): %v", path, err)
	}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag != dwarf.TagCompileUnit {
			continue
		}
		lr, err := d.LineReader(e)
		if err != nil || lr == nil {
			continue
		}
		var le dwarf.LineEntry
		if lr.SeekPC(uint64(addr), &le) == nil {
			return strings.TrimPrefix(filepath.ToSlash(filepath.Clean(le.File.Name)), "./"), le.Line
		}
	}
	t.Fatalf("no line table row covers 0x%x in %s", addr, path)
	return "", 0
}

// TestLookupRealModule symbolizes real offsets of the baseline fib
// module's ELF: its entry function's address and an address a few bytes
// into it resolve to modules/fib/fib.c at the lines DWARF records, in
// fluid_main.
func TestLookupRealModule(t *testing.T) {
	b, fib := baseline(t)
	entry := symbolAddr(t, fib.ELF, modfmt.EntrySymbol)
	locs := []serial.Loc{{Module: "fib", Off: entry}, {Module: "fib", Off: entry + 4}}
	s := &Symbolizer{B: b}
	lines, err := s.Lookup(t.Context(), fib.ELF, locs, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(b.Root(), "modules", "fib", "fib.c"))
	if err != nil {
		t.Fatal(err)
	}
	srcLines := strings.Split(string(src), "\n")
	for i, l := range lines {
		file, line := dwarfLine(t, fib.ELF, locs[i].Off)
		t.Logf("%s (DWARF: %s:%d)", l, file, line)
		if l.Err != "" || l.File != "modules/fib/fib.c" || l.File != file || l.Line != line || l.Function != modfmt.EntrySymbol {
			t.Errorf("%s: got %+v, want modules/fib/fib.c:%d in %s", locs[i], l, line, modfmt.EntrySymbol)
		}
	}
	// The entry is the function's declaration line or its opening brace.
	if l := lines[0]; l.Line < 2 || l.Line > len(srcLines) ||
		!(strings.Contains(srcLines[l.Line-1], modfmt.EntrySymbol+"(") || strings.Contains(srcLines[l.Line-2], modfmt.EntrySymbol+"(") && strings.TrimSpace(srcLines[l.Line-1]) == "{") {
		t.Errorf("the entry resolved to line %d, which is not where %s begins", l.Line, modfmt.EntrySymbol)
	}
	want := fmt.Sprintf("fib+0x%x is modules/fib/fib.c:%d (%s)", entry, lines[0].Line, modfmt.EntrySymbol)
	if lines[0].String() != want {
		t.Errorf("String() = %q, want %q", lines[0].String(), want)
	}
}

// TestModuleRun symbolizes a crashed module's lines as the parser keeps
// them, after checking that the ELF is the build that ran.
func TestModuleRun(t *testing.T) {
	b, fib := baseline(t)
	data, err := os.ReadFile(fib.Path)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := modfmt.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	entry := symbolAddr(t, fib.ELF, modfmt.EntrySymbol)
	// A return address where a new line starts: it must resolve to the line
	// before it (the call's), not its own.
	ra := entry + 1
	for ; ra < entry+400; ra++ {
		_, l0 := dwarfLine(t, fib.ELF, ra-1)
		if _, l1 := dwarfLine(t, fib.ELF, ra); l0 != l1 {
			break
		}
	}
	log := fmt.Sprintf("module fib: loaded (baseline %s) from /modules/fib.mod at 0x400000, 1 bytes\n"+
		"module fib: crashed: exception 6 (#UD invalid opcode) err=0x0 at fib+0x%x\n"+
		"module fib: backtrace: fib+0x%x fib+0x%x 0xc0101234\n", pm.HashString(), entry+3, entry+3, ra)
	p, err := serial.ReadLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	m := p.Modules()[0]
	s := &Symbolizer{B: b}
	lines, err := s.Module(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Loc.Off != entry+3 || lines[1].Loc.Off != ra {
		t.Fatalf("lines %v", lines)
	}
	for _, l := range lines {
		if l.Err != "" || l.File != "modules/fib/fib.c" || l.Line == 0 {
			t.Errorf("%v", l)
		}
	}
	// The return address is resolved at the call before it.
	if _, line := dwarfLine(t, fib.ELF, ra-1); lines[1].Line != line {
		t.Errorf("return address fib+0x%x resolved to line %d, want %d (the line of address-1)", ra, lines[1].Line, line)
	}
	var out strings.Builder
	s.Report(t.Context(), p.Modules(), &out)
	t.Logf("Report:\n%s", out.String())
	want := fmt.Sprintf("module fib: crashed: exception 6 (#UD invalid opcode) err=0x0 at fib+0x%x\n  fib+0x%x is modules/fib/fib.c:%d (%s)\n",
		entry+3, entry+3, lines[0].Line, modfmt.EntrySymbol)
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("Report:\n%s\nwant it to start with:\n%s", out.String(), want)
	}
	m.Hash = "0000000000000000"
	if _, err := s.Module(t.Context(), m); err == nil || !strings.Contains(err.Error(), "but the run loaded build 0000000000000000") {
		t.Errorf("another build's ELF: %v", err)
	}
	m.Variant = "nonsense"
	if _, err := s.Module(t.Context(), m); err == nil || !strings.Contains(err.Error(), `variant "nonsense"`) {
		t.Errorf("unknown variant: %v", err)
	}
}
