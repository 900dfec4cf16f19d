package cireport

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/bench"
	"github.com/fluid-os/fluid/internal/github"
	"github.com/fluid-os/fluid/internal/github/githubtest"
)

// newGitHub starts the fake GitHub for repository o/r, which accepts only
// test-token, and returns a client of it. A request the fake has no
// endpoint for fails the test.
func newGitHub(t *testing.T) (*githubtest.Server, *github.Client) {
	t.Helper()
	srv := githubtest.New("o", "r")
	srv.Token = "test-token"
	t.Cleanup(func() {
		for _, u := range srv.Unexpected() {
			t.Errorf("unexpected request %s", u)
		}
		srv.Close()
	})
	return srv, client(t, srv, "test-token")
}

// client is a client of srv with token that does not wait between retries.
func client(t *testing.T, srv *githubtest.Server, token string) *github.Client {
	t.Helper()
	g, err := github.New("o/r", github.Options{Token: token, APIURL: srv.APIURL(), HTTPClient: srv.Client(),
		Retry: github.Retry{Sleep: func(context.Context, time.Duration) error { return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// runArtifacts is what a ci run uploads: the ci-results archive with files,
// listed among other artifacts (one of them sorts before it) that must not
// be mistaken for it. results nil: the run uploaded no ci-results.
func runArtifacts(t *testing.T, results map[string]string) map[string][]byte {
	decoy := zipOf(t, map[string]string{"ci/pr.json": `{"number":6}`, "bench.json": benchJSON(t, map[string]uint64{"fib": 5000, "sort": 5000})})
	arts := map[string][]byte{"boot-logs": decoy, "toolchain-image": decoy}
	if results != nil {
		arts[ResultsArtifact] = zipOf(t, results)
	}
	return arts
}

func zipOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[name]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func benchJSON(t *testing.T, pgo map[string]uint64) string {
	r := bench.Report{Metric: "guest instructions", Variants: []string{bench.Baseline, bench.O3, bench.PGO}, Geomean: map[string]float64{}}
	logSum := 0.0
	for _, name := range slices.Sorted(maps.Keys(pgo)) {
		m := bench.ModuleResult{Module: name, Instructions: map[string]uint64{bench.Baseline: 1000, bench.O3: 950, bench.PGO: pgo[name]},
			Ratio: map[string]float64{bench.Baseline: 1, bench.O3: 0.95, bench.PGO: float64(pgo[name]) / 1000}}
		r.Modules = append(r.Modules, m)
		logSum += float64(pgo[name]) / 1000
	}
	r.Geomean[bench.Baseline], r.Geomean[bench.O3] = 1, 0.95
	r.Geomean[bench.PGO] = bench.Geomean(r.Modules, bench.PGO)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestComment(t *testing.T) {
	srv, g := newGitHub(t)
	const head = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	outcome, _ := json.Marshal(Outcome{
		Steps: []Step{{"test", "success"}, {"bench", "success"}},
		Boots: []Boot{{Log: "serial/boot.log", End: "FLUID-END pass", Passed: true}},
	})
	prResults := runArtifacts(t, map[string]string{
		"ci/pr.json":      `{"number":5,"head_sha":"` + head + `"}`,
		"ci/outcome.json": string(outcome),
		"bench.json":      benchJSON(t, map[string]uint64{"fib": 800, "sort": 900}),
		"serial/boot.log": "Fluid OS dev\nFLUID-END pass\n",
	})
	// The latest successful push run of ci.yml on main: its bench is the
	// one to compare with.
	mainRun := githubtest.Run{ID: 50, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "feedface00000000", Conclusion: "success"}
	srv.AddRun(mainRun, runArtifacts(t, map[string]string{"bench.json": benchJSON(t, map[string]uint64{"fib": 1000, "sort": 900})}))
	// Newer runs that each miss one condition (workflow, branch, event,
	// success): comparing with one of them would show fib against 700.
	other := runArtifacts(t, map[string]string{"bench.json": benchJSON(t, map[string]uint64{"fib": 700, "sort": 700})})
	for _, r := range []githubtest.Run{
		{ID: 51, WorkflowFile: "profiles.yml", Event: "push", Branch: "main", HeadSHA: "feedface00000001", Conclusion: "success"},
		{ID: 52, WorkflowFile: "ci.yml", Event: "push", Branch: "next", HeadSHA: "feedface00000002", Conclusion: "success"},
		{ID: 53, WorkflowFile: "ci.yml", Event: "workflow_dispatch", Branch: "main", HeadSHA: "feedface00000003", Conclusion: "success"},
		{ID: 54, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "feedface00000004", Conclusion: "failure"},
		{ID: 55, WorkflowFile: "ci.yml", Event: "push", Branch: "main", HeadSHA: "feedface00000005", Status: "in_progress"},
	} {
		srv.AddRun(r, other)
	}
	prRun := githubtest.Run{ID: 77, WorkflowFile: "ci.yml", Event: "pull_request", Branch: "feature", HeadSHA: head, Conclusion: "success"}
	srv.AddRun(prRun, prResults)
	srv.AddPull(5, head, "feature", "main")
	opts := CommentOptions{RunID: 77, HeadSHA: head, Conclusion: "success", RunURL: "https://github.com/o/r/actions/runs/77", Workflow: "ci.yml", Base: "main"}

	url, err := Comment(context.Background(), g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cs := srv.Comments(5); len(cs) != 1 || !strings.Contains(url, "#issuecomment-") {
		t.Fatalf("comments = %v, url %s", cs, url)
	}
	body := srv.Comments(5)[0].Body
	for _, want := range []string{CommentMarker, "✅ passed", "FLUID-END pass", "| fib | 1000 | 950 | 800 |", "-20.0% 🟢", "±0.0%", "Compared with main"} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}

	// A second run updates the same comment instead of adding one.
	prRun.ID = 78
	srv.AddRun(prRun, prResults)
	opts.RunID = 78
	if _, err := Comment(context.Background(), g, opts); err != nil {
		t.Fatal(err)
	}
	if cs := srv.Comments(5); len(cs) != 1 || !strings.Contains(cs[0].Body, "ci run [78]") {
		t.Errorf("second run did not update the one comment: %v", cs)
	}

	// A pr.json naming a pull request whose head is not what the run built
	// (a forged or stale artifact) is refused, and nothing is posted.
	srv.AddPull(6, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "other", "main")
	prRun.ID = 79
	srv.AddRun(prRun, runArtifacts(t, map[string]string{"ci/pr.json": `{"number":6}`}))
	opts.RunID = 79
	if _, err := Comment(context.Background(), g, opts); err == nil || !strings.Contains(err.Error(), "refusing to comment") {
		t.Errorf("forged pr.json: err = %v", err)
	}
	if len(srv.Comments(6)) != 0 {
		t.Errorf("commented on #6 anyway")
	}

	// No artifact at all: a clear error.
	prRun.ID = 80
	srv.AddRun(prRun, runArtifacts(t, nil))
	opts.RunID = 80
	if _, err := Comment(context.Background(), g, opts); err == nil || !strings.Contains(err.Error(), "has no ci-results artifact") {
		t.Errorf("missing artifact: err = %v", err)
	}

	// Without a main run, the comment says there is no comparison.
	mainRun.Conclusion = "failure"
	srv.AddRun(mainRun, nil)
	opts.RunID = 77
	if _, err := Comment(context.Background(), g, opts); err != nil {
		t.Fatal(err)
	}
	if body := srv.Comments(5)[0].Body; !strings.Contains(body, "no bench comparison") || strings.Contains(body, "vs main") {
		t.Errorf("comment without a main run:\n%s", body)
	}
}

func TestProfilesPR(t *testing.T) {
	srv, g := newGitHub(t)
	const base = "cccccccccccccccccccccccccccccccccccccccc"
	srv.SeedCommit(base, map[string][]byte{"README.md": []byte("hi"), "profiles/fib.proftext": []byte("old"), "profiles/gone.proftext": []byte("x")})
	srv.SetRef("heads/main", base)
	root := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(root, "profiles", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// branchTree is the tree the bot's branch points at.
	branchTree := func() map[string]string {
		t.Helper()
		sha, ok := srv.Ref("heads/profiles/refresh")
		if !ok {
			t.Fatal("no branch profiles/refresh")
		}
		files, ok := srv.Tree(sha)
		if !ok {
			t.Fatalf("branch profiles/refresh points at %s, which is no commit", sha)
		}
		out := map[string]string{}
		for p, b := range files {
			out[p] = string(b)
		}
		return out
	}
	write("fib.proftext", "new")
	write("summary.json", "{}")
	before := bench.Report{}
	json.Unmarshal([]byte(benchJSON(t, map[string]uint64{"fib": 900})), &before)
	after := bench.Report{}
	json.Unmarshal([]byte(benchJSON(t, map[string]uint64{"fib": 810})), &after)
	opts := ProfilesPROptions{Base: "main", HeadSHA: base, Branch: "profiles/refresh", Root: root, Dir: "profiles",
		Before: &before, After: &after, RunURL: "https://github.com/o/r/actions/runs/9"}

	res, err := ProfilesPR(context.Background(), g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.Created || res.URL != "https://github.com/o/r/pull/1" {
		t.Fatalf("first run: %+v", res)
	}
	got := branchTree()
	want := map[string]string{"README.md": "hi", "profiles/fib.proftext": "new", "profiles/summary.json": "{}"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("branch tree = %v, want %v", got, want)
	}
	// The new commit has one parent: the commit the profiles were captured on.
	if parents, ok := srv.Parents(res.Commit); !ok || len(parents) != 1 || parents[0] != base {
		t.Errorf("commit %s: parents %v (known: %t)", res.Commit, parents, ok)
	}
	if body := srv.Pulls()[0].Body; !strings.Contains(body, "| fib | 900 | 810 | -10.0% 🟢 |") {
		t.Errorf("PR body lacks the bench change:\n%s", body)
	}

	// Second run with other profiles: the branch is force-updated and the
	// same pull request edited; no second pull request.
	write("fib.proftext", "newer")
	res, err = ProfilesPR(context.Background(), g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || len(srv.Pulls()) != 1 || branchTree()["profiles/fib.proftext"] != "newer" {
		t.Errorf("second run: %+v, pulls %d", res, len(srv.Pulls()))
	}

	// Profiles identical to the base commit: nothing is pushed.
	srv.SeedCommit("dddddddddddddddddddddddddddddddddddddddd", map[string][]byte{"profiles/fib.proftext": []byte("newer"), "profiles/summary.json": []byte("{}")})
	opts.HeadSHA = "dddddddddddddddddddddddddddddddddddddddd"
	n := len(srv.Log())
	res, err = ProfilesPR(context.Background(), g, opts)
	if err != nil || res.Changed {
		t.Errorf("unchanged profiles: %+v, %v", res, err)
	}
	for _, c := range srv.Log()[n:] {
		if strings.HasPrefix(c, "PATCH") || strings.Contains(c, "/pulls") || strings.HasSuffix(c, "/git/commits") {
			t.Errorf("unchanged profiles still called %s", c)
		}
	}

	// Bad token: the API's 401 comes back as an error naming the step.
	if _, err := ProfilesPR(context.Background(), client(t, srv, "wrong"), opts); err == nil || !strings.Contains(err.Error(), "get commit") {
		t.Errorf("bad token: err = %v", err)
	}
}

// When the committed profiles are stale, profiles.yml has no bench before:
// the body shows the after figures and says why (found by `mage rehearse`:
// the workflow failed on exactly the source change that needs a refresh).
func TestProfilesPRBodyWithoutBefore(t *testing.T) {
	var after bench.Report
	if err := json.Unmarshal([]byte(benchJSON(t, map[string]uint64{"fib": 900, "sort": 800})), &after); err != nil {
		t.Fatal(err)
	}
	body := ProfilesPRBody(ProfilesPROptions{HeadSHA: "0123456789abcdef", After: &after, NoBefore: "the committed profiles were stale"}, []string{"profiles/fib.proftext"})
	for _, want := range []string{"after only: the committed profiles were stale", "| fib | 900 |", "| sort | 800 |", "geomean PGO/baseline"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}
