package ci

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/fluid-os/fluid/internal/bench"
)

// CommentMarker identifies the one comment the bot keeps up to date on a
// pull request.
const CommentMarker = "<!-- fluid-ci:pr-comment -->"

// ResultsArtifact is the artifact ci.yml uploads (serial logs, manifest,
// bench.json, ci/outcome.json, ci/pr.json).
const ResultsArtifact = "ci-results"

// maxArtifactBytes bounds what is read from an artifact: it is untrusted.
const maxArtifactBytes = 64 << 20

// GitHub is a repository on GitHub, reached through go-github.
type GitHub struct {
	Client      *gh.Client
	Owner, Repo string
	// HTTP downloads artifact archives from the URL the API redirects to
	// (signed, so no token is sent there). Nil means http.DefaultClient.
	HTTP *http.Client
}

// NewGitHub returns a client for repository "owner/name" with token. apiURL,
// when not empty, replaces https://api.github.com/ (GITHUB_API_URL on
// GitHub Enterprise, or a test server).
func NewGitHub(repository, token, apiURL string) (*GitHub, error) {
	owner, repo, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return nil, fmt.Errorf("repository %q: want owner/name", repository)
	}
	c := gh.NewClient(nil)
	if token != "" {
		c = c.WithAuthToken(token)
	}
	if apiURL != "" && apiURL != "https://api.github.com" && apiURL != "https://api.github.com/" {
		u := strings.TrimSuffix(apiURL, "/") + "/"
		var err error
		if c, err = c.WithEnterpriseURLs(u, u); err != nil {
			return nil, fmt.Errorf("GitHub API URL %q: %w", apiURL, err)
		}
		// WithEnterpriseURLs appends api/v3/ unless the URL has it; a plain
		// server (GITHUB_API_URL of GHES already ends in /api/v3) keeps its path.
		if parsed, err := c.BaseURL.Parse(u); err == nil {
			c.BaseURL = parsed
		}
	}
	return &GitHub{Client: c, Owner: owner, Repo: repo}, nil
}

// ArtifactFiles downloads the named artifact of a workflow run and returns
// its files (path in the archive -> content). It returns (nil, nil) when the
// run has no such artifact.
func (g *GitHub) ArtifactFiles(ctx context.Context, runID int64, name string) (map[string][]byte, error) {
	opts := &gh.ListOptions{PerPage: 100}
	var art *gh.Artifact
	for art == nil {
		list, resp, err := g.Client.Actions.ListWorkflowRunArtifacts(ctx, g.Owner, g.Repo, runID, opts)
		if err != nil {
			return nil, fmt.Errorf("list artifacts of run %d: %w", runID, err)
		}
		for _, a := range list.Artifacts {
			if a.GetName() == name && !a.GetExpired() {
				art = a
				break
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if art == nil {
		return nil, nil
	}
	u, _, err := g.Client.Actions.DownloadArtifact(ctx, g.Owner, g.Repo, art.GetID(), 3)
	if err != nil {
		return nil, fmt.Errorf("download artifact %s of run %d: %w", name, runID, err)
	}
	hc := g.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download artifact %s of run %d: %w", name, runID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download artifact %s of run %d: HTTP %s", name, runID, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxArtifactBytes+1))
	if err != nil {
		return nil, fmt.Errorf("download artifact %s of run %d: %w", name, runID, err)
	}
	if len(data) > maxArtifactBytes {
		return nil, fmt.Errorf("artifact %s of run %d is larger than %d MiB; refusing it", name, runID, maxArtifactBytes>>20)
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
		b, err := io.ReadAll(io.LimitReader(rc, maxArtifactBytes-int64(total)+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %s: %w", name, f.Name, err)
		}
		total += len(b)
		if total > maxArtifactBytes {
			return nil, fmt.Errorf("artifact %s of run %d unpacks to more than %d MiB; refusing it", name, runID, maxArtifactBytes>>20)
		}
		files[f.Name] = b
	}
	return files, nil
}

// CommentOptions says which ci run to report on.
type CommentOptions struct {
	RunID      int64  // the completed ci run (workflow_run.id)
	HeadSHA    string // workflow_run.head_sha: trusted, from the event
	Conclusion string // workflow_run.conclusion
	RunURL     string
	Workflow   string // workflow file of the ci runs, e.g. "ci.yml"
	Base       string // branch to compare the bench against, e.g. "main"
}

// PRInfo is ci/pr.json, written by the pull request's ci run. It comes
// from untrusted code and is checked against the API before use.
type PRInfo struct {
	Number  int    `json:"number"`
	HeadSHA string `json:"head_sha"`
}

// Comment creates or updates the bot's comment on the pull request the ci
// run belongs to. It returns the comment's URL.
func (g *GitHub) Comment(ctx context.Context, o CommentOptions) (string, error) {
	files, err := g.ArtifactFiles(ctx, o.RunID, ResultsArtifact)
	if err != nil {
		return "", err
	}
	if files == nil {
		return "", fmt.Errorf("run %d has no %s artifact: the ci run stopped before uploading it (see %s)", o.RunID, ResultsArtifact, o.RunURL)
	}
	var pr PRInfo
	if b := find(files, "ci/pr.json"); b == nil {
		return "", fmt.Errorf("artifact %s of run %d has no ci/pr.json: not a pull-request run", ResultsArtifact, o.RunID)
	} else if err := json.Unmarshal(b, &pr); err != nil || pr.Number <= 0 {
		return "", fmt.Errorf("artifact %s of run %d: ci/pr.json is malformed (%v)", ResultsArtifact, o.RunID, err)
	}
	// The number came from the pull request's own run: make sure that pull
	// request really is the one whose head the run built.
	p, _, err := g.Client.PullRequests.Get(ctx, g.Owner, g.Repo, pr.Number)
	if err != nil {
		return "", fmt.Errorf("get pull request #%d: %w", pr.Number, err)
	}
	if p.GetHead().GetSHA() != o.HeadSHA {
		return "", fmt.Errorf("pull request #%d has head %s but run %d built %s: refusing to comment (stale run, or a forged pr.json)", pr.Number, p.GetHead().GetSHA(), o.RunID, o.HeadSHA)
	}

	var out Outcome
	if b := find(files, "ci/outcome.json"); b != nil {
		if err := json.Unmarshal(b, &out); err != nil {
			return "", fmt.Errorf("artifact %s of run %d: ci/outcome.json: %w", ResultsArtifact, o.RunID, err)
		}
	}
	if b := find(files, bench.JSONFile); b != nil && out.Bench == nil {
		var r bench.Report
		if json.Unmarshal(b, &r) == nil {
			out.Bench = &r
		}
	}
	base, baseNote, err := g.baseBench(ctx, o.Workflow, o.Base)
	if err != nil {
		return "", err
	}

	var body strings.Builder
	body.WriteString(CommentMarker + "\n")
	out.Markdown(&body, base)
	fmt.Fprintf(&body, "\nci run [%d](%s) (%s) on %s.", o.RunID, o.RunURL, o.Conclusion, shortSHA(o.HeadSHA))
	if baseNote != "" {
		body.WriteString(" " + baseNote)
	}
	body.WriteString("\n")
	return g.upsertComment(ctx, pr.Number, body.String())
}

// baseBench finds the bench report of the latest successful push run of
// workflow on branch. A missing one is not an error: the note says so.
func (g *GitHub) baseBench(ctx context.Context, workflow, branch string) (*bench.Report, string, error) {
	runs, _, err := g.Client.Actions.ListWorkflowRunsByFileName(ctx, g.Owner, g.Repo, workflow, &gh.ListWorkflowRunsOptions{
		Branch: branch, Event: "push", Status: "success", ListOptions: gh.ListOptions{PerPage: 1},
	})
	if err != nil {
		return nil, "", fmt.Errorf("find the latest %s run on %s: %w", workflow, branch, err)
	}
	if len(runs.WorkflowRuns) == 0 {
		return nil, fmt.Sprintf("No successful %s run on %s yet: no bench comparison.", workflow, branch), nil
	}
	run := runs.WorkflowRuns[0]
	files, err := g.ArtifactFiles(ctx, run.GetID(), ResultsArtifact)
	if err != nil {
		return nil, "", err
	}
	b := find(files, bench.JSONFile)
	if b == nil {
		return nil, fmt.Sprintf("%s's run %d has no bench.json: no bench comparison.", branch, run.GetID()), nil
	}
	var r bench.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Sprintf("%s's bench.json (run %d) is unreadable: no bench comparison.", branch, run.GetID()), nil
	}
	return &r, fmt.Sprintf("Compared with %s at %s (run %d).", branch, shortSHA(run.GetHeadSHA()), run.GetID()), nil
}

// upsertComment edits the comment carrying CommentMarker, or creates it.
func (g *GitHub) upsertComment(ctx context.Context, number int, body string) (string, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := g.Client.Issues.ListComments(ctx, g.Owner, g.Repo, number, opts)
		if err != nil {
			return "", fmt.Errorf("list comments of #%d: %w", number, err)
		}
		for _, c := range cs {
			if strings.Contains(c.GetBody(), CommentMarker) && c.GetUser().GetType() == "Bot" {
				ec, _, err := g.Client.Issues.EditComment(ctx, g.Owner, g.Repo, c.GetID(), &gh.IssueComment{Body: gh.String(body)})
				if err != nil {
					return "", fmt.Errorf("update comment %d on #%d: %w", c.GetID(), number, err)
				}
				return ec.GetHTMLURL(), nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	c, _, err := g.Client.Issues.CreateComment(ctx, g.Owner, g.Repo, number, &gh.IssueComment{Body: gh.String(body)})
	if err != nil {
		return "", fmt.Errorf("comment on #%d: %w", number, err)
	}
	return c.GetHTMLURL(), nil
}

// find returns the file whose archive path is name or ends in "/"+name.
func find(files map[string][]byte, name string) []byte {
	if b, ok := files[name]; ok {
		return b
	}
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasSuffix(k, "/"+name) {
			return files[k]
		}
	}
	return nil
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// ProfilesPROptions says what the profile-refresh pull request commits.
type ProfilesPROptions struct {
	Base    string        // branch the pull request targets, e.g. "main"
	HeadSHA string        // the commit the profiles were captured on (the new commit's parent)
	Branch  string        // the bot's branch, e.g. "profiles/refresh"; force-updated
	Root    string        // local working tree
	Dir     string        // directory to commit, relative to Root, e.g. "profiles"
	Before  *bench.Report // nil: no bench with the committed profiles (NoBefore says why)
	After   *bench.Report
	RunURL  string
	// NoBefore explains a missing Before, e.g. that the committed profiles
	// no longer fit the sources, so no PGO build could be benched with them.
	NoBefore string
}

// ProfilesPRResult says what ProfilesPR did.
type ProfilesPRResult struct {
	Changed bool   // false: profiles/ is what HeadSHA already has; nothing pushed
	Commit  string // the new commit's SHA
	URL     string // the pull request
	Created bool   // the pull request is new (else it was updated)
	Files   []string
}

// ProfilesPR commits Dir as it is in the working tree on top of HeadSHA
// (blobs in a new tree based on HeadSHA's tree, files missing locally
// deleted), points Branch at that commit (creating or force-updating the
// ref), and opens or updates the one pull request from Branch into Base with
// the bench before and after in its body.
func (g *GitHub) ProfilesPR(ctx context.Context, o ProfilesPROptions) (ProfilesPRResult, error) {
	var res ProfilesPRResult
	dir := filepath.ToSlash(filepath.Clean(o.Dir))
	if dir == "." || strings.HasPrefix(dir, "../") || filepath.IsAbs(o.Dir) {
		return res, fmt.Errorf("profiles directory %q must be a subdirectory of the tree", o.Dir)
	}
	local, err := readDir(filepath.Join(o.Root, o.Dir))
	if err != nil {
		return res, err
	}
	if len(local) == 0 {
		return res, fmt.Errorf("%s is empty: run `go tool mage profile` first", o.Dir)
	}
	parent, _, err := g.Client.Git.GetCommit(ctx, g.Owner, g.Repo, o.HeadSHA)
	if err != nil {
		return res, fmt.Errorf("get commit %s: %w", o.HeadSHA, err)
	}
	baseTree := parent.GetTree().GetSHA()
	remote, _, err := g.Client.Git.GetTree(ctx, g.Owner, g.Repo, baseTree, true)
	if err != nil {
		return res, fmt.Errorf("get tree %s: %w", baseTree, err)
	}
	if remote.GetTruncated() {
		return res, fmt.Errorf("the tree of %s is too large for one API call; commit %s by hand", o.HeadSHA, o.Dir)
	}
	var entries []*gh.TreeEntry
	for _, name := range sortedNames(local) {
		p := dir + "/" + name
		entries = append(entries, &gh.TreeEntry{Path: gh.String(p), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String(string(local[name]))})
		res.Files = append(res.Files, p)
	}
	for _, e := range remote.Entries {
		rel, ok := strings.CutPrefix(e.GetPath(), dir+"/")
		if !ok || e.GetType() != "blob" {
			continue
		}
		if _, keep := local[rel]; !keep {
			// SHA and Content both nil: go-github sends "sha": null, which
			// deletes the file from the new tree.
			entries = append(entries, &gh.TreeEntry{Path: gh.String(e.GetPath()), Mode: gh.String("100644"), Type: gh.String("blob")})
		}
	}
	tree, _, err := g.Client.Git.CreateTree(ctx, g.Owner, g.Repo, baseTree, entries)
	if err != nil {
		return res, fmt.Errorf("create tree for %s: %w", o.Dir, err)
	}
	if tree.GetSHA() == baseTree {
		return res, nil
	}
	res.Changed = true
	commit, _, err := g.Client.Git.CreateCommit(ctx, g.Owner, g.Repo, &gh.Commit{
		Message: gh.String(fmt.Sprintf("profiles: refresh from %s\n\nCaptured by the profiles workflow: %s", shortSHA(o.HeadSHA), o.RunURL)),
		Tree:    &gh.Tree{SHA: tree.SHA},
		Parents: []*gh.Commit{{SHA: gh.String(o.HeadSHA)}},
	}, nil)
	if err != nil {
		return res, fmt.Errorf("create commit: %w", err)
	}
	res.Commit = commit.GetSHA()
	ref := "refs/heads/" + o.Branch
	if _, resp, err := g.Client.Git.GetRef(ctx, g.Owner, g.Repo, "heads/"+o.Branch); err != nil {
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			return res, fmt.Errorf("get branch %s: %w", o.Branch, err)
		}
		if _, _, err := g.Client.Git.CreateRef(ctx, g.Owner, g.Repo, &gh.Reference{Ref: gh.String(ref), Object: &gh.GitObject{SHA: commit.SHA}}); err != nil {
			return res, fmt.Errorf("create branch %s: %w", o.Branch, err)
		}
	} else if _, _, err := g.Client.Git.UpdateRef(ctx, g.Owner, g.Repo, &gh.Reference{Ref: gh.String(ref), Object: &gh.GitObject{SHA: commit.SHA}}, true); err != nil {
		return res, fmt.Errorf("update branch %s: %w", o.Branch, err)
	}

	title := "profiles: refresh"
	body := ProfilesPRBody(o, res.Files)
	prs, _, err := g.Client.PullRequests.List(ctx, g.Owner, g.Repo, &gh.PullRequestListOptions{State: "open", Head: g.Owner + ":" + o.Branch, Base: o.Base})
	if err != nil {
		return res, fmt.Errorf("list pull requests from %s: %w", o.Branch, err)
	}
	if len(prs) > 0 {
		pr, _, err := g.Client.PullRequests.Edit(ctx, g.Owner, g.Repo, prs[0].GetNumber(), &gh.PullRequest{Title: gh.String(title), Body: gh.String(body)})
		if err != nil {
			return res, fmt.Errorf("update pull request #%d: %w", prs[0].GetNumber(), err)
		}
		res.URL = pr.GetHTMLURL()
		return res, nil
	}
	pr, _, err := g.Client.PullRequests.Create(ctx, g.Owner, g.Repo, &gh.NewPullRequest{
		Title: gh.String(title), Head: gh.String(o.Branch), Base: gh.String(o.Base), Body: gh.String(body),
		MaintainerCanModify: gh.Bool(true),
	})
	if err != nil {
		return res, fmt.Errorf("open pull request from %s into %s: %w", o.Branch, o.Base, err)
	}
	res.URL, res.Created = pr.GetHTMLURL(), true
	return res, nil
}

// ProfilesPRBody is the pull request's description: what changed and the
// bench before and after, per module and in geometric mean.
func ProfilesPRBody(o ProfilesPROptions, files []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fresh profiles captured on %s by the profiles workflow ([run](%s)).\n\n", shortSHA(o.HeadSHA), o.RunURL)
	if o.Before != nil && o.After != nil {
		b.WriteString("#### Bench: PGO build, guest instructions\n\n| module | before | after | change |\n|---|---:|---:|---:|\n")
		before := map[string]uint64{}
		for _, m := range o.Before.Modules {
			before[m.Module] = m.Instructions[bench.PGO]
		}
		for _, m := range o.After.Modules {
			a := m.Instructions[bench.PGO]
			fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", cell(m.Module), before[m.Module], a, change(float64(before[m.Module]), float64(a)))
		}
		fmt.Fprintf(&b, "| **geomean PGO/baseline** | %s | %s | %s |\n\n", ratio(o.Before.Geomean[bench.PGO]), ratio(o.After.Geomean[bench.PGO]), change(o.Before.Geomean[bench.PGO], o.After.Geomean[bench.PGO]))
	} else if o.After != nil {
		why := o.NoBefore
		if why == "" {
			why = "no bench with the committed profiles was given"
		}
		fmt.Fprintf(&b, "#### Bench: PGO build, guest instructions (after only: %s)\n\n| module | after |\n|---|---:|\n", why)
		for _, m := range o.After.Modules {
			fmt.Fprintf(&b, "| %s | %d |\n", cell(m.Module), m.Instructions[bench.PGO])
		}
		fmt.Fprintf(&b, "| **geomean PGO/baseline** | %s |\n\n", ratio(o.After.Geomean[bench.PGO]))
	} else {
		b.WriteString("_No bench figures were given._\n\n")
	}
	fmt.Fprintf(&b, "<details><summary>%d files</summary>\n\n", len(files))
	for _, f := range files {
		fmt.Fprintf(&b, "- `%s`\n", f)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// readDir returns the regular files under dir (slash-separated relative path -> content).
func readDir(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: run `go tool mage profile` first", dir)
		}
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return out, nil
}

func sortedNames(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
