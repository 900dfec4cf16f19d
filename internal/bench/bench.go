// Package bench measures the module variants: it builds the baseline (-O2),
// -O3 and PGO modules, boots each set under QEMU with -icount (so the
// guest's rdtsc counts executed instructions and every run is the same),
// and compares guest instructions per module run against the baseline.
//
// The figures come from the kernel's summary frames (internal/serial,
// collected by internal/profile while the guest runs): per
// module the smallest per-call rdtsc delta of its runs ("cycles_min"), which
// under -icount shift=0 is the instruction count of one whole workload run
// (the minimum filters out runs that a timer interrupt landed in).
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/profile"
	"github.com/fluid-os/fluid/internal/serial"
)

// Variant names, in table order. Baseline is the reference.
const (
	Baseline = "baseline"
	O3       = "O3"
	PGO      = "PGO"
)

// Files the benchmark writes into the build directory.
const (
	JSONFile = "bench.json"
	SVGFile  = "bench.svg"
)

// ModuleResult is one module's figures.
type ModuleResult struct {
	Module string `json:"module"`
	// Instructions per workload run, per variant (guest instructions under
	// -icount: the minimum rdtsc delta over the module's calls).
	Instructions map[string]uint64 `json:"instructions"`
	// Ratio of each variant to the baseline (< 1 is better).
	Ratio map[string]float64 `json:"ratio"`
	// KVMCycles per workload run under KVM (rdtsc = CPU cycles, minimum
	// over the calls), per variant; empty when KVM does not work here.
	KVMCycles map[string]uint64 `json:"kvm_cycles,omitempty"`
	Hash      map[string]string `json:"hash"` // module header hash per variant
}

// Report is build/bench.json.
type Report struct {
	Metric   string             `json:"metric"`
	Light    bool               `json:"light"`
	Variants []string           `json:"variants"`
	Modules  []ModuleResult     `json:"modules"`
	Geomean  map[string]float64 `json:"geomean_ratio"` // geometric mean of Ratio per variant
	KVM      string             `json:"kvm"`           // whether KVM cycle figures were taken, and if not why
	// Llama is the llama module's cost per generated token, when the
	// images hold it.
	Llama *LlamaResult `json:"llama,omitempty"`
}

// LlamaModule is the module whose per-token figures the bench reports.
const LlamaModule = "llama"

// LlamaResult is the llama module's figures per variant.
type LlamaResult struct {
	// InstructionsPerToken: guest instructions per generated token (the
	// module's tsc/token under -icount shift=0, prompt excluded), the
	// minimum over its calls, per variant.
	InstructionsPerToken map[string]uint64  `json:"instructions_per_token"`
	Ratio                map[string]float64 `json:"ratio"` // to the baseline (< 1 is better)
	// PGOGain is the share of the baseline's instructions per token that
	// PGO saves (0.1 = 10% fewer).
	PGOGain float64 `json:"pgo_gain"`
	Tokens  int     `json:"tokens"` // tokens generated per call
}

// LlamaPerToken reads the llama module's lines from a serial log (the one
// parser, serial.ReadLog) and returns the smallest tsc/token over its calls
// and the tokens per call. A malformed llama line, a refusal or no call
// that generated tokens is an error naming the log.
func LlamaPerToken(logPath string) (perToken uint64, tokens int, err error) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, 0, fmt.Errorf("llama figures: %w", err)
	}
	defer f.Close()
	p, err := serial.ReadLog(f)
	if err != nil {
		return 0, 0, fmt.Errorf("llama figures: read %s: %w", logPath, err)
	}
	if err := p.LineErrors(); err != nil {
		return 0, 0, fmt.Errorf("llama figures: %s: %w", logPath, err)
	}
	for _, r := range p.Llama() {
		if r.Refused != "" {
			return 0, 0, fmt.Errorf("llama figures: %s: the module refused (serial line %d): %s", logPath, r.Line, r.Refused)
		}
		if !r.Done() || r.Generated == 0 {
			continue
		}
		if perToken == 0 || r.TSCPerToken < perToken {
			perToken = r.TSCPerToken
		}
		tokens = r.Generated
	}
	if perToken == 0 {
		return 0, 0, fmt.Errorf("llama figures: %s holds no llama call that generated tokens", logPath)
	}
	return perToken, tokens, nil
}

// Options configure Run. The caller holds the builder's lock.
type Options struct {
	B           *build.Builder
	ProfilesDir string         // default <root>/profiles
	Boot        profile.Booter // default profile.QEMUBootMemory(B.Memory()) (TCG, -icount)
	// KVMBoot, when set, also boots every variant under KVM for cycle
	// figures; nil skips them. The mage target passes profile.KVMBoot,
	// which refuses (and the report says why) when KVM does not work.
	KVMBoot profile.Booter
	Log     io.Writer // default os.Stdout
}

// Run builds the three variants, boots each, and returns the report. It
// fails if any module fails its checks or reports the wrong variant.
func Run(ctx context.Context, o Options) (*Report, error) {
	// The PGO variant is built from profiles/, the test model's run: with
	// a user's model the comparison would measure another workload than
	// the one profiled (and boot it under the harness's default timeout).
	if lf := o.B.Options().Llama; lf != nil {
		return nil, fmt.Errorf("bench: the llama module's model is %s, not the generated test model the profiles in profiles/ come from (unset %s)", lf.Model, build.EnvLlamaModel)
	}
	if o.Boot == nil {
		o.Boot = profile.QEMUBootMemory(o.B.Memory())
	}
	if o.Log == nil {
		o.Log = os.Stdout
	}
	b := o.B
	names, err := b.ModuleNames()
	if err != nil {
		return nil, err
	}
	src := (&profile.Pipeline{B: b, Dir: o.ProfilesDir, Boot: o.Boot, Log: o.Log}).Source()
	builds := []struct {
		name   string
		recipe recipe.Recipe
	}{{Baseline, recipe.Baseline}, {O3, recipe.O3}, {PGO, recipe.PGO}}
	rep := &Report{
		Metric:  "guest instructions per workload run (rdtsc under qemu -icount shift=0, minimum over the module's calls)",
		Light:   b.Options().Light,
		Geomean: map[string]float64{},
		KVM:     "not measured (no KVM booter given)",
	}
	kvmOK := o.KVMBoot != nil
	if slices.Contains(names, LlamaModule) {
		rep.Llama = &LlamaResult{InstructionsPerToken: map[string]uint64{}, Ratio: map[string]float64{}}
	}
	res := map[string]*ModuleResult{}
	for _, n := range names {
		res[n] = &ModuleResult{Module: n, Instructions: map[string]uint64{}, Ratio: map[string]float64{}, Hash: map[string]string{}, KVMCycles: map[string]uint64{}}
	}
	for _, v := range builds {
		rep.Variants = append(rep.Variants, v.name)
		a, err := b.Recipe(ctx, v.recipe, src)
		if err != nil {
			return nil, fmt.Errorf("bench %s: %w", v.name, err)
		}
		img := a.Image
		logPath := filepath.Join(b.Out(), "bench-"+strings.ToLower(v.name)+".log")
		fmt.Fprintf(o.Log, "bench: booting %s (%s modules, -icount)\n", b.Rel(img), v.name)
		got, err, bootErr := profile.BootModules(ctx, o.Boot, img, logPath, names, false)
		if bootErr != nil {
			return nil, fmt.Errorf("bench %s: %w", v.name, bootErr)
		}
		if err != nil {
			return nil, fmt.Errorf("bench %s: %w", v.name, err)
		}
		for _, n := range names {
			s := got[n].Summary
			if !strings.EqualFold(s.Variant, v.name) {
				return nil, fmt.Errorf("bench %s: module %s reports variant %q: the image holds the wrong build", v.name, n, s.Variant)
			}
			if s.Calls == 0 {
				return nil, fmt.Errorf("bench %s: module %s was not run", v.name, n)
			}
			res[n].Instructions[v.name] = s.CyclesMin
			res[n].Hash[v.name] = s.Hash
		}
		if rep.Llama != nil {
			per, tokens, err := LlamaPerToken(logPath)
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", v.name, err)
			}
			rep.Llama.InstructionsPerToken[v.name], rep.Llama.Tokens = per, tokens
		}
		if kvmOK {
			kvmLog := filepath.Join(b.Out(), "bench-"+strings.ToLower(v.name)+"-kvm.log")
			got, err, bootErr := profile.BootModules(ctx, o.KVMBoot, img, kvmLog, names, false)
			if errors.Is(bootErr, profile.ErrNoKVM) {
				kvmOK = false
				rep.KVM = "not measured: " + bootErr.Error()
				fmt.Fprintf(o.Log, "bench: no KVM cycle figures: %v\n", bootErr)
				continue
			}
			if bootErr != nil {
				return nil, fmt.Errorf("bench %s under KVM: %w", v.name, bootErr)
			}
			if err != nil {
				return nil, fmt.Errorf("bench %s under KVM: %w", v.name, err)
			}
			for _, n := range names {
				res[n].KVMCycles[v.name] = got[n].Summary.CyclesMin
			}
			rep.KVM = "measured: rdtsc cycles under KVM, minimum over each module's calls (noisy: real hardware)"
		}
	}
	if !kvmOK {
		for _, r := range res {
			r.KVMCycles = nil
		}
	}
	for _, n := range names {
		r := res[n]
		base := float64(r.Instructions[Baseline])
		for _, v := range rep.Variants {
			r.Ratio[v] = float64(r.Instructions[v]) / base
		}
		rep.Modules = append(rep.Modules, *r)
	}
	for _, v := range rep.Variants {
		rep.Geomean[v] = Geomean(rep.Modules, v)
	}
	if l := rep.Llama; l != nil {
		l.ratios(rep.Variants)
	}
	return rep, nil
}

// ratios fills Ratio and PGOGain from InstructionsPerToken.
func (l *LlamaResult) ratios(variants []string) {
	base := float64(l.InstructionsPerToken[Baseline])
	for _, v := range variants {
		l.Ratio[v] = float64(l.InstructionsPerToken[v]) / base
	}
	l.PGOGain = 1 - l.Ratio[PGO]
}

// Geomean is the geometric mean of the modules' ratios for variant v.
func Geomean(mods []ModuleResult, v string) float64 {
	if len(mods) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, m := range mods {
		sum += math.Log(m.Ratio[v])
	}
	return math.Exp(sum / float64(len(mods)))
}

// WriteTable prints the report as a table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "module\t"
	for _, v := range r.Variants {
		head += v + " instr\t"
	}
	for _, v := range r.Variants[1:] {
		head += v + "/base\t"
	}
	kvm := len(r.Modules) > 0 && len(r.Modules[0].KVMCycles) > 0
	if kvm {
		for _, v := range r.Variants {
			head += v + " KVM cycles\t"
		}
	}
	fmt.Fprintln(tw, head)
	for _, m := range r.Modules {
		line := m.Module + "\t"
		for _, v := range r.Variants {
			line += fmt.Sprintf("%d\t", m.Instructions[v])
		}
		for _, v := range r.Variants[1:] {
			line += fmt.Sprintf("%.3f\t", m.Ratio[v])
		}
		if kvm {
			for _, v := range r.Variants {
				line += fmt.Sprintf("%d\t", m.KVMCycles[v])
			}
		}
		fmt.Fprintln(tw, line)
	}
	line := "geomean\t"
	for range r.Variants {
		line += "\t"
	}
	for _, v := range r.Variants[1:] {
		line += fmt.Sprintf("%.3f\t", r.Geomean[v])
	}
	fmt.Fprintln(tw, line)
	if err := tw.Flush(); err != nil {
		return err
	}
	if l := r.Llama; l != nil {
		line := fmt.Sprintf("llama guest instructions per token (%d tokens per call, minimum over calls):", l.Tokens)
		for i, v := range r.Variants {
			line += fmt.Sprintf(" %s %d", v, l.InstructionsPerToken[v])
			if i > 0 {
				line += fmt.Sprintf(" (%.3f)", l.Ratio[v])
			}
			if i < len(r.Variants)-1 {
				line += ","
			}
		}
		fmt.Fprintf(w, "%s; PGO gain %+.1f%%\n", line, l.PGOGain*100)
	}
	fmt.Fprintf(w, "metric: %s\n", r.Metric)
	fmt.Fprintf(w, "KVM: %s\n", r.KVM)
	for _, v := range r.Variants[1:] {
		fmt.Fprintf(w, "%s: %+.1f%% guest instructions vs baseline (geometric mean)\n", v, (r.Geomean[v]-1)*100)
	}
	return nil
}

// Verdict checks the goals: PGO at least 10% fewer instructions than the
// baseline in geometric mean, better than -O3, and no module worse than
// baseline. It returns one line per goal (met or not).
func (r *Report) Verdict() []string {
	var out []string
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	g := r.Geomean[PGO]
	out = append(out, fmt.Sprintf("goal PGO geomean <= 0.900 of baseline: %.3f, %s", g, mark(g <= 0.9)))
	out = append(out, fmt.Sprintf("goal PGO beats O3 in geomean: %.3f vs %.3f, %s", g, r.Geomean[O3], mark(g < r.Geomean[O3])))
	var worse []string
	for _, m := range r.Modules {
		if m.Ratio[PGO] > 1 {
			worse = append(worse, fmt.Sprintf("%s (%.3f)", m.Module, m.Ratio[PGO]))
		}
	}
	sort.Strings(worse)
	if len(worse) == 0 {
		out = append(out, "goal no module worse than baseline under PGO: met")
	} else {
		out = append(out, "goal no module worse than baseline under PGO: NOT met: "+strings.Join(worse, ", "))
	}
	return out
}

// WriteFiles writes bench.json and bench.svg into dir (each atomically).
func (r *Report) WriteFiles(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bench report: %w", err)
	}
	if err := atomicfile.WriteFile0644(filepath.Join(dir, JSONFile), append(data, '\n')); err != nil {
		return err
	}
	return atomicfile.WriteFile0644(filepath.Join(dir, SVGFile), []byte(r.SVG()))
}
