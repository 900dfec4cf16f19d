// Package fileutil holds the file helpers every other package shares: the
// SHA-256 of a file, the repository root and a file size for people. It imports nothing of the
// project, so that the fluid CLI, the build and the tests can all use it.
// (Atomic writes are internal/atomicfile.)
package fileutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// SHA256 returns the lowercase hex SHA-256 of the file at path (a symlink's
// target). Errors name the file.
func SHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FindRoot walks up from dir ("." for the working directory) to the
// repository root: the directory holding go.mod and tools/go.mod.
func FindRoot(dir string) (string, error) {
	start, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := start; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "go.mod")) && isFile(filepath.Join(d, "tools", "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Fluid OS checkout above %s (looked for go.mod and tools/go.mod); run from inside the repository", start)
		}
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// HumanSize writes a byte count the way the tools print sizes: "1.5 MiB",
// "2.0 KiB", "512 B".
func HumanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
