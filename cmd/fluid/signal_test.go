package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/github/githubtest"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
	cliDir  string
)

// buildCLI builds the fluid command once per test binary run.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		cliDir, cliErr = os.MkdirTemp("", "fluid-cli-")
		if cliErr != nil {
			return
		}
		cliPath = filepath.Join(cliDir, "fluid")
		out, err := exec.Command("go", "build", "-o", cliPath, ".").CombinedOutput()
		if err != nil {
			cliErr = err
			cliPath = string(out)
		}
	})
	if cliErr != nil {
		t.Fatalf("go build: %v\n%s", cliErr, cliPath)
	}
	return cliPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// stallingFront stands in front of a githubtest server: it answers every
// request with the server's own handler (its storage redirects rewritten to
// point back here), and serves stallPath (a storage URL path) as half the
// body under the full Content-Length, then stalls until the client goes
// away. stalled is closed once the half is sent.
func stallingFront(t *testing.T, srv *githubtest.Server, stallPath string, data []byte) (front *httptest.Server, stalled chan struct{}) {
	t.Helper()
	inner := srv.Config.Handler
	stalled = make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != stallPath {
			inner.ServeHTTP(&locationRewriter{ResponseWriter: w, from: srv.URL, to: front.URL}, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		once.Do(func() { close(stalled) })
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); front.Close() })
	return front, stalled
}

// locationRewriter points redirects to from... at to... instead.
type locationRewriter struct {
	http.ResponseWriter
	from, to    string
	wroteHeader bool
}

func (l *locationRewriter) WriteHeader(code int) {
	if !l.wroteHeader {
		l.wroteHeader = true
		if loc := l.Header().Get("Location"); strings.HasPrefix(loc, l.from) {
			l.Header().Set("Location", l.to+strings.TrimPrefix(loc, l.from))
		}
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *locationRewriter) Write(b []byte) (int, error) {
	if !l.wroteHeader {
		l.WriteHeader(http.StatusOK)
	}
	return l.ResponseWriter.Write(b)
}

// TestDownloadSignalCleansUp runs the built CLI against a server whose image
// download stalls half way, signals it mid-download and checks that it exits
// on its own (not killed by the signal) with 128+the signal's number, saying
// it was interrupted, and leaves no staging directory or partial file
// behind. Two signals at once (systemd sends SIGTERM and SIGHUP together)
// stop it at once, still without leftovers.
func TestDownloadSignalCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildCLI(t)
	fx := newFixture(t, newSigner(t))
	for _, sigs := range [][]syscall.Signal{
		{syscall.SIGTERM}, {syscall.SIGHUP}, {syscall.SIGINT},
		{syscall.SIGTERM, syscall.SIGHUP}, {syscall.SIGINT, syscall.SIGINT},
	} {
		var names []string
		for _, s := range sigs {
			names = append(names, s.String())
		}
		t.Run(strings.Join(names, "+"), func(t *testing.T) {
			srv := fx.serve(t)
			zst := asset(srv.Release("v1.0.0"), "fluid-pgo.img.zst")
			front, stalled := stallingFront(t, srv, "/storage/"+strconv.FormatInt(zst.ID, 10), zst.Data)

			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			cmd := exec.Command(bin, "download", "--version", "v1.0.0", "--key", fx.pubKey, "-o", dest)
			cmd.Env = append(os.Environ(), "GITHUB_API_URL="+front.URL+"/", "GITHUB_TOKEN=")
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-stalled:
			case err := <-exited:
				t.Fatalf("fluid exited before the download stalled: %v\n%s", err, &stderr)
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("download never started\n%s", &stderr)
			}
			// Wait until the partial file is on disk in the staging directory.
			deadline := time.Now().Add(10 * time.Second)
			for {
				m, _ := filepath.Glob(filepath.Join(dest, ".fluid-download-*", "fluid-pgo.img.zst"))
				if len(m) == 1 {
					if fi, err := os.Stat(m[0]); err == nil && fi.Size() > 0 {
						break
					}
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("no partial file in a staging directory\n%s", &stderr)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for i, sig := range sigs {
				if err := cmd.Process.Signal(sig); err != nil && !(i > 0 && errors.Is(err, os.ErrProcessDone)) {
					t.Fatal(err)
				}
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("fluid did not exit within 30s of %v\n%s", names, &stderr)
			}
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("exit: %v, want a non-zero exit\n%s", err, &stderr)
			}
			for _, dir := range []string{parent, dest} {
				m, _ := filepath.Glob(filepath.Join(dir, ".fluid-download-*"))
				if len(m) != 0 {
					t.Fatalf("staging directory left behind: %v\n%s", m, &stderr)
				}
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				ents, _ := os.ReadDir(dest)
				t.Fatalf("destination %s left behind (%v)\n%s", dest, ents, &stderr)
			}
			if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
				t.Fatalf("fluid was killed by %v instead of cleaning up and exiting\n%s", ws.Signal(), &stderr)
			}
			if code := ee.ExitCode(); code != 128+int(sigs[0]) && code != 128+int(sigs[len(sigs)-1]) {
				t.Fatalf("exit %d, want 128+signal\n%s", code, &stderr)
			}
			if !strings.Contains(stderr.String(), "interrupted (") && !strings.Contains(stderr.String(), "again: stopped at once") {
				t.Fatalf("stderr does not say the download was interrupted:\n%s", &stderr)
			}
			if strings.Contains(stderr.String(), "REFUSED") {
				t.Fatalf("an interruption is reported as a refusal:\n%s", &stderr)
			}
			t.Logf("exit %d after %v:\n%s", ee.ExitCode(), names, &stderr)
		})
	}
}
