package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDownloadFailedInstallRestoresUserFiles: -o holds the user's
// manifest.json (a regular file) and a directory named fluid-pgo.img (the
// last file to move in). The install fails at the directory; the rollback
// must give back the user's manifest.json, leave the directory and other
// files alone, leave no staging or backup files, and say what it did.
func TestDownloadFailedInstallRestoresUserFiles(t *testing.T) {
	fx := newFixture(t, newSigner(t))
	srv := fx.serve(t)
	dest := t.TempDir()
	testutil.WriteFiles(t, dest, map[string]string{"manifest.json": "user-data", "fluid-pgo.img/inside": "dir-data", "mine.txt": "mine"})
	code, stdout, stderr := runCLI(t, srv.APIURL(), "download", "--version", "v1.0.0", "--key", fx.pubKey, "-o", dest)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if got := readString(t, filepath.Join(dest, "manifest.json")); got != "user-data" {
		t.Fatalf("the user's manifest.json now holds %q, want %q\n%s", got, "user-data", stderr)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "fluid-pgo.img")); err != nil || !fi.IsDir() {
		t.Fatalf("the user's fluid-pgo.img directory is gone or changed: %v\n%s", err, stderr)
	}
	if got := testutil.DirNames(t, filepath.Join(dest, "fluid-pgo.img")); strings.Join(got, " ") != "inside" {
		t.Fatalf("the user's directory now holds %v", got)
	}
	if got := readString(t, filepath.Join(dest, "fluid-pgo.img", "inside")); got != "dir-data" {
		t.Fatalf("the user's directory's file now holds %q", got)
	}
	if got := readString(t, filepath.Join(dest, "mine.txt")); got != "mine" {
		t.Fatalf("mine.txt now holds %q", got)
	}
	if got := testutil.DirNames(t, dest); strings.Join(got, " ") != "fluid-pgo.img manifest.json mine.txt" {
		t.Fatalf("destination after the failed install holds %v, want only the user's files\n%s", got, stderr)
	}
	if stdout != "" {
		t.Fatalf("stdout lists files after a failed install: %s", stdout)
	}
	for _, want := range []string{
		dest + "/fluid-pgo.img is a directory",
		"rolled back " + dest,
		"removed checksums.txt, checksums.txt.sigstore.json, fluid-pgo.img.zst (written by this run)",
		"restored your manifest.json",
		dest + " holds what it held before",
	} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "nothing was written") {
		t.Fatalf("stderr says nothing was written, but files were moved in and taken out again:\n%s", stderr)
	}
	t.Logf("stderr:\n%s", stderr)
}

// TestDownloadReplacesUserFilesWithoutLeftovers: existing files of the same
// names are replaced on success, with no backup left behind.
func TestDownloadReplacesUserFilesWithoutLeftovers(t *testing.T) {
	fx := newFixture(t, newSigner(t))
	srv := fx.serve(t)
	dest := t.TempDir()
	testutil.WriteFiles(t, dest, map[string]string{"manifest.json": "old", "fluid-pgo.img": "old"})
	code, _, stderr := runCLI(t, srv.APIURL(), "download", "--version", "v1.0.0", "--key", fx.pubKey, "-o", dest)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got := strings.Join(testutil.DirNames(t, dest), " "); got != "checksums.txt checksums.txt.sigstore.json fluid-pgo.img fluid-pgo.img.zst manifest.json" {
		t.Fatalf("destination holds %s", got)
	}
	if got := readString(t, filepath.Join(dest, "manifest.json")); got != string(fx.assets["manifest.json"]) {
		t.Fatalf("manifest.json not replaced: %q", got)
	}
	if !strings.Contains(stderr, "replaced the existing "+filepath.Join(dest, "manifest.json")) {
		t.Fatalf("stderr does not say which files were replaced:\n%s", stderr)
	}
}

// TestInstallRollback drives install directly: a move that fails after a
// user's file was set aside puts that file back and removes only the files
// this run moved in.
func TestInstallRollback(t *testing.T) {
	stage, dest := t.TempDir(), t.TempDir()
	for _, n := range []string{"a", "b"} {
		os.WriteFile(filepath.Join(stage, n), []byte("new "+n), 0o644)
	}
	os.WriteFile(filepath.Join(dest, "b"), []byte("user b"), 0o644)
	os.WriteFile(filepath.Join(dest, "c"), []byte("user c"), 0o644)
	// "c" is not in the stage: its move fails after the user's c was set aside.
	_, _, err := install(stage, dest, []string{"a", "b", "c"})
	if err == nil {
		t.Fatal("install succeeded")
	}
	if got := strings.Join(testutil.DirNames(t, dest), " "); got != "b c" {
		t.Fatalf("destination holds %s, want b c", got)
	}
	if readString(t, filepath.Join(dest, "b")) != "user b" || readString(t, filepath.Join(dest, "c")) != "user c" {
		t.Fatal("user files not restored")
	}
	for _, want := range []string{"removed a (written by this run)", "restored your b, c"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error lacks %q: %v", want, err)
		}
	}
}
