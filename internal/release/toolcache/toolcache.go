// Package toolcache builds the release tools pinned in tools/go.mod
// (goreleaser, cosign) once and reuses them: binaries live in
// build/tools/<hash of tools/go.sum>/, so a change of pins builds afresh and
// parallel test processes share one build (a lock file serializes them).
package toolcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Tool is the main package of a tool pinned in tools/go.mod.
type Tool string

// The pinned tools.
const (
	Cosign     Tool = "github.com/sigstore/cosign/v2/cmd/cosign"
	Goreleaser Tool = "github.com/goreleaser/goreleaser/v2"
)

// Name is the tool's binary name: the last path element that is not a
// major-version suffix.
func (t Tool) Name() string {
	parts := strings.Split(string(t), "/")
	for i := len(parts) - 1; i > 0; i-- {
		if !(len(parts[i]) > 1 && parts[i][0] == 'v' && strings.Trim(parts[i][1:], "0123456789") == "") {
			return parts[i]
		}
	}
	return parts[0]
}

// lockStale is how old a lock file may get before it is considered left
// behind by a killed process (a cold cosign build takes ~5 min on 2 cores).
const lockStale = 20 * time.Minute

// Dir returns the cache directory for the current pins under root.
func Dir(root string) (string, error) {
	sum, err := os.ReadFile(filepath.Join(root, "tools", "go.sum"))
	if err != nil {
		return "", fmt.Errorf("tool cache: read tools/go.sum: %w", err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "tools", "go.mod"))
	if err != nil {
		return "", fmt.Errorf("tool cache: read tools/go.mod: %w", err)
	}
	h := sha256.Sum256(append(mod, sum...))
	return filepath.Join(root, "build", "tools", hex.EncodeToString(h[:8])), nil
}

// Ensure returns the path of t's binary, building it with
// `go build -modfile=tools/go.mod` when the cache does not have it yet.
// log, when not nil, is told before a (slow) build starts.
func Ensure(ctx context.Context, root string, t Tool, log func(string)) (string, error) {
	dir, err := Dir(root)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, t.Name())
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("tool cache: %w", err)
	}
	unlock, err := lock(ctx, bin+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built while we waited
		return bin, nil
	}
	if log != nil {
		log(fmt.Sprintf("building %s from tools/go.mod into %s (once; minutes on a cold cache)", t.Name(), dir))
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-modfile=tools/go.mod", "-o", tmp, string(t))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("tool cache: build %s (%s): %w\n%s", t.Name(), string(t), err, tail(out))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("tool cache: %w", err)
	}
	return bin, nil
}

// lock takes an exclusive lock file, waiting for other holders; a lock older
// than lockStale is broken.
func lock(ctx context.Context, path string) (func(), error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("tool cache: lock %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > lockStale {
			os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tool cache: waiting for %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// RepoRoot walks up from dir to the directory holding go.mod and tools/go.mod.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "tools", "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no repository root (go.mod and tools/go.mod) above %s", dir)
		}
		d = parent
	}
}
