package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/github/githubtest"
	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/release/releasetest"
	"github.com/fluid-os/fluid/internal/verdict"
)

// signer is a throwaway signing key (releasetest.Key).
type signer struct {
	*releasetest.Key
	pubPEM []byte
}

func newSigner(t *testing.T) *signer {
	k := releasetest.NewKey(t)
	return &signer{Key: k, pubPEM: k.PubPEM}
}

func (s *signer) bundle(t *testing.T, data []byte) []byte { return s.Sign(t, data) }

// fixture is a signed release: an image (mostly zeros), its zstd asset, the
// manifest, checksums.txt and the bundle.
type fixture struct {
	image  []byte
	assets map[string][]byte
	pubKey string // path of cosign.pub
}

func newFixture(t *testing.T, s *signer) *fixture {
	t.Helper()
	dir := t.TempDir()
	img := make([]byte, 4<<20)
	copy(img[1<<20:], bytes.Repeat([]byte("fluid image "), 4000))
	raw := filepath.Join(dir, "fluid-pgo.img")
	os.WriteFile(raw, img, 0o644)
	zst := filepath.Join(dir, "fluid-pgo.img.zst")
	if err := release.CompressFile(raw, zst); err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(dir, "manifest.json")
	m := &manifest.Manifest{Project: "fluid-os", Version: fixtureTag, Commit: fixtureCommit, Variant: "pgo",
		Environment: manifest.Environment{Mode: manifest.ModeLocked}}
	if err := m.Write(man); err != nil {
		t.Fatal(err)
	}
	sums, err := release.ComputeChecksums([]string{zst, man})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{image: img, assets: map[string][]byte{}}
	f.assets["fluid-pgo.img.zst"], _ = os.ReadFile(zst)
	f.assets["manifest.json"], _ = os.ReadFile(man)
	f.assets["checksums.txt"] = sums.Marshal()
	f.assets["checksums.txt.sigstore.json"] = s.bundle(t, f.assets["checksums.txt"])
	f.pubKey = filepath.Join(dir, "cosign.pub")
	os.WriteFile(f.pubKey, s.pubPEM, 0o644)
	return f
}

// The release the fixture is: its tag and the commit the tag points at.
const (
	fixtureTag    = "v1.0.0"
	fixtureCommit = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
)

// publish adds the fixture as release fixtureTag on srv, with its tag.
func (f *fixture) publish(srv *githubtest.Server) *githubtest.Release {
	srv.SetRef("tags/"+fixtureTag, fixtureCommit)
	return srv.AddRelease(fixtureTag, f.assets)
}

// serve starts a fake GitHub (closed when t ends) with the fixture
// published on it.
func (f *fixture) serve(t *testing.T) *githubtest.Server {
	srv := githubtest.New("fluid-os", "fluid")
	t.Cleanup(srv.Close)
	f.publish(srv)
	return srv
}

func runCLI(t *testing.T, apiURL string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"GITHUB_API_URL": apiURL}
	code := run(context.Background(), args, env{getenv: func(k string) string { return vars[k] }, stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestDownload(t *testing.T) {
	s := newSigner(t)
	fx := newFixture(t, s)
	tests := []struct {
		name      string
		version   string
		setup     func(srv *githubtest.Server, fx *fixture)
		key       string // "" = fixture key; "other" = another key
		wantCheck verdict.Check
		wantMsg   string
	}{
		{name: "happy path", version: "v1.0.0"},
		{name: "latest", version: "latest"},
		{name: "no such release", version: "v9.9.9", wantCheck: verdict.CheckRelease, wantMsg: "no release v9.9.9"},
		{name: "missing asset", version: "v1.0.0", wantCheck: verdict.CheckAsset, wantMsg: "has no asset fluid-pgo.img.zst",
			setup: func(srv *githubtest.Server, _ *fixture) { dropAsset(srv.Release("v1.0.0"), "fluid-pgo.img.zst") }},
		{name: "truncated download", version: "v1.0.0", wantCheck: verdict.CheckDownload, wantMsg: "interrupted after",
			setup: func(srv *githubtest.Server, _ *fixture) {
				a := asset(srv.Release("v1.0.0"), "fluid-pgo.img.zst")
				a.Truncate = len(a.Data) / 2
			}},
		{name: "tampered asset", version: "v1.0.0", wantCheck: verdict.CheckChecksum, wantMsg: "SHA-256 is",
			setup: func(srv *githubtest.Server, fx *fixture) {
				a := asset(srv.Release("v1.0.0"), "fluid-pgo.img.zst")
				a.Tamper = append([]byte(nil), a.Data...)
				a.Tamper[len(a.Tamper)/2] ^= 1
			}},
		{name: "tampered checksums", version: "v1.0.0", wantCheck: verdict.CheckSignature,
			setup: func(srv *githubtest.Server, fx *fixture) {
				a := asset(srv.Release("v1.0.0"), "checksums.txt")
				a.Tamper = bytes.Replace(a.Data, []byte("manifest"), []byte("Manifest"), 1)
			}},
		{name: "signed by another key", version: "v1.0.0", key: "other", wantCheck: verdict.CheckSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := githubtest.New("fluid-os", "fluid")
			defer srv.Close()
			srv.AddRelease("v0.9.0", map[string][]byte{"checksums.txt": []byte("old")})
			fx.publish(srv)
			if tt.setup != nil {
				tt.setup(srv, fx)
			}
			key := fx.pubKey
			if tt.key == "other" {
				key = newFixture(t, newSigner(t)).pubKey
			}
			dest := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr := runCLI(t, srv.APIURL(), "download", "--version", tt.version, "--key", key, "-o", dest)
			if tt.wantCheck == "" {
				if code != 0 {
					t.Fatalf("exit %d\n%s", code, stderr)
				}
				got, err := os.ReadFile(filepath.Join(dest, "fluid-pgo.img"))
				if err != nil || !bytes.Equal(got, fx.image) {
					t.Fatalf("image not in place or different: %v", err)
				}
				ents, _ := os.ReadDir(dest)
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				if strings.Join(names, " ") != "checksums.txt checksums.txt.sigstore.json fluid-pgo.img fluid-pgo.img.zst manifest.json" {
					t.Fatalf("destination holds %v", names)
				}
				if !strings.Contains(stdout, filepath.Join(dest, "fluid-pgo.img")) {
					t.Fatalf("stdout does not list the image: %s", stdout)
				}
				// The downloaded files pass fluid verify, the image through its .zst.
				code, out, errOut := runCLI(t, "", "verify", "--key", fx.pubKey, filepath.Join(dest, "fluid-pgo.img"), filepath.Join(dest, "manifest.json"))
				if code != 0 {
					t.Fatalf("fluid verify after download: exit %d\n%s%s", code, out, errOut)
				}
				// A changed byte in the decompressed image is caught.
				p := filepath.Join(dest, "fluid-pgo.img")
				b, _ := os.ReadFile(p)
				b[3<<20] ^= 1
				os.WriteFile(p, b, 0o644)
				if code, _, errOut := runCLI(t, "", "verify", "--key", fx.pubKey, p); code != 1 || !strings.Contains(errOut, "checksum check failed") {
					t.Fatalf("changed image passed verify (exit %d): %s", code, errOut)
				}
				t.Logf("stderr:\n%s", stderr)
				return
			}
			wantCode, prefix := exitRefused, "REFUSED: "
			if tt.wantCheck == verdict.CheckDownload {
				wantCode, prefix = exitNetwork, "NETWORK ERROR (not a verdict on the files): "
			}
			if code != wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, wantCode, stderr)
			}
			if !strings.Contains(stderr, prefix+string(tt.wantCheck)+" check failed") || !strings.Contains(stderr, tt.wantMsg) {
				t.Fatalf("stderr does not name the %s check / %q:\n%s", tt.wantCheck, tt.wantMsg, stderr)
			}
			if !strings.Contains(stderr, "nothing was written to "+dest) && tt.wantCheck != verdict.CheckRelease && tt.wantCheck != verdict.CheckAsset {
				t.Fatalf("stderr does not say nothing was written:\n%s", stderr)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				ents, _ := os.ReadDir(dest)
				t.Fatalf("destination left behind after a refused download: %v", ents)
			}
			t.Logf("refused: %s", strings.TrimSpace(stderr[strings.Index(stderr, "fluid download: "):]))
		})
	}
}

// A destination that already exists keeps its files and gets no leftovers.
func TestDownloadFailureLeavesExistingDirClean(t *testing.T) {
	s := newSigner(t)
	fx := newFixture(t, s)
	srv := fx.serve(t)
	asset(srv.Release("v1.0.0"), "fluid-pgo.img.zst").Truncate = 10
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "mine.txt"), []byte("user file"), 0o644)
	code, _, stderr := runCLI(t, srv.APIURL(), "download", "--version", "v1.0.0", "--key", fx.pubKey, "-o", dest)
	if code != exitNetwork { // a truncated download: network/IO
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ents, _ := os.ReadDir(dest)
	if len(ents) != 1 || ents[0].Name() != "mine.txt" {
		t.Fatalf("destination after failure: %v", ents)
	}
}

func TestDownloadNoNetwork(t *testing.T) {
	fx := newFixture(t, newSigner(t))
	srv := githubtest.New("fluid-os", "fluid")
	url := srv.APIURL()
	srv.Close()
	dest := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, url, "download", "--key", fx.pubKey, "-o", dest)
	if code != exitNetwork || !strings.Contains(stderr, "NETWORK ERROR (not a verdict on the files): network check failed") || !strings.Contains(stderr, "check your network") || strings.Contains(stderr, "REFUSED") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("destination created without network")
	}
}

func TestVerifyUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "usage"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"verify"}, 2, "name the files"},
		{[]string{"verify", "--rebuild", "--source", "/", "x.img"}, 3, "needs a source checkout"},
		{[]string{"verify", "--rebuild", "--source", "../..", "/nonexistent/fluid-pgo.img"}, 3, "could not rebuild /nonexistent/fluid-pgo.img"},
		{[]string{"verify", "--rebuild", "--source", "../..", "fluid_test.go"}, 3, "not a Fluid OS disk image"},
		{[]string{"verify", "--rebuild", "a.img", "b.img"}, 2, "takes one image"},
		{[]string{"download", "--image", "nope"}, 2, "want pgo or baseline"},
		{[]string{"download", "--repo", "noslash"}, 2, "owner/name"},
		{[]string{"verify", "--key", "/nonexistent.pub", "/tmp/x.img"}, 1, "nonexistent.pub"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, "", tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.code, tt.want, out, errOut)
			}
		})
	}
}

func asset(r *githubtest.Release, name string) *githubtest.Asset {
	for _, a := range r.Assets {
		if a.Name == name {
			return a
		}
	}
	panic("no asset " + name)
}

func dropAsset(r *githubtest.Release, name string) {
	for i, a := range r.Assets {
		if a.Name == name {
			r.Assets = append(r.Assets[:i], r.Assets[i+1:]...)
			return
		}
	}
}
