package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/verdict"
	gh "github.com/google/go-github/v60/github"
	"golang.org/x/mod/semver"
)

// Release is a release and its assets.
type Release struct {
	Tag    string
	ID     int64
	Assets []*gh.ReleaseAsset
}

// Asset returns the asset called name, or a *verdict.CheckError naming the
// missing asset and the assets the release does have.
func (r *Release) Asset(name string) (*gh.ReleaseAsset, error) {
	var have []string
	for _, a := range r.Assets {
		if a.GetName() == name {
			return a, nil
		}
		have = append(have, a.GetName())
	}
	return nil, &verdict.CheckError{Check: verdict.CheckAsset, Subject: name,
		Err:     fmt.Errorf("release %s has no asset %s (it has: %v)", r.Tag, name, have),
		Meaning: "the release is incomplete or is not a Fluid OS release; pick another --version or report it"}
}

// FindRelease returns the release for version: "latest" (the newest
// non-draft, non-prerelease release) or a tag such as v1.2.3.
func (c *Client) FindRelease(ctx context.Context, version string) (*Release, error) {
	var rel *gh.RepositoryRelease
	what := fmt.Sprintf("look up release %s of %s", version, c.Repository())
	err := c.call(ctx, what, func() (*gh.Response, error) {
		var resp *gh.Response
		var err error
		if version == "" || version == "latest" {
			rel, resp, err = c.gh.Repositories.GetLatestRelease(ctx, c.owner, c.repo)
		} else {
			rel, resp, err = c.gh.Repositories.GetReleaseByTag(ctx, c.owner, c.repo, version)
		}
		return resp, err
	})
	if err != nil {
		if isNotFound(err) {
			return nil, &verdict.CheckError{Check: verdict.CheckRelease, Subject: c.Repository() + "@" + version,
				Err:     fmt.Errorf("no release %s in %s", version, c.Repository()),
				Meaning: "check the tag (e.g. v1.2.3, or latest) and the --repo; releases are listed on the repository's Releases page"}
		}
		return nil, err
	}
	r := &Release{Tag: rel.GetTagName(), ID: rel.GetID()}
	if version == "" || version == "latest" {
		if err := c.checkLatest(ctx, r.Tag); err != nil {
			return nil, err
		}
	}
	if version != "" && version != "latest" && r.Tag != version {
		// GitHub answers /releases/tags/X with the release of tag X; another
		// tag is a server that is not GitHub or not honest.
		return nil, &verdict.CheckError{Check: verdict.CheckVersion, Subject: c.Repository() + "@" + version,
			Err:     fmt.Errorf("asked for release %s, the server answered with release %s", version, r.Tag),
			Meaning: "the download server is not answering as GitHub does; do not use what it serves"}
	}
	// The release object lists at most 30 assets; page through all of them.
	assets, err := c.listAssets(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	r.Assets = assets
	return r, nil
}

// maxListPages bounds how many pages of 100 a listing follows: a server
// whose Link headers never end would otherwise be followed forever.
const maxListPages = 20

// errTooManyPages is returned (wrapped) by eachPage for a listing longer
// than maxListPages pages.
var errTooManyPages = fmt.Errorf("the listing goes on for more than %d pages of 100", maxListPages)

// eachPage is the one way a listing is read: list is called for one page of
// 100 at a time through c.call (retries, caps), and each page goes to visit
// until visit says stop, the last page has been read, or maxListPages pages
// have (then the error wraps errTooManyPages).
func eachPage[T any](ctx context.Context, c *Client, what string, list func(*gh.ListOptions) ([]T, *gh.Response, error), visit func([]T) (stop bool, err error)) error {
	opt := &gh.ListOptions{PerPage: 100}
	for pages := 1; ; pages++ {
		if pages > maxListPages {
			return fmt.Errorf("%s: %w", what, errTooManyPages)
		}
		var page []T
		var resp *gh.Response
		if err := c.call(ctx, what, func() (*gh.Response, error) {
			var err error
			page, resp, err = list(opt)
			return resp, err
		}); err != nil {
			return err
		}
		if stop, err := visit(page); stop || err != nil {
			return err
		}
		if resp.NextPage == 0 {
			return nil
		}
		opt.Page = resp.NextPage
	}
}

func (c *Client) listAssets(ctx context.Context, releaseID int64) ([]*gh.ReleaseAsset, error) {
	var all []*gh.ReleaseAsset
	err := eachPage(ctx, c, fmt.Sprintf("list assets of release %d", releaseID),
		func(opt *gh.ListOptions) ([]*gh.ReleaseAsset, *gh.Response, error) {
			return c.gh.Repositories.ListReleaseAssets(ctx, c.owner, c.repo, releaseID, opt)
		},
		func(page []*gh.ReleaseAsset) (bool, error) { all = append(all, page...); return false, nil })
	if errors.Is(err, errTooManyPages) {
		return nil, &verdict.CheckError{Check: verdict.CheckAsset, Subject: fmt.Sprintf("release %d", releaseID),
			Err:     fmt.Errorf("the asset list goes on for more than %d pages of 100", maxListPages),
			Meaning: "a Fluid OS release has a few dozen assets; this is not one, or the server is not answering as GitHub does"}
	}
	return all, err
}

// DownloadAsset streams asset a into w. It asks the API for the asset with
// Accept: application/octet-stream; GitHub answers 302 with a storage URL,
// which is fetched without the API token. progress, when not nil, is called
// with the running byte count.
//
// The body is read through a limit of the size the API declared for the
// asset (a.Size): a body that goes one byte past it fails at once, the rest
// is not read, and w never receives more than the declared size. A body
// shorter or longer than declared, a body that delivers nothing for the
// client's StallTimeout, and a download that outlasts its DownloadTimeout
// are each a *verdict.CheckError with Check == CheckDownload that names the
// asset.
func (c *Client) DownloadAsset(ctx context.Context, a *gh.ReleaseAsset, w io.Writer, progress func(int64)) error {
	name := a.GetName()
	if a.Size == nil || a.GetSize() < 0 {
		return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
			Err:     fmt.Errorf("the release does not declare the size of asset %s; refusing an unbounded download", name),
			Meaning: "the server's answer is not what GitHub sends; try again later or report it"}
	}
	want := int64(a.GetSize())
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if c.deadline > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, c.deadline, errDeadline)
		defer stop()
	}
	var body io.ReadCloser
	var length int64 = -1
	err := c.call(ctx, "download "+name, func() (*gh.Response, error) {
		rc, redirect, err := c.gh.Repositories.DownloadReleaseAsset(ctx, c.owner, c.repo, a.GetID(), nil)
		if err != nil {
			var er *gh.ErrorResponse
			if errors.As(err, &er) {
				return &gh.Response{Response: er.Response}, err
			}
			return nil, err
		}
		if redirect == "" {
			body = rc
			return nil, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, redirect, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/octet-stream")
		resp, err := c.http.Do(req) // storage URLs are pre-signed: no token
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return &gh.Response{Response: resp}, &gh.ErrorResponse{Response: resp, Message: "asset storage answered " + resp.Status}
		}
		body, length = resp.Body, resp.ContentLength
		return nil, nil
	})
	if err != nil {
		if errors.Is(context.Cause(ctx), errDeadline) {
			return c.deadlineErr(name, 0, want)
		}
		return err
	}
	defer body.Close()
	if length >= 0 && length != want {
		return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
			Err:     fmt.Errorf("server announces %d bytes, the release lists %d", length, want),
			Meaning: "the download is not the asset the release describes; try again later"}
	}
	var src io.Reader = body
	if c.stall > 0 {
		// The watchdog starts once the answer's headers are in: a body that
		// delivers nothing for c.stall cancels the request.
		t := time.AfterFunc(c.stall, func() { cancel(errStalled) })
		defer t.Stop()
		src = &stallReader{r: src, t: t, d: c.stall}
	}
	lim := &sizeLimit{r: src, max: want}
	n, err := io.Copy(w, &progressReader{r: lim, fn: progress})
	switch cause := context.Cause(ctx); {
	case errors.Is(err, errTooLong):
		return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
			Err:     fmt.Errorf("asset %s: the server sent more than the %d bytes it declared; stopped reading after %d bytes", name, want, lim.n),
			Meaning: "the download is not the asset the release describes; nothing was kept, try again later or report it"}
	case err != nil && errors.Is(cause, errStalled):
		return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
			Err:     fmt.Errorf("asset %s: the download stalled: no data for %s after %d of %d bytes arrived: %w", name, c.stall, lim.n, want, errStalled),
			Meaning: "the server stopped sending; nothing was kept, run the command again"}
	case err != nil && errors.Is(cause, errDeadline):
		return c.deadlineErr(name, lim.n, want)
	case err != nil:
		return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
			Err:     fmt.Errorf("interrupted after %d of %d bytes: %w", n, want, err),
			Meaning: "the connection broke or the server cut the file short; nothing was kept, run the command again"}
	}
	if n != want {
		return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
			Err:     fmt.Errorf("got %d bytes, the release lists %d", n, want),
			Meaning: "the download was truncated or padded; nothing was kept, run the command again"}
	}
	return nil
}

var (
	errTooLong  = errors.New("body longer than the declared size")
	errStalled  = errors.New("download stalled")
	errDeadline = errors.New("download deadline exceeded")
)

func (c *Client) deadlineErr(name string, got, want int64) error {
	return &verdict.CheckError{Check: verdict.CheckDownload, Subject: name,
		Err:     fmt.Errorf("asset %s: the download did not finish within %s; %d of %d bytes arrived: %w", name, c.deadline, got, want, errDeadline),
		Meaning: "the server is too slow or the download timeout too short; nothing was kept, run the command again"}
}

// sizeLimit reads at most max+1 bytes from r and hands out at most max:
// the byte past max is the error errTooLong.
type sizeLimit struct {
	r    io.Reader
	max  int64
	n    int64 // bytes received from r (at most max+1)
	over bool
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	if l.over {
		return 0, errTooLong
	}
	if room := l.max - l.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	if l.n > l.max {
		l.over = true
		return k - int(l.n-l.max), errTooLong
	}
	return k, err
}

// stallReader restarts timer t (which cancels the download) on every read
// that returns data.
type stallReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.Reset(s.d)
	}
	return n, err
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.n)
	}
	return n, err
}

// ErrNoTag is wrapped by TagCommit's error when the tag does not exist.
var ErrNoTag = errors.New("no such tag")

// TagCommit returns the commit the tag points at, following annotated tag
// objects (at most 8 deep, as a tag of a tag of a commit is legal).
func (c *Client) TagCommit(ctx context.Context, tag string) (string, error) {
	ref, err := callResult(ctx, c, "look up tag "+tag+" of "+c.Repository(), func() (*gh.Reference, *gh.Response, error) {
		return c.gh.Git.GetRef(ctx, c.owner, c.repo, "tags/"+tag)
	})
	if err != nil {
		if isNotFound(err) {
			return "", &verdict.CheckError{Check: verdict.CheckVersion, Subject: c.Repository() + "@" + tag,
				Err:     fmt.Errorf("release %s has no tag %s in %s: %w", tag, tag, c.Repository(), ErrNoTag),
				Meaning: "a release whose tag was deleted cannot be tied to its source; do not use it"}
		}
		return "", err
	}
	typ, sha := ref.GetObject().GetType(), ref.GetObject().GetSHA()
	for i := 0; typ == "tag" && i < 8; i++ {
		obj, err := callResult(ctx, c, "read tag object "+sha+" of "+c.Repository(), func() (*gh.Tag, *gh.Response, error) {
			return c.gh.Git.GetTag(ctx, c.owner, c.repo, sha)
		})
		if err != nil {
			return "", err
		}
		typ, sha = obj.GetObject().GetType(), obj.GetObject().GetSHA()
	}
	if typ != "commit" || len(sha) != 40 && len(sha) != 64 {
		return "", &verdict.CheckError{Check: verdict.CheckVersion, Subject: c.Repository() + "@" + tag,
			Err:     fmt.Errorf("tag %s points at a %s %q, not at a commit", tag, typ, sha),
			Meaning: "release tags point at the commit the release was built from"}
	}
	return sha, nil
}

// checkLatest refuses a "latest" release older than another release of the
// repository: whoever can edit releases can mark an old one latest (the
// API's make_latest), or flag a newer one as a prerelease or a draft, and
// fluid would install the old version as the newest. It reads every page of
// the release list (at most maxListPages) and compares release tags
// (vMAJOR.MINOR.PATCH); a release flagged prerelease or draft counts unless
// its tag says it is a prerelease (v2.0.0-rc.1). What it cannot see is a
// newer release that was deleted: "latest" carries no signed freshness
// (SECURITY.md), so name the version where it matters.
func (c *Client) checkLatest(ctx context.Context, latest string) error {
	if !verdict.IsReleaseTag(latest) {
		return nil // BindRelease refuses it, naming the tag
	}
	err := eachPage(ctx, c, "list releases of "+c.Repository(),
		func(opt *gh.ListOptions) ([]*gh.RepositoryRelease, *gh.Response, error) {
			return c.gh.Repositories.ListReleases(ctx, c.owner, c.repo, opt)
		},
		func(rels []*gh.RepositoryRelease) (bool, error) {
			for _, r := range rels {
				tag := r.GetTagName()
				if !verdict.IsReleaseTag(tag) || semver.Prerelease(tag) != "" || semver.Compare(tag, latest) <= 0 {
					continue
				}
				flag := ""
				switch {
				case r.GetDraft():
					flag = " (as a draft)"
				case r.GetPrerelease():
					flag = " (flagged prerelease, though its tag is not)"
				}
				return true, &verdict.CheckError{Check: verdict.CheckVersion, Subject: c.Repository() + "@latest",
					Err:     fmt.Errorf("the release marked latest is %s, but %s is published%s", latest, tag, flag),
					Meaning: "an older release marked latest would be installed as the newest (a downgrade); pass --version with the release you want"}
			}
			return false, nil
		})
	if errors.Is(err, errTooManyPages) {
		return &verdict.CheckError{Check: verdict.CheckVersion, Subject: c.Repository() + "@latest",
			Err:     fmt.Errorf("the release list goes on for more than %d pages of 100", maxListPages),
			Meaning: "fluid cannot tell whether the release marked latest is the newest; pass --version with the release you want"}
	}
	return err
}

// RepositoryIDs returns GitHub's numeric IDs of the repository and of its
// owner, which Fulcio records in a workflow's signing certificate
// (release.Policy pins them).
func (c *Client) RepositoryIDs(ctx context.Context) (repoID, ownerID int64, err error) {
	r, err := callResult(ctx, c, "look up repository "+c.Repository(), func() (*gh.Repository, *gh.Response, error) {
		return c.gh.Repositories.Get(ctx, c.owner, c.repo)
	})
	if err != nil {
		return 0, 0, err
	}
	if r.GetID() <= 0 || r.GetOwner().GetID() <= 0 || !strings.EqualFold(r.GetFullName(), c.Repository()) {
		return 0, 0, fmt.Errorf("look up repository %s: the answer names %q (ID %d, owner ID %d), not this repository", c.Repository(), r.GetFullName(), r.GetID(), r.GetOwner().GetID())
	}
	return r.GetID(), r.GetOwner().GetID(), nil
}
