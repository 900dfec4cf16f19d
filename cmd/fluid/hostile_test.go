package main

// Regression tests from the hostile review of the release checks (issue 10):
// each is an attack a reviewer made against fluid download and fluid verify
// (F1..F12), asserting the outcome fluid must give. Run:
//   go test -run TestHostile -v ./cmd/fluid

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/github"
	"github.com/fluid-os/fluid/internal/release/releasetest"
)

// hostileFront forwards to backend unless override handles the request.
func hostileFront(t *testing.T, backend string, override func(rw http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if override != nil && override(rw, r) {
			return
		}
		forward(rw, r, backend, r.URL.Path, r.URL.RawQuery)
	}))
	t.Cleanup(front.Close)
	return front
}

func forward(rw http.ResponseWriter, r *http.Request, backend, path, query string) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, backend+path+"?"+query, r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		rw.WriteHeader(502)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		rw.Header()[k] = v
	}
	// Keep redirects (asset -> storage) on the backend: that is fine.
	rw.WriteHeader(resp.StatusCode)
	io.Copy(rw, resp.Body)
}

// runCLIAsync runs the CLI and reports whether it ended within d.
func runCLIAsync(t *testing.T, api string, d time.Duration, args ...string) (done chan [3]any, finished bool) {
	done = make(chan [3]any, 1)
	go func() {
		code, out, errOut := runCLI(t, api, args...)
		done <- [3]any{code, out, errOut}
	}()
	select {
	case r := <-done:
		done <- r
		return done, true
	case <-time.After(d):
		return done, false
	}
}

// F1: checkLatest skips prereleases. Whoever can edit releases (the threat
// model's uploader) flips the genuine v2.0.0 to "prerelease": GitHub then
// answers /releases/latest with v1.0.0 and fluid installs the downgrade.
func TestHostileLatestDowngradeViaPrereleaseFlag(t *testing.T) {
	w := newReplayWorld(t, false)
	w.srv.SetRef("tags/v2.0.0", replayCommit2)
	w.srv.AddRelease("v2.0.0", w.v2)
	w.srv.Release("v2.0.0").Prerelease = true // PATCH /releases/{id} {"prerelease":true}
	w.wantDownload(t, exitRefused, "v2.0.0 is published (flagged prerelease, though its tag is not)",
		"downgrade: v2.0.0 (tag v2.0.0, no -pre suffix) flagged prerelease, latest = v1.0.0")
}

// F2: a newer release pushed off the first page of /releases (100 junk
// releases after it) while v1.0.0 is marked latest: fluid reads every page
// (githubtest pages /releases as GitHub does) and refuses the downgrade.
func TestHostileLatestDowngradeViaPagination(t *testing.T) {
	w := newReplayWorld(t, false)
	w.srv.SetRef("tags/v2.0.0", replayCommit2)
	w.srv.AddRelease("v2.0.0", w.v2)
	for i := 0; i < 150; i++ {
		w.srv.AddRelease(fmt.Sprintf("junk-%d", i), nil)
	}
	w.srv.Release("v1.0.0").MakeLatest = true
	w.wantDownload(t, exitRefused, "the release marked latest is v1.0.0, but v2.0.0 is published", "downgrade with v2.0.0 on page 2 of /releases")
}

// F3: an error answer to the asset request (Accept: application/octet-stream)
// is read whole by go-github's CheckResponse: a hostile API answering 404
// with an endless body must be cut off at MaxAPIResponse. What the server
// manages to write also fills the loopback socket buffers (several MiB), so
// the bound checked is the cap plus 24 MiB, against 4× the cap served.
func TestHostileAssetErrorBodyUnbounded(t *testing.T) {
	w := newReplayWorld(t, false)
	const serve = 4 * github.MaxAPIResponse
	var sent atomic.Int64
	front := hostileFront(t, w.srv.URL, func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/releases/assets/") {
			return false
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(404)
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = ' '
		}
		for sent.Load() < serve {
			n, err := rw.Write(buf)
			sent.Add(int64(n))
			if err != nil {
				return true
			}
		}
		return true
	})
	dest := filepath.Join(t.TempDir(), "out")
	runCLI(t, front.URL+"/", append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...)...)
	if got := sent.Load(); got > github.MaxAPIResponse+(24<<20) {
		t.Fatalf("fluid read %d MiB of one error answer (cap MaxAPIResponse = %d MiB): unbounded", got>>20, github.MaxAPIResponse>>20)
	}
}

// F4: an API answer whose body stalls after the headers is never timed out:
// --stall-timeout covers asset bodies only and --timeout defaults to none.
func TestHostileAPIBodyStallHangs(t *testing.T) {
	w := newReplayWorld(t, false)
	release := make(chan struct{})
	front := hostileFront(t, w.srv.URL, func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/releases/tags/") {
			return false
		}
		select {
		case <-release:
			return false
		default:
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(200)
		rw.Write([]byte("{"))
		rw.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	dest := filepath.Join(t.TempDir(), "out")
	done, ok := runCLIAsync(t, front.URL+"/", 8*time.Second, append([]string{"download", "--version", "v1.0.0", "--stall-timeout", "1s", "-o", dest}, w.flags...)...)
	close(release)
	<-done
	if !ok {
		t.Fatalf("fluid download --stall-timeout 1s still waiting after 8s on a stalled API answer (no default --timeout): hangs forever")
	}
}

// F5: the asset list is paged without limit: a server that always sends
// Link rel="next" keeps fluid looping (and appending) forever.
func TestHostileEndlessAssetPages(t *testing.T) {
	w := newReplayWorld(t, false)
	var stop atomic.Bool
	var front *httptest.Server
	var pages atomic.Int64
	front = hostileFront(t, w.srv.URL, func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/assets") || stop.Load() {
			return false
		}
		n := pages.Add(1)
		rw.Header().Set("Link", fmt.Sprintf(`<%s%s?per_page=100&page=%d>; rel="next"`, front.URL, r.URL.Path, n+1))
		forward(rw, r, w.srv.URL, r.URL.Path, r.URL.RawQuery)
		return true
	})
	dest := filepath.Join(t.TempDir(), "out")
	done, ok := runCLIAsync(t, front.URL+"/", 8*time.Second, append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...)...)
	stop.Store(true)
	<-done
	if !ok {
		t.Fatalf("fluid download still paging assets after 8s (%d pages): no page limit", pages.Load())
	}
}

// F6: manifest.json (and the image) are bounded only by the size the server
// declares. A hostile server declares a 64 MiB manifest.json and fluid
// writes all of it into -o before the checksum refuses it: any declared
// size (a terabyte) fills the disk. checksums.txt/bundle have a 4 MiB cap.
func TestHostileManifestSizeUnbounded(t *testing.T) {
	w := newReplayWorld(t, false)
	a := asset(w.srv.Release("v1.0.0"), "manifest.json")
	a.Data = make([]byte, 64<<20)
	dest := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, w.srv.APIURL(), append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...)...)
	if code == 0 {
		t.Fatalf("accepted")
	}
	if strings.Contains(stderr, "downloading manifest.json (64.0 MiB)") {
		t.Fatalf("fluid downloaded a 64 MiB manifest.json before refusing it (no size cap):\n%s", stderr)
	}
}

// F7: a GitHub outage (persistent 5xx) exits 1, documented as "REFUSED ...
// do not use the files", instead of 4 ("network ... try again").
func TestHostileServerErrorExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for 4 retries (15 s)")
	}
	w := newReplayWorld(t, false)
	front := hostileFront(t, w.srv.URL, func(rw http.ResponseWriter, r *http.Request) bool {
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	dest := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, front.URL+"/", append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...)...)
	if code != exitNetwork {
		t.Fatalf("HTTP 503 from GitHub: exit %d, want %d (network, try again):\n%s", code, exitNetwork, stderr)
	}
}

var _ = os.Stat

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// F8: --repo compares case-sensitively with the shipped policy's repository.
// GitHub names are case-insensitive, so --repo FLUID-OS/fluid is the project
// but gets the unpinned fork policy: the repository/owner ID pin is silently
// dropped (only a note), and a certificate from a re-created FLUID-OS/fluid
// (new IDs) passes.
func TestHostileRepoCaseDropsIDPin(t *testing.T) {
	ca := releasetest.NewCA(t)
	setKeylessTest(t, true, replayRepoID, replayOwnerID)
	tr := ca.WriteTrustedRoot(t, t.TempDir())
	// A re-created repository: other IDs than the pinned 700000001/700000002.
	rel := signedRelease(t, "v1.0.0", replayCommit1, func(sums []byte) []byte {
		return ca.Sign(t, releasetest.Workflow("FLUID-OS/fluid", "v1.0.0", replayCommit1, "666", "667"), sums)
	})
	dir := t.TempDir()
	for n, b := range rel {
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	code, out, errOut := runCLI(t, "", "verify", "--repo", "FLUID-OS/fluid", "--trusted-root", tr, "--version", "v1.0.0", filepath.Join(dir, "fluid-pgo.img.zst"))
	if code == 0 {
		t.Fatalf("a re-created repository's release passed with --repo FLUID-OS/fluid (ID pin dropped):\n%s%s", out, errOut)
	}
}

// F9: --version (and --key/--checksums/--bundle) are silently ignored with
// --rebuild: a careless user believes the version was checked.
func TestHostileRebuildIgnoresVersion(t *testing.T) {
	w := newReplayWorld(t, false)
	dir := t.TempDir()
	for n, b := range w.v1 {
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	code, out, errOut := runCLI(t, "", "verify", "--rebuild", "--version", "v2.0.0", "--source", t.TempDir(), filepath.Join(dir, "fluid-pgo.img.zst"))
	if code != exitUsage && !strings.Contains(errOut, "version") {
		t.Fatalf("--rebuild --version v2.0.0 on v1.0.0's image: exit %d, --version neither refused nor checked:\n%s%s", code, out, errOut)
	}
}

// Annotated tags (untested elsewhere): v1.0.0 -> tag object -> tag object ->
// commit must be followed; a cycle and an over-deep chain must be refused
// (exit 1), quickly.
func TestHostileAnnotatedTagChains(t *testing.T) {
	for _, tt := range []struct {
		name  string
		chain func(sha string) (typ, next string) // the object tag object sha points at
		first string
		want  int
	}{
		{name: "two annotated levels", first: "t1", want: 0, chain: func(sha string) (string, string) {
			if sha == "t1" {
				return "tag", "t2"
			}
			return "commit", replayCommit1
		}},
		{name: "cycle", first: "t1", want: exitRefused, chain: func(string) (string, string) { return "tag", "t1" }},
		{name: "chain to the wrong commit", first: "t1", want: exitRefused, chain: func(string) (string, string) { return "commit", replayCommit2 }},
		{name: "tag of a tree", first: "t1", want: exitRefused, chain: func(string) (string, string) { return "tree", replayCommit1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newReplayWorld(t, false)
			var hits atomic.Int64
			front := hostileFront(t, w.srv.URL, func(rw http.ResponseWriter, r *http.Request) bool {
				p := strings.TrimPrefix(r.URL.Path, "/repos/fluid-os/fluid/")
				switch {
				case p == "git/ref/tags/v1.0.0":
					jsonEncode(rw, map[string]any{"ref": "refs/tags/v1.0.0", "object": map[string]any{"type": "tag", "sha": tt.first}})
					return true
				case strings.HasPrefix(p, "git/tags/"):
					hits.Add(1)
					typ, next := tt.chain(strings.TrimPrefix(p, "git/tags/"))
					jsonEncode(rw, map[string]any{"sha": strings.TrimPrefix(p, "git/tags/"), "object": map[string]any{"type": typ, "sha": next}})
					return true
				}
				return false
			})
			dest := filepath.Join(t.TempDir(), "out")
			code, _, stderr := runCLI(t, front.URL+"/", append([]string{"download", "--version", "v1.0.0", "-o", dest}, w.flags...)...)
			if code != tt.want || hits.Load() > 8 {
				t.Fatalf("exit %d, want %d (%d tag objects read):\n%s", code, tt.want, hits.Load(), stderr)
			}
		})
	}
}
