package testutil

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRerunCommand(t *testing.T) {
	want := "go test -count=1 -run '^TestRerunCommand$' ./internal/testutil"
	if got := RerunCommand(t); got != want {
		t.Fatalf("RerunCommand = %q, want %q", got, want)
	}
	t.Run("a b.c", func(t *testing.T) {
		if got := RerunCommand(t); !strings.HasSuffix(got, `'^TestRerunCommand$/^a_b\.c$' ./internal/testutil`) {
			t.Fatalf("subtest: %q", got)
		}
	})
}

func TestNeedToolsSkips(t *testing.T) {
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		NeedTools(t, "sh", "no-such-tool-fluid")
	})
	if !skipped {
		t.Fatal("a missing tool did not skip")
	}
	NeedTools(t, "sh") // present: no skip
}

func TestFileHelpers(t *testing.T) {
	dir := TempTree(t, map[string]string{"b/c.txt": "abc", "a.txt": "x"})
	if got, want := DirNames(t, dir), []string{"a.txt", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DirNames = %v, want %v", got, want)
	}
	p := filepath.Join(dir, "b", "c.txt")
	before, _ := os.Stat(p)
	FlipMiddleByte(t, p)
	after, _ := os.Stat(p)
	if got, _ := os.ReadFile(p); string(got) != "a\x9dc" {
		t.Errorf("after FlipMiddleByte %s holds %q, want %q", p, got, "a\x9dc")
	}
	if !os.SameFile(before, after) || after.Size() != 3 {
		t.Errorf("FlipMiddleByte replaced the file or changed its size")
	}
	if _, err := os.Stat(filepath.Join(Root(t), "internal", "testutil", "testutil.go")); err != nil {
		t.Errorf("Root is not the repository root: %v", err)
	}
}
