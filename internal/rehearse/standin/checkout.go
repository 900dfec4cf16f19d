package standin

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/gitenv"
)

// checkout does what actions/checkout v4 does for this repository, with the
// rehearsal's bare origin in place of github.com:
//
//   - a target directory (workspace, or inputs.path under it) that holds
//     the repository already (origin's URL is its GitHub URL) is reused:
//     with clean: true (the default) `git clean -ffdx` and `git reset
//     --hard HEAD` first, with clean: false what it holds stays; any other
//     target directory is emptied (clean does not matter then);
//   - fetch-depth N > 0 fetches only the event's ref, N commits deep, and
//     no tags unless fetch-tags: true (then git's tag following: the tags
//     on the fetched commits); 0 fetches every branch and tag (full
//     history, unshallowing a reused shallow repository);
//   - a branch is checked out as a local branch, a tag or a pull request's
//     merge ref detached, and the checked-out commit must be $GITHUB_SHA;
//   - origin's URL is then the repository's GitHub URL, and with
//     persist-credentials: true (the default) the token is left in the
//     repository's git config as the extraheader actions/checkout writes.
//
// Inputs it cannot honour (another repository, a ref other than the
// event's, submodules, LFS, sparse checkout, a partial-clone filter) fail
// naming the input.
func checkout(e *Env, ws string) error {
	origin, err := e.Rehearsal("ORIGIN")
	if err != nil {
		return err
	}
	repo := e.Getenv("GITHUB_REPOSITORY")
	if r := e.Input("repository", repo); r != repo {
		return fmt.Errorf("checkout: repository %q: the stand-in checks out only this repository (%s)", r, repo)
	}
	for _, in := range []string{"ref", "submodules", "lfs", "sparse-checkout", "filter"} {
		if v := e.Input(in, ""); v != "" && v != "false" {
			return fmt.Errorf("checkout: input %s=%q is not supported by the rehearsal's stand-in (internal/rehearse/standin/checkout.go)", in, v)
		}
	}
	depth, err := strconv.Atoi(e.Input("fetch-depth", "1"))
	if err != nil || depth < 0 {
		return fmt.Errorf("checkout: fetch-depth %q is not a number >= 0", e.Input("fetch-depth", ""))
	}
	persist, err := e.Bool("persist-credentials", true)
	if err != nil {
		return err
	}
	fetchTags, err := e.Bool("fetch-tags", false)
	if err != nil {
		return err
	}
	clean, err := e.Bool("clean", true)
	if err != nil {
		return err
	}
	dir := ws
	if p := e.Input("path", ""); p != "" {
		dir = filepath.Join(ws, p)
		if rel, err := filepath.Rel(ws, dir); err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("checkout: path %q is outside the workspace %s", p, ws)
		}
	}
	sha, ref := e.Getenv("GITHUB_SHA"), e.Getenv("GITHUB_REF")
	if sha == "" || ref == "" {
		return fmt.Errorf("checkout: GITHUB_SHA (%q) and GITHUB_REF (%q) must be set", sha, ref)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = gitenv.Environ()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("checkout: git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	server := strings.TrimSuffix(e.Getenv("GITHUB_SERVER_URL"), "/")
	if server == "" {
		server = "https://github.com"
	}
	githubURL := server + "/" + repo
	// file:// so that --depth is honoured (git ignores it for plain
	// paths); net/url escapes what a path may hold (%, spaces).
	originURL := (&url.URL{Scheme: "file", Path: origin}).String()
	reuse := false
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		if u, err := git("config", "--local", "--get", "remote.origin.url"); err == nil && u == githubURL {
			reuse = true
		}
	}
	if reuse && clean {
		if _, err := git("clean", "-ffdx"); err != nil {
			reuse = false
		} else if _, err := git("reset", "--hard", "HEAD"); err != nil {
			reuse = false
		}
		if !reuse {
			e.Warnf("Unable to clean or reset the repository. The repository will be recreated instead.")
		}
	}
	if !reuse {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, en := range entries {
			if err := os.RemoveAll(filepath.Join(dir, en.Name())); err != nil {
				return err
			}
		}
	}
	steps := [][]string{{"init", "-q"}, {"remote", "add", "origin", originURL}}
	if reuse {
		git("config", "--local", "--unset-all", "http."+server+"/.extraheader") // an earlier run's token
		steps = [][]string{{"remote", "set-url", "origin", originURL}}
	}
	var local, checkoutArgs []string
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		b := strings.TrimPrefix(ref, "refs/heads/")
		local = []string{"+" + ref + ":refs/remotes/origin/" + b}
		checkoutArgs = []string{"checkout", "-q", "--force", "-B", b, "refs/remotes/origin/" + b}
	case strings.HasPrefix(ref, "refs/tags/"):
		local = []string{"+" + ref + ":" + ref}
		checkoutArgs = []string{"checkout", "-q", "--force", ref}
	case strings.HasPrefix(ref, "refs/pull/"):
		r := "refs/remotes/pull/" + strings.TrimPrefix(ref, "refs/pull/")
		local = []string{"+" + ref + ":" + r}
		checkoutArgs = []string{"checkout", "-q", "--force", r}
	default:
		return fmt.Errorf("checkout: GITHUB_REF %q is neither a branch, a tag nor a pull request ref", ref)
	}
	if depth == 0 {
		fetch := []string{"fetch", "-q", "--prune", "--no-recurse-submodules"}
		if _, err := os.Stat(filepath.Join(dir, ".git", "shallow")); err == nil && reuse {
			fetch = append(fetch, "--unshallow")
		}
		steps = append(steps, append(append(fetch, "origin",
			"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"), local...))
	} else {
		fetch := []string{"fetch", "-q", "--no-tags", "--prune", "--no-recurse-submodules"}
		if fetchTags {
			fetch = []string{"fetch", "-q", "--prune", "--no-recurse-submodules"}
		}
		steps = append(steps, append(append(fetch, "--depth="+strconv.Itoa(depth), "origin"), local...))
	}
	steps = append(steps, checkoutArgs)
	for _, s := range steps {
		if _, err := git(s...); err != nil {
			return err
		}
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if head != sha {
		return fmt.Errorf("checkout: origin's %s is at %s, but the event's commit (GITHUB_SHA) is %s", ref, head, sha)
	}
	if _, err := git("remote", "set-url", "origin", githubURL); err != nil {
		return err
	}
	if persist {
		tok := e.Input("token", "")
		if tok == "" {
			return fmt.Errorf("checkout: persist-credentials is true but no token input (act passes github.token by default; give the rehearsal a GITHUB_TOKEN)")
		}
		auth := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + tok))
		if _, err := git("config", "--local", "http."+server+"/.extraheader", "AUTHORIZATION: basic "+auth); err != nil {
			return err
		}
	}
	shallow := "full history"
	if depth > 0 {
		shallow = fmt.Sprintf("depth %d", depth)
	}
	e.Logf("checkout: %s at %s (%s, persist-credentials %v) into %s", ref, sha[:12], shallow, persist, dir)
	if err := e.Output("ref", ref); err != nil {
		return err
	}
	return e.Output("commit", sha)
}
