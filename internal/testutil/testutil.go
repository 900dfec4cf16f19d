// Package testutil holds the helpers every test package shares: a writer
// into the test log, skips for missing tools and -short, and the command
// that reruns a failed test. It imports nothing of the project but
// internal/fileutil. (Build artifacts: internal/build/buildtest; QEMU boots:
// internal/qemu/qemutest.)
package testutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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

// Root is the repository root above the test's package directory (see
// fileutil.FindRoot), failing the test when there is none.
func Root(t testing.TB) string {
	t.Helper()
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// WantErr checks err for a table test's case: with want "" err must be
// nil, otherwise an error whose text holds want. It returns whether an
// error was wanted, so the case can stop there:
//
//	if testutil.WantErr(t, err, tt.wantErr) {
//		return
//	}
func WantErr(t testing.TB, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
	return true
}

// WantErrIs checks an error that must happen: without one the test stops
// (accepted names what was wrongly taken, e.g. "a bad log"); err must wrap
// target (errors.Is) and its text must hold each of wants.
func WantErrIs(t testing.TB, err, target error, accepted string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s was accepted; want an error wrapping %q", accepted, target)
	}
	if !errors.Is(err, target) {
		t.Errorf("error does not wrap %q: %v", target, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// WriteFile writes body to path (creating its directory) with mode 0644 and
// returns path, failing the test on any error.
func WriteFile(t testing.TB, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteFiles writes each files[name] to root/name with WriteFile (name is
// slash-separated).
func WriteFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		WriteFile(t, filepath.Join(root, filepath.FromSlash(name)), body)
	}
}

// TempTree is a new t.TempDir() holding files (as WriteFiles writes them).
func TempTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	WriteFiles(t, root, files)
	return root
}

// DirNames is the sorted list of the names in dir, failing the test when
// dir cannot be read.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// FlipMiddleByte inverts the byte in the middle of the file at path in
// place: same size, same inode, so only its content (its hash) tells.
func FlipMiddleByte(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		t.Fatalf("FlipMiddleByte: %s: %v, %d bytes", path, err, len(data))
	}
	mid := len(data) / 2
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte{data[mid] ^ 0xff}, int64(mid))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}
