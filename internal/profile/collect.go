package profile

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/serial"
)

// Module is what one module sent.
type Module struct {
	Summary serial.Summary
	Profraw []byte // nil unless the module was instrumented
}

// Build is one module as the booted image holds it: the frames labelled
// with the module's name must come from this build.
type Build struct {
	// Hash is the module header's build hash (16 hex digits, what the
	// loaded line prints and the summary frame's "hash" carries).
	Hash string
	// ProfNames is the ELF's __llvm_prf_names section (instrumented
	// builds; nil otherwise): the function names its raw profile carries
	// byte for byte, and no other module's does.
	ProfNames []byte
}

// profNamesSection is where an instrumented module keeps the names of its
// instrumented functions; compiler-rt's writer copies it into the raw
// profile unchanged.
const profNamesSection = "__llvm_prf_names"

// BuildsOf reads each module's build identity from its packed .mod (the
// header hash) and its ELF (the profile names), by module name.
func BuildsOf(mods []build.Module) (map[string]Build, error) {
	out := map[string]Build{}
	for _, m := range mods {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m.Name, err)
		}
		pm, err := modfmt.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("module %s: %s: %w", m.Name, m.Path, err)
		}
		b := Build{Hash: pm.HashString()}
		if m.ELF != "" {
			f, err := elf.Open(m.ELF)
			if err != nil {
				return nil, fmt.Errorf("module %s: %w", m.Name, err)
			}
			if s := f.Section(profNamesSection); s != nil {
				b.ProfNames, err = s.Data()
			}
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("module %s: read %s of %s: %w", m.Name, profNamesSection, m.ELF, err)
			}
		}
		out[m.Name] = b
	}
	return out, nil
}

// Want says what a capture must hold.
type Want struct {
	Modules     []string // the modules built into the image
	NeedProfraw bool     // every module that passed must send a profraw frame
	// Builds, when set, is every module's build: a frame whose payload is
	// another module's (swapped labels, a stale image) is refused, naming
	// both.
	Builds map[string]Build
	// Runs, when set, are the loader's lines (serial.Parser.Modules): they
	// say why a module sent nothing or did not finish.
	Runs []*serial.ModuleRun
}

// Unfinished is a module that sent its summary but gets no profile: it
// crashed, timed out, or failed its checks.
type Unfinished struct {
	Module string
	Result string // the summary's result: fail, crashed or timeout
	Why    string // the loader's line about it, or the summary's result
}

func (u Unfinished) String() string { return u.Module + " (" + u.Why + ")" }

// Collected is what a capture holds.
type Collected struct {
	Modules    map[string]*Module // the modules whose run passed, with their frames
	Unfinished []Unfinished       // sorted by module
}

// Collect checks that every module in want sent a summary frame (and, when
// needProfraw is set, a profraw frame), that the summaries parse and say
// the run passed, and that nothing unexpected arrived. Errors name the
// module and join every problem found; they wrap ErrRefused.
func Collect(c *serial.Capture, want []string, needProfraw bool) (map[string]*Module, error) {
	return collectAll(c, Want{Modules: want, NeedProfraw: needProfraw})
}

// collectAll is CollectWant where a module that did not pass is an error
// too (what a benchmark needs: every module's figures).
func collectAll(c *serial.Capture, w Want) (map[string]*Module, error) {
	col, err := CollectWant(c, w)
	if err != nil {
		return nil, err
	}
	if len(col.Unfinished) > 0 {
		var errs []error
		for _, u := range col.Unfinished {
			errs = append(errs, fmt.Errorf("%w: module %s: the module's run reported result %q (%s); fix the module before profiling it", ErrRefused, u.Module, u.Result, u.Why))
		}
		return nil, errors.Join(errs...)
	}
	return col.Modules, nil
}

// CollectWant checks a capture against w. A module whose summary says it
// crashed, timed out or failed is Unfinished (a crashed or timed-out one
// must send no profraw frame); every other problem (a missing or extra
// frame, a frame of another module's build, a guest error line) is an
// error naming the module, and all of them are joined; they wrap
// ErrRefused.
func CollectWant(c *serial.Capture, w Want) (*Collected, error) {
	mods := map[string]*Module{}
	wanted := map[string]bool{}
	for _, m := range w.Modules {
		wanted[m] = true
		mods[m] = &Module{}
	}
	runs := map[string]*serial.ModuleRun{}
	for _, r := range w.Runs {
		runs[r.Name] = r
	}
	var errs []error
	bad := func(module, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: module %s: %s", ErrRefused, module, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	for _, f := range c.Frames {
		key := f.Module + "/" + f.Kind
		if !wanted[f.Module] {
			bad(f.Module, "sent a %s frame but is not one of the modules built (%v); is the image stale?", f.Kind, w.Modules)
			continue
		}
		if seen[key] {
			bad(f.Module, "sent two %s frames", f.Kind)
			continue
		}
		seen[key] = true
		m := mods[f.Module]
		switch f.Kind {
		case serial.KindSummary:
			s, err := serial.DecodeSummary(f.Payload)
			if err != nil {
				bad(f.Module, "summary frame is not the expected JSON: %v", err)
				continue
			}
			m.Summary = s
			if m.Summary.Module != f.Module {
				bad(f.Module, "summary frame names module %q", m.Summary.Module)
			}
			if why := w.checkHash(f.Module, s.Hash); why != "" {
				bad(f.Module, "%s", why)
			}
		case serial.KindProfraw:
			if len(f.Payload) == 0 {
				bad(f.Module, "empty profraw frame")
			}
			if why := w.checkNames(f.Module, f.Payload); why != "" {
				bad(f.Module, "%s", why)
			}
			m.Profraw = f.Payload
		default:
			bad(f.Module, "unknown frame kind %q", f.Kind)
		}
	}
	for _, e := range c.Errors {
		bad(e.Module, "the guest could not produce its %s: %s", e.Kind, e.Reason)
		seen[e.Module+"/"+e.Kind] = true // reported already
	}
	names := append([]string(nil), w.Modules...)
	sort.Strings(names)
	col := &Collected{Modules: map[string]*Module{}}
	for _, n := range names {
		m := mods[n]
		if !seen[n+"/"+serial.KindSummary] {
			why := "no summary frame in the serial log (did the module load and run?)"
			if r := runs[n]; r != nil && r.Why() != "" {
				why = "no summary frame in the serial log: the kernel said " + r.Why()
			}
			bad(n, "%s", why)
			continue
		}
		res := m.Summary.Result
		switch {
		case res == serial.ResultOK:
			if w.NeedProfraw && !seen[n+"/"+serial.KindProfraw] {
				bad(n, "no profraw frame in the serial log (was it built instrumented, with the profile hook?)")
				continue
			}
			col.Modules[n] = m
		case res == serial.ResultFail || res == serial.ResultCrashed || res == serial.ResultTimeout:
			if !serial.Finished(res) && m.Profraw != nil {
				bad(n, "sent a profraw frame though its summary says %s: a module that did not finish has no exact profile (a kernel bug)", res)
				continue
			}
			why := "result " + res
			if r := runs[n]; r != nil && r.Why() != "" {
				why = r.Why()
			}
			col.Unfinished = append(col.Unfinished, Unfinished{Module: n, Result: res, Why: why})
		default:
			bad(n, "summary result %q is none of %s, %s, %s, %s; rebuild the kernel and the host tools from one commit", res,
				serial.ResultOK, serial.ResultFail, serial.ResultCrashed, serial.ResultTimeout)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return col, nil
}

// checkHash says what is wrong with a summary frame labelled module that
// carries build hash h ("" if nothing, or if no builds are known).
func (w Want) checkHash(module, h string) string {
	b, ok := w.Builds[module]
	if w.Builds == nil || !ok || h == b.Hash {
		return ""
	}
	for _, other := range sortedKeys(w.Builds) {
		if other != module && w.Builds[other].Hash == h {
			return fmt.Sprintf("the summary frame labelled %s carries build hash %s, which is module %s's build (%s's is %s): the frames' module labels are swapped; recapture with `%s`",
				module, h, other, module, b.Hash, RefreshCommand)
		}
	}
	return fmt.Sprintf("the summary frame carries build hash %q, but the image holds %s's build %s: was a stale image booted? recapture with `%s`", h, module, b.Hash, RefreshCommand)
}

// checkNames says what is wrong with a profraw frame labelled module ("" if
// nothing, or if its build's profile names are not known).
func (w Want) checkNames(module string, raw []byte) string {
	b, ok := w.Builds[module]
	if !ok || len(b.ProfNames) == 0 || bytes.Contains(raw, b.ProfNames) {
		return ""
	}
	for _, other := range sortedKeys(w.Builds) {
		if o := w.Builds[other]; other != module && len(o.ProfNames) > 0 && bytes.Contains(raw, o.ProfNames) {
			return fmt.Sprintf("the profraw frame labelled %s holds the profile of module %s's build (its function names): the frames' module labels are swapped; recapture with `%s`",
				module, other, RefreshCommand)
		}
	}
	return fmt.Sprintf("the profraw frame does not hold the function names of %s's build (%s section of its ELF): was a stale image booted? recapture with `%s`", module, profNamesSection, RefreshCommand)
}

func sortedKeys(m map[string]Build) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// unfinishedList is "a (why), b (why)".
func unfinishedList(us []Unfinished) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ", ")
}
