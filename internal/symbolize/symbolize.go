// Package symbolize turns the module-relative code locations the kernel
// prints (NAME+0xOFF on a module's timed-out, crashed and backtrace lines,
// docs/CONTRACTS.md) into source files and lines. It asks llvm-symbolizer
// of the build's toolchain, run the way every toolchain binary runs
// (build.Builder.Output), about the module's ELF: modules are linked at
// address 0, so an offset from the load base is an ELF address.
package symbolize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/serial"
)

// Tool is the LLVM binary that resolves addresses.
const Tool = "llvm-symbolizer"

// Line is where one code location is in the sources.
type Line struct {
	Loc      serial.Loc
	Function string // "" when unknown
	File     string // repo-relative when the file is in the tree
	Line     int    // 0 when unknown
	// InlinedInto names the functions the code was inlined into, innermost first.
	InlinedInto []string
	// Err says why the location could not be resolved ("" when it was).
	Err string
}

// String is one line for a person: "nullwrite+0x1a is
// modules/testfault/nullwrite/nullwrite.c:7 (fluid_module_main)".
func (l Line) String() string {
	if l.Err != "" {
		return fmt.Sprintf("%s: %s", l.Loc, l.Err)
	}
	s := fmt.Sprintf("%s is %s:%d", l.Loc, l.File, l.Line)
	if l.Function != "" {
		s += " (" + l.Function
		if len(l.InlinedInto) > 0 {
			s += ", inlined into " + strings.Join(l.InlinedInto, " < ")
		}
		s += ")"
	}
	return s
}

// VariantDir is the directory under build/modules/ of the modules whose
// header carries variant tag (the loaded line's "baseline", "O3", "PGO",
// "instrumented"): the recipe's name.
func VariantDir(tag string) (string, error) {
	for _, r := range recipe.All() {
		if r.Tag == tag {
			return r.Name, nil
		}
	}
	return "", fmt.Errorf("no image recipe builds modules of variant %q", tag)
}

// Symbolizer resolves module locations with the builder's toolchain,
// reading the modules under its output directory.
type Symbolizer struct {
	B *build.Builder
}

// Lookup resolves addresses of the ELF at path; ret[i] marks a return
// address (resolved at the call before it: address-1). It returns one Line
// per address, in order.
func (s *Symbolizer) Lookup(ctx context.Context, elf string, locs []serial.Loc, ret []bool) ([]Line, error) {
	argv := []string{filepath.Join(s.B.Toolchain().LLVMDir, Tool), "--obj=" + s.B.Rel(elf), "--output-style=JSON", "--functions=linkage", "--inlining"}
	for i, l := range locs {
		a := l.Off
		if i < len(ret) && ret[i] && a > 0 {
			a--
		}
		argv = append(argv, fmt.Sprintf("0x%x", a))
	}
	out, err := s.B.Output(ctx, argv...)
	if err != nil {
		return nil, fmt.Errorf("symbolize %s: %w", s.B.Rel(elf), err)
	}
	var res []struct {
		Error  *struct{ Message string }
		Symbol []struct {
			FileName     string
			FunctionName string
			Line         int
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return nil, fmt.Errorf("symbolize %s: %s printed no JSON list: %v", s.B.Rel(elf), Tool, err)
	}
	if len(res) != len(locs) {
		return nil, fmt.Errorf("symbolize %s: %d answers for %d addresses", s.B.Rel(elf), len(res), len(locs))
	}
	lines := make([]Line, len(locs))
	for i, r := range res {
		l := Line{Loc: locs[i]}
		switch {
		case r.Error != nil:
			l.Err = r.Error.Message
		case len(r.Symbol) == 0 || r.Symbol[0].Line == 0 || r.Symbol[0].FileName == "" || r.Symbol[0].FileName == "??":
			l.Err = fmt.Sprintf("no line information at 0x%x in %s (is the offset outside the module's code?)", locs[i].Off, s.B.Rel(elf))
		default:
			l.File, l.Line, l.Function = s.relFile(r.Symbol[0].FileName), r.Symbol[0].Line, r.Symbol[0].FunctionName
			for _, in := range r.Symbol[1:] {
				l.InlinedInto = append(l.InlinedInto, in.FunctionName)
			}
		}
		lines[i] = l
	}
	return lines, nil
}

// relFile makes a DWARF file name repo-relative: modules are compiled with
// -ffile-prefix-map=<root>=., so their files are "./modules/...".
func (s *Symbolizer) relFile(f string) string {
	f = filepath.ToSlash(f)
	if filepath.IsAbs(f) {
		return s.B.Rel(f)
	}
	return strings.TrimPrefix(filepath.ToSlash(filepath.Clean(f)), "./")
}

// Module resolves every location the lines about module run m name (each
// once, in order of appearance), from build/modules/<variant>/<name>.elf.
// The ELF must be the build that ran: the .mod next to it must carry the
// hash the loaded line printed. A problem with the module as a whole (no
// loaded line, no ELF, another build) is the error; a location that does
// not resolve gets its Err.
func (s *Symbolizer) Module(ctx context.Context, m *serial.ModuleRun) ([]Line, error) {
	var locs []serial.Loc
	var ret []bool
	at := map[serial.Loc]bool{} // where it stopped: exact addresses
	seen := map[serial.Loc]bool{}
	for _, f := range m.Fault {
		bt := strings.Contains(f, serial.MarkerModuleBacktrace)
		for _, l := range serial.ParseLocs(f) {
			if l.Module != m.Name {
				continue
			}
			if !bt {
				at[l] = true
			}
			if seen[l] {
				continue
			}
			seen[l] = true
			locs = append(locs, l)
			ret = append(ret, bt && !at[l]) // a backtrace entry is a return address
		}
	}
	if len(locs) == 0 {
		return nil, nil
	}
	if m.Variant == "" {
		return nil, fmt.Errorf("module %s: no loaded line names its variant, so its ELF is unknown", m.Name)
	}
	dir, err := VariantDir(m.Variant)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	base := filepath.Join(s.B.Out(), "modules", dir, m.Name)
	elf, mod := base+".elf", base+".mod"
	data, err := os.ReadFile(mod)
	if err != nil {
		return nil, fmt.Errorf("module %s: no build of it to symbolize with: %w", m.Name, err)
	}
	pm, err := modfmt.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("module %s: %s: %w", m.Name, s.B.Rel(mod), err)
	}
	if m.Hash != "" && pm.HashString() != m.Hash {
		return nil, fmt.Errorf("module %s: %s is build %s, but the run loaded build %s: rebuild the image that ran to symbolize it", m.Name, s.B.Rel(mod), pm.HashString(), m.Hash)
	}
	if _, err := os.Stat(elf); err != nil {
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	return s.Lookup(ctx, elf, locs, ret)
}

// Report writes, for every module in runs whose lines name code locations
// (a crashed or timed-out module's), each location as a source line under
// the module's name: what `mage qemu` prints after a run. A module it
// cannot symbolize gets one line saying why; nothing here fails the run.
func (s *Symbolizer) Report(ctx context.Context, runs []*serial.ModuleRun, w io.Writer) {
	for _, m := range runs {
		if len(m.Locs) == 0 {
			continue
		}
		lines, err := s.Module(ctx, m)
		if err != nil {
			fmt.Fprintf(w, "cannot symbolize: %v\n", err)
			continue
		}
		fmt.Fprintf(w, "%s%s: %s\n", serial.MarkerModule, m.Name, m.Why())
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}
