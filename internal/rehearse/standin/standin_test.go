package standin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testEnv is a step environment over a temporary workspace with the
// runner's protocol files.
func testEnv(t *testing.T, vars map[string]string) (*Env, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	v := map[string]string{
		"GITHUB_WORKSPACE": filepath.Join(dir, "ws"), "GITHUB_OUTPUT": filepath.Join(dir, "out"),
		"GITHUB_STATE": filepath.Join(dir, "state"), "GITHUB_ENV": filepath.Join(dir, "env"),
		"HOME": filepath.Join(dir, "home"), "FLUID_REHEARSAL_CACHE": filepath.Join(dir, "cache"), "RUNNER_TEMP": dir,
	}
	os.MkdirAll(v["GITHUB_WORKSPACE"], 0o755)
	for k, x := range vars {
		v[k] = x
	}
	var out bytes.Buffer
	return &Env{Stdout: &out, Stderr: &out, getenv: func(k string) string { return v[k] }}, v
}

func outputs(t *testing.T, v map[string]string) string {
	b, _ := os.ReadFile(v["GITHUB_OUTPUT"])
	return string(b)
}

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCacheKeysAsActionsCache(t *testing.T) {
	e, v := testEnv(t, map[string]string{"INPUT_PATH": "build\n~/.magefile", "INPUT_KEY": "build-a-sha1"})
	ws := v["GITHUB_WORKSPACE"]
	write(t, filepath.Join(ws, "build", "x.o"), "one")
	write(t, filepath.Join(v["HOME"], ".magefile", "m"), "mage")
	// Nothing saved yet: a miss.
	if err := cacheRestore(e); err != nil {
		t.Fatal(err)
	}
	if o := outputs(t, v); !strings.Contains(o, "cache-hit=false") {
		t.Fatalf("outputs after a miss: %q", o)
	}
	if err := cacheSave(e); err != nil {
		t.Fatal(err)
	}
	// A second save of the same key does not overwrite it.
	write(t, filepath.Join(ws, "build", "x.o"), "two")
	if err := cacheSave(e); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(ws, "build"))
	os.RemoveAll(filepath.Join(v["HOME"], ".magefile"))
	// Another commit's key restores through restore-keys (prefix), not a hit.
	e2, v2 := testEnv(t, map[string]string{"INPUT_PATH": "build\n~/.magefile", "INPUT_KEY": "build-a-sha2", "INPUT_RESTORE-KEYS": "build-a-\nbuild-"})
	v2["GITHUB_WORKSPACE"], v2["HOME"], v2["FLUID_REHEARSAL_CACHE"] = ws, v["HOME"], v["FLUID_REHEARSAL_CACHE"]
	if err := cacheRestore(e2); err != nil {
		t.Fatal(err)
	}
	if o := outputs(t, v2); !strings.Contains(o, "cache-hit=false") || !strings.Contains(o, "cache-matched-key=build-a-sha1") {
		t.Fatalf("outputs after a prefix restore: %q", o)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "build", "x.o")); string(b) != "one" {
		t.Fatalf("restored build/x.o = %q, want the first save's %q", b, "one")
	}
	if b, _ := os.ReadFile(filepath.Join(v["HOME"], ".magefile", "m")); string(b) != "mage" {
		t.Fatalf("restored ~/.magefile/m = %q", b)
	}
	// Other paths are another version: the same key misses.
	e3, v3 := testEnv(t, map[string]string{"INPUT_PATH": "build", "INPUT_KEY": "build-a-sha1"})
	v3["FLUID_REHEARSAL_CACHE"] = v["FLUID_REHEARSAL_CACHE"]
	if err := cacheRestore(e3); err != nil {
		t.Fatal(err)
	}
	if o := outputs(t, v3); !strings.Contains(o, "cache-hit=false") {
		t.Fatalf("same key, other paths: %q", o)
	}
}

func TestArtifactPaths(t *testing.T) {
	e, v := testEnv(t, nil)
	ws := v["GITHUB_WORKSPACE"]
	for _, f := range []string{"build/serial.log", "build/boot/stage1.log", "build/manifest.json", "build/ci/pr.json", "build/ci/.hidden", "build/fluid.img", "other/x.log"} {
		write(t, filepath.Join(ws, f), f)
	}
	root, files, err := artifactFiles(e, ws, []string{"build/**/*.log", "build/manifest.json", "build/ci/", "!build/boot/*.log"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(root, f)
		rel = append(rel, r)
	}
	want := "ci/pr.json manifest.json serial.log"
	if root != filepath.Join(ws, "build") || strings.Join(rel, " ") != want {
		t.Fatalf("root %s files %v; want root build/ and %s", root, rel, want)
	}
}

func TestSudoNeverElevates(t *testing.T) {
	e, _ := testEnv(t, nil)
	e.Args = []string{"DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-o", "Acquire::Retries=3", "--no-install-recommends", "fluid-no-such-package"}
	err := sudo(e)
	if err == nil || !strings.Contains(err.Error(), "apt-get install fluid-no-such-package") || strings.Contains(err.Error(), "Retries") {
		t.Fatalf("sudo apt-get install of a missing package: %v", err)
	}
	e.Args = []string{"rm", "-rf", "/"}
	if err := sudo(e); err == nil || !strings.Contains(err.Error(), "sudo rm -rf /") {
		t.Fatalf("unknown sudo command: %v", err)
	}
	e.Args = []string{"apt-get", "update", "-qq"}
	if err := sudo(e); err != nil {
		t.Fatalf("apt-get update: %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{{"1.26.8", "1.26.10", true}, {"1.26.10", "1.26.8", false}, {"1.26.8", "1.26.8", false}, {"1.25", "1.26.0", true}} {
		if got := versionLess(c.a, c.b); got != c.less {
			t.Errorf("versionLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
	if v := goFileVersion("module x\n\ngo 1.26.8\n\ntoolchain go1.26.9\n"); v != "1.26.9" {
		t.Errorf("goFileVersion = %q, want the toolchain line", v)
	}
}

func TestCheckoutDepthAndCredentials(t *testing.T) {
	origin := filepath.Join(t.TempDir(), "origin.git")
	src := t.TempDir()
	run := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(gitEnv(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(src, "init", "-q", "-b", "main")
	for i := 0; i < 3; i++ {
		write(t, filepath.Join(src, "f"), strings.Repeat("x", i+1))
		run(src, "add", "f")
		run(src, "commit", "-q", "-m", "c")
	}
	run(src, "tag", "v1.0.0")
	sha := run(src, "rev-parse", "HEAD")
	run(src, "init", "-q", "--bare", origin)
	run(src, "push", "-q", origin, "main", "v1.0.0")

	for _, c := range []struct {
		depth, persist string
		commits        string
		tag            bool
	}{{"1", "false", "1", false}, {"0", "true", "3", true}} {
		e, v := testEnv(t, map[string]string{"FLUID_REHEARSAL_ORIGIN": origin, "GITHUB_SHA": sha, "GITHUB_REF": "refs/heads/main",
			"GITHUB_REPOSITORY": "o/r", "INPUT_FETCH-DEPTH": c.depth, "INPUT_PERSIST-CREDENTIALS": c.persist, "INPUT_TOKEN": "tok"})
		ws := v["GITHUB_WORKSPACE"]
		write(t, filepath.Join(ws, "stale"), "left by an earlier job")
		if err := checkout(e); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(ws, "stale")); err == nil {
			t.Error("checkout left the workspace's old files")
		}
		if n := run(ws, "rev-list", "--count", "HEAD"); n != c.commits {
			t.Errorf("fetch-depth %s: %s commits, want %s", c.depth, n, c.commits)
		}
		if b := run(ws, "rev-parse", "--abbrev-ref", "HEAD"); b != "main" {
			t.Errorf("branch %q, want main", b)
		}
		tags := run(ws, "tag")
		if (tags == "v1.0.0") != c.tag {
			t.Errorf("fetch-depth %s: tags %q", c.depth, tags)
		}
		cfg, _ := os.ReadFile(filepath.Join(ws, ".git", "config"))
		if strings.Contains(string(cfg), "extraheader") != (c.persist == "true") {
			t.Errorf("persist-credentials %s, git config:\n%s", c.persist, cfg)
		}
		if !strings.Contains(string(cfg), "https://github.com/o/r") {
			t.Errorf("origin is not the GitHub URL:\n%s", cfg)
		}
	}
	// The event's commit must be what origin's ref points at.
	e, _ := testEnv(t, map[string]string{"FLUID_REHEARSAL_ORIGIN": origin, "GITHUB_SHA": strings.Repeat("0", 40), "GITHUB_REF": "refs/heads/main", "GITHUB_REPOSITORY": "o/r"})
	if err := checkout(e); err == nil || !strings.Contains(err.Error(), "GITHUB_SHA") {
		t.Fatalf("checkout at a commit origin's ref is not at: %v", err)
	}
}
