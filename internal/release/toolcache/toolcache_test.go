package toolcache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestName(t *testing.T) {
	for tool, want := range map[Tool]string{Cosign: "cosign", Goreleaser: "goreleaser", "example.com/x/v12": "x"} {
		if got := tool.Name(); got != want {
			t.Errorf("%s.Name() = %q, want %q", tool, got, want)
		}
	}
}

// The cache directory follows the pins: another go.sum, another directory.
func TestDirFollowsPins(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tools"), 0o755)
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644)
	os.WriteFile(filepath.Join(root, "tools", "go.mod"), []byte("module x/tools\n"), 0o644)
	os.WriteFile(filepath.Join(root, "tools", "go.sum"), []byte("a v1 h1:x\n"), 0o644)
	d1, err := Dir(root)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "tools", "go.sum"), []byte("a v2 h1:y\n"), 0o644)
	d2, _ := Dir(root)
	if d1 == d2 {
		t.Fatal("changing tools/go.sum kept the cache directory")
	}
	if got, err := RepoRoot(filepath.Join(root, "tools")); err != nil || got != root {
		t.Fatalf("RepoRoot = %q, %v", got, err)
	}
	// A cached binary is returned without building.
	os.MkdirAll(d2, 0o755)
	os.WriteFile(filepath.Join(d2, "cosign"), []byte("#!/bin/sh\n"), 0o755)
	if p, err := Ensure(context.Background(), root, Cosign, func(string) { t.Fatal("rebuilt a cached tool") }); err != nil || p != filepath.Join(d2, "cosign") {
		t.Fatalf("Ensure = %q, %v", p, err)
	}
}

func TestLockWaitsAndBreaksStaleLocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, p); err == nil {
		t.Fatal("took a held lock")
	}
	unlock()
	// A lock left by a killed process long ago is broken.
	os.WriteFile(p, []byte("1\n"), 0o644)
	old := time.Now().Add(-2 * lockStale)
	os.Chtimes(p, old, old)
	unlock, err = lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
