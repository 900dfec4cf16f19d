package build

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every .inc file under boot/ is an explicit input of the boot steps:
// NASM 2.16.01's -MD leaves included files out of the depfile, so an .inc
// missing from nasmIncludes would not rebuild stage 2 when it changes.
func TestBootIncludesAreInputs(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b := &Builder{root: root, out: filepath.Join(root, "build")}
	incs := b.nasmIncludes(bootIncludeDirs...)
	var found int
	err = filepath.WalkDir(filepath.Join(root, "boot"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".inc") {
			return err
		}
		found++
		if rel := b.rel(p); !slices.Contains(incs, rel) {
			t.Errorf("%s is not an input of the boot steps (add its folder to bootIncludeDirs)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 3 {
		t.Fatalf("found only %d .inc files under boot/", found)
	}
}
