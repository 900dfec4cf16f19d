// Package github talks to the GitHub REST API through go-github: it finds
// releases, downloads their assets (following GitHub's redirect to the
// storage URL) and publishes releases idempotently. Every call retries on 5xx
// and transient network errors with exponential backoff, and on rate limits
// waits for the reset time GitHub announces.
package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fluid-os/fluid/internal/verdict"
	gh "github.com/google/go-github/v60/github"
)

// DefaultAPIURL is github.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Options configure a Client. The zero value talks to github.com anonymously.
type Options struct {
	// Token authenticates (env GITHUB_TOKEN in the CLI and mage targets).
	// Empty means anonymous: enough to download public releases.
	Token string
	// APIURL is the REST API base, e.g. https://ghe.example.com/api/v3/ for
	// GitHub Enterprise Server or an httptest server in tests (env
	// GITHUB_API_URL). Default DefaultAPIURL.
	APIURL string
	// UploadURL is the asset upload base (GHES: https://HOST/api/uploads/).
	// Default: uploads.github.com for github.com, else APIURL.
	UploadURL string
	// HTTPClient carries API requests and asset downloads. Default: a client
	// with a 30 s connection timeout and no overall timeout (images are big).
	HTTPClient *http.Client
	// Retry controls retries; zero fields take the defaults.
	Retry Retry
	// Log receives one line per retry and per publish step; nil discards.
	Log io.Writer
	// StallTimeout fails an asset download when the body delivers no byte
	// for this long (the timer restarts on every read that returns data).
	// Default DefaultStallTimeout; negative disables it.
	StallTimeout time.Duration
	// DownloadTimeout, when > 0, is the longest one asset download may take
	// from the first request to the last byte. Zero means no deadline.
	DownloadTimeout time.Duration
}

// DefaultStallTimeout is how long an asset download may go without
// receiving a byte before it fails.
const DefaultStallTimeout = 60 * time.Second

// MaxAPIResponse caps the body of every REST API answer other than an asset
// download (release metadata, asset lists, error messages): go-github reads
// and decodes them whole, so a server that streams forever would otherwise
// fill memory. Release notes are limited to 125,000 characters and an asset
// page to 100 entries, far below this.
const MaxAPIResponse = 32 << 20

// Retry says how often and how long to retry.
type Retry struct {
	// Attempts is the total number of tries per call (default 5).
	Attempts int
	// BaseDelay is the first backoff delay, doubled each retry (default 1 s).
	BaseDelay time.Duration
	// MaxWait is the longest the client waits for a rate limit to reset
	// before giving up (default 15 min).
	MaxWait time.Duration
	// Sleep waits for d or until ctx ends. Tests replace it to record waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for rate-limit reset times. Default time.Now.
	Now func() time.Time
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = time.Second
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 15 * time.Minute
	}
	if r.Sleep == nil {
		r.Sleep = sleepCtx
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Client is a go-github client bound to one repository.
type Client struct {
	gh          *gh.Client
	http        *http.Client
	owner, repo string
	retry       Retry
	log         io.Writer
	apiHost     string
	stall       time.Duration // <= 0: no stall timeout
	deadline    time.Duration // <= 0: no overall download deadline
}

// New returns a client for repository "owner/name".
func New(repository string, opts Options) (*Client, error) {
	owner, name, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("repository %q: want owner/name, e.g. fluid-os/fluid", repository)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
		}}
	}
	stall := opts.StallTimeout
	if stall == 0 {
		stall = DefaultStallTimeout
	}
	// go-github reads API answers whole: give it a client whose transport
	// caps them and gives up on one that stalls. Asset bodies (Accept:
	// application/octet-stream, answered 2xx) are bounded by DownloadAsset
	// itself, by the asset's declared size and its own stall watchdog.
	capped := *hc
	capped.Transport = &capTransport{base: hc.Transport, max: MaxAPIResponse, stall: stall}
	c := gh.NewClient(&capped)
	if opts.Token != "" {
		c = c.WithAuthToken(opts.Token)
	}
	api := opts.APIURL
	if api == "" || strings.TrimSuffix(api, "/")+"/" == DefaultAPIURL {
		// GitHub Actions sets GITHUB_API_URL=https://api.github.com: that is
		// github.com, whose uploads go to uploads.github.com.
		api = DefaultAPIURL
	}
	if api != DefaultAPIURL || opts.UploadURL != "" {
		base, err := parseBase(api)
		if err != nil {
			return nil, fmt.Errorf("GitHub API URL: %w", err)
		}
		up := base
		if opts.UploadURL != "" {
			if up, err = parseBase(opts.UploadURL); err != nil {
				return nil, fmt.Errorf("GitHub upload URL: %w", err)
			}
		}
		c.BaseURL, c.UploadURL = base, up
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	return &Client{gh: c, http: hc, owner: owner, repo: name, retry: opts.Retry.withDefaults(), log: log, apiHost: c.BaseURL.Host,
		stall: stall, deadline: opts.DownloadTimeout}, nil
}

// capTransport limits the body of every API answer to max bytes and fails
// one that delivers no byte for stall (when > 0). An asset body (a request
// for application/octet-stream answered 2xx) is left to DownloadAsset; an
// error answer to such a request is an API answer like any other (go-github
// reads it whole).
type capTransport struct {
	base  http.RoundTripper
	max   int64
	stall time.Duration
}

func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if req.Header.Get("Accept") == "application/octet-stream" && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	what := req.Method + " " + req.URL.Redacted()
	b := &cappedBody{rc: resp.Body, left: t.max, max: t.max, what: what}
	if t.stall > 0 {
		// Closing the body from the timer unblocks a Read waiting on it.
		b.stall = t.stall
		b.timer = time.AfterFunc(t.stall, func() { b.stalled.Store(true); resp.Body.Close() })
	}
	resp.Body = b
	return resp, nil
}

// ErrAPIResponseTooLarge is returned (wrapped) when an API answer is longer
// than MaxAPIResponse.
var ErrAPIResponseTooLarge = errors.New("GitHub API answer is larger than the client accepts")

// ErrAPIStalled is returned (wrapped) when an API answer stops arriving for
// the stall timeout.
var ErrAPIStalled = errors.New("GitHub API answer stalled")

type cappedBody struct {
	rc      io.ReadCloser
	left    int64 // bytes still allowed
	max     int64
	what    string
	stall   time.Duration
	timer   *time.Timer // nil: no stall watchdog
	stalled atomic.Bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%s: %w (%d bytes)", b.what, ErrAPIResponseTooLarge, b.max)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if b.timer != nil {
		if b.stalled.Load() {
			return 0, fmt.Errorf("%s: %w: no data for %s", b.what, ErrAPIStalled, b.stall)
		}
		b.timer.Reset(b.stall)
	}
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, fmt.Errorf("%s: %w (%d bytes)", b.what, ErrAPIResponseTooLarge, b.max)
	}
	return n, err
}

func (b *cappedBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	return b.rc.Close()
}

func parseBase(s string) (*url.URL, error) {
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	return u, nil
}

// Repository returns "owner/name".
func (c *Client) Repository() string { return c.owner + "/" + c.repo }

// call runs fn, retrying on 5xx, transient network errors and rate limits.
// what names the operation in log lines and errors.
func (c *Client) call(ctx context.Context, what string, fn func() (*gh.Response, error)) error {
	var err error
	for attempt := 1; ; attempt++ {
		var resp *gh.Response
		resp, err = fn()
		if err == nil {
			return nil
		}
		wait, retry := c.classify(err, resp, attempt)
		if !retry || attempt >= c.retry.Attempts {
			break
		}
		if wait > c.retry.MaxWait {
			return fmt.Errorf("%s: GitHub rate limit resets in %s, longer than the %s this client waits; try again later: %w",
				what, wait.Round(time.Second), c.retry.MaxWait, err)
		}
		fmt.Fprintf(c.log, "github: %s: %v; retry %d/%d in %s\n", what, shortErr(err), attempt, c.retry.Attempts-1, wait.Round(time.Millisecond))
		if serr := c.retry.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: %w", what, serr)
		}
	}
	return c.wrap(what, err)
}

// callResult is c.call for a go-github method that returns a value: fn's
// value from its last attempt, and call's error.
func callResult[T any](ctx context.Context, c *Client, what string, fn func() (T, *gh.Response, error)) (T, error) {
	var v T
	err := c.call(ctx, what, func() (resp *gh.Response, err error) {
		v, resp, err = fn()
		return resp, err
	})
	return v, err
}

// classify says whether err is worth retrying and how long to wait first.
func (c *Client) classify(err error, resp *gh.Response, attempt int) (time.Duration, bool) {
	backoff := c.retry.BaseDelay << (attempt - 1)
	var rl *gh.RateLimitError
	if errors.As(err, &rl) {
		wait := rl.Rate.Reset.Time.Sub(c.retry.Now()) + time.Second
		if wait < time.Second {
			wait = time.Second
		}
		return wait, true
	}
	var abuse *gh.AbuseRateLimitError
	if errors.As(err, &abuse) {
		if abuse.RetryAfter != nil {
			return *abuse.RetryAfter, true
		}
		return time.Minute, true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		status = er.Response.StatusCode
	}
	switch {
	case status == http.StatusTooManyRequests:
		if resp != nil && resp.Response != nil {
			if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				return d, true
			}
		}
		return backoff, true
	case status >= 500:
		return backoff, true
	case status != 0:
		return 0, false
	}
	if isNetErr(err) {
		// No route to GitHub at all (unknown host, nothing listening):
		// waiting will not help, say so at once. Resets, timeouts and
		// cut-off bodies are worth another try.
		var de *net.DNSError
		if (errors.As(err, &de) && de.IsNotFound) || errors.Is(err, syscall.ECONNREFUSED) {
			return 0, false
		}
		return backoff, true
	}
	return 0, false
}

func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	return 0, false
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &de) || errors.As(err, &oe) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// wrap turns a final error into one that says what it means: no network,
// or what the API answered.
func (c *Client) wrap(what string, err error) error {
	if errors.Is(err, ErrAPIStalled) || errors.Is(err, ErrAPIResponseTooLarge) {
		return &verdict.CheckError{Check: verdict.CheckNetwork, Subject: c.apiHost, Err: fmt.Errorf("%s: %w", what, err),
			Meaning: "the server is not answering as GitHub does; nothing was verified, try again later"}
	}
	if isNetErr(err) {
		return &verdict.CheckError{Check: verdict.CheckNetwork, Subject: c.apiHost, Err: fmt.Errorf("%s: %w", what, err),
			Meaning: "GitHub could not be reached; check your network connection or proxy (HTTPS_PROXY) and try again"}
	}
	var er *gh.ErrorResponse
	var rl *gh.RateLimitError
	var abuse *gh.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &abuse) ||
		(errors.As(err, &er) && er.Response != nil && (er.Response.StatusCode >= 500 || er.Response.StatusCode == http.StatusTooManyRequests)) {
		return &verdict.CheckError{Check: verdict.CheckNetwork, Subject: c.apiHost, Err: fmt.Errorf("%s: %w", what, err),
			Meaning: "GitHub is unavailable or rate-limiting this client; nothing was verified, try again later"}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func shortErr(err error) string {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return fmt.Sprintf("HTTP %d %s", er.Response.StatusCode, er.Message)
	}
	return err.Error()
}

// isNotFound reports whether err is an API 404.
func isNotFound(err error) bool {
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}
