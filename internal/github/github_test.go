package github_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/github"
	"github.com/fluid-os/fluid/internal/github/githubtest"
	"github.com/fluid-os/fluid/internal/verdict"
)

// noSleep records the waits the client asks for instead of sleeping.
type noSleep struct{ waits []time.Duration }

func (n *noSleep) sleep(_ context.Context, d time.Duration) error {
	n.waits = append(n.waits, d)
	return nil
}

func newClient(t *testing.T, srv *githubtest.Server, s *noSleep, log *bytes.Buffer) *github.Client {
	t.Helper()
	r := github.Retry{BaseDelay: 10 * time.Millisecond}
	if s != nil {
		r.Sleep = s.sleep
	}
	opts := github.Options{Token: "test-token", APIURL: srv.APIURL(), Retry: r}
	if log != nil {
		opts.Log = log
	}
	c, err := github.New(srv.Owner+"/"+srv.Repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeAssets(t *testing.T, files map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

func assetNames(r *githubtest.Release) map[string]string {
	out := map[string]string{}
	for _, a := range r.Assets {
		if _, dup := out[a.Name]; dup {
			out[a.Name+" (DUPLICATE)"] = a.State
		}
		out[a.Name] = string(a.Data)
	}
	return out
}

func TestPublishCreatesThenSkips(t *testing.T) {
	srv := githubtest.New("fluid-os", "fluid")
	defer srv.Close()
	c := newClient(t, srv, &noSleep{}, nil)
	assets := writeAssets(t, map[string]string{"checksums.txt": "sums", "fluid-pgo.img.zst": "image bytes", "manifest.json": "{}"})
	ctx := context.Background()
	var out bytes.Buffer
	res, err := c.Publish(ctx, github.PublishOptions{Tag: "v1.0.0", Body: "notes", Assets: assets, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || len(res.Uploaded) != 3 {
		t.Fatalf("first run: %+v", res)
	}
	// Second run: nothing to do.
	res, err = c.Publish(ctx, github.PublishOptions{Tag: "v1.0.0", Body: "notes", Assets: assets, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Updated || len(res.Uploaded) != 0 || len(res.Skipped) != 3 {
		t.Fatalf("rerun did work it should have skipped: %+v\n%s", res, out.String())
	}
	// Changed content → replaced, never duplicated; changed notes → updated.
	os.WriteFile(assets[0], []byte("new content"), 0o644)
	res, err = c.Publish(ctx, github.PublishOptions{Tag: "v1.0.0", Body: "notes v2", Assets: assets, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || len(res.Replaced) != 1 {
		t.Fatalf("changed asset/notes: %+v", res)
	}
	got := assetNames(srv.Release("v1.0.0"))
	if len(got) != 3 || srv.Releases() != 1 || srv.Release("v1.0.0").Body != "notes v2" {
		t.Fatalf("release state: %v (releases %d)", got, srv.Releases())
	}
	t.Logf("publish log:\n%s", out.String())
}

// The acceptance case: an upload fails for good half-way (leaving a broken
// asset, as GitHub does), publish reports it; the rerun finishes the job with
// exactly one copy of every asset.
func TestPublishRerunAfterFailedUpload(t *testing.T) {
	for _, omitDigest := range []bool{false, true} {
		name := "with digest"
		if omitDigest {
			name = "server without digest field"
		}
		t.Run(name, func(t *testing.T) {
			srv := githubtest.New("fluid-os", "fluid")
			srv.OmitDigest = omitDigest
			defer srv.Close()
			sl := &noSleep{}
			c := newClient(t, srv, sl, nil)
			files := map[string]string{"a.txt": "aaaa", "b.img.zst": strings.Repeat("image", 1000), "c.json": "{}"}
			assets := writeAssets(t, files)
			ctx := context.Background()
			// a.txt uploads; then every upload fails (all retries), each
			// leaving a half-uploaded "starter" asset, as GitHub can.
			srv.AddFault(githubtest.Fault{Method: http.MethodPost, Path: "releases/", After: 1, Times: 100, Status: 502, LeaveStarter: true})
			_, err := c.Publish(ctx, github.PublishOptions{Tag: "v2.0.0", Assets: assets})
			if err == nil || !strings.Contains(err.Error(), "run publish again") {
				t.Fatalf("failed upload not reported: %v", err)
			}
			if len(sl.waits) == 0 {
				t.Fatal("no retries before giving up")
			}
			before := srv.Release("v2.0.0")
			if before == nil {
				t.Fatal("release not created")
			}
			t.Logf("after the failed run the release holds %d asset(s), states: %v", len(before.Assets), states(before))

			// The network recovers.
			srv.ClearFaults()
			res, err := c.Publish(ctx, github.PublishOptions{Tag: "v2.0.0", Assets: assets})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Skipped) != 1 || res.Skipped[0] != "a.txt" || len(res.Replaced) != 1 || res.Replaced[0] != "b.img.zst" {
				t.Errorf("rerun should skip a.txt and replace the broken b.img.zst: %+v", res)
			}
			got := assetNames(srv.Release("v2.0.0"))
			if len(got) != 3 {
				t.Fatalf("after rerun: %v (want exactly a.txt, b.img.zst, c.json)", got)
			}
			for n, content := range files {
				if got[n] != content {
					t.Fatalf("asset %s has %q", n, got[n])
				}
			}
			if srv.Releases() != 1 {
				t.Fatalf("%d releases; the rerun created another", srv.Releases())
			}
			t.Logf("rerun: uploaded %v replaced %v skipped %v", res.Uploaded, res.Replaced, res.Skipped)
		})
	}
}

func states(r *githubtest.Release) []string {
	var s []string
	for _, a := range r.Assets {
		s = append(s, a.Name+"="+a.State)
	}
	return s
}

func TestPublishDryRunChangesNothing(t *testing.T) {
	srv := githubtest.New("fluid-os", "fluid")
	defer srv.Close()
	c := newClient(t, srv, &noSleep{}, nil)
	assets := writeAssets(t, map[string]string{"x.txt": "x"})
	var out bytes.Buffer
	res, err := c.Publish(context.Background(), github.PublishOptions{Tag: "v3.0.0", Assets: assets, DryRun: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Releases() != 0 {
		t.Fatal("dry run created a release")
	}
	for _, l := range srv.Log() {
		if !strings.HasPrefix(l, "GET ") {
			t.Fatalf("dry run sent %s", l)
		}
	}
	if !res.Created || !strings.Contains(out.String(), "would create release") || !strings.Contains(out.String(), "would upload x.txt") {
		t.Fatalf("dry run output:\n%s", out.String())
	}
	t.Logf("dry run:\n%s", out.String())
}

func TestRetriesOn5xxAndRateLimits(t *testing.T) {
	tests := []struct {
		name     string
		fault    githubtest.Fault
		sleep    bool // use the fake sleep (else real time)
		wantErr  string
		wantWait time.Duration // minimum first wait
	}{
		{name: "502 twice then OK", fault: githubtest.Fault{Path: "releases/tags/", Times: 2, Status: 502}, sleep: true},
		{name: "503 forever", fault: githubtest.Fault{Path: "releases/tags/", Times: 100, Status: 503}, sleep: true, wantErr: "503"},
		{name: "429 with Retry-After", fault: githubtest.Fault{Path: "releases/tags/", Times: 1, Status: 429, RetryAfter: 7}, sleep: true, wantWait: 7 * time.Second},
		// go-github also blocks requests locally until the reset, so this
		// case sleeps for real (about a second).
		{name: "primary rate limit resets soon", fault: githubtest.Fault{Path: "releases/tags/", Times: 1, RateLimit: true, ResetIn: time.Second}},
		{name: "rate limit resets in an hour", fault: githubtest.Fault{Path: "releases/tags/", Times: 1, RateLimit: true, ResetIn: time.Hour}, sleep: true, wantErr: "rate limit resets in"},
		{name: "404 is not retried", fault: githubtest.Fault{Path: "releases/tags/", Times: 1, Status: 404}, sleep: true, wantErr: "no release v1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := githubtest.New("o", "r")
			defer srv.Close()
			srv.AddRelease("v1.0.0", map[string][]byte{"a": []byte("a")})
			srv.AddFault(tt.fault)
			var sl *noSleep
			if tt.sleep {
				sl = &noSleep{}
			}
			var log bytes.Buffer
			c := newClient(t, srv, sl, &log)
			start := time.Now()
			_, err := c.FindRelease(context.Background(), "v1.0.0")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			if sl != nil && tt.wantWait > 0 && (len(sl.waits) == 0 || sl.waits[0] < tt.wantWait) {
				t.Fatalf("waits %v, want first >= %s", sl.waits, tt.wantWait)
			}
			t.Logf("took %s; log:\n%s", time.Since(start).Round(time.Millisecond), log.String())
		})
	}
}

func TestDownloadAsset(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	payload := bytes.Repeat([]byte("0123456789"), 10000)
	rel := srv.AddRelease("v1.0.0", map[string][]byte{"img.zst": payload, "short": payload})
	for _, a := range rel.Assets {
		if a.Name == "short" {
			a.Truncate = 5000
		}
	}
	c := newClient(t, srv, &noSleep{}, nil)
	ctx := context.Background()
	r, err := c.FindRelease(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Asset("img.zst")
	var buf bytes.Buffer
	var last int64
	if err := c.DownloadAsset(ctx, a, &buf, func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), payload) || last != int64(len(payload)) {
		t.Fatalf("got %d bytes, progress %d", buf.Len(), last)
	}
	// GitHub's redirect was followed to the storage URL.
	sawStorage := false
	for _, l := range srv.Log() {
		sawStorage = sawStorage || strings.HasPrefix(l, "GET /storage/")
	}
	if !sawStorage {
		t.Fatalf("no request to the storage URL: %v", srv.Log())
	}
	for _, h := range srv.StorageAuthHeaders() {
		if h != "" {
			t.Fatalf("the API token was sent to the storage URL: %q", h)
		}
	}
	short, _ := r.Asset("short")
	buf.Reset()
	err = c.DownloadAsset(ctx, short, &buf, nil)
	var ce *verdict.CheckError
	if !errors.As(err, &ce) || ce.Check != verdict.CheckDownload {
		t.Fatalf("truncated download: %v", err)
	}
	t.Logf("truncated: %v", err)
	if _, err := r.Asset("nope"); !errors.As(err, &ce) || ce.Check != verdict.CheckAsset {
		t.Fatalf("missing asset: %v", err)
	}
}

func TestNoNetwork(t *testing.T) {
	srv := githubtest.New("o", "r")
	url := srv.APIURL()
	srv.Close() // nothing listens there any more
	c, err := github.New("o/r", github.Options{APIURL: url, Retry: github.Retry{Attempts: 2, Sleep: (&noSleep{}).sleep}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindRelease(context.Background(), "latest")
	var ce *verdict.CheckError
	if !errors.As(err, &ce) || ce.Check != verdict.CheckNetwork {
		t.Fatalf("err = %v, want a network check error", err)
	}
	t.Logf("no network: %v", err)
}

// downloadClient is newClient with the download limits set.
func downloadClient(t *testing.T, srv *githubtest.Server, stall, deadline time.Duration) *github.Client {
	t.Helper()
	c, err := github.New(srv.Owner+"/"+srv.Repo, github.Options{Token: "test-token", APIURL: srv.APIURL(),
		Retry: github.Retry{BaseDelay: 10 * time.Millisecond, Sleep: (&noSleep{}).sleep}, StallTimeout: stall, DownloadTimeout: deadline})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingWriter counts what it is given and keeps none of it; past limit it
// refuses, so a client that does not stop by itself still ends.
type countingWriter struct{ n, limit int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n > w.limit {
		return len(p), errors.New("countingWriter: limit reached")
	}
	return len(p), nil
}

func findAsset(t *testing.T, c *github.Client, name string) *github.Release {
	t.Helper()
	r, err := c.FindRelease(context.Background(), "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Asset(name); err != nil {
		t.Fatal(err)
	}
	return r
}

// A storage server that streams forever for a 164-byte checksums.txt: the
// client stops at the declared size plus one byte, writes no more than the
// declared size and allocates next to nothing.
func TestDownloadEndlessBodyStopsAtDeclaredSize(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	data := bytes.Repeat([]byte("x"), 164)
	rel := srv.AddRelease("v1.0.0", map[string][]byte{"checksums.txt": data})
	rel.Assets[0].Endless = true
	c := downloadClient(t, srv, 0, 0)
	r := findAsset(t, c, "checksums.txt")
	a, _ := r.Asset("checksums.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &countingWriter{limit: 64 << 20}
	var progress int64
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := c.DownloadAsset(ctx, a, w, func(n int64) { progress = n })
	runtime.ReadMemStats(&after)
	var ce *verdict.CheckError
	if !errors.As(err, &ce) || ce.Check != verdict.CheckDownload {
		t.Fatalf("endless body: err = %v, want a download check error", err)
	}
	for _, want := range []string{"checksums.txt", "164", "more than"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if w.n > 164 || progress > 164 {
		t.Errorf("wrote %d bytes (progress %d) to the destination for a 164-byte asset", w.n, progress)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d bytes for a 164-byte asset", alloc)
	}
	t.Logf("stopped after %s, wrote %d bytes, allocated %d bytes: %v", time.Since(start).Round(time.Millisecond), w.n, after.TotalAlloc-before.TotalAlloc, err)
}

// A server that stalls mid-body fails the download, naming the asset and
// how much arrived: within a few stall intervals by the stall timer, or by
// the overall deadline when the stall timer is off.
func TestDownloadStalledBodyFails(t *testing.T) {
	for _, tt := range []struct {
		name            string
		stall, deadline time.Duration // for downloadClient
		says            string
		within          time.Duration
	}{
		{"stall timer", 200 * time.Millisecond, 0, "stalled", 5 * 200 * time.Millisecond},
		{"overall deadline", -1, 300 * time.Millisecond, "did not finish within 300ms", 3 * 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := githubtest.New("o", "r")
			defer srv.Close()
			data := bytes.Repeat([]byte("0123456789"), 10000)
			rel := srv.AddRelease("v1.0.0", map[string][]byte{"fluid.img.zst": data})
			rel.Assets[0].StallAfter = 5000
			c := downloadClient(t, srv, tt.stall, tt.deadline)
			r := findAsset(t, c, "fluid.img.zst")
			a, _ := r.Asset("fluid.img.zst")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := c.DownloadAsset(ctx, a, io.Discard, nil)
			took := time.Since(start)
			var ce *verdict.CheckError
			if !errors.As(err, &ce) || ce.Check != verdict.CheckDownload {
				t.Fatalf("err = %v, want a download check error", err)
			}
			for _, want := range []string{"fluid.img.zst", tt.says, "5000 of 100000 bytes"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if took > tt.within {
				t.Errorf("took %s, want at most %s", took, tt.within)
			}
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// Genuine assets, from empty to larger than one read buffer, still download
// whole with every limit on.
func TestDownloadGenuineAssetWithLimits(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	files := map[string][]byte{
		"checksums.txt": bytes.Repeat([]byte("c"), 164),
		"empty":         {},
		"one":           []byte("1"),
		"fluid.img.zst": bytes.Repeat([]byte("0123456789abcdef"), 40000),
	}
	srv.AddRelease("v1.0.0", files)
	// The stall limit is on, but far from what a loaded test machine may
	// pause between two reads (a 200 ms limit failed under a parallel suite).
	c := downloadClient(t, srv, 5*time.Second, 30*time.Second)
	r := findAsset(t, c, "checksums.txt")
	for name, data := range files {
		a, _ := r.Asset(name)
		var buf bytes.Buffer
		if err := c.DownloadAsset(context.Background(), a, &buf, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("%s: got %d bytes, want %d", name, buf.Len(), len(data))
		}
	}
}

// An API answer that never ends (here: release metadata with a 64 MiB
// body) is cut off at MaxAPIResponse instead of being read into memory.
func TestAPIAnswerIsCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":1,"tag_name":"v1.0.0","body":"`)
		chunk := []byte(strings.Repeat("a", 1<<16))
		for i := 0; i < 1024 && r.Context().Err() == nil; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `"}`)
	}))
	defer srv.Close()
	c, err := github.New("o/r", github.Options{APIURL: srv.URL + "/", Retry: github.Retry{Attempts: 1, Sleep: (&noSleep{}).sleep}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindRelease(context.Background(), "v1.0.0")
	if !errors.Is(err, github.ErrAPIResponseTooLarge) {
		t.Fatalf("err = %v, want ErrAPIResponseTooLarge", err)
	}
	t.Logf("capped: %.200s", err)
}

// The stall timer restarts on every read that returns data: a slow server
// that sends a piece every 200 ms for two seconds never trips a 1 s stall
// timeout (a timer that did not restart would fire half-way). The margin is
// wide so that a loaded machine's scheduling delays do not count as stalls.
func TestDownloadSlowButSteadyIsNoStall(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	rel := srv.AddRelease("v1.0.0", map[string][]byte{"fluid.img.zst": data})
	rel.Assets[0].Trickle = 200 * time.Millisecond
	c := downloadClient(t, srv, time.Second, 0)
	r := findAsset(t, c, "fluid.img.zst")
	a, _ := r.Asset("fluid.img.zst")
	var buf bytes.Buffer
	start := time.Now()
	if err := c.DownloadAsset(context.Background(), a, &buf, nil); err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("got %d bytes, want %d", buf.Len(), len(data))
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// RepositoryIDs returns what GET /repos/{owner}/{repo} says; another
// repository's server gives other IDs.
func TestRepositoryIDs(t *testing.T) {
	srv := githubtest.New("fluid-os", "fluid")
	defer srv.Close()
	c := newClient(t, srv, nil, nil)
	rid, oid, err := c.RepositoryIDs(context.Background())
	if err != nil || rid != srv.RepositoryID() || oid != srv.OwnerID() {
		t.Fatalf("IDs %d, %d, %v; want %d, %d", rid, oid, err, srv.RepositoryID(), srv.OwnerID())
	}
	other := githubtest.New("fluid-os", "fluid2")
	defer other.Close()
	if other.RepositoryID() == rid {
		t.Fatal("two repositories share an ID")
	}
}

// With Commit, Publish ties the release to the built commit: a missing tag
// is created there (not at main's head), a tag elsewhere stops it before
// anything is created or uploaded.
func TestPublishTagAtBuiltCommit(t *testing.T) {
	built, other := strings.Repeat("b", 40), strings.Repeat("a", 40)
	srv := githubtest.New("fluid-os", "fluid")
	defer srv.Close()
	srv.SeedCommit(built, map[string][]byte{"a": []byte("built")})
	srv.SeedCommit(other, map[string][]byte{"a": []byte("main")})
	srv.SetRef("heads/main", other)
	c := newClient(t, srv, &noSleep{}, nil)
	assets := writeAssets(t, map[string]string{"checksums.txt": "sums"})
	ctx := context.Background()
	if _, err := c.Publish(ctx, github.PublishOptions{Tag: "v1.0.0", Assets: assets, Commit: built}); err != nil {
		t.Fatal(err)
	}
	if at, _ := srv.Ref("tags/v1.0.0"); at != built {
		t.Fatalf("tag created at %q, want the built commit %s", at, built)
	}
	srv.SetRef("tags/v2.0.0", other)
	_, err := c.Publish(ctx, github.PublishOptions{Tag: "v2.0.0", Assets: assets, Commit: built})
	if err == nil || !strings.Contains(err.Error(), "tag v2.0.0 in fluid-os/fluid points at commit "+other+", but the release was built from "+built) {
		t.Fatalf("tag at another commit: %v", err)
	}
	if srv.Release("v2.0.0") != nil {
		t.Fatal("a release was created for a tag at another commit")
	}
}
