// Package rehearse runs the project's real GitHub Actions workflows on this
// machine before anything is pushed: `go tool mage rehearse`.
//
// act (pinned in tools/rehearse/go.mod, built by the tool cache) runs each
// workflow in host mode (runs-on mapped to -self-hosted: no container
// engine) against a clean clone of the tree, for the events GitHub would
// send (Plan). Nothing reaches the network:
//
//   - a bare repository plays GitHub's copy of the repository: main, the
//     pull request's refs and the release tag point at the rehearsed commit
//     (HEAD, plus uncommitted changes to tracked files);
//   - every third-party `uses:` maps to a stand-in under
//     .github/rehearsal/actions/ (act --local-repository), and sudo and gh
//     are stand-ins too (internal/rehearse/standin lists them all); the
//     project's own composite actions run as they are;
//   - artifacts go through act's artifact server, so jobs of a run hand
//     them to each other; caches go to a local directory;
//   - GITHUB_API_URL is an in-process fake GitHub (githubtest) holding the
//     rehearsed commit, which receives the profile-refresh pull request,
//     the release and the pull-request comment, and serves the ci run's
//     artifacts to pr-comment as workflow_run hands them over;
//   - releases are signed with a throwaway local cosign key, given as the
//     workflow's key secrets, and checked with its public key.
//
// A failed step fails the rehearsal, naming the workflow, event, job and
// step, with the step's last output lines. After each run, checks look at
// what it produced (Plan's Check). A workflow whose every event passed is
// recorded in .github/rehearsal/passed.json with the hash of its files, and
// `mage lint` flags a workflow changed since (record.go).
package rehearse

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/gitenv"
	"github.com/fluid-os/fluid/internal/github/githubtest"
	"github.com/fluid-os/fluid/internal/rehearse/record"
	"github.com/fluid-os/fluid/internal/release/toolcache"
)

// Options configure a rehearsal.
type Options struct {
	Root string // the developer's tree (a git work tree)
	// Workflows limits the rehearsal to these files (e.g. ci.yml); empty
	// means every workflow in the plan.
	Workflows []string
	// Events limits the rehearsed events (e.g. pull_request); empty: all.
	Events []string
	// Jobs limits each run to these job ids (act -j, with their needs);
	// empty: every job.
	Jobs []string
	Act  string // the act binary
	// Cosign is the cosign binary (toolcache), for the release's key pair;
	// needed only when release.yml is rehearsed.
	Cosign string
	// Workflows directory override for tests: a directory whose *.yml
	// replace .github/workflows/ in the clone (committed there).
	WorkflowOverride map[string][]byte
	Dir              string    // work directory (default: a new temporary one)
	CacheDir         string    // actions-cache stand-in directory (default: under Dir)
	Keep             bool      // keep Dir afterwards
	Log              io.Writer // the jobs' output (default io.Discard)
	// Record updates .github/rehearsal/passed.json in Root for every
	// workflow whose every event and job passed.
	Record bool
}

// RunResult is one rehearsed (workflow, event).
type RunResult struct {
	Workflow, Event string
	Jobs            []JobResult
	Duration        time.Duration
	Failures        []Failure
}

// Result is a whole rehearsal.
type Result struct {
	Commit string
	Dir    string
	Runs   []RunResult
	// Recorded lists the workflows written to passed.json.
	Recorded []string
}

// Failures is every failure of every run.
func (r *Result) Failures() []Failure {
	var out []Failure
	for _, run := range r.Runs {
		out = append(out, run.Failures...)
	}
	return out
}

// Error is a failed rehearsal: every failed step, named.
type Error struct{ Failures []Failure }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rehearsal failed (%d):", len(e.Failures))
	for _, f := range e.Failures {
		b.WriteString("\n  " + strings.ReplaceAll(f.String(), "\n", "\n  "))
	}
	return b.String()
}

// env is one rehearsal's shared state.
type env struct {
	o        Options
	dir      string
	origin   string // bare repository: GitHub's copy
	tree     string // act's working directory: a clone at the commit
	bin      string // fluid-standin, sudo, gh
	commit   string
	parent   string
	tag      string
	repo     string // owner/name
	gh       *githubtest.Server
	token    string
	keyPEM   []byte // release signing key (encrypted PEM) and its password
	keyPass  string
	pubPEM   []byte
	merge    string   // the pull request's merge commit (refs/pull/1/merge)
	env      []string // act's (and so the jobs') environment
	registry string   // host:port of the local OCI registry, once started
	// stepCommit is the commit a Before hook put on main for its run ("":
	// commit).
	stepCommit string
	closers    []func()
}

// Run rehearses the plan (or the part Options selects).
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Act == "" {
		return nil, errors.New("rehearse: no act binary (the tool cache builds it: toolcache.Act)")
	}
	runs, err := selectPlan(o)
	if err != nil {
		return nil, err
	}
	e := &env{o: o, repo: "fluid-os/fluid"}
	res := &Result{}
	if e.dir = o.Dir; e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "fluid-rehearsal-"); err != nil {
			return nil, err
		}
	}
	res.Dir = e.dir
	if !o.Keep {
		defer os.RemoveAll(e.dir)
	}
	if err := e.prepare(ctx, runs); err != nil {
		return nil, fmt.Errorf("rehearse: prepare: %w", err)
	}
	defer e.gh.Close()
	defer func() {
		for _, c := range e.closers {
			c()
		}
	}()
	res.Commit = e.commit
	for _, p := range runs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rr := e.run(ctx, p)
		res.Runs = append(res.Runs, rr)
	}
	var fails []Failure
	passed := map[string]bool{}
	for _, rr := range res.Runs {
		fails = append(fails, rr.Failures...)
		if _, seen := passed[rr.Workflow]; !seen {
			passed[rr.Workflow] = true
		}
		if len(rr.Failures) > 0 {
			passed[rr.Workflow] = false
		}
	}
	if o.Record && len(o.Jobs) == 0 && len(o.Events) == 0 && len(o.WorkflowOverride) == 0 {
		var ok []string
		for wf, good := range passed {
			if good && coversAllEvents(wf, res.Runs) {
				ok = append(ok, wf)
			}
		}
		sort.Strings(ok)
		if len(ok) > 0 {
			if err := record.Record(o.Root, e.tree, ok); err != nil {
				return res, err
			}
			res.Recorded = ok
		}
	}
	if len(fails) > 0 {
		return res, &Error{Failures: fails}
	}
	return res, nil
}

func coversAllEvents(wf string, runs []RunResult) bool {
	for _, ev := range record.Events[wf] {
		found := false
		for _, r := range runs {
			if r.Workflow == wf && r.Event == ev {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func selectPlan(o Options) ([]Step, error) {
	var out []Step
	for _, p := range Plan {
		if len(o.Workflows) > 0 && !contains(o.Workflows, p.Workflow) {
			continue
		}
		if len(o.Events) > 0 && !contains(o.Events, p.Event) {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		var have []string
		for _, p := range Plan {
			have = append(have, p.Workflow+" "+p.Event)
		}
		return nil, fmt.Errorf("rehearse: nothing in the plan matches workflows %v events %v (the plan: %s)", o.Workflows, o.Events, strings.Join(have, ", "))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s || strings.TrimSuffix(x, ".yml") == strings.TrimSuffix(s, ".yml") {
			return true
		}
	}
	return false
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// git runs git in dir with GIT_* cleared and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	// The developer's hooks and signing settings stay out: a pre-push hook
	// must not run (or recurse into a rehearsal), a tag must not ask for a
	// signature.
	args = append([]string{"-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false"}, args...)
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitenv.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=rehearsal", "GIT_AUTHOR_EMAIL=rehearsal@localhost",
		"GIT_COMMITTER_NAME=rehearsal", "GIT_COMMITTER_EMAIL=rehearsal@localhost")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// prepare makes the bare origin, act's working clone, the stand-in
// binaries, the fake GitHub and the release key.
func (e *env) prepare(ctx context.Context, runs []Step) error {
	root := e.o.Root
	if _, err := git(ctx, root, "rev-parse", "--git-dir"); err != nil {
		return fmt.Errorf("%s is not a git work tree: %w", root, err)
	}
	head, err := git(ctx, root, "rev-parse", "--verify", "-q", "HEAD")
	if err != nil || head == "" {
		return fmt.Errorf("%s has no commit yet: commit something first (the rehearsal clones HEAD)", root)
	}
	// HEAD plus uncommitted changes to tracked files, as one commit on top
	// of HEAD (`git stash create` touches neither the tree nor the stash
	// list; its tree is re-committed with HEAD as the only parent, so
	// `git describe` counts as it would for a real commit).
	commit := head
	stash, err := git(ctx, root, "stash", "create", "rehearsal: working tree")
	if err != nil {
		return fmt.Errorf("taking the working tree's changes (git stash create): %w; commit or reset files added with `git add -N`, or commit your changes", err)
	}
	if stash != "" {
		if commit, err = git(ctx, root, "commit-tree", stash+"^{tree}", "-p", head, "-m", "rehearsal: uncommitted changes of the working tree"); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not on PATH: the rehearsal's stand-in actions run on Node.js, as GitHub's runner runs actions; install nodejs")
	}
	e.origin = filepath.Join(e.dir, "origin.git")
	if _, err := git(ctx, e.dir, "init", "-q", "--bare", e.origin); err != nil {
		return err
	}
	if _, err := git(ctx, root, "push", "-q", "--no-verify", e.origin, commit+":refs/heads/main", "+refs/tags/*:refs/tags/*"); err != nil {
		return err
	}
	e.tree = filepath.Join(e.dir, "tree")
	if _, err := git(ctx, e.dir, "clone", "-q", "--branch", "main", e.origin, e.tree); err != nil {
		return err
	}
	if len(e.o.WorkflowOverride) > 0 {
		names := make([]string, 0, len(e.o.WorkflowOverride))
		for n := range e.o.WorkflowOverride {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(e.tree, ".github", "workflows", n), e.o.WorkflowOverride[n], 0o644); err != nil {
				return err
			}
		}
		if _, err := git(ctx, e.tree, "add", "-A", ".github/workflows"); err != nil {
			return err
		}
		if _, err := git(ctx, e.tree, "commit", "-q", "-m", "rehearsal: workflow override"); err != nil {
			return err
		}
		if _, err := git(ctx, e.tree, "push", "-q", "--no-verify", "origin", "HEAD:refs/heads/main"); err != nil {
			return err
		}
	}
	if e.commit, err = git(ctx, e.tree, "rev-parse", "HEAD"); err != nil {
		return err
	}
	e.parent, _ = git(ctx, e.tree, "rev-parse", "HEAD^")
	// The pull request (number 1, from branch rehearsal into main) and its
	// merge ref are the commit itself; the release tag is the v* tag at the
	// commit, or v0.0.0-rehearsal.
	e.tag = "v0.0.0-rehearsal"
	if tags, _ := git(ctx, e.tree, "tag", "--points-at", "HEAD", "--list", "v*"); tags != "" {
		e.tag = strings.Fields(tags)[0]
	}
	// GitHub runs a pull request's workflows on its merge commit (the
	// head merged into the base), so github.sha is not the head's SHA; the
	// merge here has the head's tree (a head based on the latest main).
	e.merge = e.commit
	if e.parent != "" {
		if e.merge, err = git(ctx, e.tree, "commit-tree", e.commit+"^{tree}", "-p", e.parent, "-p", e.commit, "-m", "Merge "+e.commit+" into "+e.parent); err != nil {
			return err
		}
	}
	refs := []string{e.commit + ":refs/pull/1/head", e.merge + ":refs/pull/1/merge", e.commit + ":refs/heads/rehearsal"}
	if _, err := git(ctx, e.tree, "rev-parse", "-q", "--verify", "refs/tags/"+e.tag); err != nil {
		refs = append(refs, e.commit+":refs/tags/"+e.tag)
		if _, err := git(ctx, e.tree, "tag", e.tag, e.commit); err != nil {
			return err
		}
	}
	if _, err := git(ctx, e.tree, append([]string{"push", "-q", "--no-verify", "origin"}, refs...)...); err != nil {
		return err
	}
	for _, rc := range []string{".actrc", ".secrets", ".vars", ".env", ".input"} {
		if _, err := os.Stat(filepath.Join(e.tree, rc)); err == nil {
			return fmt.Errorf("the tree has %s, which act would read as its own configuration; the rehearsal runs the workflows as GitHub does, without it: rename it", rc)
		}
	}
	// act names the repository after origin's URL.
	if _, err := git(ctx, e.tree, "remote", "set-url", "origin", "https://github.com/"+e.repo); err != nil {
		return err
	}
	// Every `uses:` must have a stand-in before act is started (act would
	// otherwise try to clone it from github.com).
	if _, err := e.localRepositories(); err != nil {
		return err
	}
	e.bin = filepath.Join(e.dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(e.bin, "fluid-standin"), "./cmd/fluid-standin")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build fluid-standin: %v: %s", err, out)
	}
	for _, n := range []string{"sudo", "gh"} {
		if err := os.Symlink("fluid-standin", filepath.Join(e.bin, n)); err != nil {
			return err
		}
	}
	if err := e.jobEnv(ctx); err != nil {
		return err
	}
	owner, name, _ := strings.Cut(e.repo, "/")
	e.gh = githubtest.New(owner, name)
	e.token = "ghs_rehearsal" + randHex(16)
	e.gh.Token = e.token
	for _, c := range []string{e.commit, e.merge} {
		if _, err := e.gh.SeedFromGit(ctx, e.tree, c); err != nil {
			return err
		}
	}
	e.gh.SetRef("heads/main", e.commit)
	for _, p := range runs {
		if p.Workflow == "release.yml" {
			if err := e.releaseKey(ctx); err != nil {
				return err
			}
			break
		}
	}
	if e.o.CacheDir == "" {
		// One rehearsal's own cache, as GitHub scopes caches to a
		// repository: nothing from an earlier rehearsal (of another
		// branch or clone) is restored, and nothing piles up.
		e.o.CacheDir = filepath.Join(e.dir, "actions-cache")
	}
	return os.MkdirAll(e.o.CacheDir, 0o755)
}

// releaseKey makes the throwaway cosign key pair the release is signed with.
func (e *env) releaseKey(ctx context.Context) error {
	if e.o.Cosign == "" {
		return errors.New("release.yml needs a cosign binary for its signing key (toolcache.Cosign)")
	}
	dir := filepath.Join(e.dir, "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	e.keyPass = randHex(12)
	cmd := exec.CommandContext(ctx, e.o.Cosign, "generate-key-pair")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+e.keyPass)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cosign generate-key-pair: %v: %s", err, out)
	}
	var err error
	if e.keyPEM, err = os.ReadFile(filepath.Join(dir, "cosign.key")); err != nil {
		return err
	}
	e.pubPEM, err = os.ReadFile(filepath.Join(dir, "cosign.pub"))
	return err
}

var usesRE = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*["']?([^\s"'#]+)`)

// localRepositories maps every third-party action the workflows and the
// project's composite actions use (owner/repo[/path]@sha) to its stand-in
// directory: act --local-repository owner/repo@sha=dir.
func (e *env) localRepositories() ([]string, error) {
	standins := filepath.Join(e.tree, ".github", "rehearsal", "actions")
	var files []string
	for _, g := range []string{".github/workflows/*.yml", ".github/workflows/*.yaml", ".github/actions/*/action.yml", ".github/actions/*/action.yaml"} {
		m, _ := filepath.Glob(filepath.Join(e.tree, g))
		files = append(files, m...)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range usesRE.FindAllStringSubmatch(string(b), -1) {
			u := m[1]
			if strings.HasPrefix(u, "./") || strings.HasPrefix(u, "docker://") {
				continue
			}
			path, ref, ok := strings.Cut(u, "@")
			if !ok {
				return nil, fmt.Errorf("%s: uses %s has no @ref", rel(e.tree, f), u)
			}
			parts := strings.Split(path, "/")
			if len(parts) < 2 {
				return nil, fmt.Errorf("%s: uses %s is not owner/repo", rel(e.tree, f), u)
			}
			if _, err := os.Stat(filepath.Join(standins, path, "action.yml")); err != nil {
				return nil, fmt.Errorf("%s uses %s, which has no rehearsal stand-in: add .github/rehearsal/actions/%s/action.yml (same inputs and outputs) and its fluid-standin subcommand (internal/rehearse/standin); see .github/rehearsal/README.md", rel(e.tree, f), u, path)
			}
			repo := parts[0] + "/" + parts[1]
			if _, ok := pins[repo][ref]; !ok {
				var have []string
				for sha, v := range pins[repo] {
					have = append(have, v+" "+sha)
				}
				sort.Strings(have)
				return nil, fmt.Errorf("%s uses %s, but the rehearsal's stand-in for %s imitates only %v: check .github/rehearsal/actions/%s against that release (inputs, outputs, behaviour), then add its SHA to internal/rehearse/pins.go", rel(e.tree, f), u, repo, have, repo)
			}
			k := repo + "@" + ref
			if !seen[k] {
				seen[k] = true
				out = append(out, k+"="+filepath.Join(standins, parts[0], parts[1]))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// freePort asks the kernel for a free loopback port for act's artifact
// server (act takes a fixed port and cannot report one it chose).
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// run rehearses one (workflow, event): act once per selected job (or once
// for the whole workflow), then the step's checks.
func (e *env) run(ctx context.Context, p Step) (rr RunResult) {
	start := time.Now()
	rr = RunResult{Workflow: p.Workflow, Event: p.Event}
	fmt.Fprintf(e.o.Log, "\n=== rehearse %s (%s) at %s\n", p.Workflow, p.Event, e.commit[:12])
	fail := func(step, msg string) {
		rr.Failures = append(rr.Failures, Failure{Workflow: p.Workflow, Event: p.Event, Job: "(rehearsal)", Step: step, Tail: strings.Split(msg, "\n")})
	}
	if p.After != nil {
		defer func() {
			if err := p.After(ctx, e); err != nil {
				rr.Failures = append(rr.Failures, Failure{Workflow: p.Workflow, Event: p.Event, Job: "(rehearsal)", Step: "undo the run's setup", Tail: []string{err.Error()}})
			}
		}()
	}
	if p.Before != nil {
		if err := p.Before(ctx, e); err != nil {
			fail("prepare "+p.Event+" event", err.Error())
			rr.Duration = time.Since(start)
			return rr
		}
	}
	if p.Event == "pull_request" && e.merge != e.commit {
		// act takes github.sha from its working directory's HEAD.
		if _, err := git(ctx, e.tree, "checkout", "-q", "--detach", e.merge); err != nil {
			fail("check out the pull request's merge commit", err.Error())
			rr.Duration = time.Since(start)
			return rr
		}
		defer git(ctx, e.tree, "checkout", "-q", "main")
	}
	artifacts := filepath.Join(e.dir, "artifacts", strings.TrimSuffix(p.Workflow, ".yml")+"-"+p.Event)
	jobs := e.o.Jobs
	if len(jobs) == 0 {
		jobs = []string{""}
	}
	want := p.Jobs
	if len(e.o.Jobs) > 0 {
		want = e.o.Jobs
	}
	for _, job := range jobs {
		l, err := e.act(ctx, p, job, artifacts)
		if err != nil {
			fail("start act", err.Error())
			continue
		}
		rr.Jobs = append(rr.Jobs, l.results()...)
		fs := l.jobFailures()
		rr.Failures = append(rr.Failures, fs...)
		if l.exitErr != nil && len(fs) == 0 {
			tail := strings.Join(l.other, "\n")
			if tail == "" {
				tail = l.exitErr.Error()
			}
			fail("act", tail)
		}
	}
	// Every job the run is for must have run and passed: a job whose if:
	// was false (act does not report it) must not count as a pass.
	ran := map[string]string{}
	for _, j := range rr.Jobs {
		ran[j.Job] = j.Result
	}
	for _, j := range want {
		switch res, ok := ran[j]; {
		case !ok:
			fail("job "+j, "job "+j+" did not run: "+p.Workflow+" has no such job, or its if: is false for a "+p.Event+" event")
		case res != "success" && !hasJobFailure(rr.Failures, j):
			fail("job "+j, "job "+j+" ended "+res+" without a failed step (see the log above)")
		}
	}
	if len(rr.Failures) == 0 && p.Check != nil {
		if err := p.Check(ctx, e, artifacts, e.o.Jobs); err != nil {
			fail("rehearsal check after the run", err.Error())
		}
	}
	rr.Duration = time.Since(start)
	status := "passed"
	if len(rr.Failures) > 0 {
		status = "FAILED"
	}
	fmt.Fprintf(e.o.Log, "=== %s %s (%s) in %s\n", status, p.Workflow, p.Event, rr.Duration.Round(time.Second))
	return rr
}

// workflowRef is the ref GitHub runs a workflow at for the event: the
// pushed (or dispatched) ref, a pull request's merge ref, else the
// default branch.
func workflowRef(event string, payload map[string]any) string {
	if r, ok := payload["ref"].(string); ok && r != "" {
		return r
	}
	if n, ok := payload["number"]; ok && event == "pull_request" {
		return fmt.Sprintf("refs/pull/%v/merge", n)
	}
	return "refs/heads/main"
}

// actRun is the outcome of one act invocation.
type actRun struct {
	*actLog
	exitErr error
}

func (e *env) act(ctx context.Context, p Step, job, artifacts string) (*actRun, error) {
	ev := p.Payload(e)
	payload, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return nil, err
	}
	evDir := filepath.Join(e.dir, "events")
	os.MkdirAll(evDir, 0o755)
	evFile := filepath.Join(evDir, strings.TrimSuffix(p.Workflow, ".yml")+"-"+p.Event+".json")
	if err := os.WriteFile(evFile, payload, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	locals, err := e.localRepositories()
	if err != nil {
		return nil, err
	}
	args := []string{p.Event,
		"-W", filepath.Join(".github", "workflows", p.Workflow),
		"-e", evFile,
		"-P", "ubuntu-24.04=-self-hosted", "-P", "ubuntu-latest=-self-hosted",
		"--action-offline-mode", "--no-skip-checkout", "--json", "--no-cache-server",
		"--artifact-server-path", artifacts, "--artifact-server-addr", "127.0.0.1", "--artifact-server-port", port,
		"--action-cache-path", filepath.Join(e.dir, "act"),
		"--concurrent-jobs", "1",
	}
	// Secrets go through a 0600 file, not the command line (which any
	// user can read in /proc).
	secrets := map[string]string{"GITHUB_TOKEN": e.token}
	for k, v := range p.secrets(e) {
		secrets[k] = v
	}
	secretFile := filepath.Join(e.dir, "secrets.env")
	if err := writeDotenv(secretFile, secrets); err != nil {
		return nil, err
	}
	args = append(args, "--secret-file", secretFile, "--var-file", filepath.Join(e.dir, "no-vars.env"), "--env-file", filepath.Join(e.dir, "no-env.env"), "--input-file", filepath.Join(e.dir, "no-inputs.env"))
	for _, l := range locals {
		args = append(args, "--local-repository", l)
	}
	for _, kv := range []string{
		"GITHUB_API_URL=" + e.gh.APIURL(),
		"FLUID_REHEARSAL=1",
		"FLUID_REHEARSAL_ORIGIN=" + e.origin,
		"FLUID_REHEARSAL_CACHE=" + e.o.CacheDir,
		"FLUID_REHEARSAL_ATTESTATIONS=" + filepath.Join(e.dir, "attestations"),
		// act leaves it unset; GitHub sets it, and the provenance names it.
		"GITHUB_WORKFLOW_REF=" + e.repo + "/.github/workflows/" + p.Workflow + "@" + workflowRef(p.Event, ev),
	} {
		args = append(args, "--env", kv)
	}
	for k, v := range p.env(e) {
		args = append(args, "--env", k+"="+v)
	}
	for k, v := range p.vars(e) {
		args = append(args, "--var", k+"="+v)
	}
	if job != "" {
		args = append(args, "-j", job)
	}
	cmd := exec.CommandContext(ctx, e.o.Act, args...)
	cmd.Dir = e.tree
	cmd.Env = e.env
	// On cancel act gets SIGINT, so it stops its steps (they run in their
	// own sessions) before it exits; SIGKILL only after 30 s.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	// act's raw JSON log is kept beside the artifacts (FLUID_REHEARSE_KEEP=1).
	raw, err := os.Create(filepath.Join(e.dir, "act-"+strings.TrimSuffix(p.Workflow, ".yml")+"-"+p.Event+suffix(job)+".jsonl"))
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(pw, raw), io.MultiWriter(pw, raw)
	l := &actRun{actLog: newActLog(p.Workflow, p.Event, e.o.Log)}
	done := make(chan struct{})
	go func() { l.consume(pr); close(done) }()
	if err := cmd.Start(); err != nil {
		pw.Close()
		<-done
		return nil, fmt.Errorf("start %s: %w", e.o.Act, err)
	}
	l.exitErr = cmd.Wait()
	pw.Close()
	<-done
	return l, nil
}

// jobEnv sets act's environment, which host-mode jobs inherit whole: an
// allowlist of this process's variables (nothing of the developer's
// FLUID_*, GITHUB_*, GO* or CI settings can change what the jobs do), a
// HOME of the rehearsal's own (so no ~/.actrc, ~/.gitconfig or
// ~/.magefile of the developer), the stand-ins first on PATH, and the
// machine's shared caches named explicitly: Go's build and module caches
// and the project's (the locked toolchain rootfs, the release tools). Go
// reaches no module proxy.
func (e *env) jobEnv(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		return fmt.Errorf("go env: %w", err)
	}
	goenv := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(goenv) != 3 {
		return fmt.Errorf("go env printed %q", out)
	}
	cache, err := toolcache.CacheRoot()
	if err != nil {
		return err
	}
	home := filepath.Join(e.dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"no-vars.env", "no-env.env", "no-inputs.env"} {
		if err := os.WriteFile(filepath.Join(e.dir, f), nil, 0o600); err != nil {
			return err
		}
	}
	keep := map[string]bool{"USER": true, "LOGNAME": true, "SHELL": true, "TERM": true, "TMPDIR": true}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); keep[k] {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env,
		"PATH="+e.bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"GOCACHE="+goenv[0], "GOMODCACHE="+goenv[1], "GOPATH="+goenv[2], "GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=",
		"FLUID_CACHE_DIR="+cache,
		"LANG=C.UTF-8")
	return nil
}

// writeDotenv writes vars as act's --secret-file reads them (godotenv:
// double-quoted values with \n, \" and \\ escapes), mode 0600.
func writeDotenv(path string, vars map[string]string) error {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		v := strings.NewReplacer("\\", "\\\\", "\"", "\\\"", "\n", "\\n", "\r", "\\r", "$", "\\$").Replace(vars[k])
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, v)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func suffix(job string) string {
	if job == "" {
		return ""
	}
	return "-" + job
}

func hasJobFailure(fs []Failure, job string) bool {
	for _, f := range fs {
		if f.Job == job {
			return true
		}
	}
	return false
}
