package publish

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/oci"
)

func lockedTree(t *testing.T) *toolchain.LockedTree {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	lt, err := toolchain.ReadLock(filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..")))
	if err != nil {
		t.Fatal(err)
	}
	return lt
}

// TestLockRecordsTheImageDigest: the digest in the lock is the one the
// lock's own tarball facts and the image config give, computed without the
// tarball: two machines with the same lock compute the same digest. A
// changed tarball hash or creation time gives another.
func TestLockRecordsTheImageDigest(t *testing.T) {
	lt := lockedTree(t)
	d, err := ImageDigest(lt.Definition, lt.Lock.Rootfs)
	if err != nil || d != lt.Lock.OCI.Digest {
		t.Fatalf("OCI digest from the lock = %s (%v), lock records %s", d, err, lt.Lock.OCI.Digest)
	}
	other := lt.Lock.Rootfs
	other.SHA256 = "f" + other.SHA256[1:]
	if d2, _ := ImageDigest(lt.Definition, other); d2 == d {
		t.Error("another tarball gives the same image digest")
	}
	def := lt.Definition
	def.SourceDateEpoch++
	if d3, _ := ImageDigest(def, lt.Lock.Rootfs); d3 == d {
		t.Error("another creation time gives the same image digest")
	}
}

// TestImageFromTheCachedTarball builds the image from the real rootfs
// tarball (created by `deps`) and writes both forms: the digest is the
// lock's, the layout reads back with it, and the layer is the tarball.
func TestImageFromTheCachedTarball(t *testing.T) {
	testutil.Long(t, "reads and writes the 730 MB rootfs")
	lt := lockedTree(t)
	b, err := Image(context.Background(), lt, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != lt.Lock.OCI.Digest || len(b.ImageID) != len("sha256:")+64 {
		t.Fatalf("image %s (ID %s), lock %s", b.Digest, b.ImageID, lt.Lock.OCI.Digest)
	}
	layers, err := b.Image.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	if d, _ := layers[0].Digest(); d.Hex != lt.Lock.Rootfs.SHA256 {
		t.Errorf("layer %s is not the tarball %s", d, lt.Lock.Rootfs.SHA256)
	}
	if mt, _ := layers[0].MediaType(); mt != oci.LayerMediaType {
		t.Errorf("layer media type %s", mt)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := oci.WriteLayout(dir, b.Image, lt.Lock.OCI.Repository+":test"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", lt.Lock.Rootfs.SHA256)); err != nil {
		t.Errorf("layout lacks the tarball blob: %v", err)
	}
}

// The repository comes from the lock (a pull request can change it): the
// workflow's GITHUB_TOKEN goes to ghcr.io only.
func TestPushAuthSendsGitHubTokenToGHCROnly(t *testing.T) {
	env := map[string]string{"GITHUB_ACTOR": "ci", "GITHUB_TOKEN": "s3cret"}
	getenv := func(k string) string { return env[k] }
	for repo, wantToken := range map[string]bool{
		"ghcr.io/fluid-os/fluid-toolchain":         true,
		"ghcr.io.evil.example/fluid-toolchain":     false,
		"evil.example/ghcr.io/fluid-toolchain":     false,
		"registry.example:5000/fluid-os/toolchain": false,
		"docker.io/fluid-os/fluid-toolchain":       false,
		"localhost:5000/fluid-os/fluid-toolchain":  false,
		"not a repository":                         false,
	} {
		auth, note := PushAuth(repo, getenv)
		if got := auth != nil; got != wantToken {
			t.Errorf("%s: token sent %v, want %v", repo, got, wantToken)
		}
		if !wantToken && !strings.Contains(note, "GITHUB_TOKEN is not sent") {
			t.Errorf("%s: note %q", repo, note)
		}
	}
	if auth, _ := PushAuth("ghcr.io/fluid-os/fluid-toolchain", func(string) string { return "" }); auth != nil {
		t.Error("no token: want the keychain")
	}
}

func TestPushRepositoryOverride(t *testing.T) {
	env := func(reg string) func(string) string {
		return func(k string) string {
			if k == "FLUID_TOOLCHAIN_PUSH_REGISTRY" {
				return reg
			}
			if k == "GITHUB_TOKEN" {
				return "ghs_secret"
			}
			return ""
		}
	}
	got, err := PushRepository("ghcr.io/fluid-os/fluid-toolchain", env(""))
	if err != nil || got != "ghcr.io/fluid-os/fluid-toolchain" {
		t.Fatalf("no override: %q, %v", got, err)
	}
	got, err = PushRepository("ghcr.io/fluid-os/fluid-toolchain", env("127.0.0.1:5000"))
	if err != nil || got != "127.0.0.1:5000/fluid-os/fluid-toolchain" {
		t.Fatalf("override: %q, %v", got, err)
	}
	// The token follows the registry pushed to: not to the override.
	if auth, _ := PushAuth(got, env("127.0.0.1:5000")); auth != nil {
		t.Fatal("GITHUB_TOKEN would be sent to the override registry")
	}
	if _, err := PushRepository("ghcr.io/fluid-os/fluid-toolchain", env("not a host!")); err == nil || !strings.Contains(err.Error(), "FLUID_TOOLCHAIN_PUSH_REGISTRY") {
		t.Fatalf("bad override: %v", err)
	}
}
