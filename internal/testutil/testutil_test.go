package testutil

import (
	"errors"
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

func TestWantErr(t *testing.T) {
	if WantErr(t, nil, "") {
		t.Error("WantErr(nil, \"\") = true, want false")
	}
	if !WantErr(t, errors.New("x.h:2: repeats"), "repeats") {
		t.Error("WantErr of a wanted error = false, want true")
	}
	for _, c := range []struct {
		err  error
		want string
	}{{errors.New("boom"), ""}, {nil, "repeats"}, {errors.New("other"), "repeats"}} {
		ft := &fatalT{TB: t}
		func() {
			defer func() { recover() }()
			WantErr(ft, c.err, c.want)
		}()
		if !ft.fataled {
			t.Errorf("WantErr(%v, %q) did not fail the test", c.err, c.want)
		}
	}
}

// fatalT records a Fatal/Fatalf instead of ending the test (it panics to
// leave the helper, as runtime.Goexit would).
type fatalT struct {
	testing.TB
	fataled bool
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatal(args ...any) {
	f.fataled = true
	panic("fatal")
}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.fataled = true
	panic("fatal")
}
