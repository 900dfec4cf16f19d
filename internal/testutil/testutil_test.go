package testutil

import (
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
