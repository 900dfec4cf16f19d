package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// F12: keyless fluid download fetches Sigstore's trusted root through TUF.
// A TUF mirror (or anything on the path) that accepts the request and never
// answers must not hang fluid: --timeout (and a signal) end the fetch, exit 4.
// The mirror here is a local server that takes each request and stalls; the
// TUF cache is in a fresh HOME, so the fetch has to go to it.
func TestHostileTUFFetchIgnoresTimeout(t *testing.T) {
	requests := make(chan string, 16)
	stop := make(chan struct{})
	mirror := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case requests <- r.URL.Path:
		default:
		}
		select { // accept the request, never answer
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); mirror.Close() })
	t.Setenv("HOME", t.TempDir()) // no ~/.sigstore cache
	tufTestMirror = mirror.URL
	t.Cleanup(func() { tufTestMirror = "" })

	w := newReplayWorld(t, false)
	setKeylessTest(t, false, replayRepoID, replayOwnerID)
	dest := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	done, ok := runCLIAsync(t, w.srv.APIURL(), 20*time.Second, "download", "--version", "v1.0.0", "--timeout", "3s", "-o", dest)
	if !ok {
		t.Fatalf("fluid download --timeout 3s (keyless) still running after 20s: the TUF fetch ignores --timeout")
	}
	r := <-done
	select {
	case p := <-requests:
		t.Logf("the TUF fetch reached the stalling mirror (%s) and gave up after %s", p, time.Since(start).Round(100*time.Millisecond))
	default:
		t.Fatalf("the TUF fetch never reached the mirror (exit %v): %v", r[0], r[2])
	}
	if r[0] != exitNetwork || !strings.Contains(r[2].(string), "gave up after --timeout 3s") {
		t.Fatalf("exit %v, want %d naming the timeout: %v", r[0], exitNetwork, r[2])
	}
}
