package build

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/manifest"
)

// copyTree copies the build's inputs (boot/ kernel/ modules/, the Go
// sources of in-process steps, go.mod) into a fresh root.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	for _, d := range []string{"boot", "toolchain", "kernel", "modules", "internal/image", "internal/layout", "internal/modfmt"} {
		err := filepath.WalkDir(filepath.Join(from, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(from, p)
			if e.IsDir() {
				if e.Name() == "testdata" {
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(to, rel), 0o755)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(to, rel), data, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(from, "go.mod"))
	os.WriteFile(filepath.Join(to, "go.mod"), data, 0o644)
}

// TestManifestDescribesTheBuild builds a copy of the tree, checks the
// manifest against the files it names (inputs and outputs), then changes one
// byte of one kernel source and checks that the manifest now records that
// input's and the kernel's new hashes — and nothing else among the inputs.
func TestManifestDescribesTheBuild(t *testing.T) {
	repo, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	copyTree(t, repo, root)
	build := func() *manifest.Manifest {
		b, err := New(Options{Root: root, Log: io.Discard, Version: "test", Commit: "test", SourceDateEpoch: 1})
		if err != nil {
			t.Fatal(err)
		}
		a, err := b.All(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Read(a.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if bad := manifest.Verify(m, root); len(bad) != 0 {
			t.Fatalf("manifest does not match the files it describes: %v", bad)
		}
		return m
	}
	before := build()
	if len(before.Inputs) < 50 || len(before.Outputs) < 10 || len(before.Toolchain) < 4 {
		t.Fatalf("manifest too thin: %d inputs, %d outputs, %d tools", len(before.Inputs), len(before.Outputs), len(before.Toolchain))
	}

	src := filepath.Join(root, "kernel", "core", "main.c")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "kernel_main:")
	if i < 0 {
		t.Fatal("kernel/core/main.c lost its header comment")
	}
	data[i] = 'K' // one byte of a comment: the code does not change
	os.WriteFile(src, data, 0o644)
	after := build()

	hashes := func(l []manifest.FileHash) map[string]string {
		m := map[string]string{}
		for _, f := range l {
			m[f.Path] = f.SHA256
		}
		return m
	}
	bi, ai := hashes(before.Inputs), hashes(after.Inputs)
	for p, h := range bi {
		if changed := ai[p] != h; changed != (p == "kernel/core/main.c") {
			t.Errorf("input %s: changed=%v", p, changed)
		}
	}
	t.Logf("kernel.elf before %s after %s", hashes(before.Outputs)["build/kernel.elf"], hashes(after.Outputs)["build/kernel.elf"])
}
