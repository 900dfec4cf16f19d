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

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/profile/committed"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// RefreshCommand is the command that recaptures profiles/.
const RefreshCommand = recipe.RefreshCommand

// Pipeline captures profiles/ over a Builder (the PGO build itself is the
// build's pgo recipe, fed by Source). The caller holds the builder's lock.
type Pipeline struct {
	B    *build.Builder
	Dir  string    // profiles directory; default <root>/profiles
	Boot Booter    // default QEMUBootMemory(B.Memory())
	Log  io.Writer // progress lines; default os.Stdout
}

func (p *Pipeline) defaults() {
	if p.Dir == "" {
		p.Dir = filepath.Join(p.B.Root(), "profiles")
	}
	if p.Boot == nil {
		p.Boot = QEMUBootMemory(p.B.Memory())
	}
	if p.Log == nil {
		p.Log = os.Stdout
	}
}

func (p *Pipeline) work(parts ...string) string {
	return filepath.Join(append([]string{p.B.Out(), "profile"}, parts...)...)
}

// Source is the committed profiles as the build's profile source.
func (p *Pipeline) Source() build.ProfileSource {
	p.defaults()
	return committed.Dir{Root: p.B.Root(), Path: p.Dir}
}

// Capture builds the instrumented recipe's image, boots it with the normal
// kernel under deterministic QEMU and returns what every module sent
// (checked against the builds the image holds), the serial log's path and
// the profile runtime archive the modules linked. A run that ended in a
// module failure (exit 41) because modules crashed, timed out or failed
// their checks is a capture: those modules are Unfinished. Any other boot
// failure, and any frame that is missing, corrupt or another module's, is
// an error.
func (p *Pipeline) Capture(ctx context.Context) (*Collected, string, string, error) {
	p.defaults()
	names, err := p.B.ModuleNames()
	if err != nil {
		return nil, "", "", err
	}
	archive, err := p.B.ProfileRuntimeArchive(ctx)
	if err != nil {
		return nil, "", "", err
	}
	a, err := p.B.Recipe(ctx, recipe.Instrumented, nil)
	if err != nil {
		return nil, "", "", err
	}
	builds, err := BuildsOf(a.Modules)
	if err != nil {
		return nil, "", "", fmt.Errorf("read the instrumented modules' builds: %w", err)
	}
	img := a.Image
	logPath := p.work("serial.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, "", "", err
	}
	fmt.Fprintf(p.Log, "profile: booting %s (instrumented modules, -icount)\n", p.B.Rel(img))
	var sp serial.Parser
	bootErr := p.Boot(ctx, img, logPath, sp.Line)
	c, cerr := sp.Capture()
	var col *Collected
	if cerr == nil {
		col, cerr = CollectWant(c, Want{Modules: names, NeedProfraw: true, Builds: builds, Runs: sp.Modules()})
	}
	if cerr != nil {
		cerr = fmt.Errorf("serial log %s: %w", logPath, cerr)
		if bootErr != nil {
			return nil, "", "", fmt.Errorf("%w\n(the boot also failed: %v)", cerr, bootErr)
		}
		return nil, "", "", cerr
	}
	if bootErr != nil && !(len(col.Unfinished) > 0 && sp.FailClass() == serial.ClassModule) {
		return nil, "", "", fmt.Errorf("profile run: %w", bootErr)
	}
	return col, logPath, archive, nil
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

// ErrUnfinished is wrapped by Profile's error when some modules crashed,
// timed out or failed in the capture run: profiles/ was written for the
// others, and summary.json records why these have none.
var ErrUnfinished = errors.New("modules got no profile")

// Profile is the `profile` target: capture, convert, and replace profiles/
// as a whole. When every module passed, profiles/ holds all of them. When
// some crashed, timed out or failed, profiles/ holds the exact profiles of
// the others, summary.json names the rest with why, and the error (wrapping
// ErrUnfinished) names them too: the target fails. A refused capture
// leaves profiles/ unchanged.
func (p *Pipeline) Profile(ctx context.Context) error {
	p.defaults()
	if lf := p.B.Options().Llama; lf != nil {
		return fmt.Errorf("profile: the llama module's model is %s, not the generated test model: profiles/ records the test model's run, the one every image and a release check (unset %s)\nprofiles/ was left unchanged", lf.Model, build.EnvLlamaModel)
	}
	col, logPath, archive, err := p.Capture(ctx)
	if err != nil {
		return fmt.Errorf("%w\nprofiles/ was left unchanged", err)
	}
	if len(col.Modules) == 0 {
		return fmt.Errorf("%w: no module finished its profiling run: %s\nprofiles/ was left unchanged (serial log: %s)", ErrUnfinished, unfinishedList(col.Unfinished), logPath)
	}
	info, err := ToolchainInfoOf(p.B.Toolchain(), archive)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(col.Modules)+len(col.Unfinished))
	for n := range col.Modules {
		names = append(names, n)
	}
	for _, u := range col.Unfinished {
		names = append(names, u.Module)
	}
	sources, err := SourceHashes(p.B.Root(), names)
	if err != nil {
		return err
	}
	err = Write(ctx, Output{
		Dir: p.Dir, RawDir: p.work("raw"), B: p.B,
		Toolchain: info, Sources: sources, Light: p.B.Options().Light,
		Unfinished: col.Unfinished,
	}, col.Modules)
	if err != nil {
		return fmt.Errorf("%w\nprofiles/ was left unchanged (serial log: %s)", err, logPath)
	}
	done := make([]string, 0, len(col.Modules))
	for n := range col.Modules {
		done = append(done, n)
	}
	sort.Strings(done)
	fmt.Fprintf(p.Log, "profile: wrote %s: %s\n", p.B.Rel(p.Dir), strings.Join(done, ", "))
	if len(col.Unfinished) > 0 {
		return fmt.Errorf("%w: %s; %s holds exact profiles of the other modules, and its %s says why these have none (serial log: %s); fix them and recapture with `%s`",
			ErrUnfinished, unfinishedList(col.Unfinished), p.B.Rel(p.Dir), SummaryFile, logPath, RefreshCommand)
	}
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
