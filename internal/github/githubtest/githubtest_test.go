package githubtest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gh "github.com/google/go-github/v60/github"

	"github.com/fluid-os/fluid/internal/github/githubtest"
)

// client is a go-github client of srv sending token ("" sends none).
func client(t *testing.T, srv *githubtest.Server, token string) *gh.Client {
	t.Helper()
	c := gh.NewClient(srv.Client())
	if token != "" {
		c = c.WithAuthToken(token)
	}
	u, err := url.Parse(srv.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func get(t *testing.T, u, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	// Redirects are the caller's business here.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusFound {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestToken(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	srv.Token = "s3cret"
	srv.AddRelease("v1", map[string][]byte{"a.bin": []byte("asset")})
	srv.AddRun(githubtest.Run{ID: 7, WorkflowFile: "ci.yml", Event: "push", Branch: "main", Conclusion: "success"}, map[string][]byte{"results": zipOf(t, map[string]string{"x": "y"})})
	api := srv.URL + "/repos/o/r/"
	for _, auth := range []string{"", "Bearer wrong", "token wrong", "Bearer s3cret2", "Basic s3cret", "s3cret", "Bearer"} {
		for _, path := range []string{"releases", "actions/runs/7/artifacts", "git/ref/heads/main", "pulls", "nope"} {
			code, body := get(t, api+path, auth)
			if code != http.StatusUnauthorized || !strings.Contains(body, `"message":"Bad credentials"`) {
				t.Errorf("GET %s with Authorization %q: %d %s, want 401 Bad credentials", path, auth, code, body)
			}
		}
	}
	for _, auth := range []string{"Bearer s3cret", "token s3cret", "bearer s3cret"} {
		if code, body := get(t, api+"releases", auth); code != http.StatusOK {
			t.Errorf("Authorization %q: %d %s", auth, code, body)
		}
	}
	// The storage URLs are pre-signed: they refuse any Authorization,
	// the right token included, and serve without one.
	c := client(t, srv, "s3cret")
	ctx := context.Background()
	rel, _, err := c.Repositories.GetReleaseByTag(ctx, "o", "r", "v1")
	if err != nil {
		t.Fatal(err)
	}
	_, assetURL, err := c.Repositories.DownloadReleaseAsset(ctx, "o", "r", rel.Assets[0].GetID(), nil)
	if err != nil || assetURL == "" {
		t.Fatalf("asset redirect: %q, %v", assetURL, err)
	}
	arts, _, err := c.Actions.ListWorkflowRunArtifacts(ctx, "o", "r", 7, nil)
	if err != nil || len(arts.Artifacts) != 1 {
		t.Fatalf("artifacts: %v, %v", arts, err)
	}
	artURL, _, err := c.Actions.DownloadArtifact(ctx, "o", "r", arts.Artifacts[0].GetID(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{assetURL, artURL.String()} {
		if code, body := get(t, u, "Bearer s3cret"); code != http.StatusBadRequest {
			t.Errorf("storage %s with the token: %d %s, want 400", u, code, body)
		}
		if code, body := get(t, u, ""); code != http.StatusOK {
			t.Errorf("storage %s: %d %s", u, code, body)
		}
	}
	if h := srv.StorageAuthHeaders(); !slices.Equal(h, []string{"Bearer s3cret", "", "Bearer s3cret", ""}) {
		t.Errorf("StorageAuthHeaders = %q", h)
	}
	// Without a Token, any credential or none is accepted, as before.
	srv2 := githubtest.New("o", "r")
	defer srv2.Close()
	for _, auth := range []string{"", "Bearer whatever"} {
		if code, body := get(t, srv2.URL+"/repos/o/r/releases", auth); code != http.StatusOK {
			t.Errorf("no Token, Authorization %q: %d %s", auth, code, body)
		}
	}
	if u := srv.Unexpected(); len(u) != 0 {
		t.Errorf("unauthorized requests recorded as unexpected: %v", u)
	}
}

func TestUnexpected(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	for _, p := range []string{"/repos/o/r/releases/tags/v9", "/repos/o/r/pulls/3", "/repos/o/r/git/commits/abc"} {
		if code, _ := get(t, srv.URL+p, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	if u := srv.Unexpected(); len(u) != 0 {
		t.Errorf("a known endpoint's 404 was recorded as unexpected: %v", u)
	}
	for _, p := range []string{"/repos/o/r/nope?x=1", "/repos/other/r/releases", "/repos/o/r/pulls/1/reviews", "/user"} {
		code, body := get(t, srv.URL+p, "")
		var e struct{ Message string }
		json.Unmarshal([]byte(body), &e)
		if code != http.StatusNotFound || e.Message != "Not Found" {
			t.Errorf("GET %s: %d %s, want 404 Not Found", p, code, body)
		}
	}
	want := []string{"GET /repos/o/r/nope?x=1", "GET /repos/other/r/releases", "GET /repos/o/r/pulls/1/reviews", "GET /user"}
	if u := srv.Unexpected(); !slices.Equal(u, want) {
		t.Errorf("Unexpected() = %q, want %q", u, want)
	}
}

// git runs git in dir, ignoring the environment's GIT_* variables.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.com",
		"-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", "-c", "core.symlinks=true"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestSeedFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	git(t, dir, "init", "-q")
	write("README.md", "hi\n", 0o644)
	write("bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	write("docs/a/b.txt", "deep\n", 0o644)
	write("old.txt", "going\n", 0o644)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "one")
	write("README.md", "hello\n", 0o644)
	write("data.bin", "\x00\x01binary\xff", 0o644)
	write("docs/a-b.txt", "sorts between docs/ and docs.txt in git's order\n", 0o644)
	write("docs.txt", "x", 0o644)
	os.Remove(filepath.Join(dir, "old.txt"))
	if err := os.Symlink("README.md", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "two")

	// The environment of a git hook or a CI step may point git elsewhere:
	// SeedFromGit reads repoDir all the same.
	t.Setenv("GIT_DIR", filepath.Join(t.TempDir(), "not-a-repo"))
	t.Setenv("GIT_WORK_TREE", t.TempDir())

	srv := githubtest.New("o", "r")
	defer srv.Close()
	ctx := context.Background()
	c := client(t, srv, "")
	for _, tc := range []struct {
		rev  string
		want map[string]string
	}{
		{"HEAD~1", map[string]string{"README.md": "hi\n", "bin/run.sh": "#!/bin/sh\necho run\n", "docs/a/b.txt": "deep\n", "old.txt": "going\n"}},
		{"HEAD", map[string]string{"README.md": "hello\n", "bin/run.sh": "#!/bin/sh\necho run\n", "docs/a/b.txt": "deep\n",
			"data.bin": "\x00\x01binary\xff", "docs/a-b.txt": "sorts between docs/ and docs.txt in git's order\n", "docs.txt": "x", "link": "README.md"}},
	} {
		sha, err := srv.SeedFromGit(ctx, dir, tc.rev)
		if err != nil {
			t.Fatal(err)
		}
		if want := git(t, dir, "rev-parse", tc.rev); sha != want {
			t.Errorf("%s: SeedFromGit = %s, git says %s", tc.rev, sha, want)
		}
		files, ok := srv.Tree(sha)
		got := map[string]string{}
		for p, b := range files {
			got[p] = string(b)
		}
		if !ok || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: Tree = %q, %v; want %q", tc.rev, got, ok, tc.want)
		}
		// Through the API: the commit's tree is git's tree, entry for
		// entry (modes, SHAs, git's order), subtrees included.
		commit, _, err := c.Git.GetCommit(ctx, "o", "r", sha)
		if err != nil {
			t.Fatal(err)
		}
		if want := git(t, dir, "rev-parse", tc.rev+"^{tree}"); commit.GetTree().GetSHA() != want {
			t.Errorf("%s: tree %s, git says %s", tc.rev, commit.GetTree().GetSHA(), want)
		}
		tree, _, err := c.Git.GetTree(ctx, "o", "r", commit.GetTree().GetSHA(), true)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range tree.Entries {
			lines = append(lines, fmt.Sprintf("%s %s %s\t%s", e.GetMode(), e.GetType(), e.GetSHA(), e.GetPath()))
		}
		if got, want := strings.Join(lines, "\n"), git(t, dir, "ls-tree", "-r", "-t", "--full-tree", tc.rev); got != want {
			t.Errorf("%s: recursive tree\n%s\nwant (git ls-tree -r -t)\n%s", tc.rev, got, want)
		}
	}
	if _, err := srv.SeedFromGit(ctx, dir, "no-such-rev"); err == nil {
		t.Error("SeedFromGit of a missing revision: no error")
	}
	if _, err := srv.SeedFromGit(ctx, t.TempDir(), "HEAD"); err == nil {
		t.Error("SeedFromGit of a directory without a repository: no error")
	}
	if _, err := srv.SeedFromGit(ctx, dir, "--output=x"); err == nil {
		t.Error("SeedFromGit of an option: no error")
	}
}

func TestGitDataPullsComments(t *testing.T) {
	srv := githubtest.New("acme", "widget")
	defer srv.Close()
	srv.Token = "tok"
	c := client(t, srv, "tok")
	ctx := context.Background()
	const base = "1111111111111111111111111111111111111111"
	srv.SeedCommit(base, map[string][]byte{"README.md": []byte("hi"), "p/a.txt": []byte("a"), "p/b.txt": []byte("b")})
	srv.SetRef("heads/main", base)
	status := func(err error) int {
		var er *gh.ErrorResponse
		if errors.As(err, &er) {
			return er.Response.StatusCode
		}
		return 0
	}

	parent, _, err := c.Git.GetCommit(ctx, "acme", "widget", base)
	if err != nil {
		t.Fatal(err)
	}
	// Replace p/a.txt, delete p/b.txt ("sha": null), add q/c.txt.
	tree, _, err := c.Git.CreateTree(ctx, "acme", "widget", parent.GetTree().GetSHA(), []*gh.TreeEntry{
		{Path: gh.String("p/a.txt"), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String("A")},
		{Path: gh.String("p/b.txt"), Mode: gh.String("100644"), Type: gh.String("blob")},
		{Path: gh.String("q/c.txt"), Mode: gh.String("100755"), Type: gh.String("blob"), Content: gh.String("c")},
	})
	if err != nil {
		t.Fatal(err)
	}
	same, _, err := c.Git.CreateTree(ctx, "acme", "widget", parent.GetTree().GetSHA(), []*gh.TreeEntry{
		{Path: gh.String("p/a.txt"), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String("a")},
	})
	if err != nil || same.GetSHA() != parent.GetTree().GetSHA() {
		t.Errorf("a tree with the same files has another SHA: %s vs %s (%v)", same.GetSHA(), parent.GetTree().GetSHA(), err)
	}
	if _, _, err := c.Git.CreateCommit(ctx, "acme", "widget", &gh.Commit{Message: gh.String("m"), Tree: tree, Parents: []*gh.Commit{{SHA: gh.String("2222222222222222222222222222222222222222")}}}, nil); status(err) != 422 {
		t.Errorf("commit with an unknown parent: %v", err)
	}
	commit, resp, err := c.Git.CreateCommit(ctx, "acme", "widget", &gh.Commit{Message: gh.String("change"), Tree: tree, Parents: []*gh.Commit{{SHA: gh.String(base)}}}, nil)
	if err != nil || resp.StatusCode != 201 {
		t.Fatal(err)
	}
	files, ok := srv.Tree(commit.GetSHA())
	if !ok || fmt.Sprint(files) != fmt.Sprint(map[string][]byte{"README.md": []byte("hi"), "p/a.txt": []byte("A"), "q/c.txt": []byte("c")}) {
		t.Errorf("new commit's tree: %q", files)
	}
	if _, _, err := c.Git.GetRef(ctx, "acme", "widget", "heads/feature/x"); status(err) != 404 {
		t.Errorf("missing ref: %v", err)
	}
	ref := &gh.Reference{Ref: gh.String("refs/heads/feature/x"), Object: &gh.GitObject{SHA: commit.SHA}}
	if _, _, err := c.Git.CreateRef(ctx, "acme", "widget", ref); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Git.CreateRef(ctx, "acme", "widget", ref); status(err) != 422 {
		t.Errorf("creating an existing ref: %v", err)
	}
	if got, _, err := c.Git.GetRef(ctx, "acme", "widget", "heads/feature/x"); err != nil || got.GetObject().GetSHA() != commit.GetSHA() {
		t.Errorf("GetRef: %v, %v", got, err)
	}

	// Pull requests: create, no duplicate, list by head, edit.
	if _, _, err := c.PullRequests.Create(ctx, "acme", "widget", &gh.NewPullRequest{Title: gh.String("t"), Head: gh.String("nope"), Base: gh.String("main")}); status(err) != 422 {
		t.Errorf("pull request from a missing branch: %v", err)
	}
	pr, _, err := c.PullRequests.Create(ctx, "acme", "widget", &gh.NewPullRequest{Title: gh.String("t"), Head: gh.String("feature/x"), Base: gh.String("main"), Body: gh.String("b")})
	if err != nil || pr.GetNumber() != 1 || pr.GetHTMLURL() != "https://github.com/acme/widget/pull/1" || pr.GetHead().GetSHA() != commit.GetSHA() {
		t.Fatalf("create pull: %v, %v", pr, err)
	}
	if _, _, err := c.PullRequests.Create(ctx, "acme", "widget", &gh.NewPullRequest{Title: gh.String("t"), Head: gh.String("acme:feature/x"), Base: gh.String("main")}); status(err) != 422 {
		t.Errorf("second pull request for the same branch: %v", err)
	}
	for head, n := range map[string]int{"acme:feature/x": 1, "acme:other": 0, "fork:feature/x": 0} {
		prs, _, err := c.PullRequests.List(ctx, "acme", "widget", &gh.PullRequestListOptions{State: "open", Head: head, Base: "main"})
		if err != nil || len(prs) != n {
			t.Errorf("list head %s: %d pulls, %v; want %d", head, len(prs), err, n)
		}
	}
	if _, _, err := c.PullRequests.Edit(ctx, "acme", "widget", 1, &gh.PullRequest{Title: gh.String("t2"), Body: gh.String("b2")}); err != nil {
		t.Fatal(err)
	}

	// A ref update that is not a fast forward needs force; the pull
	// request's head follows its branch.
	sideTree, _, _ := c.Git.CreateTree(ctx, "acme", "widget", parent.GetTree().GetSHA(), []*gh.TreeEntry{{Path: gh.String("z"), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String("z")}})
	side, _, err := c.Git.CreateCommit(ctx, "acme", "widget", &gh.Commit{Message: gh.String("side"), Tree: sideTree, Parents: []*gh.Commit{{SHA: gh.String(base)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref.Object.SHA = side.SHA
	if _, _, err := c.Git.UpdateRef(ctx, "acme", "widget", ref, false); status(err) != 422 {
		t.Errorf("non-fast-forward update without force: %v", err)
	}
	if _, _, err := c.Git.UpdateRef(ctx, "acme", "widget", ref, true); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.PullRequests.Get(ctx, "acme", "widget", 1); err != nil || got.GetHead().GetSHA() != side.GetSHA() || got.GetTitle() != "t2" {
		t.Errorf("pull after the push: %v, %v", got, err)
	}
	if p := srv.Pulls(); len(p) != 1 || p[0].Body != "b2" || p[0].HeadRef != "feature/x" || p[0].BaseRef != "main" || p[0].State != "open" {
		t.Errorf("Pulls() = %+v", p)
	}

	// Comments: create, list (paginated), edit; on a missing issue, 404.
	srv.AddPull(7, "abc", "seeded", "main")
	human := srv.AddComment(7, "octocat", "first")
	var last *gh.IssueComment
	for i := range 3 {
		if last, _, err = c.Issues.CreateComment(ctx, "acme", "widget", 7, &gh.IssueComment{Body: gh.String(fmt.Sprint("bot ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if last.GetUser().GetType() != "Bot" || !strings.HasSuffix(last.GetHTMLURL(), fmt.Sprintf("/pull/7#issuecomment-%d", last.GetID())) {
		t.Errorf("comment: %v", last)
	}
	cs, resp, err := c.Issues.ListComments(ctx, "acme", "widget", 7, &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 3}})
	if err != nil || len(cs) != 3 || resp.NextPage != 2 || cs[0].GetID() != human || cs[0].GetUser().GetType() != "User" {
		t.Errorf("first page of comments: %v, next %d, %v", cs, resp.NextPage, err)
	}
	if _, _, err := c.Issues.EditComment(ctx, "acme", "widget", last.GetID(), &gh.IssueComment{Body: gh.String("edited")}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Comments(7); len(got) != 4 || got[3].Body != "edited" || got[3].User != "github-actions[bot]" || got[0].User != "octocat" {
		t.Errorf("Comments(7) = %+v", got)
	}
	if _, _, err := c.Issues.ListComments(ctx, "acme", "widget", 99, nil); status(err) != 404 {
		t.Errorf("comments of a missing issue: %v", err)
	}
	if u := srv.Unexpected(); len(u) != 0 {
		t.Errorf("unexpected: %v", u)
	}
}

func TestRunsAndArtifacts(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	c := client(t, srv, "t")
	ctx := context.Background()
	results := zipOf(t, map[string]string{"bench.json": "{}"})
	srv.AddRun(githubtest.Run{ID: 10, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "a", Conclusion: "success"}, map[string][]byte{"ci-results": results, "image": []byte("PK")})
	srv.AddRun(githubtest.Run{ID: 11, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "b", Conclusion: "failure"}, nil)
	srv.AddRun(githubtest.Run{ID: 12, WorkflowFile: "ci.yml", Event: "pull_request", Branch: "f", HeadSHA: "c", Conclusion: "success"}, nil)
	srv.AddRun(githubtest.Run{ID: 13, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "d", Status: "in_progress"}, nil)
	srv.AddRun(githubtest.Run{ID: 14, WorkflowFile: "pr-comment.yml", Event: "workflow_run", Branch: "main", HeadSHA: "e", Conclusion: "success"}, nil)

	ids := func(o *gh.ListWorkflowRunsOptions) []int64 {
		t.Helper()
		runs, _, err := c.Actions.ListWorkflowRunsByFileName(ctx, "o", "r", "ci.yml", o)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range runs.WorkflowRuns {
			out = append(out, r.GetID())
		}
		return out
	}
	for _, tc := range []struct {
		opts gh.ListWorkflowRunsOptions
		want []int64
	}{
		{gh.ListWorkflowRunsOptions{}, []int64{13, 12, 11, 10}},
		{gh.ListWorkflowRunsOptions{Branch: "main", Event: "push", Status: "success"}, []int64{10}},
		{gh.ListWorkflowRunsOptions{Status: "completed"}, []int64{12, 11, 10}},
		{gh.ListWorkflowRunsOptions{Status: "failure"}, []int64{11}},
		{gh.ListWorkflowRunsOptions{Status: "in_progress"}, []int64{13}},
		{gh.ListWorkflowRunsOptions{Event: "pull_request"}, []int64{12}},
		{gh.ListWorkflowRunsOptions{HeadSHA: "b"}, []int64{11}},
		{gh.ListWorkflowRunsOptions{ListOptions: gh.ListOptions{PerPage: 1, Page: 2}}, []int64{12}},
	} {
		if got := ids(&tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("runs %+v = %v, want %v", tc.opts, got, tc.want)
		}
	}
	if _, resp, err := c.Actions.ListWorkflowRunsByFileName(ctx, "o", "r", "ci.yml", &gh.ListWorkflowRunsOptions{ListOptions: gh.ListOptions{PerPage: 1}}); err != nil || resp.NextPage != 2 || resp.LastPage != 4 {
		t.Errorf("pagination: %+v, %v", resp, err)
	}
	if _, _, err := c.Actions.ListWorkflowRunsByFileName(ctx, "o", "r", "nope.yml", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("runs of an unknown workflow: %v", err)
	}
	run, _, err := c.Actions.GetWorkflowRunByID(ctx, "o", "r", 14)
	if err != nil || run.GetEvent() != "workflow_run" || run.GetConclusion() != "success" || run.GetStatus() != "completed" {
		t.Errorf("run 14: %v, %v", run, err)
	}

	arts, _, err := c.Actions.ListWorkflowRunArtifacts(ctx, "o", "r", 10, nil)
	if err != nil || arts.GetTotalCount() != 2 || len(arts.Artifacts) != 2 || arts.Artifacts[0].GetName() != "ci-results" || arts.Artifacts[0].GetSizeInBytes() != int64(len(results)) {
		t.Fatalf("artifacts of run 10: %v, %v", arts, err)
	}
	if _, _, err := c.Actions.ListWorkflowRunArtifacts(ctx, "o", "r", 99, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("artifacts of an unknown run: %v", err)
	}
	u, _, err := c.Actions.DownloadArtifact(ctx, "o", "r", arts.Artifacts[0].GetID(), 1)
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, u.String(), "")
	if code != http.StatusOK || body != string(results) {
		t.Errorf("artifact download: %d, %d bytes", code, len(body))
	}
	// Replacing a run replaces its artifacts.
	srv.AddRun(githubtest.Run{ID: 10, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "a", Conclusion: "failure"}, nil)
	if got := ids(&gh.ListWorkflowRunsOptions{Status: "success"}); len(got) != 1 || got[0] != 12 {
		t.Errorf("after replacing run 10: %v", got)
	}
	if code, _ := get(t, u.String(), ""); code != http.StatusNotFound {
		t.Errorf("download of a replaced run's artifact: %d", code)
	}
	if u := srv.Unexpected(); len(u) != 0 {
		t.Errorf("unexpected: %v", u)
	}
}
