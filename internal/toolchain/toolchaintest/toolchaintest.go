// Package toolchaintest gives tests the toolchain every build uses (the
// locked rootfs through bubblewrap by default) and a way to run its tools
// on files in temp directories.
package toolchaintest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluid-os/fluid/internal/toolchain"
)

// Root is the repository root above the working directory.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, toolchain.DefinitionFile)); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			tb.Fatalf("no Fluid OS tree above %s", dir)
		}
	}
}

// Find returns the tree's toolchain (FLUID_TOOLCHAIN picks the mode, as
// for builds), with the system temp directory visible to its steps at the
// same path so tests can compile into t.TempDir(). A missing toolchain
// fails the test with the paragraph that says how to get it: `go tool
// mage deps` provides it, so its absence is a broken setup, not a skip.
func Find(tb testing.TB) *toolchain.Toolchain {
	tb.Helper()
	tc, err := toolchain.FindIn(Root(tb))
	if err != nil {
		tb.Fatalf("toolchain: %v", err)
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return tc.WithMount(tmp)
}

// Run runs a toolchain tool (argv[0] is tc.Path(name) or a name of the
// toolchain) in dir and returns its combined output.
func Run(tc *toolchain.Toolchain, dir string, argv ...string) ([]byte, error) {
	if p := tc.Path(argv[0]); p != "" {
		argv = append([]string{p}, argv[1:]...)
	}
	if dir == "" {
		dir = tc.Root()
	}
	cmd, err := tc.CommandIn(context.Background(), dir, argv, append(os.Environ(), "LC_ALL=C"))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w\n%s", argv[0], err, out.String())
	}
	return out.Bytes(), nil
}
