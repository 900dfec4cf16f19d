package github

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// What the CI bot does on GitHub (cmd/fluid-ci through internal/cireport):
// read a workflow run's artifacts, find runs, comment on pull requests,
// commit files through the git data API and open pull requests. Every call
// goes through call, so it retries and caps like the rest of the client.

// MaxArtifactBytes bounds what is read from an artifact, packed and
// unpacked: artifacts are uploaded by workflow runs of any pull request, so
// they are untrusted.
const MaxArtifactBytes = 64 << 20

// ArtifactFiles downloads the named artifact of a workflow run and returns
// its files (path in the archive -> content). It returns (nil, nil) when the
// run has no such artifact (or only an expired one).
func (c *Client) ArtifactFiles(ctx context.Context, runID int64, name string) (map[string][]byte, error) {
	var art *gh.Artifact
	err := eachPage(ctx, c, fmt.Sprintf("list artifacts of run %d", runID),
		func(opt *gh.ListOptions) ([]*gh.Artifact, *gh.Response, error) {
			list, resp, err := c.gh.Actions.ListWorkflowRunArtifacts(ctx, c.owner, c.repo, runID, opt)
			if list == nil {
				return nil, resp, err
			}
			return list.Artifacts, resp, err
		},
		func(page []*gh.Artifact) (bool, error) {
			for _, a := range page {
				if a.GetName() == name && !a.GetExpired() {
					art = a
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		return nil, err
	}
	if art == nil {
		return nil, nil
	}
	what := fmt.Sprintf("download artifact %s of run %d", name, runID)
	var data []byte
	err = c.call(ctx, what, func() (*gh.Response, error) {
		u, resp, err := c.gh.Actions.DownloadArtifact(ctx, c.owner, c.repo, art.GetID(), 3)
		if err != nil {
			return resp, err
		}
		// The storage URL is pre-signed: c.http sends no token there.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		hr, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		defer hr.Body.Close()
		if hr.StatusCode != http.StatusOK {
			return &gh.Response{Response: hr}, fmt.Errorf("HTTP %s", hr.Status)
		}
		data, err = io.ReadAll(io.LimitReader(hr.Body, MaxArtifactBytes+1))
		return &gh.Response{Response: hr}, err
	})
	if err != nil {
		return nil, err
	}
	if len(data) > MaxArtifactBytes {
		return nil, fmt.Errorf("artifact %s of run %d is larger than %d MiB; refusing it", name, runID, MaxArtifactBytes>>20)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("artifact %s of run %d is not a zip archive: %w", name, runID, err)
	}
	files := map[string][]byte{}
	total := 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %s: %w", name, f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, MaxArtifactBytes-int64(total)+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %s: %w", name, f.Name, err)
		}
		total += len(b)
		if total > MaxArtifactBytes {
			return nil, fmt.Errorf("artifact %s of run %d unpacks to more than %d MiB; refusing it", name, runID, MaxArtifactBytes>>20)
		}
		files[f.Name] = b
	}
	return files, nil
}

// Run is a workflow run: its ID and the commit it ran on.
type Run struct {
	ID      int64
	HeadSHA string
}

// LatestSuccessfulPushRun returns the newest successful run of workflow (a
// file name, e.g. "ci.yml") started by a push to branch; false when there is
// none.
func (c *Client) LatestSuccessfulPushRun(ctx context.Context, workflow, branch string) (Run, bool, error) {
	runs, err := callResult(ctx, c, fmt.Sprintf("find the latest %s run on %s", workflow, branch), func() (*gh.WorkflowRuns, *gh.Response, error) {
		return c.gh.Actions.ListWorkflowRunsByFileName(ctx, c.owner, c.repo, workflow, &gh.ListWorkflowRunsOptions{
			Branch: branch, Event: "push", Status: "success", ListOptions: gh.ListOptions{PerPage: 1},
		})
	})
	if err != nil || len(runs.WorkflowRuns) == 0 {
		return Run{}, false, err
	}
	r := runs.WorkflowRuns[0]
	return Run{ID: r.GetID(), HeadSHA: r.GetHeadSHA()}, true, nil
}

// PullRequestHead returns the head commit of pull request number.
func (c *Client) PullRequestHead(ctx context.Context, number int) (string, error) {
	p, err := callResult(ctx, c, fmt.Sprintf("get pull request #%d", number), func() (*gh.PullRequest, *gh.Response, error) {
		return c.gh.PullRequests.Get(ctx, c.owner, c.repo, number)
	})
	return p.GetHead().GetSHA(), err
}

// UpsertComment edits the bot's comment on issue or pull request number —
// the first comment by a bot account that contains marker — or creates one.
// It returns the comment's URL.
func (c *Client) UpsertComment(ctx context.Context, number int, marker, body string) (string, error) {
	url, found := "", false
	err := eachPage(ctx, c, fmt.Sprintf("list comments of #%d", number),
		func(opt *gh.ListOptions) ([]*gh.IssueComment, *gh.Response, error) {
			return c.gh.Issues.ListComments(ctx, c.owner, c.repo, number, &gh.IssueListCommentsOptions{ListOptions: *opt})
		},
		func(cs []*gh.IssueComment) (bool, error) {
			for _, ic := range cs {
				if strings.Contains(ic.GetBody(), marker) && ic.GetUser().GetType() == "Bot" {
					ec, err := callResult(ctx, c, fmt.Sprintf("update comment %d on #%d", ic.GetID(), number), func() (*gh.IssueComment, *gh.Response, error) {
						return c.gh.Issues.EditComment(ctx, c.owner, c.repo, ic.GetID(), &gh.IssueComment{Body: gh.String(body)})
					})
					url, found = ec.GetHTMLURL(), true
					return true, err
				}
			}
			return false, nil
		})
	if err != nil || found {
		return url, err
	}
	nc, err := callResult(ctx, c, fmt.Sprintf("comment on #%d", number), func() (*gh.IssueComment, *gh.Response, error) {
		return c.gh.Issues.CreateComment(ctx, c.owner, c.repo, number, &gh.IssueComment{Body: gh.String(body)})
	})
	return nc.GetHTMLURL(), err
}

// CommitDir commits directory dir (slash-separated, relative to the
// repository root) with exactly files (path relative to dir -> content,
// mode 100644) on top of commit parent: a new tree based on parent's tree,
// the files of dir that files lacks deleted. It returns the new commit's
// SHA, or "" when dir already holds exactly files in parent (nothing is
// committed then).
func (c *Client) CommitDir(ctx context.Context, parent, dir string, files map[string][]byte, message string) (string, error) {
	pc, err := callResult(ctx, c, "get commit "+parent, func() (*gh.Commit, *gh.Response, error) {
		return c.gh.Git.GetCommit(ctx, c.owner, c.repo, parent)
	})
	if err != nil {
		return "", err
	}
	baseTree := pc.GetTree().GetSHA()
	remote, err := callResult(ctx, c, "get tree "+baseTree, func() (*gh.Tree, *gh.Response, error) {
		return c.gh.Git.GetTree(ctx, c.owner, c.repo, baseTree, true)
	})
	if err != nil {
		return "", err
	}
	if remote.GetTruncated() {
		return "", fmt.Errorf("the tree of %s is too large for one API call; commit %s by hand", parent, dir)
	}
	var entries []*gh.TreeEntry
	for _, name := range slices.Sorted(maps.Keys(files)) {
		entries = append(entries, &gh.TreeEntry{Path: gh.String(dir + "/" + name), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String(string(files[name]))})
	}
	for _, e := range remote.Entries {
		rel, ok := strings.CutPrefix(e.GetPath(), dir+"/")
		if !ok || e.GetType() != "blob" {
			continue
		}
		if _, keep := files[rel]; !keep {
			// SHA and Content both nil: go-github sends "sha": null, which
			// deletes the file from the new tree.
			entries = append(entries, &gh.TreeEntry{Path: gh.String(e.GetPath()), Mode: gh.String("100644"), Type: gh.String("blob")})
		}
	}
	tree, err := callResult(ctx, c, "create tree for "+dir, func() (*gh.Tree, *gh.Response, error) {
		return c.gh.Git.CreateTree(ctx, c.owner, c.repo, baseTree, entries)
	})
	if err != nil {
		return "", err
	}
	if tree.GetSHA() == baseTree {
		return "", nil
	}
	commit, err := callResult(ctx, c, "create commit", func() (*gh.Commit, *gh.Response, error) {
		return c.gh.Git.CreateCommit(ctx, c.owner, c.repo, &gh.Commit{
			Message: gh.String(message), Tree: &gh.Tree{SHA: tree.SHA}, Parents: []*gh.Commit{{SHA: gh.String(parent)}},
		}, nil)
	})
	return commit.GetSHA(), err
}

// ForceBranch points branch at commit sha, creating the branch or
// force-updating it.
func (c *Client) ForceBranch(ctx context.Context, branch, sha string) error {
	ref := &gh.Reference{Ref: gh.String("refs/heads/" + branch), Object: &gh.GitObject{SHA: gh.String(sha)}}
	err := c.call(ctx, "get branch "+branch, func() (resp *gh.Response, err error) {
		_, resp, err = c.gh.Git.GetRef(ctx, c.owner, c.repo, "heads/"+branch)
		return resp, err
	})
	if isNotFound(err) {
		return c.call(ctx, "create branch "+branch, func() (resp *gh.Response, err error) {
			_, resp, err = c.gh.Git.CreateRef(ctx, c.owner, c.repo, ref)
			return resp, err
		})
	}
	if err != nil {
		return err
	}
	return c.call(ctx, "update branch "+branch, func() (resp *gh.Response, err error) {
		_, resp, err = c.gh.Git.UpdateRef(ctx, c.owner, c.repo, ref, true)
		return resp, err
	})
}

// UpsertPullRequest edits the open pull request from branch head into base
// (title and body), or opens one (maintainers may modify it). It returns the
// pull request's URL and whether it is new.
func (c *Client) UpsertPullRequest(ctx context.Context, head, base, title, body string) (string, bool, error) {
	prs, err := callResult(ctx, c, "list pull requests from "+head, func() ([]*gh.PullRequest, *gh.Response, error) {
		return c.gh.PullRequests.List(ctx, c.owner, c.repo, &gh.PullRequestListOptions{State: "open", Head: c.owner + ":" + head, Base: base})
	})
	if err != nil {
		return "", false, err
	}
	var pr *gh.PullRequest
	if len(prs) > 0 {
		n := prs[0].GetNumber()
		err := c.call(ctx, fmt.Sprintf("update pull request #%d", n), func() (resp *gh.Response, err error) {
			pr, resp, err = c.gh.PullRequests.Edit(ctx, c.owner, c.repo, n, &gh.PullRequest{Title: gh.String(title), Body: gh.String(body)})
			return resp, err
		})
		return pr.GetHTMLURL(), false, err
	}
	err = c.call(ctx, fmt.Sprintf("open pull request from %s into %s", head, base), func() (resp *gh.Response, err error) {
		pr, resp, err = c.gh.PullRequests.Create(ctx, c.owner, c.repo, &gh.NewPullRequest{
			Title: gh.String(title), Head: gh.String(head), Base: gh.String(base), Body: gh.String(body),
			MaintainerCanModify: gh.Bool(true),
		})
		return resp, err
	})
	return pr.GetHTMLURL(), err == nil, err
}
