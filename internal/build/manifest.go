package build

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// ManifestTools are the tools whose identity a manifest records: the ones
// whose output reaches an artifact.
var ManifestTools = []string{"clang", "ld.lld", "llvm-profdata", "llvm-objcopy", "nasm"}

// inputDirs hold every source file that can reach an artifact.
var inputDirs = []string{"boot", "kernel", "modules"}

// InputFiles lists the repository files a build reads, repo-relative and
// sorted: boot/, kernel/, modules/ and the Go code of the in-process steps.
func (b *Builder) InputFiles() ([]string, error) {
	var files []string
	for _, d := range inputDirs {
		err := filepath.WalkDir(b.abs(d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if strings.HasPrefix(e.Name(), ".") && p != b.abs(d) {
					return filepath.SkipDir
				}
				return nil
			}
			if e.Type().IsRegular() {
				files = append(files, b.rel(p))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list inputs under %s: %w", d, err)
		}
	}
	files = append(files, b.goSources("image", "layout", "modfmt", "gguf", "llama", "llama/testmodel", "llama/llamarun")...)
	sort.Strings(files)
	return files, nil
}

// toolIdentity returns the manifest's view of the toolchain.
func toolIdentity(tc *toolchain.Toolchain) (map[string]manifest.Tool, error) {
	id, err := tc.Identity()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range ManifestTools {
		want[n] = true
	}
	out := map[string]manifest.Tool{}
	for _, t := range id.Tools {
		if want[t.Name] {
			out[t.Name] = manifest.Tool{Name: t.Name, Version: t.Version, SHA256: t.SHA256}
		}
	}
	return out, nil
}

// environment is the manifest's record of where the steps ran.
func environment(tc *toolchain.Toolchain) manifest.Environment {
	// The bubblewrap rootfs and the OCI image are the same bytes, so their
	// builds are identical, manifest included: both are "locked".
	e := manifest.Environment{Mode: toolchain.ModeHost}
	if l := tc.Lock; l != nil && tc.Mode != toolchain.ModeHost {
		e.Mode = manifest.ModeLocked
		e.LockSHA256, e.LLVMVersion, e.RootfsSHA256, e.Image = l.LockSHA256, l.Lock.LLVMVersion, l.Lock.Rootfs.SHA256, l.Lock.OCI.Ref()
	}
	return e
}

// outputName is how the manifest names an artifact: "build/<path under Out>",
// the same whichever directory the build wrote to.
func (b *Builder) outputName(p string) string {
	r, err := filepath.Rel(b.out, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return b.rel(p)
	}
	return "build/" + filepath.ToSlash(r)
}

// Manifest describes a build of the given artifacts and writes it to
// Out/<name> (only when its bytes changed). profiles are repo-relative
// profile files the modules were built from (nil for a baseline build).
func (b *Builder) Manifest(name, variant string, outputs []string, profiles []string) (string, error) {
	inputs, err := b.InputFiles()
	if err != nil {
		return "", err
	}
	m := &manifest.Manifest{
		Project: "fluid-os", Version: b.opt.Version, Commit: b.opt.Commit,
		SourceDateEpoch: b.opt.SourceDateEpoch, Variant: variant, QEMUMemory: b.Memory(),
	}
	if m.Toolchain, err = toolIdentity(b.tc); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	m.Environment = environment(b.tc)
	if m.Inputs, err = manifest.HashFiles(b.root, inputs); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	if m.Profiles, err = manifest.HashFiles(b.root, profiles); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	for _, o := range outputs {
		sum, err := b.hash.sum(o)
		if err != nil {
			return "", fmt.Errorf("manifest: hash %s: %w", o, err)
		}
		m.Outputs = append(m.Outputs, manifest.FileHash{Path: b.outputName(o), SHA256: sum})
	}
	data, err := m.Marshal()
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.out, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return path, nil
	}
	fmt.Fprintf(b.log, "%-5s %s\n", "MANI", b.rel(path))
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	b.hash.forget(path)
	return path, nil
}
