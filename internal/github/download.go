package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	gh "github.com/google/go-github/v60/github"

	"github.com/fluid-os/fluid/internal/release"
)

// Release is a release and its assets.
type Release struct {
	Tag    string
	ID     int64
	Assets []*gh.ReleaseAsset
}

// Asset returns the asset called name, or a *release.CheckError naming the
// missing asset and the assets the release does have.
func (r *Release) Asset(name string) (*gh.ReleaseAsset, error) {
	var have []string
	for _, a := range r.Assets {
		if a.GetName() == name {
			return a, nil
		}
		have = append(have, a.GetName())
	}
	return nil, &release.CheckError{Check: release.CheckAsset, Subject: name,
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
			return nil, &release.CheckError{Check: release.CheckRelease, Subject: c.Repository() + "@" + version,
				Err:     fmt.Errorf("no release %s in %s", version, c.Repository()),
				Meaning: "check the tag (e.g. v1.2.3, or latest) and the --repo; releases are listed on the repository's Releases page"}
		}
		return nil, err
	}
	r := &Release{Tag: rel.GetTagName(), ID: rel.GetID()}
	// The release object lists at most 30 assets; page through all of them.
	assets, err := c.listAssets(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	r.Assets = assets
	return r, nil
}

func (c *Client) listAssets(ctx context.Context, releaseID int64) ([]*gh.ReleaseAsset, error) {
	var all []*gh.ReleaseAsset
	opt := &gh.ListOptions{PerPage: 100}
	for {
		var page []*gh.ReleaseAsset
		var resp *gh.Response
		err := c.call(ctx, fmt.Sprintf("list assets of release %d", releaseID), func() (*gh.Response, error) {
			var err error
			page, resp, err = c.gh.Repositories.ListReleaseAssets(ctx, c.owner, c.repo, releaseID, opt)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			return all, nil
		}
		opt.Page = resp.NextPage
	}
}

// DownloadAsset streams asset a into w. It asks the API for the asset with
// Accept: application/octet-stream; GitHub answers 302 with a storage URL,
// which is fetched without the API token. progress, when not nil, is called
// with the running byte count. A body shorter or longer than the asset's size
// is a *release.CheckError with Check == CheckDownload.
func (c *Client) DownloadAsset(ctx context.Context, a *gh.ReleaseAsset, w io.Writer, progress func(int64)) error {
	name := a.GetName()
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
		return err
	}
	defer body.Close()
	want := int64(a.GetSize())
	if length >= 0 && want > 0 && length != want {
		return &release.CheckError{Check: release.CheckDownload, Subject: name,
			Err:     fmt.Errorf("server announces %d bytes, the release lists %d", length, want),
			Meaning: "the download is not the asset the release describes; try again later"}
	}
	n, err := io.Copy(w, &progressReader{r: body, fn: progress})
	if err != nil {
		return &release.CheckError{Check: release.CheckDownload, Subject: name,
			Err:     fmt.Errorf("interrupted after %d of %d bytes: %w", n, want, err),
			Meaning: "the connection broke or the server cut the file short; nothing was kept, run the command again"}
	}
	if want > 0 && n != want {
		return &release.CheckError{Check: release.CheckDownload, Subject: name,
			Err:     fmt.Errorf("got %d bytes, the release lists %d", n, want),
			Meaning: "the download was truncated or padded; nothing was kept, run the command again"}
	}
	return nil
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
