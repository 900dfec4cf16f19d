package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

// TestSigningEnvKeyInsideRepoBypasses checks that the "key file outside the
// repository" rule compares path components and resolves symlinks: names
// that merely start with ".." and symlinks pointing into the repository are
// inside; a key genuinely outside is accepted, also through a symlinked
// repository root.
func TestSigningEnvKeyInsideRepoBypasses(t *testing.T) {
	const pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
	repo := t.TempDir()
	outside := t.TempDir()
	write := func(p string) string { return testutil.WriteFile(t, p, pem) }
	symlink := func(target, link string) string {
		t.Helper()
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		return link
	}
	dotdotDir := write(filepath.Join(repo, "..keys", "cosign.key"))
	dotdotFile := write(filepath.Join(repo, "...cosign.key"))
	inRepo := write(filepath.Join(repo, "cosign.key"))
	linkIn := symlink(inRepo, filepath.Join(outside, "link-into-repo.key"))
	dirLinkIn := symlink(repo, filepath.Join(outside, "repo-link"))
	keyOut := write(filepath.Join(outside, "cosign.key"))
	linkOut := symlink(keyOut, filepath.Join(outside, "link-outside.key"))
	repoLink := symlink(repo, filepath.Join(t.TempDir(), "repo"))
	sibling := write(filepath.Join(filepath.Dir(repo), filepath.Base(repo)+"-sibling", "cosign.key"))
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(sibling)) })

	tests := []struct {
		name   string
		key    string
		root   string
		inside bool
	}{
		{"dir named ..keys inside the repo", dotdotDir, repo, true},
		{"file named ...cosign.key inside the repo", dotdotFile, repo, true},
		{"symlink outside pointing into the repo", linkIn, repo, true},
		{"path through a symlinked directory into the repo", filepath.Join(dirLinkIn, "cosign.key"), repo, true},
		{"key inside, repo root given through a symlink", inRepo, repoLink, true},
		{"relative path with .. back into the repo", filepath.Join(repo, "..", filepath.Base(repo), "cosign.key"), repo, true},
		{"key outside", keyOut, repo, false},
		{"symlink outside pointing outside", linkOut, repo, false},
		{"key outside, repo root given through a symlink", keyOut, repoLink, false},
		{"sibling directory sharing the repo's name as prefix", sibling, repo, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"COSIGN_KEY_FILE": tt.key, "COSIGN_PASSWORD": ""}
			get := func(k string) string { return env[k] }
			look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			out, _, err := SigningEnv(get, look, tt.root)
			if tt.inside {
				if err == nil || !strings.Contains(err.Error(), "inside the repository") {
					t.Fatalf("key %s: err = %v, want it refused as inside the repository", tt.key, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("key %s: %v", tt.key, err)
			}
			if len(out) != 1 || out[0] != "COSIGN_KEY="+pem {
				t.Fatalf("env = %q", out)
			}
		})
	}
}

// TestSignChecksWhatItSigns: release.Sign runs cosign only over a
// checksums.txt with the handed-over SHA-256 whose every listed file is
// there with its checksum, with the documented arguments for each mode; a
// wrong digest, a changed or a missing file is refused before cosign runs.
func TestSignChecksWhatItSigns(t *testing.T) {
	setup := func(t *testing.T) (dist, assets, cosign, log, digest string) {
		dir := t.TempDir()
		dist, assets = filepath.Join(dir, "dist"), filepath.Join(dir, "assets")
		os.MkdirAll(dist, 0o755)
		os.MkdirAll(assets, 0o755)
		files := map[string]string{filepath.Join(dist, "fluid_linux_amd64.tar.gz"): "cli", filepath.Join(assets, "manifest.json"): "{}"}
		var sums strings.Builder
		for p, c := range files {
			os.WriteFile(p, []byte(c), 0o644)
			h := sha256.Sum256([]byte(c))
			fmt.Fprintf(&sums, "%x  %s\n", h, filepath.Base(p))
		}
		os.WriteFile(filepath.Join(dist, ChecksumsName), []byte(sums.String()), 0o644)
		h := sha256.Sum256([]byte(sums.String()))
		log = filepath.Join(dir, "cosign.log")
		cosign = filepath.Join(dir, "cosign")
		script := "#!/bin/sh\necho \"$@\" > " + log + "\nfor a; do case $a in --bundle=*) echo '{}' > \"${a#--bundle=}\";; esac; done\n"
		os.WriteFile(cosign, []byte(script), 0o755)
		return dist, assets, cosign, log, hex.EncodeToString(h[:])
	}
	sign := func(dist, assets, cosign, want string, env ...string) error {
		_, err := Sign(context.Background(), SignOptions{DistDir: dist, AssetsDir: assets, Cosign: cosign, WantSHA256: want, Env: env, Stdout: io.Discard, Stderr: io.Discard})
		return err
	}
	t.Run("keyless", func(t *testing.T) {
		t.Setenv("COSIGN_KEY", "")
		dist, assets, cosign, log, digest := setup(t)
		if err := sign(dist, assets, cosign, digest); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(log)
		want := "sign-blob --new-bundle-format --bundle=" + filepath.Join(dist, BundleName) + " --tlog-upload=true --yes " + filepath.Join(dist, ChecksumsName)
		if strings.TrimSpace(string(got)) != want {
			t.Fatalf("cosign args:\n got %s\nwant %s", got, want)
		}
	})
	t.Run("keyed", func(t *testing.T) {
		dist, assets, cosign, log, digest := setup(t)
		if err := sign(dist, assets, cosign, strings.ToUpper(digest), "COSIGN_KEY=pem", "COSIGN_PASSWORD=x"); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(log)
		if !strings.Contains(string(got), " --key=env://COSIGN_KEY --tlog-upload=false --yes ") {
			t.Fatalf("keyed cosign args: %s", got)
		}
	})
	refuse := []struct {
		name   string
		break_ func(dist, assets string, digest *string)
		msg    string
	}{
		{"wrong digest", func(_, _ string, d *string) { *d = strings.Repeat("0", 64) }, "refusing files that are not the ones built"},
		{"changed file", func(_, assets string, _ *string) {
			os.WriteFile(filepath.Join(assets, "manifest.json"), []byte("{ }"), 0o644)
		}, "SHA-256"},
		{"missing file", func(dist, _ string, _ *string) { os.Remove(filepath.Join(dist, "fluid_linux_amd64.tar.gz")) }, "found neither"},
		{"changed checksums", func(dist, _ string, _ *string) {
			f, _ := os.OpenFile(filepath.Join(dist, ChecksumsName), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("\n")
			f.Close()
		}, "refusing files"},
	}
	for _, tt := range refuse {
		t.Run(tt.name, func(t *testing.T) {
			dist, assets, cosign, log, digest := setup(t)
			os.WriteFile(filepath.Join(dist, BundleName), []byte("stale"), 0o644)
			tt.break_(dist, assets, &digest)
			err := sign(dist, assets, cosign, digest)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Sign = %v; want a refusal containing %q", err, tt.msg)
			}
			if _, err := os.Stat(log); err == nil {
				t.Fatal("cosign ran over a build that failed its check")
			}
		})
	}
}
