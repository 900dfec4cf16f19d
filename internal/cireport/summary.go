// Package cireport renders what a CI run found — step outcomes, each boot's
// end line and per-module results, the bench table — as Markdown for the job
// summary ($GITHUB_STEP_SUMMARY), the pull-request comment and the
// profile-refresh pull request (bot.go), which it posts through
// internal/github's client. cmd/fluid-ci is its command line; the workflows
// call it.
package cireport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/bench"
	"github.com/fluid-os/fluid/internal/serial"
)

// Step is the outcome of one workflow step: success, failure, cancelled or
// skipped (GitHub's steps.<id>.outcome).
type Step struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
}

// Boot is what one serial log says: its end line and the modules that
// reported a summary frame.
type Boot struct {
	Log     string           `json:"log"`
	End     string           `json:"end"` // the FLUID-END line, or "" when missing
	Passed  bool             `json:"passed"`
	Modules []serial.Summary `json:"modules,omitempty"`
	// Failed names each module the loader's lines say did not pass, with
	// the kernel's reason ("nullwrite: crashed: ... at nullwrite+0x1a").
	Failed []string `json:"failed,omitempty"`
}

// Outcome is everything the summary and the comment show.
type Outcome struct {
	Steps []Step        `json:"steps"`
	Boots []Boot        `json:"boots"`
	Bench *bench.Report `json:"bench,omitempty"`
}

// Passed reports whether every step succeeded and every boot passed.
func (o Outcome) Passed() bool {
	for _, s := range o.Steps {
		if s.Outcome != "success" && s.Outcome != "skipped" {
			return false
		}
	}
	for _, b := range o.Boots {
		if !b.Passed {
			return false
		}
	}
	return true
}

// Collect reads a build directory: every *.log under it is a serial log
// (its FLUID-END line and module summary frames are extracted) and
// bench.json, when present, is the bench report.
func Collect(buildDir string, steps []Step) (Outcome, error) {
	o := Outcome{Steps: steps}
	err := filepath.WalkDir(buildDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		b, err := readBoot(p)
		if err != nil {
			return err
		}
		if b != nil {
			rel, _ := filepath.Rel(buildDir, p)
			b.Log = filepath.ToSlash(rel)
			o.Boots = append(o.Boots, *b)
		}
		return nil
	})
	if err != nil {
		return o, fmt.Errorf("collect CI results from %s: %w", buildDir, err)
	}
	sort.Slice(o.Boots, func(i, j int) bool { return o.Boots[i].Log < o.Boots[j].Log })
	r, err := ReadBench(filepath.Join(buildDir, bench.JSONFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return o, err
	}
	o.Bench = r
	return o, nil
}

// readBoot extracts the end line and summary frames of a serial log; it
// returns nil for a log that is not a guest's serial output.
func readBoot(path string) (*Boot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read serial log: %w", err)
	}
	defer f.Close()
	p, err := serial.ReadLog(f)
	if err != nil {
		return nil, fmt.Errorf("read serial log %s: %w", path, err)
	}
	if !p.Guest() {
		return nil, nil
	}
	b := &Boot{End: p.EndLine(), Passed: p.Passed()}
	// A failed boot may have cut the export short: show whatever frames
	// arrived intact (Capture returns them along with its complaints).
	c, _ := p.Capture()
	b.Modules = c.Summaries()
	for _, m := range p.FailedModules() {
		b.Failed = append(b.Failed, m.Name+": "+m.Why())
	}
	return b, nil
}

// ReadBench reads a bench.json written by `mage bench`.
func ReadBench(path string) (*bench.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bench report: %w", err)
	}
	var r bench.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("bench report %s is not valid JSON: %w", path, err)
	}
	return &r, nil
}

// Markdown renders the outcome. base, when not nil, is main's bench report:
// the PGO column then gets a comparison against it.
func (o Outcome) Markdown(w io.Writer, base *bench.Report) {
	verdict := "✅ passed"
	if !o.Passed() {
		verdict = "❌ failed"
	}
	fmt.Fprintf(w, "### Fluid OS CI: %s\n\n", verdict)
	if len(o.Steps) > 0 {
		fmt.Fprintln(w, "| step | outcome |")
		fmt.Fprintln(w, "|---|---|")
		for _, s := range o.Steps {
			mark := icon(s.Outcome == "success")
			if s.Outcome == "skipped" {
				mark = "➖"
			}
			fmt.Fprintf(w, "| %s | %s %s |\n", cell(s.Name), mark, cell(s.Outcome))
		}
		fmt.Fprintln(w)
	}
	if len(o.Boots) > 0 {
		fmt.Fprintln(w, "#### Boots")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| serial log | end line | modules |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, b := range o.Boots {
			end := b.End
			if end == "" {
				end = "no " + strings.TrimSpace(serial.MarkerEnd) + " line (crashed, hung or cut short)"
			}
			fmt.Fprintf(w, "| `%s` | %s %s | %s |\n", cell(b.Log), icon(b.Passed), cell(end), cell(moduleList(b.Modules)+failedList(b.Failed)))
		}
		fmt.Fprintln(w)
	}
	if o.Bench != nil {
		writeBench(w, o.Bench, base)
	} else {
		fmt.Fprintln(w, "_No bench.json: the bench step did not run or failed._")
	}
}

// failedList is the modules that did not pass, with why, after the list.
func failedList(failed []string) string {
	if len(failed) == 0 {
		return ""
	}
	return "; did not pass: " + strings.Join(failed, "; ")
}

func moduleList(ms []serial.Summary) string {
	if len(ms) == 0 {
		return "—"
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		mark := "ok"
		if m.Result != "ok" {
			mark = "**" + m.Result + "**"
		}
		parts[i] = fmt.Sprintf("%s (%s) %s", m.Module, m.Variant, mark)
	}
	return strings.Join(parts, ", ")
}

// writeBench renders the per-module table: instructions per variant, each
// variant's ratio to baseline, the geometric means, and (with base) the PGO
// change against main.
func writeBench(w io.Writer, r *bench.Report, base *bench.Report) {
	fmt.Fprintln(w, "#### Bench")
	fmt.Fprintln(w)
	if r.Metric != "" {
		fmt.Fprintf(w, "Metric: %s%s.\n\n", r.Metric, map[bool]string{true: " (LIGHT=1)", false: ""}[r.Light])
	}
	baseMods := map[string]bench.ModuleResult{}
	if base != nil {
		for _, m := range base.Modules {
			baseMods[m.Module] = m
		}
	}
	head := "| module |"
	sep := "|---|"
	for _, v := range r.Variants {
		head += " " + v + " |"
		sep += "---:|"
	}
	for _, v := range r.Variants[min(1, len(r.Variants)):] {
		head += " " + v + "/" + r.Variants[0] + " |"
		sep += "---:|"
	}
	if base != nil {
		head += " " + bench.PGO + " vs main |"
		sep += "---:|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	for _, m := range r.Modules {
		row := "| " + cell(m.Module) + " |"
		for _, v := range r.Variants {
			row += fmt.Sprintf(" %d |", m.Instructions[v])
		}
		for _, v := range r.Variants[min(1, len(r.Variants)):] {
			row += " " + ratio(m.Ratio[v]) + " |"
		}
		if base != nil {
			row += " " + change(float64(baseMods[m.Module].Instructions[bench.PGO]), float64(m.Instructions[bench.PGO])) + " |"
		}
		fmt.Fprintln(w, row)
	}
	row := "| **geomean** |" + strings.Repeat(" |", len(r.Variants))
	for _, v := range r.Variants[min(1, len(r.Variants)):] {
		row += " **" + ratio(r.Geomean[v]) + "** |"
	}
	if base != nil {
		row += " " + change(base.Geomean[bench.PGO], r.Geomean[bench.PGO]) + " |"
	}
	fmt.Fprintln(w, row)
	fmt.Fprintln(w)
	if base == nil {
		return
	}
	var missing []string
	for _, m := range r.Modules {
		if _, ok := baseMods[m.Module]; !ok {
			missing = append(missing, m.Module)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "New since main (no comparison): %s.\n\n", strings.Join(missing, ", "))
	}
}

func ratio(f float64) string {
	if f == 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return "—"
	}
	return fmt.Sprintf("%.3f", f)
}

// change formats after relative to before as a signed percentage; fewer
// instructions (negative) is better.
func change(before, after float64) string {
	if before == 0 || math.IsNaN(before) || math.IsNaN(after) {
		return "—"
	}
	d := (after - before) / before * 100
	switch {
	case math.Abs(d) < 0.05:
		return "±0.0%"
	case d < 0:
		return fmt.Sprintf("%.1f%% 🟢", d)
	default:
		return fmt.Sprintf("+%.1f%% 🔴", d)
	}
}

func icon(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
