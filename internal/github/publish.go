package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluid-os/fluid/internal/fileutil"
	gh "github.com/google/go-github/v60/github"
)

// PublishOptions describe the release to create or update.
type PublishOptions struct {
	Tag        string   // git tag, e.g. v1.2.3 (required)
	Name       string   // release title; default the tag
	Body       string   // release notes (markdown)
	Draft      bool     // create as a draft
	Prerelease bool     // mark as a prerelease
	Assets     []string // paths of the files to attach; names are their base names
	// Commit is the full commit the assets were built from. When set, the
	// tag must point at it — or not exist yet, and then GitHub creates it
	// there (target_commitish), not at the default branch's head — so that
	// fluid download, which checks the signed manifest's commit against the
	// tag, accepts the release.
	Commit string
	// DryRun makes no change: it reads the release (when it can) and prints
	// what it would do to Out.
	DryRun bool
	// Out receives one line per action (default: the client's log).
	Out io.Writer
}

// PublishResult says what Publish did (or, on a dry run, would do).
type PublishResult struct {
	ReleaseID int64
	Created   bool
	Updated   bool
	Uploaded  []string // new assets
	Replaced  []string // assets that existed with other content or were half-uploaded
	Skipped   []string // assets already there with the same size and digest
}

// remoteAsset is a release asset as the REST API returns it, including the
// "digest" field ("sha256:<hex>") that go-github v60 does not model yet.
type remoteAsset struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	State  string `json:"state"`
	Digest string `json:"digest"`
}

type localAsset struct {
	path, name, sha string
	size            int64
}

// Publish creates the release for opts.Tag, or updates its title and notes,
// and attaches opts.Assets idempotently: an asset already present with the
// same size and SHA-256 is skipped; one with other content, or left
// half-uploaded by an interrupted run, is deleted and uploaded again; there is
// never a second asset with the same name. Rerunning after a failure
// finishes the job.
func (c *Client) Publish(ctx context.Context, opts PublishOptions) (*PublishResult, error) {
	if opts.Tag == "" {
		return nil, fmt.Errorf("publish: no tag given (e.g. v1.2.3)")
	}
	out := opts.Out
	if out == nil {
		out = c.log
	}
	verb := ""
	if opts.DryRun {
		verb = "would "
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "publish %s: %s%s\n", opts.Tag, verb, fmt.Sprintf(format, args...))
	}
	locals, err := hashLocal(opts.Assets)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = opts.Tag
	}
	res := &PublishResult{}

	if opts.Commit != "" {
		at, err := c.TagCommit(ctx, opts.Tag)
		switch {
		case err == nil && at != opts.Commit:
			return nil, fmt.Errorf("publish: tag %s in %s points at commit %s, but the release was built from %s; users' fluid would refuse it (push the tag at the built commit, or rebuild at the tag)", opts.Tag, c.Repository(), at, opts.Commit)
		case err != nil && !errors.Is(err, ErrNoTag):
			return nil, err
		case err != nil:
			say("tag %s does not exist in %s yet: it is created at %s", opts.Tag, c.Repository(), opts.Commit)
		}
	}

	rel, err := c.releaseForPublish(ctx, opts.Tag)
	if err != nil {
		return nil, err
	}
	if rel == nil {
		say("create release %s in %s (draft=%v, prerelease=%v)", name, c.Repository(), opts.Draft, opts.Prerelease)
		res.Created = true
		if opts.DryRun {
			for _, l := range locals {
				say("upload %s (%d bytes)", l.name, l.size)
				res.Uploaded = append(res.Uploaded, l.name)
			}
			return res, nil
		}
		want := &gh.RepositoryRelease{TagName: gh.String(opts.Tag), Name: gh.String(name), Body: gh.String(opts.Body),
			Draft: gh.Bool(opts.Draft), Prerelease: gh.Bool(opts.Prerelease)}
		if opts.Commit != "" {
			want.TargetCommitish = gh.String(opts.Commit)
		}
		if err := c.call(ctx, "create release "+opts.Tag, func() (*gh.Response, error) {
			var resp *gh.Response
			var err error
			rel, resp, err = c.gh.Repositories.CreateRelease(ctx, c.owner, c.repo, want)
			return resp, err
		}); err != nil {
			return nil, err
		}
	} else if rel.GetName() != name || rel.GetBody() != opts.Body || rel.GetPrerelease() != opts.Prerelease {
		say("update title/notes of release %s (id %d)", opts.Tag, rel.GetID())
		res.Updated = true
		if !opts.DryRun {
			edit := &gh.RepositoryRelease{Name: gh.String(name), Body: gh.String(opts.Body), Prerelease: gh.Bool(opts.Prerelease)}
			id := rel.GetID()
			if err := c.call(ctx, "update release "+opts.Tag, func() (*gh.Response, error) {
				var resp *gh.Response
				var err error
				rel, resp, err = c.gh.Repositories.EditRelease(ctx, c.owner, c.repo, id, edit)
				return resp, err
			}); err != nil {
				return nil, err
			}
		}
	}
	res.ReleaseID = rel.GetID()

	remote, err := c.remoteAssets(ctx, rel.GetID())
	if err != nil {
		return nil, err
	}
	for _, l := range locals {
		r, exists := remote[l.name]
		action := "upload"
		if exists {
			same, why, err := c.sameAsset(ctx, r, l)
			if err != nil {
				return res, err
			}
			if same {
				say("skip %s: already uploaded with the same size and SHA-256", l.name)
				res.Skipped = append(res.Skipped, l.name)
				continue
			}
			action = "replace"
			say("replace %s: %s", l.name, why)
		} else {
			say("upload %s (%d bytes)", l.name, l.size)
		}
		if opts.DryRun {
			if action == "replace" {
				res.Replaced = append(res.Replaced, l.name)
			} else {
				res.Uploaded = append(res.Uploaded, l.name)
			}
			continue
		}
		if err := c.upload(ctx, rel.GetID(), l); err != nil {
			return res, fmt.Errorf("%w\nrun publish again: assets already uploaded are skipped and half-uploaded ones replaced", err)
		}
		if action == "replace" {
			res.Replaced = append(res.Replaced, l.name)
		} else {
			res.Uploaded = append(res.Uploaded, l.name)
		}
	}
	return res, nil
}

// releaseForPublish finds the release for tag, drafts included (the API's
// by-tag lookup does not see drafts), or returns nil when there is none.
func (c *Client) releaseForPublish(ctx context.Context, tag string) (*gh.RepositoryRelease, error) {
	rel, err := callResult(ctx, c, "look up release "+tag, func() (*gh.RepositoryRelease, *gh.Response, error) {
		return c.gh.Repositories.GetReleaseByTag(ctx, c.owner, c.repo, tag)
	})
	if err == nil {
		return rel, nil
	}
	if !isNotFound(err) {
		return nil, err
	}
	opt := &gh.ListOptions{PerPage: 100}
	for {
		var page []*gh.RepositoryRelease
		var resp *gh.Response
		if err := c.call(ctx, "list releases", func() (*gh.Response, error) {
			var err error
			page, resp, err = c.gh.Repositories.ListReleases(ctx, c.owner, c.repo, opt)
			return resp, err
		}); err != nil {
			return nil, err
		}
		for _, r := range page {
			if r.GetTagName() == tag {
				return r, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opt.Page = resp.NextPage
	}
}

func (c *Client) remoteAssets(ctx context.Context, releaseID int64) (map[string]remoteAsset, error) {
	out := map[string]remoteAsset{}
	page := 1
	for page != 0 {
		u := fmt.Sprintf("repos/%s/%s/releases/%d/assets?per_page=100&page=%d", c.owner, c.repo, releaseID, page)
		var list []remoteAsset
		var resp *gh.Response
		if err := c.call(ctx, fmt.Sprintf("list assets of release %d", releaseID), func() (*gh.Response, error) {
			req, err := c.gh.NewRequest("GET", u, nil)
			if err != nil {
				return nil, err
			}
			list = nil
			resp, err = c.gh.Do(ctx, req, &list)
			return resp, err
		}); err != nil {
			return nil, err
		}
		for _, a := range list {
			out[a.Name] = a
		}
		page = resp.NextPage
	}
	return out, nil
}

// sameAsset compares a remote asset with a local file: state, size, then the
// API's digest, or — for servers that do not report one — the downloaded
// bytes' SHA-256.
func (c *Client) sameAsset(ctx context.Context, r remoteAsset, l localAsset) (bool, string, error) {
	if r.State != "" && r.State != "uploaded" {
		return false, fmt.Sprintf("an earlier upload did not finish (state %q)", r.State), nil
	}
	if r.Size != l.size {
		return false, fmt.Sprintf("size differs (release has %d bytes, local file %d)", r.Size, l.size), nil
	}
	if d, ok := strings.CutPrefix(r.Digest, "sha256:"); ok {
		if d == l.sha {
			return true, "", nil
		}
		return false, "SHA-256 differs", nil
	}
	h := sha256.New()
	if err := c.DownloadAsset(ctx, &gh.ReleaseAsset{ID: gh.Int64(r.ID), Name: gh.String(r.Name), Size: gh.Int(int(r.Size))}, h, nil); err != nil {
		return false, "", fmt.Errorf("compare %s with the release's copy: %w", l.name, err)
	}
	if hex.EncodeToString(h.Sum(nil)) == l.sha {
		return true, "", nil
	}
	return false, "SHA-256 differs", nil
}

// upload attaches one file. Before every retry it deletes whatever an
// interrupted attempt left under the same name, so retries cannot duplicate.
func (c *Client) upload(ctx context.Context, releaseID int64, l localAsset) error {
	return c.call(ctx, "upload "+l.name, func() (*gh.Response, error) {
		if err := c.deleteByName(ctx, releaseID, l.name); err != nil {
			return nil, err
		}
		f, err := os.Open(l.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		opt := &gh.UploadOptions{Name: l.name, MediaType: mediaType(l.name)}
		_, resp, err := c.gh.Repositories.UploadReleaseAsset(ctx, c.owner, c.repo, releaseID, opt, f)
		return resp, err
	})
}

// deleteByName removes the asset called name, if any: the old copy being
// replaced, or whatever a failed attempt left behind.
func (c *Client) deleteByName(ctx context.Context, releaseID int64, name string) error {
	remote, err := c.remoteAssets(ctx, releaseID)
	if err != nil {
		return err
	}
	r, ok := remote[name]
	if !ok {
		return nil
	}
	return c.call(ctx, "delete asset "+name, func() (*gh.Response, error) {
		return c.gh.Repositories.DeleteReleaseAsset(ctx, c.owner, c.repo, r.ID)
	})
}

func hashLocal(paths []string) ([]localAsset, error) {
	seen := map[string]bool{}
	var out []localAsset
	for _, p := range paths {
		a, err := hashAsset(p)
		if err != nil {
			return nil, err
		}
		if seen[a.name] {
			return nil, fmt.Errorf("publish: two assets are named %s", a.name)
		}
		seen[a.name] = true
		out = append(out, a)
	}
	return out, nil
}

// hashAsset returns the asset at path with its size and lowercase hex SHA-256.
func hashAsset(path string) (localAsset, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return localAsset{}, fmt.Errorf("publish: asset %s: %w", path, err)
	}
	sum, err := fileutil.SHA256(path)
	if err != nil {
		return localAsset{}, fmt.Errorf("publish: asset %s: %w", path, err)
	}
	return localAsset{path: path, name: filepath.Base(path), sha: sum, size: fi.Size()}, nil
}

func mediaType(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".txt"):
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(name, ".zst"):
		return "application/zstd"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
