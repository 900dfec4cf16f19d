package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/github/githubtest"
	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/release/releasetest"
)

// Two genuine releases of fluid-os/fluid, each built at its own commit.
const (
	replayCommit1 = "1111111111111111111111111111111111111111"
	replayCommit2 = "2222222222222222222222222222222222222222"
	replayRepoID  = "700000001"
	replayOwnerID = "700000002"
)

// signedRelease is a release's assets: image, manifest naming tag and
// commit, checksums.txt and its bundle made by sign.
func signedRelease(t *testing.T, tag, commit string, sign func(sums []byte) []byte) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "fluid-pgo.img")
	os.WriteFile(raw, bytes.Repeat([]byte("image of "+tag+" "), 5000), 0o644)
	zst := raw + release.CompressedExt
	if err := release.CompressFile(raw, zst); err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(dir, "manifest.json")
	m := &manifest.Manifest{Project: "fluid-os", Version: tag, Commit: commit, Variant: "pgo", Environment: manifest.Environment{Mode: manifest.ModeLocked}}
	if err := m.Write(man); err != nil {
		t.Fatal(err)
	}
	sums, err := release.ComputeChecksums([]string{zst, man})
	if err != nil {
		t.Fatal(err)
	}
	a := map[string][]byte{"checksums.txt": sums.Marshal()}
	a["fluid-pgo.img.zst"], _ = os.ReadFile(zst)
	a["manifest.json"], _ = os.ReadFile(man)
	a["checksums.txt.sigstore.json"] = sign(a["checksums.txt"])
	return a
}

// replayWorld is a GitHub with v1.0.0 and v2.0.0 published and tagged, and
// the flags that verify them (--key, or keyless against the test CA).
type replayWorld struct {
	srv   *githubtest.Server
	v1    map[string][]byte
	v2    map[string][]byte
	flags []string
}

// wantDownload runs `fluid download` with w's flags into a new directory
// and fails t, saying what was downloaded, unless it exits with code and its
// stderr says says.
func (w *replayWorld) wantDownload(t *testing.T, code int, says, what string) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "out")
	got, _, stderr := runCLI(t, w.srv.APIURL(), append([]string{"download", "-o", dest}, w.flags...)...)
	if got != code || !strings.Contains(stderr, says) {
		t.Fatalf("%s: exit %d, want %d saying %q\n%s", what, got, code, says, stderr)
	}
}

func newReplayWorld(t *testing.T, keyless bool) *replayWorld {
	t.Helper()
	w := &replayWorld{srv: githubtest.New("fluid-os", "fluid")}
	t.Cleanup(w.srv.Close)
	var signFor func(tag, commit string) func([]byte) []byte
	if keyless {
		ca := releasetest.NewCA(t)
		setKeylessTest(t, true, replayRepoID, replayOwnerID)
		w.flags = []string{"--trusted-root", ca.WriteTrustedRoot(t, t.TempDir())}
		signFor = func(tag, commit string) func([]byte) []byte {
			return func(sums []byte) []byte {
				return ca.Sign(t, releasetest.Workflow("fluid-os/fluid", tag, commit, replayRepoID, replayOwnerID), sums)
			}
		}
	} else {
		s := newSigner(t)
		pub := filepath.Join(t.TempDir(), "cosign.pub")
		os.WriteFile(pub, s.pubPEM, 0o644)
		w.flags = []string{"--key", pub}
		signFor = func(string, string) func([]byte) []byte { return func(sums []byte) []byte { return s.bundle(t, sums) } }
	}
	w.v1 = signedRelease(t, "v1.0.0", replayCommit1, signFor("v1.0.0", replayCommit1))
	w.v2 = signedRelease(t, "v2.0.0", replayCommit2, signFor("v2.0.0", replayCommit2))
	w.srv.SetRef("tags/v1.0.0", replayCommit1)
	w.srv.AddRelease("v1.0.0", w.v1)
	return w
}

// setKeylessTest sets the package's keyless test hook for t's duration.
func setKeylessTest(t *testing.T, noTransparencyLog bool, repositoryID, ownerID string) {
	keylessTest = &struct {
		noTransparencyLog bool
		repositoryID      string
		ownerID           string
	}{noTransparencyLog, repositoryID, ownerID}
	t.Cleanup(func() { keylessTest = nil })
}

// An attacker with contents: write on the repository (SECURITY.md's threat
// model) re-publishes genuine, validly signed files of an older release under
// a newer tag, or moves a tag. fluid download must refuse each, in both
// signing modes, and install nothing.
func TestDownloadRefusesReplayAndDowngrade(t *testing.T) {
	type attack struct {
		name    string
		setup   func(w *replayWorld)
		version string
		wantMsg string
	}
	attacks := []attack{
		{name: "genuine v2.0.0", version: "v2.0.0", setup: func(w *replayWorld) {
			w.srv.SetRef("tags/v2.0.0", replayCommit2)
			w.srv.AddRelease("v2.0.0", w.v2)
		}},
		{name: "v1.0.0's files re-published as v2.0.0", version: "v2.0.0", setup: func(w *replayWorld) {
			w.srv.SetRef("tags/v2.0.0", replayCommit2)
			w.srv.AddRelease("v2.0.0", w.v1)
		}, wantMsg: `manifest.json says the images are version "v1.0.0", but this is release v2.0.0`},
		{name: "v1.0.0's files as a new latest release", version: "latest", setup: func(w *replayWorld) {
			w.srv.SetRef("tags/v9.9.9", replayCommit1)
			w.srv.AddRelease("v9.9.9", w.v1)
		}, wantMsg: `manifest.json says the images are version "v1.0.0", but this is release v9.9.9`},
		{name: "v2.0.0 tag moved to v1.0.0's commit", version: "v2.0.0", setup: func(w *replayWorld) {
			w.srv.SetRef("tags/v2.0.0", replayCommit1)
			w.srv.AddRelease("v2.0.0", w.v2)
		}, wantMsg: "tag v2.0.0 points at commit " + replayCommit1 + ", but manifest.json says the images were built from " + replayCommit2},
		{name: "v2.0.0 tag deleted", version: "v2.0.0", setup: func(w *replayWorld) {
			w.srv.AddRelease("v2.0.0", w.v2)
		}, wantMsg: "release v2.0.0 has no tag v2.0.0"},
		{name: "a release tag that is not a version", version: "latest", setup: func(w *replayWorld) {
			w.srv.SetRef("tags/vnext", replayCommit2)
			w.srv.AddRelease("vnext", w.v2)
		}, wantMsg: `release tag "vnext" is not a release version`},
	}
	for _, mode := range []string{"key", "keyless"} {
		for _, a := range attacks {
			t.Run(mode+"/"+a.name, func(t *testing.T) {
				w := newReplayWorld(t, mode == "keyless")
				a.setup(w)
				dest := filepath.Join(t.TempDir(), "out")
				args := append([]string{"download", "--version", a.version, "-o", dest}, w.flags...)
				code, _, stderr := runCLI(t, w.srv.APIURL(), args...)
				if a.wantMsg == "" {
					if code != 0 {
						t.Fatalf("genuine release refused: exit %d\n%s", code, stderr)
					}
					if !strings.Contains(stderr, "version OK: the signed manifest is release v2.0.0, commit "+replayCommit2) {
						t.Fatalf("no version verdict:\n%s", stderr)
					}
					return
				}
				if code != exitRefused || !strings.Contains(stderr, "REFUSED: version check failed") || !strings.Contains(stderr, a.wantMsg) {
					t.Fatalf("exit %d, want %d naming %q:\n%s", code, exitRefused, a.wantMsg, stderr)
				}
				if strings.Contains(stderr, "downloading fluid-pgo.img.zst") {
					t.Fatalf("the image was fetched before the version was checked:\n%s", stderr)
				}
				if _, err := os.Stat(dest); !os.IsNotExist(err) {
					t.Fatalf("refused download left %s behind", dest)
				}
				t.Logf("refused: %s", stderr[strings.LastIndex(strings.TrimSpace(stderr[:strings.Index(stderr, "REFUSED")]), "\n")+1:])
			})
		}
	}
}

// A server that answers /releases/tags/v2.0.0 with another release is not
// GitHub; fluid refuses what it serves.
func TestDownloadRefusesAnotherReleaseForTheTag(t *testing.T) {
	w := newReplayWorld(t, false)
	w.srv.SetRef("tags/v2.0.0", replayCommit2)
	// A front that forwards everything to the fake GitHub, except that it
	// answers the lookup of v2.0.0 with v1.0.0.
	front := hostileFront(t, w.srv.URL, func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/releases/tags/v2.0.0") {
			return false
		}
		forward(rw, r, w.srv.URL, strings.Replace(r.URL.Path, "/releases/tags/v2.0.0", "/releases/tags/v1.0.0", 1), r.URL.RawQuery)
		return true
	})
	dest := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, front.URL+"/", append([]string{"download", "--version", "v2.0.0", "-o", dest}, w.flags...)...)
	if code != exitRefused || !strings.Contains(stderr, "asked for release v2.0.0, the server answered with release v1.0.0") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}

// fluid verify, offline: --version binds the files to a release; without
// it a keyless set is bound to the tag its certificate names.
func TestVerifyVersion(t *testing.T) {
	for _, mode := range []string{"key", "keyless"} {
		t.Run(mode, func(t *testing.T) {
			w := newReplayWorld(t, mode == "keyless")
			dir := t.TempDir()
			for n, b := range w.v1 {
				os.WriteFile(filepath.Join(dir, n), b, 0o644)
			}
			img := filepath.Join(dir, "fluid-pgo.img.zst")
			verify := func(args ...string) (int, string) {
				code, out, errOut := runCLI(t, "", append(append([]string{"verify"}, w.flags...), args...)...)
				return code, out + errOut
			}
			if code, out := verify("--version", "v1.0.0", img); code != 0 || !strings.Contains(out, "version OK: release v1.0.0, built from commit "+replayCommit1) {
				t.Fatalf("genuine v1.0.0 with --version v1.0.0: exit %d\n%s", code, out)
			}
			code, out := verify("--version", "v2.0.0", img)
			if code != exitRefused || !strings.Contains(out, `manifest.json says the images are version "v1.0.0", but this is release v2.0.0`) {
				t.Fatalf("v1.0.0's files passed --version v2.0.0: exit %d\n%s", code, out)
			}
			if strings.Contains(out, "OK  ") {
				t.Fatalf("OK printed before the refusal:\n%s", out)
			}
			code, out = verify(img)
			want := "version OK: release v1.0.0"
			if mode == "key" {
				want = "the signed manifest says version v1.0.0, commit " + replayCommit1 + "; pass --version"
			}
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("without --version: exit %d, want %q\n%s", code, want, out)
			}
			os.Remove(filepath.Join(dir, "manifest.json"))
			if code, out := verify("--version", "v1.0.0", img); code != exitRefused || !strings.Contains(out, "manifest.json is missing") {
				t.Fatalf("--version without the manifest: exit %d\n%s", code, out)
			}
			if code, out := verify("--version", "v1", img); code != exitUsage {
				t.Fatalf("--version v1: exit %d\n%s", code, out)
			}
		})
	}
}

// The shipped policy does not pin the project's IDs yet: no keyless release
// of fluid-os/fluid is accepted until it does.
func TestKeylessRefusedWhileProjectPolicyUnpinned(t *testing.T) {
	w := newReplayWorld(t, true)
	keylessTest.repositoryID, keylessTest.ownerID = "", ""
	p, _ := projectPolicy()
	if p.Pinned() {
		t.Skip("release/policy.json pins the IDs")
	}
	dest := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, w.srv.APIURL(), append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...)...)
	if code != exitRefused || !strings.Contains(stderr, "does not pin fluid-os/fluid's repository and owner IDs") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}

// --stall-timeout and --timeout bound a download whose server stops sending:
// exit 4 (no verdict), nothing left behind, the flag named.
func TestDownloadTimeoutFlags(t *testing.T) {
	for _, tt := range []struct {
		name    string
		flags   []string
		wantMsg string
	}{
		{name: "stall", flags: []string{"--stall-timeout", "300ms"}, wantMsg: "the download stalled: no data for 300ms"},
		{name: "overall", flags: []string{"--stall-timeout", "0", "--timeout", "500ms"}, wantMsg: "gave up after --timeout 500ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newReplayWorld(t, false)
			a := asset(w.srv.Release("v1.0.0"), "fluid-pgo.img.zst")
			a.StallAfter = len(a.Data) / 2
			dest := filepath.Join(t.TempDir(), "out")
			start := time.Now()
			code, _, stderr := runCLI(t, w.srv.APIURL(), append(append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...), tt.flags...)...)
			if code != exitNetwork || !strings.Contains(stderr, tt.wantMsg) {
				t.Fatalf("exit %d, want %d naming %q:\n%s", code, exitNetwork, tt.wantMsg, stderr)
			}
			if el := time.Since(start); el > 20*time.Second {
				t.Fatalf("gave up only after %s", el)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Fatalf("%s left behind", dest)
			}
		})
	}
	w := newReplayWorld(t, false)
	if code, _, _ := runCLI(t, w.srv.APIURL(), "download", "--timeout", "-1s"); code != exitUsage {
		t.Fatalf("--timeout -1s: exit %d", code)
	}
}

// An older genuine release marked latest (make_latest) is a downgrade for
// --version latest: refused, naming the newer release.
func TestDownloadRefusesOlderLatest(t *testing.T) {
	for _, mode := range []string{"key", "keyless"} {
		t.Run(mode, func(t *testing.T) {
			w := newReplayWorld(t, mode == "keyless")
			w.srv.SetRef("tags/v2.0.0", replayCommit2)
			w.srv.AddRelease("v2.0.0", w.v2)
			w.wantDownload(t, 0, "release v2.0.0", "latest = v2.0.0")
			w.srv.Release("v1.0.0").MakeLatest = true
			w.wantDownload(t, exitRefused, "the release marked latest is v1.0.0, but v2.0.0 is published", "old release marked latest")
		})
	}
}
