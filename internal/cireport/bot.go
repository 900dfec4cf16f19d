package cireport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/bench"
	"github.com/fluid-os/fluid/internal/github"
)

// CommentMarker identifies the one comment the bot keeps up to date on a
// pull request.
const CommentMarker = "<!-- fluid-ci:pr-comment -->"

// ResultsArtifact is the artifact ci.yml uploads (serial logs, manifest,
// bench.json, ci/outcome.json, ci/pr.json).
const ResultsArtifact = "ci-results"

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
func Comment(ctx context.Context, g *github.Client, o CommentOptions) (string, error) {
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
	head, err := g.PullRequestHead(ctx, pr.Number)
	if err != nil {
		return "", err
	}
	if head != o.HeadSHA {
		return "", fmt.Errorf("pull request #%d has head %s but run %d built %s: refusing to comment (stale run, or a forged pr.json)", pr.Number, head, o.RunID, o.HeadSHA)
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
	base, baseNote, err := baseBench(ctx, g, o.Workflow, o.Base)
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
	return g.UpsertComment(ctx, pr.Number, CommentMarker, body.String())
}

// baseBench finds the bench report of the latest successful push run of
// workflow on branch. A missing one is not an error: the note says so.
func baseBench(ctx context.Context, g *github.Client, workflow, branch string) (*bench.Report, string, error) {
	run, ok, err := g.LatestSuccessfulPushRun(ctx, workflow, branch)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, fmt.Sprintf("No successful %s run on %s yet: no bench comparison.", workflow, branch), nil
	}
	files, err := g.ArtifactFiles(ctx, run.ID, ResultsArtifact)
	if err != nil {
		return nil, "", err
	}
	b := find(files, bench.JSONFile)
	if b == nil {
		return nil, fmt.Sprintf("%s's run %d has no bench.json: no bench comparison.", branch, run.ID), nil
	}
	var r bench.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Sprintf("%s's bench.json (run %d) is unreadable: no bench comparison.", branch, run.ID), nil
	}
	return &r, fmt.Sprintf("Compared with %s at %s (run %d).", branch, shortSHA(run.HeadSHA), run.ID), nil
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
func ProfilesPR(ctx context.Context, g *github.Client, o ProfilesPROptions) (ProfilesPRResult, error) {
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
	for _, name := range sortedNames(local) {
		res.Files = append(res.Files, dir+"/"+name)
	}
	msg := fmt.Sprintf("profiles: refresh from %s\n\nCaptured by the profiles workflow: %s", shortSHA(o.HeadSHA), o.RunURL)
	if res.Commit, err = g.CommitDir(ctx, o.HeadSHA, dir, local, msg); err != nil || res.Commit == "" {
		return res, err
	}
	res.Changed = true
	if err := g.ForceBranch(ctx, o.Branch, res.Commit); err != nil {
		return res, err
	}
	res.URL, res.Created, err = g.UpsertPullRequest(ctx, o.Branch, o.Base, "profiles: refresh", ProfilesPRBody(o, res.Files))
	return res, err
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
