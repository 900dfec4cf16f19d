package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(pem), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
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
