package oci

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// pushWithin runs Push and fails the test if it has not returned in d.
func pushWithin(t *testing.T, d time.Duration, repo string, auth authn.Authenticator) error {
	t.Helper()
	img := testImage(t)
	errc := make(chan error, 1)
	go func() {
		_, err := Push(context.Background(), img, repo, auth)
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(d):
		t.Fatalf("Push still running after %s", d)
		return nil
	}
}

// withStallTimeout lowers the time Push waits for a registry that stops.
func withStallTimeout(t *testing.T, d time.Duration) {
	old := stallTimeout
	stallTimeout = d
	t.Cleanup(func() { stallTimeout = old })
}

// A registry that stops answering (or stops reading the upload) must not
// hang Push for ever: there was no timeout but the caller's context.
func TestPushStallingRegistry(t *testing.T) {
	withStallTimeout(t, 500*time.Millisecond)
	for _, tc := range []struct {
		name  string
		stall func(r *http.Request) bool
	}{
		{"no answer to the ping", func(r *http.Request) bool { return r.URL.Path == "/v2/" }},
		{"no answer to the manifest PUT", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		}},
		{"stops reading the layer upload", func(r *http.Request) bool {
			return r.Method == http.MethodPatch || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			repo := serve(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tc.stall(r) {
						select {
						case <-release:
						case <-r.Context().Done():
						}
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			err := pushWithin(t, 30*time.Second, repo, authn.Anonymous)
			if !errors.Is(err, ErrStalled) {
				t.Fatalf("Push: %v, want ErrStalled", err)
			}
		})
	}
}

// A registry that answers with a body that never ends (ggcr drains the
// ping's body without a bound) or a huge one.
func TestPushEndlessBody(t *testing.T) {
	withStallTimeout(t, 5*time.Second)
	for _, tc := range []struct {
		name    string
		when    func(r *http.Request) bool
		refused bool // else the body is dropped (the ping's), and Push goes on
	}{
		{"ping", func(r *http.Request) bool { return r.URL.Path == "/v2/" }, false},
		{"manifest read back", func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := serve(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !tc.when(r) {
						h.ServeHTTP(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					w.WriteHeader(http.StatusOK)
					buf := make([]byte, 64<<10)
					for r.Context().Err() == nil {
						if _, err := w.Write(buf); err != nil {
							return
						}
					}
				})
			})
			err := pushWithin(t, 60*time.Second, repo, authn.Anonymous)
			if tc.refused && (err == nil || !strings.Contains(err.Error(), "larger than")) || !tc.refused && err != nil {
				t.Fatalf("Push: %v (want a refused body: %v)", err, tc.refused)
			}
		})
	}
}

// A registry that redirects (blob and manifest requests) to another host
// must not get the credentials sent along.
func TestPushRedirectKeepsCredentials(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	var registryURL string
	// The other host serves what the registry would, and records any
	// Authorization header it sees.
	var regHandler http.Handler
	redirected := 0
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		redirected++
		mu.Unlock()
		if a := r.Header.Get("Authorization"); a != "" {
			mu.Lock()
			leaked = append(leaked, r.Method+" "+r.URL.Path+": "+a)
			mu.Unlock()
		}
		regHandler.ServeHTTP(w, r)
	}))
	defer other.Close()
	// localhost vs 127.0.0.1: another host name, as a redirect to a CDN is.
	ou, _ := url.Parse(other.URL)
	otherHost := "localhost:" + ou.Port()
	repo := serve(t, func(h http.Handler) http.Handler {
		regHandler = h
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "actor" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") || r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/") {
				http.Redirect(w, r, "http://"+otherHost+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	registryURL = repo
	if err := pushWithin(t, 60*time.Second, registryURL, BasicAuth("actor", "s3cret")); err != nil {
		t.Errorf("Push: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if redirected == 0 {
		t.Error("the registry never redirected")
	}
	if len(leaked) > 0 {
		t.Errorf("credentials sent to the host redirected to: %q", leaked)
	}
}

// WriteLayout over a symlink, or over a directory that holds a layout and
// other files: refused, and nothing behind the link or in the directory
// is touched.
func TestWriteLayoutRefusesSymlinkAndMixedDir(t *testing.T) {
	img := testImage(t)
	parent := t.TempDir()
	target := filepath.Join(parent, "real")
	if err := WriteLayout(target, img, testRef); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "link")
	os.Symlink(target, link)
	if err := WriteLayout(link, img, testRef); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("WriteLayout over a symlink: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v", err)
	}
	mixed := filepath.Join(parent, "mixed")
	os.MkdirAll(mixed, 0o755)
	os.WriteFile(filepath.Join(mixed, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(mixed, "notes.txt"), []byte("keep"), 0o644)
	if err := WriteLayout(mixed, img, testRef); err == nil || !strings.Contains(err.Error(), "not replacing") {
		t.Errorf("WriteLayout over a layout with other files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mixed, "notes.txt")); err != nil {
		t.Errorf("notes.txt is gone: %v", err)
	}
}

// WriteDockerTar onto a directory: an error, the directory as it was, no
// temporary file left.
func TestWriteDockerTarOntoDirectory(t *testing.T) {
	img := testImage(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "image.tar")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644)
	if err := WriteDockerTar(dir, img, testRef); err == nil {
		t.Fatal("WriteDockerTar onto a directory succeeded")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("parent holds %v", entries)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "keep")); err != nil || string(data) != "x" {
		t.Errorf("the directory changed: %v", err)
	}
}
