package profile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Source is the committed profiles as the build's profile source.
func (p *Pipeline) Source() build.ProfileSource {
	p.defaults()
	return committed.Dir{Root: p.B.Root(), Path: p.Dir}
}

// Capture builds the instrumented recipe's image, boots it with the normal
// kernel under deterministic QEMU and returns what every module sent, the
// serial log's path and the profile runtime archive the modules linked.
func (p *Pipeline) Capture(ctx context.Context) (map[string]*Module, string, string, error) {
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
	img := a.Image
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
		Dir: p.Dir, RawDir: p.work("raw"), B: p.B,
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
