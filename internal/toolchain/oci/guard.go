package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// ErrStalled is wrapped when a registry exchanges no byte with [Push] for
// the stall timeout (5 minutes): a registry that stops answering or stops
// reading an upload would otherwise hang the push for ever, as nothing
// else bounds it but the caller's context.
var ErrStalled = errors.New("the registry stopped responding")

// stallTimeout is how long a request may make no progress (a variable so
// tests can shorten it). It is long: after the last byte of a layer of
// hundreds of MB a registry may take a while to check its digest.
var stallTimeout = 5 * time.Minute

// maxResponseBody bounds every response body Push reads. Push reads only
// small ones (a manifest of a few hundred bytes, JSON errors, tokens);
// go-containerregistry reads a manifest up to 100 MiB and drains a ping's
// body without any bound.
const maxResponseBody = 4 << 20

// guard is the innermost transport of Push: it cancels a request that
// makes no progress for idle and fails a response body past limit.
type guard struct {
	base  http.RoundTripper
	idle  time.Duration
	limit int64
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{idle: g.idle, cancel: cancel}
	w.start()
	r := req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = &progressReader{ReadCloser: req.Body, w: w}
	}
	if req.GetBody != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := req.GetBody()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return &progressReader{ReadCloser: b, w: w}, nil
		}
	}
	resp, err := g.base.RoundTrip(r)
	if err != nil {
		w.stop()
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, ErrStalled) {
			return nil, fmt.Errorf("oci: %s %s: %w", req.Method, req.URL.Redacted(), cause)
		}
		return nil, err
	}
	w.kick()
	resp.Body = &guardedBody{rc: resp.Body, w: w, ctx: ctx, cancel: cancel, left: g.limit, what: req.Method + " " + req.URL.Redacted()}
	return resp, nil
}

// watchdog cancels its request when kick has not been called for idle.
type watchdog struct {
	idle   time.Duration
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	t      *time.Timer
}

func (w *watchdog) start() {
	w.t = time.AfterFunc(w.idle, func() {
		w.cancel(fmt.Errorf("%w: no progress for %s", ErrStalled, w.idle))
	})
}

func (w *watchdog) kick() {
	w.mu.Lock()
	w.t.Reset(w.idle)
	w.mu.Unlock()
}

func (w *watchdog) stop() {
	w.mu.Lock()
	w.t.Stop()
	w.mu.Unlock()
}

// progressReader is a request body: every read is progress.
type progressReader struct {
	io.ReadCloser
	w *watchdog
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	p.w.kick()
	return n, err
}

// guardedBody is a response body: reads are progress, and it ends in an
// error past its limit or when the watchdog fired.
type guardedBody struct {
	rc     io.ReadCloser
	w      *watchdog
	ctx    context.Context
	cancel context.CancelCauseFunc
	left   int64
	what   string
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("oci: %s: the registry's response is larger than %d bytes; refusing it", b.what, maxResponseBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if n > 0 {
		b.w.kick()
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrStalled) {
			err = fmt.Errorf("oci: %s: %w", b.what, cause)
		}
	}
	return n, err
}

func (b *guardedBody) Close() error {
	b.w.stop()
	b.cancel(nil)
	return b.rc.Close()
}
