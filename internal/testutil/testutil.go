// Package testutil holds the helpers every test package shares: a writer
// into the test log, skips for missing tools and -short, and the command
// that reruns a failed test. It imports nothing of the project but
// internal/fileutil. (Build artifacts: internal/build/buildtest; QEMU boots:
// internal/qemu/qemutest.)
package testutil

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/fileutil"
)

// LogWriter is an io.Writer into t's log: each Write is one t.Log entry
// (its trailing newline dropped).
func LogWriter(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// NeedTools skips t when one of the tools is not on PATH, naming it and how
// to get it.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (`go tool mage deps` installs the prerequisites); skipped", tool)
		}
	}
}

// RequireTools fails t when one of the tools is not on PATH: for the tests
// where a missing prerequisite is a broken setup, not a reason to skip.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; `go tool mage deps` installs the prerequisites", tool)
		}
	}
}

// Long skips t under -short, saying why it is long (e.g. "boots QEMU").
func Long(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s; skipped with -short", why)
	}
}

// RerunCommand is the command that runs t alone: `go test -run '^TestX$'
// ./pkg` (a subtest adds `/^name$`), from the repository root.
func RerunCommand(t testing.TB) string {
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	pkg := "."
	if wd, err := os.Getwd(); err == nil {
		if root, err := fileutil.FindRoot(wd); err == nil {
			if rel, err := filepath.Rel(root, wd); err == nil {
				pkg = "./" + filepath.ToSlash(rel)
			}
		}
	}
	return fmt.Sprintf("go test -count=1 -run '%s' %s", strings.Join(parts, "/"), pkg)
}

// RerunOnFailure logs RerunCommand at the end of t if it failed.
func RerunOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rerun this test alone: %s", RerunCommand(t))
		}
	})
}

// CopyFile copies src to dst (creating dst's directory) with src's
// permissions plus owner write, failing the test on any error.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm()|0o200)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
