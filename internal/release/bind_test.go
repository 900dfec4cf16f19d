package release

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/verdict"
	releasefiles "github.com/fluid-os/fluid/release"
)

// Every branch of BindRelease: the checks after the signature that tie the
// files to the release asked for.
func TestBindRelease(t *testing.T) {
	man := func(version, commit string) []byte {
		m := &manifest.Manifest{Project: "fluid-os", Version: version, Commit: commit, Variant: "pgo"}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyless := Identity{SAN: "x", Tag: "v1.2.3", Commit: testCommit}
	key := Identity{Key: "cosign.pub"}
	other := "fedcba9876543210fedcba9876543210fedcba98"
	tests := []struct {
		name    string
		id      Identity
		man     []byte
		b       Binding
		wantMsg string
	}{
		{name: "keyless, all agree", id: keyless, man: man("v1.2.3", testCommit), b: Binding{Tag: "v1.2.3", TagCommit: testCommit}},
		{name: "key, all agree", id: key, man: man("v1.2.3", testCommit), b: Binding{Tag: "v1.2.3"}},
		{name: "not a release tag", id: key, man: man("v1.2.3", testCommit), b: Binding{Tag: "v1.2"}, wantMsg: `release tag "v1.2" is not a release version`},
		{name: "manifest unreadable", id: key, man: []byte(`{"commit":"x"}`), b: Binding{Tag: "v1.2.3"}, wantMsg: "unsupported manifest schema"},
		{name: "manifest of another version", id: key, man: man("v1.0.0", testCommit), b: Binding{Tag: "v1.2.3"}, wantMsg: `manifest.json says the images are version "v1.0.0", but this is release v1.2.3`},
		{name: "certificate for another tag", id: Identity{SAN: "x", Tag: "v1.0.0", Commit: testCommit}, man: man("v1.2.3", testCommit), b: Binding{Tag: "v1.2.3"},
			wantMsg: "issued to the release workflow run for tag v1.0.0, but this is release v1.2.3"},
		{name: "certificate for another commit", id: Identity{SAN: "x", Tag: "v1.2.3", Commit: other}, man: man("v1.2.3", testCommit), b: Binding{Tag: "v1.2.3"},
			wantMsg: "issued to a run at commit " + other},
		{name: "tag at another commit", id: key, man: man("v1.2.3", testCommit), b: Binding{Tag: "v1.2.3", TagCommit: other},
			wantMsg: "tag v1.2.3 points at commit " + other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := BindRelease(tt.id, tt.man, tt.b)
			if tt.wantMsg == "" {
				if err != nil || m.Version != tt.b.Tag {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *verdict.CheckError
			if !errors.As(err, &ce) || ce.Check != verdict.CheckVersion || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want a version check naming %q", err, tt.wantMsg)
			}
		})
	}
}

// The release job's guard: the project's repository signs keyless only with
// pinned IDs that are its own.
func TestCheckSigningRepository(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	unpinned := DefaultPolicy("fluid-os/fluid")
	pinned := unpinned
	pinned.RepositoryID, pinned.OwnerID = "10", "20"
	own := env("GITHUB_REPOSITORY", "fluid-os/fluid", "GITHUB_REPOSITORY_ID", "10", "GITHUB_REPOSITORY_OWNER_ID", "20")
	if err := pinned.CheckSigningRepository(own); err != nil {
		t.Fatal(err)
	}
	if err := unpinned.CheckSigningRepository(own); err == nil || !strings.Contains(err.Error(), `"repository_id": "10"`) {
		t.Fatalf("unpinned policy: %v", err)
	}
	recreated := env("GITHUB_REPOSITORY", "fluid-os/fluid", "GITHUB_REPOSITORY_ID", "11", "GITHUB_REPOSITORY_OWNER_ID", "20")
	if err := pinned.CheckSigningRepository(recreated); err == nil || !strings.Contains(err.Error(), "re-created") {
		t.Fatalf("other repository ID: %v", err)
	}
	if err := unpinned.CheckSigningRepository(env("GITHUB_REPOSITORY", "someone/fork")); err != nil {
		t.Fatalf("a fork must sign for itself: %v", err)
	}
	// SigningEnv runs the guard for keyless signing with the shipped policy.
	shipped, err := ParsePolicy(releasefiles.PolicyJSON())
	if err != nil {
		t.Fatal(err)
	}
	actions := env("ACTIONS_ID_TOKEN_REQUEST_URL", "https://token.test", "GITHUB_REPOSITORY", shipped.Repository,
		"GITHUB_REPOSITORY_ID", "10", "GITHUB_REPOSITORY_OWNER_ID", "20")
	_, _, err = SigningEnv(actions, func(k string) (string, bool) { v := actions(k); return v, v != "" }, t.TempDir())
	if !shipped.Pinned() && (err == nil || !strings.Contains(err.Error(), "does not pin")) {
		t.Fatalf("keyless signing in %s with the shipped policy unpinned: %v", shipped.Repository, err)
	}
	if shipped.Pinned() && (err == nil || !strings.Contains(err.Error(), "re-created")) {
		t.Fatalf("keyless signing in %s with other IDs than the pinned ones: %v", shipped.Repository, err)
	}
}

// PinPolicyFile writes the IDs GitHub gives into policy.json, in the form
// committed (TestProjectPolicyFile checks the file is in that form), and
// refuses to overwrite different pinned IDs.
func TestPinPolicyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.json")
	data, err := DefaultPolicy("fluid-os/fluid").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, data, 0o644)
	got, err := PinPolicyFile(p, 123, 456)
	if err != nil || got.RepositoryID != "123" || got.OwnerID != "456" {
		t.Fatalf("pin: %+v %v", got, err)
	}
	back, _ := os.ReadFile(p)
	if pol, err := ParsePolicy(back); err != nil || !pol.Pinned() {
		t.Fatalf("pinned file does not parse as pinned: %v\n%s", err, back)
	}
	if _, err := PinPolicyFile(p, 123, 456); err != nil {
		t.Fatalf("pinning the same IDs again: %v", err)
	}
	if _, err := PinPolicyFile(p, 999, 456); err == nil || !strings.Contains(err.Error(), "re-created") {
		t.Fatalf("re-pinning another repository ID: %v", err)
	}
	if now, _ := os.ReadFile(p); !bytes.Equal(now, back) {
		t.Fatal("a refused pin changed the file")
	}
}

// The release build refuses images that do not name the tag and HEAD.
func TestCheckReleaseManifest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "manifest.json")
	m := &manifest.Manifest{Project: "fluid-os", Version: "v1.2.3", Commit: testCommit, Variant: "pgo"}
	if err := m.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := CheckReleaseManifest(p, "v1.2.3", testCommit); err != nil {
		t.Fatal(err)
	}
	if err := CheckReleaseManifest(p, "v1.2.4", testCommit); err == nil || !strings.Contains(err.Error(), "were not built as release v1.2.4") {
		t.Fatalf("another tag: %v", err)
	}
	if err := CheckReleaseManifest(p, "v1.2.3", strings.Repeat("f", 40)); err == nil || !strings.Contains(err.Error(), "points at commit") {
		t.Fatalf("another commit: %v", err)
	}
}
