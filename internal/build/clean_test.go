package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanRemovesOutOnly(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "build")
	os.MkdirAll(filepath.Join(out, "boot"), 0o755)
	os.MkdirAll(filepath.Join(root, "profiles"), 0o755)
	var log strings.Builder
	if err := Clean(Options{Root: root}, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("build/ still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "profiles")); err != nil {
		t.Fatalf("profiles/ went too: %v", err)
	}
	if want := "clean: removing " + out + "\n"; log.String() != want {
		t.Fatalf("said %q, want %q", log.String(), want)
	}
	// FLUID_BUILD_DIR elsewhere: that directory goes, build/ is not looked for.
	other := filepath.Join(t.TempDir(), "o")
	os.MkdirAll(other, 0o755)
	if err := Clean(Options{Root: root, Out: other}, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("Out still there: %v", err)
	}
}
