// Package buildtest gives tests real build artifacts: it builds into the
// repository's build/ directory under the build lock (so parallel test
// packages share one cache and never race) and fails the test with the
// build's own message when something does not compile.
package buildtest

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// Builder returns a Builder for the repository the test runs in. Steps are
// logged through t.Logf.
func Builder(t testing.TB) *build.Builder {
	t.Helper()
	return New(t, build.OptionsFromEnv())
}

// New returns a Builder for opt, logging through t.Logf unless opt.Log is
// set, and fails the test when it cannot be set up.
func New(t testing.TB, opt build.Options) *build.Builder {
	t.Helper()
	if opt.Log == nil {
		opt.Log = testutil.LogWriter(t)
	}
	b, err := build.New(opt)
	if err != nil {
		t.Fatalf("set up the build: %v", err)
	}
	return b
}

// Lock takes b's build lock, failing the test when it cannot, and returns
// the unlock function.
func Lock(t testing.TB, b *build.Builder) (unlock func()) {
	t.Helper()
	unlock, err := b.Lock()
	if err != nil {
		t.Fatalf("lock build dir: %v", err)
	}
	return unlock
}

// Locked runs fn with the build lock held and fails the test on error.
func Locked[T any](t testing.TB, b *build.Builder, what string, fn func() (T, error)) T {
	t.Helper()
	defer Lock(t, b)()
	v, err := fn()
	if err != nil {
		t.Fatalf("build %s: %v", what, err)
	}
	return v
}

// All builds the default artifacts (boot stages, kernel, modules, fluid.img).
func All(t testing.TB) *build.Artifacts {
	t.Helper()
	b := Builder(t)
	return Locked(t, b, "default image", func() (*build.Artifacts, error) { return b.All(t.Context()) })
}

// Kernel builds one kernel variant and returns its ELF path.
func Kernel(t testing.TB, b *build.Builder, v build.KernelVariant) string {
	t.Helper()
	return Locked(t, b, "kernel "+v.Name, func() (string, error) { return b.Kernel(t.Context(), v) })
}

// Image builds an image and returns its path.
func Image(t testing.TB, b *build.Builder, s build.ImageSpec) string {
	t.Helper()
	return Locked(t, b, "image "+s.Name, func() (string, error) { return b.Image(t.Context(), s) })
}

// WantRefusesUsersModel calls run with a Builder whose llama model is a
// user's file (FLUID_LLAMA_MODEL) over an empty root, and fails t unless
// run refuses it naming the knob and the file before building anything:
// the targets whose output must come from the generated test model.
func WantRefusesUsersModel(t *testing.T, what string, run func(*build.Builder) error) {
	t.Helper()
	root := t.TempDir()
	const model = "/models/tinyllama.gguf"
	b := New(t, build.Options{Root: root, Toolchain: &toolchain.Toolchain{}, Log: io.Discard,
		Llama: &build.LlamaFiles{Model: model}})
	err := run(b)
	if err == nil || !strings.Contains(err.Error(), build.EnvLlamaModel) || !strings.Contains(err.Error(), model) {
		t.Errorf("%s with a user's model: %v", what, err)
	}
	if _, err := os.Stat(filepath.Join(root, "build")); err == nil {
		t.Errorf("%s built something before refusing", what)
	}
}
