package rehearse

import (
	"archive/zip"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/publish"

	"github.com/fluid-os/fluid/internal/cireport"
	"github.com/fluid-os/fluid/internal/github/githubtest"
)

// Step is one rehearsed (workflow, event): the event's payload as GitHub
// would send it, what the fake GitHub must hold before, and what the run
// must have produced after.
type Step struct {
	Workflow, Event string
	// Jobs must all run and pass (a job skipped by its if: fails the run).
	Jobs    []string
	Payload func(e *env) map[string]any
	Before  func(ctx context.Context, e *env) error
	// Check looks at the run's artifacts (act's artifact server directory)
	// and at the fake GitHub. jobs is the job selection (empty: all).
	Check func(ctx context.Context, e *env, artifacts string, jobs []string) error
	// Secrets and Vars are given to act (-s, --var).
	Secrets func(e *env) map[string]string
	Vars    func(e *env) map[string]string
	// Env adds variables to the jobs' environment (act --env).
	Env func(e *env) map[string]string
	// After undoes what Before changed (run whatever happened).
	After func(ctx context.Context, e *env) error
}

func (s Step) env(e *env) map[string]string {
	if s.Env == nil {
		return nil
	}
	return s.Env(e)
}

func (s Step) secrets(e *env) map[string]string {
	if s.Secrets == nil {
		return nil
	}
	return s.Secrets(e)
}

func (s Step) vars(e *env) map[string]string {
	if s.Vars == nil {
		return nil
	}
	return s.Vars(e)
}

// The fake GitHub's ids for the rehearsed ci runs.
const (
	ciPRRunID   = 9001
	ciPushRunID = 9002
	prNumber    = 1
)

// Plan is the rehearsal, in order: the pull request's ci run, ci on the
// push to main, the profile refresh, the tagged release, and the comment
// on the pull request from the ci run's artifacts (workflow_run).
var Plan = []Step{
	{Workflow: "ci.yml", Event: "pull_request", Payload: prPayload, Jobs: []string{"lint", "test", "verify"},
		Check: func(ctx context.Context, e *env, arts string, jobs []string) error {
			return e.ciCheck(arts, jobs, ciPRRunID, "pull_request", "rehearsal")
		}},
	{Workflow: "ci.yml", Event: "push", Payload: pushPayload("refs/heads/main"), Jobs: []string{"lint", "test", "verify"},
		Check: func(ctx context.Context, e *env, arts string, jobs []string) error {
			return e.ciCheck(arts, jobs, ciPushRunID, "push", "main")
		}},
	{Workflow: "profiles.yml", Event: "workflow_dispatch", Payload: dispatchPayload, Jobs: []string{"refresh"},
		Before: profilesBefore, After: profilesAfter, Check: profilesCheck},
	{Workflow: "release.yml", Event: "push", Jobs: []string{"check", "build", "sign", "publish", "check-published"}, Payload: func(e *env) map[string]any { return pushPayload("refs/tags/" + e.tag)(e) },
		Secrets: func(e *env) map[string]string {
			return map[string]string{"RELEASE_COSIGN_KEY": string(e.keyPEM), "RELEASE_COSIGN_PASSWORD": e.keyPass}
		},
		Vars: func(e *env) map[string]string {
			return map[string]string{"RELEASE_COSIGN_PUBLIC_KEY": string(e.pubPEM)}
		},
		Check: releaseCheck},
	{Workflow: "pr-comment.yml", Event: "workflow_run", Payload: workflowRunPayload, Jobs: []string{"comment"}, Before: prCommentBefore,
		Check: prCommentCheck},
	// toolchain.yml: the image job on a pull request, the publish job on a
	// push to main, pushing to a local registry instead of ghcr.io.
	{Workflow: "toolchain.yml", Event: "pull_request", Payload: prPayload, Jobs: []string{"image"}},
	{Workflow: "toolchain.yml", Event: "push", Payload: pushPayload("refs/heads/main"), Jobs: []string{"publish"}, Before: startRegistry,
		Env:   func(e *env) map[string]string { return map[string]string{"FLUID_TOOLCHAIN_PUSH_REGISTRY": e.registry} },
		Check: toolchainPushCheck},
}

func repository(e *env) map[string]any {
	owner, name, _ := strings.Cut(e.repo, "/")
	return map[string]any{"full_name": e.repo, "name": name, "owner": map[string]any{"login": owner},
		"default_branch": "main", "html_url": "https://github.com/" + e.repo}
}

func prPayload(e *env) map[string]any {
	return map[string]any{
		"action": "synchronize", "number": prNumber,
		"pull_request": map[string]any{
			"number": prNumber,
			"head":   map[string]any{"ref": "rehearsal", "sha": e.commit, "repo": repository(e)},
			"base":   map[string]any{"ref": "main", "sha": e.parentOr(), "repo": repository(e)},
		},
		"repository": repository(e),
	}
}

func (e *env) parentOr() string {
	if e.parent != "" {
		return e.parent
	}
	return e.commit
}

func pushPayload(ref string) func(e *env) map[string]any {
	return func(e *env) map[string]any {
		return map[string]any{"ref": ref, "before": e.parentOr(), "after": e.commit,
			"head_commit": map[string]any{"id": e.commit}, "repository": repository(e)}
	}
}

func dispatchPayload(e *env) map[string]any {
	return map[string]any{"ref": "refs/heads/main", "inputs": map[string]any{}, "repository": repository(e)}
}

func workflowRunPayload(e *env) map[string]any {
	return map[string]any{
		"action": "completed",
		"workflow_run": map[string]any{
			"id": ciPRRunID, "name": "ci", "event": "pull_request", "status": "completed", "conclusion": "success",
			"head_sha": e.commit, "head_branch": "rehearsal", "path": ".github/workflows/ci.yml",
			"html_url": fmt.Sprintf("https://github.com/%s/actions/runs/%d", e.repo, ciPRRunID),
		},
		"repository": repository(e),
	}
}

// runArtifacts reads the zips act's artifact server stored for a run
// (<dir>/<run id>/<name>/<name>.zip).
func runArtifacts(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	m, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*.zip"))
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(filepath.Base(p), ".zip")] = b
	}
	return out, nil
}

// artifactFiles is the contents of the artifact called name (from all, as
// runArtifacts reads them) by file name; job is the job that uploads it, for
// the error when it is missing.
func artifactFiles(all map[string][]byte, name, job string) (map[string][]byte, error) {
	z, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("the %s job uploaded no %s artifact (artifacts: %v)", job, name, slices.Sorted(maps.Keys(all)))
	}
	files, err := zipNames(z)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return files, nil
}

func zipNames(b []byte) (map[string][]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out[f.Name] = buf.Bytes()
	}
	return out, nil
}

// ciCheck: the test job uploaded ci-results with the manifest, the serial
// logs and the outcome (and, for a pull request, pr.json naming it); the
// run is registered in the fake GitHub for pr-comment.
func (e *env) ciCheck(arts string, jobs []string, runID int64, event, branch string) error {
	all, err := runArtifacts(arts)
	if err != nil {
		return err
	}
	if len(jobs) == 0 || contains(jobs, "test") {
		files, err := artifactFiles(all, cireport.ResultsArtifact, "test")
		if err != nil {
			return err
		}
		want := []string{"manifest.json", "ci/outcome.json", "bench.json", "serial.log"}
		if event == "pull_request" {
			want = append(want, "ci/pr.json")
		}
		for _, w := range want {
			if _, ok := files[w]; !ok {
				return fmt.Errorf("%s lacks %s (it has %v)", cireport.ResultsArtifact, w, slices.Sorted(maps.Keys(files)))
			}
		}
		if event == "pull_request" {
			pr := string(files["ci/pr.json"])
			if !strings.Contains(pr, fmt.Sprintf(`"number":%d`, prNumber)) || !strings.Contains(pr, e.commit) {
				return fmt.Errorf("ci/pr.json is %q: want pull request %d at %s", pr, prNumber, e.commit)
			}
		}
	}
	e.gh.AddRun(githubtest.Run{ID: runID, WorkflowFile: "ci.yml", Event: event, Branch: branch, HeadSHA: e.commit,
		Status: "completed", Conclusion: "success"}, all)
	return nil
}

// profileDrift is the module source the profiles rehearsal changes, so
// that its committed profile is stale: the case the workflow exists for.
const profileDrift = "modules/fib/fib.c"

// profilesBefore puts one more commit on main: a change to a module's
// source that the committed profiles predate.
func profilesBefore(ctx context.Context, e *env) error {
	p := filepath.Join(e.tree, filepath.FromSlash(profileDrift))
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n/* rehearsal: a change the committed profiles predate */\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if _, err := git(ctx, e.tree, "commit", "-q", "-a", "-m", "rehearsal: "+profileDrift+" changed since the last profile capture"); err != nil {
		return err
	}
	sha, err := git(ctx, e.tree, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if _, err := git(ctx, e.tree, "push", "-q", "-f", e.origin, "HEAD:refs/heads/main"); err != nil {
		return err
	}
	if _, err := e.gh.SeedFromGit(ctx, e.tree, sha); err != nil {
		return err
	}
	e.gh.SetRef("heads/main", sha)
	e.stepCommit = sha
	return nil
}

// profilesAfter puts main back at the rehearsed commit.
func profilesAfter(ctx context.Context, e *env) error {
	if _, err := git(ctx, e.tree, "reset", "-q", "--hard", e.commit); err != nil {
		return err
	}
	if _, err := git(ctx, e.tree, "push", "-q", "-f", e.origin, e.commit+":refs/heads/main"); err != nil {
		return err
	}
	e.gh.SetRef("heads/main", e.commit)
	e.stepCommit = ""
	return nil
}

// profilesCheck: the fake GitHub got the profiles/refresh branch and one
// pull request into main whose commit changes profiles/ only.
func profilesCheck(ctx context.Context, e *env, _ string, _ []string) error {
	sha, ok := e.gh.Ref("heads/profiles/refresh")
	if !ok {
		return fmt.Errorf("no profiles/refresh branch on the fake GitHub (requests: %v)", e.gh.Log())
	}
	var pr *githubtest.Pull
	for _, p := range e.gh.Pulls() {
		if p.HeadRef == "profiles/refresh" && p.BaseRef == "main" {
			p := p
			pr = &p
		}
	}
	if pr == nil {
		return fmt.Errorf("no pull request from profiles/refresh into main (pulls: %v)", e.gh.Pulls())
	}
	after, ok := e.gh.Tree(sha)
	if !ok {
		return fmt.Errorf("profiles/refresh points at %s, which the fake GitHub does not know", sha)
	}
	base := e.commit
	if e.stepCommit != "" {
		base = e.stepCommit
	}
	before, _ := e.gh.Tree(base)
	var changed []string
	for _, p := range slices.Sorted(maps.Keys(union(before, after))) {
		if !bytes.Equal(before[p], after[p]) {
			changed = append(changed, p)
		}
	}
	if len(changed) == 0 {
		return fmt.Errorf("the profile-refresh commit %s changes nothing", sha)
	}
	for _, p := range changed {
		if !strings.HasPrefix(p, "profiles/") {
			return fmt.Errorf("the profile-refresh commit changes %s, outside profiles/ (changed: %v)", p, changed)
		}
	}
	if !strings.Contains(pr.Body, "Bench") || !strings.Contains(pr.Body, "| fib |") {
		return fmt.Errorf("pull request #%d's body has no bench figures:\n%s", pr.Number, pr.Body)
	}
	if !changedAny(changed, "profiles/fib.proftext", "profiles/summary.json") {
		return fmt.Errorf("the refresh after a change to %s does not update fib's profile or the summary (changed: %v)", profileDrift, changed)
	}
	return nil
}

func union(a, b map[string][]byte) map[string][]byte {
	u := map[string][]byte{}
	for k, v := range a {
		u[k] = v
	}
	for k, v := range b {
		u[k] = v
	}
	return u
}

// releaseCheck: the fake GitHub has the release for the tag, with exactly
// the assets the build job uploaded as release-build (checksums.txt and
// every file it names; no signature) and the bundle the sign job uploaded
// as release-signature, byte for byte; and the sign job's provenance
// statement for that checksums.txt is in the attestation store.
func releaseCheck(ctx context.Context, e *env, arts string, jobs []string) error {
	if len(jobs) > 0 && !contains(jobs, "check-published") && !contains(jobs, "publish") {
		return nil
	}
	rel := e.gh.Release(e.tag)
	if rel == nil {
		return fmt.Errorf("no release %s on the fake GitHub", e.tag)
	}
	published := map[string][]byte{}
	for _, a := range rel.Assets {
		published[a.Name] = a.Data
	}
	all, err := runArtifacts(arts)
	if err != nil {
		return err
	}
	dist, err := artifactFiles(all, "release-build", "build")
	if err != nil {
		return err
	}
	if _, ok := dist["dist/checksums.txt.sigstore.json"]; ok {
		return errors.New("the build job's release-build artifact holds a signature: the build job must not sign")
	}
	sig, err := artifactFiles(all, "release-signature", "sign")
	if err != nil {
		return err
	}
	if b, ok := sig["checksums.txt.sigstore.json"]; !ok {
		return fmt.Errorf("the release-signature artifact lacks checksums.txt.sigstore.json (it has %v)", slices.Sorted(maps.Keys(sig)))
	} else {
		dist["dist/checksums.txt.sigstore.json"] = b
	}
	sums, ok := published["checksums.txt"]
	if !ok {
		return fmt.Errorf("release %s has no checksums.txt (assets: %v)", e.tag, slices.Sorted(maps.Keys(published)))
	}
	want := map[string]bool{"checksums.txt": true, "checksums.txt.sigstore.json": true}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			want[f[1]] = true
		}
	}
	for _, n := range []string{"fluid-pgo.img.zst", "fluid-baseline.img.zst", "manifest.json"} {
		if !want[n] {
			return fmt.Errorf("checksums.txt does not name %s", n)
		}
	}
	if got := slices.Sorted(maps.Keys(published)); strings.Join(got, " ") != strings.Join(slices.Sorted(maps.Keys(want)), " ") {
		return fmt.Errorf("release %s has assets %v; checksums.txt and its bundle name %v", e.tag, got, slices.Sorted(maps.Keys(want)))
	}
	for n := range want {
		d, ok := dist["dist/"+n]
		if !ok {
			d, ok = dist["release-assets/"+n]
		}
		if !ok {
			return fmt.Errorf("the release-build artifact (build/dist/ and build/release-assets/) lacks %s (it has %v)", n, slices.Sorted(maps.Keys(dist)))
		}
		if !bytes.Equal(d, published[n]) {
			return fmt.Errorf("published %s differs from the build job's build/dist/%s (or the sign job's bundle)", n, n)
		}
	}
	// The sign job's provenance is in the attestation store, for the
	// published checksums.txt.
	sum := sha256.Sum256(sums)
	if m, _ := filepath.Glob(filepath.Join(e.dir, "attestations", "sha256-"+hex.EncodeToString(sum[:]), "*.json")); len(m) == 0 {
		return fmt.Errorf("no provenance attestation for the published checksums.txt (sha256:%x)", sum)
	}
	return nil
}

// prCommentBefore: the pull request exists on the fake GitHub.
func prCommentBefore(ctx context.Context, e *env) error {
	e.gh.AddPull(prNumber, e.commit, "rehearsal", "main")
	return nil
}

// prCommentCheck: the pull request has the bot's one comment, made from
// the ci run's artifacts.
func prCommentCheck(ctx context.Context, e *env, _ string, _ []string) error {
	cs := e.gh.Comments(prNumber)
	var bot []githubtest.Comment
	for _, c := range cs {
		if strings.Contains(c.Body, cireport.CommentMarker) {
			bot = append(bot, c)
		}
	}
	if len(bot) != 1 {
		return fmt.Errorf("pull request #%d has %d bot comments (want 1): %v", prNumber, len(bot), cs)
	}
	return nil
}

// startRegistry serves an in-memory OCI registry (go-containerregistry's
// registry, the distribution API) on loopback for the publish job.
func startRegistry(ctx context.Context, e *env) error {
	if e.registry != "" {
		return nil
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	e.closers = append(e.closers, srv.Close)
	e.registry = strings.TrimPrefix(srv.URL, "http://")
	return nil
}

// toolchainPushCheck: the local registry holds the image under the lock's
// digest, in the lock's repository path.
func toolchainPushCheck(ctx context.Context, e *env, _ string, _ []string) error {
	lt, err := toolchain.ReadLock(e.tree)
	if err != nil {
		return err
	}
	repo, err := publish.PushRepository(lt.Lock.OCI.Repository, func(k string) string {
		if k == "FLUID_TOOLCHAIN_PUSH_REGISTRY" {
			return e.registry
		}
		return ""
	})
	if err != nil {
		return err
	}
	ref, err := name.NewDigest(repo+"@"+lt.Lock.OCI.Digest, name.Insecure)
	if err != nil {
		return err
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("the publish job pushed no %s to the local registry: %w", ref, err)
	}
	if desc.Digest.String() != lt.Lock.OCI.Digest {
		return fmt.Errorf("the registry serves %s for %s", desc.Digest, ref)
	}
	return nil
}

func changedAny(changed []string, want ...string) bool {
	for _, c := range changed {
		for _, w := range want {
			if c == w {
				return true
			}
		}
	}
	return false
}
