package profile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// RefreshCommand is the command that recaptures profiles/.
const RefreshCommand = "go tool mage profile"

// Pipeline runs the profile and PGO steps over a Builder. The caller holds
// the builder's lock.
type Pipeline struct {
	B    *build.Builder
	Dir  string    // profiles directory; default <root>/profiles
	Boot Booter    // default QEMUBoot
	Log  io.Writer // progress lines; default os.Stdout
}

func (p *Pipeline) defaults() {
	if p.Dir == "" {
		p.Dir = filepath.Join(p.B.Root(), "profiles")
	}
	if p.Boot == nil {
		p.Boot = QEMUBoot
	}
	if p.Log == nil {
		p.Log = os.Stdout
	}
}

func (p *Pipeline) work(parts ...string) string {
	return filepath.Join(append([]string{p.B.Out(), "profile"}, parts...)...)
}

// InstrumentedVariant is the module build that records a profile: the
// optimized build's flags plus InstrumentFlags, linked with the module
// profile runtime and compiler-rt's profile archive.
func (p *Pipeline) InstrumentedVariant(ctx context.Context) (build.ModuleVariant, string, error) {
	p.defaults()
	tc := p.B.Toolchain()
	archive, err := RuntimeArchive(ctx, tc)
	if err != nil {
		return build.ModuleVariant{}, "", err
	}
	v := build.ModuleVariant{Name: "instrumented", Tag: "instrumented", CFlags: InstrumentFlags()}
	obj, err := CompileRuntime(ctx, tc, p.B.Root(), p.B.ModuleCFlags(v, ""), p.work("rt"))
	if err != nil {
		return v, "", err
	}
	v.LinkInputs = []string{obj, archive}
	return v, archive, nil
}

// Capture builds the instrumented modules, boots them with the normal
// kernel under deterministic QEMU and returns what every module sent, plus
// the serial log's path.
func (p *Pipeline) Capture(ctx context.Context) (map[string]*Module, string, string, error) {
	p.defaults()
	names, err := p.B.ModuleNames()
	if err != nil {
		return nil, "", "", err
	}
	v, archive, err := p.InstrumentedVariant(ctx)
	if err != nil {
		return nil, "", "", err
	}
	mods, err := p.B.Modules(v)
	if err != nil {
		return nil, "", "", fmt.Errorf("build instrumented modules: %w", err)
	}
	kernel, err := p.B.Kernel(build.KernelNormal)
	if err != nil {
		return nil, "", "", err
	}
	img, err := p.B.Image(build.ImageSpec{Name: "fluid-instrumented.img", Kernel: kernel, Modules: mods})
	if err != nil {
		return nil, "", "", err
	}
	logPath := p.work("serial.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, "", "", err
	}
	fmt.Fprintf(p.Log, "profile: booting %s (instrumented modules, -icount)\n", p.B.Rel(img))
	got, err, bootErr := BootModules(ctx, p.Boot, img, logPath, names, true)
	if err != nil {
		if bootErr != nil {
			return nil, "", "", fmt.Errorf("%w\n(the boot also failed: %v)", err, bootErr)
		}
		return nil, "", "", err
	}
	if bootErr != nil {
		return nil, "", "", fmt.Errorf("profile run: %w", bootErr)
	}
	return got, logPath, archive, nil
}

// ReadLog parses a serial log file and collects the frames of the given
// modules.
func ReadLog(path string, modules []string, needProfraw bool) (map[string]*Module, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read serial log: %w", err)
	}
	defer f.Close()
	c, err := serial.ParseLog(f)
	return collectLog(path, c, err, modules, needProfraw)
}

// collectLog collects the modules from the capture of the serial log at
// path, given the capture's own error.
func collectLog(path string, c *serial.Capture, err error, modules []string, needProfraw bool) (map[string]*Module, error) {
	if err != nil {
		return nil, fmt.Errorf("serial log %s: %w", path, err)
	}
	mods, err := Collect(c, modules, needProfraw)
	if err != nil {
		return nil, fmt.Errorf("serial log %s: %w", path, err)
	}
	return mods, nil
}

// Profile is the `profile` target: capture, convert, and replace profiles/
// only when every module succeeded.
func (p *Pipeline) Profile(ctx context.Context) error {
	p.defaults()
	mods, logPath, archive, err := p.Capture(ctx)
	if err != nil {
		return fmt.Errorf("%w\nprofiles/ was left unchanged", err)
	}
	info, err := ToolchainInfoOf(p.B.Toolchain(), archive)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sources, err := SourceHashes(p.B.Root(), names)
	if err != nil {
		return err
	}
	err = Write(ctx, Output{
		Dir: p.Dir, RawDir: p.work("raw"), Profdata: p.B.Toolchain().Path("llvm-profdata"), Runner: p.B.Toolchain(),
		Toolchain: info, Sources: sources, Light: p.B.Options().Light,
	}, mods)
	if err != nil {
		return fmt.Errorf("%w\nprofiles/ was left unchanged (serial log: %s)", err, logPath)
	}
	sort.Strings(names)
	fmt.Fprintf(p.Log, "profile: wrote %s: %s\n", p.B.Rel(p.Dir), strings.Join(names, ", "))
	return nil
}

// ToolchainInfoOf fingerprints the tools a profile depends on.
func ToolchainInfoOf(tc *toolchain.Toolchain, archive string) (ToolchainInfo, error) {
	id, err := tc.Identity()
	if err != nil {
		return ToolchainInfo{}, err
	}
	info := ToolchainInfo{LLVMMajor: id.LLVMMajor, ProfileRuntime: filepath.Base(archive),
		Toolchain: id.Mode, ToolchainLock: id.LockSHA256, LLVMVersion: id.LLVMVersion}
	for _, t := range id.Tools {
		switch t.Name {
		case "clang":
			info.Clang, info.ClangSHA256 = t.Version, t.SHA256
		case "llvm-profdata":
			info.LLVMProfdata, info.LLVMProfdataSHA = t.Version, t.SHA256
		}
	}
	if tc.Rootfs != nil {
		// From the rootfs's file record, checked when the build started.
		sum, err := tc.Rootfs.FileSHA256(archive)
		if err != nil {
			return info, fmt.Errorf("fingerprint %s: %w", archive, err)
		}
		info.ProfileRuntimeSHA = sum
		return info, nil
	}
	hp := tc.InputPath(archive)
	if hp == "" {
		return info, nil // inside the image, identified by its digest (the lock)
	}
	data, err := os.ReadFile(hp)
	if err != nil {
		return info, fmt.Errorf("fingerprint %s: %w", archive, err)
	}
	sum := sha256.Sum256(data)
	info.ProfileRuntimeSHA = hex.EncodeToString(sum[:])
	return info, nil
}

// SourceHashes returns, per module, the SHA-256 over the files its build
// reads: modules/<m>/*.{c,h}, modules/lib/*.{c,h} and modules/include/*.h
// (relative path and content of each, in sorted order).
func SourceHashes(root string, modules []string) (map[string]string, error) {
	shared, err := globAll(root, "modules/lib/*.c", "modules/lib/*.h", "modules/include/*.h")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range modules {
		own, err := globAll(root, "modules/"+m+"/*.c", "modules/"+m+"/*.h")
		if err != nil {
			return nil, err
		}
		if len(own) == 0 {
			return nil, fmt.Errorf("module %s: no sources in modules/%s", m, m)
		}
		files := append(own, shared...)
		sort.Strings(files)
		h := sha256.New()
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				return nil, fmt.Errorf("module %s: %w", m, err)
			}
			fmt.Fprintf(h, "%s %d\n", f, len(data))
			h.Write(data)
		}
		out[m] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

func globAll(root string, patterns ...string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(root, p))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				return nil, err
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	return out, nil
}

// StaleError lists modules whose committed profile does not fit the
// current sources.
type StaleError struct {
	Modules []string // sorted
	Why     map[string]string
}

func (e *StaleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stale profiles for %d module(s):", len(e.Modules))
	for _, m := range e.Modules {
		fmt.Fprintf(&b, "\n  %s: %s", m, e.Why[m])
	}
	fmt.Fprintf(&b, "\nrefresh them with `%s` (then commit profiles/)", RefreshCommand)
	return b.String()
}

// CheckFresh compares profiles/summary.json with the current module
// sources; it returns a *StaleError naming every module whose profile is
// missing or was captured from other sources. (A LIGHT=1 capture is not
// stale for a full build: LIGHT only changes how much work the modules do
// at run time; if a module's code depends on it, clang's
// -Werror=profile-instr-out-of-date catches the mismatch.)
func CheckFresh(doc *SummaryDoc, root string, modules []string) error {
	cur, err := SourceHashes(root, modules)
	if err != nil {
		return err
	}
	rec := map[string]ModuleRecord{}
	for _, r := range doc.Modules {
		rec[r.Module] = r
	}
	se := &StaleError{Why: map[string]string{}}
	for _, m := range modules {
		r, ok := rec[m]
		switch {
		case !ok:
			se.Why[m] = "no profile in profiles/ (a new module?)"
		case r.SourceSHA256 != cur[m]:
			se.Why[m] = fmt.Sprintf("modules/%s changed since its profile was captured", m)
		default:
			continue
		}
		se.Modules = append(se.Modules, m)
	}
	if len(se.Modules) > 0 {
		sort.Strings(se.Modules)
		return se
	}
	return nil
}

// PGOVariant checks that profiles/ fits the current sources, converts each
// module's text profile into an indexed profile under build/profile/indexed
// and returns the PGO module variant that uses them.
func (p *Pipeline) PGOVariant(ctx context.Context) (build.ModuleVariant, error) {
	p.defaults()
	names, err := p.B.ModuleNames()
	if err != nil {
		return build.ModuleVariant{}, err
	}
	doc, err := ReadSummary(p.Dir)
	if err != nil {
		return build.ModuleVariant{}, err
	}
	if err := CheckFresh(doc, p.B.Root(), names); err != nil {
		return build.ModuleVariant{}, err
	}
	indexed := map[string]string{}
	dir := p.work("indexed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return build.ModuleVariant{}, err
	}
	for _, m := range names {
		text := filepath.Join(p.Dir, m+TextExt)
		out := filepath.Join(dir, m+".profdata")
		// A cached build step: a no-op build does not re-index.
		argv := []string{p.B.Toolchain().Path("llvm-profdata"), "merge", "-o", out, text}
		if _, err := p.B.Step("PROF", p.B.Rel(out), argv, []string{text}, []string{out}); err != nil {
			return build.ModuleVariant{}, fmt.Errorf("module %s: llvm-profdata cannot index %s: %v (recapture with `%s`)", m, text, err, RefreshCommand)
		}
		indexed[m] = out
	}
	return build.ModuleVariant{
		Name: "pgo", Tag: "PGO",
		PerModuleCFlags: func(m string) []string { return UseFlags(indexed[m]) },
		Inputs:          func(m string) []string { return []string{indexed[m]} },
	}, nil
}

// PGOModules builds the PGO modules from profiles/. A profile clang
// rejects (out of date, missing, unprofiled) is reported by module with
// the refresh command.
func (p *Pipeline) PGOModules(ctx context.Context) ([]build.Module, error) {
	v, err := p.PGOVariant(ctx)
	if err != nil {
		return nil, err
	}
	mods, err := p.B.Modules(v)
	if err != nil {
		if strings.Contains(err.Error(), "profile-instr-") || strings.Contains(err.Error(), "profile data") {
			return nil, fmt.Errorf("%w\nthe committed profile no longer matches the module's code: refresh it with `%s`", err, RefreshCommand)
		}
		return nil, err
	}
	return mods, nil
}

// pgoMarker, inside the build directory, records that `mage pgo` put the
// PGO modules into build/fluid.img, so that later default builds (`mage
// build`, `mage qemu`) keep them instead of going back to the baseline.
const pgoMarker = "profile/use-pgo"

// SelectPGO records that the default image should carry the PGO modules.
func (p *Pipeline) SelectPGO() error {
	path := filepath.Join(p.B.Out(), pgoMarker)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile0644(path, []byte("pgo modules selected by `go tool mage pgo`; delete this file (or `go tool mage clean`) to go back to the baseline modules\n"))
}

// DefaultModules is the module set of the default image: the PGO modules
// once `mage pgo` selected them, else nil (the baseline modules, as
// build.AllWith(nil) builds them). When the profiles no longer fit the
// sources it says so on p.Log and falls back to the baseline, so editing a
// module never blocks booting it.
func (p *Pipeline) DefaultModules(ctx context.Context) ([]build.Module, error) {
	p.defaults()
	if _, err := os.Stat(filepath.Join(p.B.Out(), pgoMarker)); err != nil {
		return nil, nil
	}
	mods, err := p.PGOModules(ctx)
	var se *StaleError
	if errors.As(err, &se) {
		fmt.Fprintf(p.Log, "modules: using the baseline modules, not PGO: %v\n", err)
		return nil, nil
	}
	return mods, err
}

// ReleaseImages builds the two images a release ships: the baseline image
// (build/fluid-baseline.img, -O2 modules, build/manifest-baseline.json) and
// the PGO image (build/fluid-pgo.img, modules rebuilt from the committed
// profiles, build/manifest-pgo.json). A stale profile is an error naming the
// module: a release never ships a PGO image from profiles of other code.
func (p *Pipeline) ReleaseImages(ctx context.Context) (baseline, pgo *build.Artifacts, err error) {
	p.defaults()
	if baseline, err = p.B.Compose("fluid-baseline.img", "manifest-baseline.json", nil); err != nil {
		return nil, nil, fmt.Errorf("baseline image: %w", err)
	}
	mods, err := p.PGOModules(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("PGO image: %w", err)
	}
	if pgo, err = p.B.Compose("fluid-pgo.img", "manifest-pgo.json", mods); err != nil {
		return nil, nil, fmt.Errorf("PGO image: %w", err)
	}
	return baseline, pgo, nil
}
