package fileutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("abc"), 0o644)
	got, err := SHA256(p)
	if want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; err != nil || got != want {
		t.Fatalf("SHA256 = %q, %v; want %s", got, err, want)
	}
	if _, err := SHA256(p + ".none"); err == nil || !strings.Contains(err.Error(), "f.none") {
		t.Fatalf("a missing file: err = %v, want one naming it", err)
	}
}

func TestFindRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tools", "cmd"), 0o755)
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644)
	if _, err := FindRoot(filepath.Join(root, "tools", "cmd")); err == nil {
		t.Fatal("a directory without tools/go.mod was taken for the root")
	}
	os.WriteFile(filepath.Join(root, "tools", "go.mod"), []byte("module x/tools\n"), 0o644)
	// tools/ holds a go.mod but no tools/tools/go.mod: the walk goes on up.
	if got, err := FindRoot(filepath.Join(root, "tools", "cmd")); err != nil || got != root {
		t.Fatalf("FindRoot = %q, %v; want %s", got, err, root)
	}
	// This package sits inside the real repository.
	if got, err := FindRoot("."); err != nil || !isFile(filepath.Join(got, "boot", "bootinfo.h")) {
		t.Fatalf("FindRoot(.) = %q, %v; want the checkout", got, err)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 2048: "2.0 KiB", 3 << 19: "1.5 MiB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
