package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// releaseDir writes fx's assets and the decompressed image into a directory,
// as fluid download leaves them.
func releaseDir(t *testing.T, fx *fixture) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range fx.assets {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "fluid-pgo.img"), fx.image, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerifyTamperedImageNoOKBeforeVerdict: a changed byte in the
// decompressed image is refused (exit 1), and nothing that looks like
// success (an OK line for the .zst, "signature OK") is printed.
func TestVerifyTamperedImageNoOKBeforeVerdict(t *testing.T) {
	fx := newFixture(t, newSigner(t))
	dir := releaseDir(t, fx)
	img := filepath.Join(dir, "fluid-pgo.img")
	b := append([]byte(nil), fx.image...)
	b[3<<20] ^= 1
	os.WriteFile(img, b, 0o644)
	for _, args := range [][]string{
		{img},
		{img, filepath.Join(dir, "manifest.json")},
		{filepath.Join(dir, "fluid-pgo.img.zst"), img},
	} {
		code, stdout, stderr := runCLI(t, "", append([]string{"verify", "--key", fx.pubKey}, args...)...)
		if code != exitRefused || !strings.Contains(stderr, "REFUSED: checksum check failed for fluid-pgo.img") {
			t.Fatalf("%v: exit %d, want %d with REFUSED:\n%s%s", args, code, exitRefused, stdout, stderr)
		}
		if strings.Contains(stdout, "OK") || strings.Contains(stderr, "OK") {
			t.Fatalf("%v: a refused verify printed something that looks like success:\nstdout:\n%s\nstderr:\n%s", args, stdout, stderr)
		}
	}
	// The untouched release still passes, with its OK lines.
	os.WriteFile(img, fx.image, 0o644)
	code, stdout, stderr := runCLI(t, "", "verify", "--key", fx.pubKey, img, filepath.Join(dir, "manifest.json"))
	if code != exitOK || !strings.Contains(stdout, "OK  "+img) || !strings.Contains(stdout, "OK  "+filepath.Join(dir, "manifest.json")) {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
}

// TestVerifyMissingFileRefused: a missing file is a refusal that names the
// file and says what to do, not a bare "no such file".
func TestVerifyMissingFileRefused(t *testing.T) {
	fx := newFixture(t, newSigner(t))
	tests := []struct {
		name   string
		remove string // from the release directory
		args   []string
		want   string // the missing file, relative to the directory
		hint   string
	}{
		{"zst beside the image", "fluid-pgo.img.zst", []string{"fluid-pgo.img"}, "fluid-pgo.img.zst", "download fluid-pgo.img.zst"},
		{"zst argument", "fluid-pgo.img.zst", []string{"fluid-pgo.img.zst", "manifest.json"}, "fluid-pgo.img.zst", "download fluid-pgo.img.zst"},
		{"manifest argument", "manifest.json", []string{"fluid-pgo.img.zst", "manifest.json"}, "manifest.json", "download manifest.json"},
		{"image", "fluid-pgo.img", []string{"fluid-pgo.img"}, "fluid-pgo.img", "pass the path of the image"},
		{"checksums", "checksums.txt", []string{"fluid-pgo.img.zst"}, "checksums.txt", "--checksums"},
		{"bundle", "checksums.txt.sigstore.json", []string{"fluid-pgo.img.zst"}, "checksums.txt.sigstore.json", "--bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := releaseDir(t, fx)
			os.Remove(filepath.Join(dir, tt.remove))
			args := []string{"verify", "--key", fx.pubKey}
			for _, a := range tt.args {
				args = append(args, filepath.Join(dir, a))
			}
			code, stdout, stderr := runCLI(t, "", args...)
			want := "REFUSED: " + filepath.Join(dir, tt.want) + " is missing ("
			if code != exitRefused || !strings.Contains(stderr, want) || !strings.Contains(stderr, tt.hint) {
				t.Fatalf("exit %d, want %d with %q and %q:\n%s%s", code, exitRefused, want, tt.hint, stdout, stderr)
			}
			if strings.Contains(stderr, "no such file") || strings.Contains(stdout, "OK") {
				t.Fatalf("bare error or OK line:\n%s%s", stdout, stderr)
			}
		})
	}
}

// TestUsageExitCodes: bad flags and arguments exit 2, and the usage text
// documents every exit code.
func TestUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "--no-such-flag", "x.img"},
		{"download", "--no-such-flag"},
		{"download", "extra-argument"},
		{"verify", "--rebuild", "--no-such-flag", "x.img"},
	} {
		code, stdout, stderr := runCLI(t, "", args...)
		if code != exitUsage || !strings.Contains(stderr, "usage:") {
			t.Fatalf("%v: exit %d, want %d with usage:\n%s%s", args, code, exitUsage, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI(t, "", "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"exit codes:", "0    OK", "1    REFUSED", "2    usage error", "3    --rebuild only: could not rebuild", "4    network/IO error", "128+N"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help lacks %q:\n%s", want, stdout)
		}
	}
	// The codes are distinct.
	seen := map[int]bool{}
	for _, c := range []int{exitOK, exitRefused, exitUsage, exitNoRebuild, exitNetwork} {
		if seen[c] {
			t.Fatalf("exit code %d used twice", c)
		}
		seen[c] = true
	}
}
