package standin

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/gitenv"
	"github.com/fluid-os/fluid/internal/github/githubtest"
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
	// Nothing saved yet: a miss (cache-hit left unset, as actions/cache does).
	if err := cacheRestore(e); err != nil {
		t.Fatal(err)
	}
	if o := outputs(t, v); o != "" {
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
	st, _ := os.ReadFile(v2["GITHUB_STATE"])
	if o := outputs(t, v2); o != "cache-hit=false\n" || !strings.Contains(string(st), "CACHE_RESULT=build-a-sha1") {
		t.Fatalf("outputs after a prefix restore: %q, state %q", o, st)
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
	if o := outputs(t, v3); strings.Contains(o, "cache-hit") {
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

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitenv.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// testOrigin makes the bare origin at origin: main with three commits, the
// last tagged v1.0.0. It returns main's commit.
func testOrigin(t *testing.T, origin string) string {
	src := t.TempDir()
	run := func(args ...string) string { return gitRun(t, src, args...) }
	run("init", "-q", "-b", "main")
	for i := 0; i < 3; i++ {
		write(t, filepath.Join(src, "f"), strings.Repeat("x", i+1))
		run("add", "f")
		run("commit", "-q", "-m", "c")
	}
	run("tag", "v1.0.0")
	run("init", "-q", "--bare", origin)
	run("push", "-q", origin, "main", "v1.0.0")
	return run("rev-parse", "HEAD")
}

func TestCheckoutDepthAndCredentials(t *testing.T) {
	origin := filepath.Join(t.TempDir(), "origin.git")
	sha := testOrigin(t, origin)
	run := func(dir string, args ...string) string { return gitRun(t, dir, args...) }

	for _, c := range []struct {
		depth, persist string
		commits        string
		tag            bool
	}{{"1", "false", "1", false}, {"0", "true", "3", true}} {
		e, v := testEnv(t, map[string]string{"FLUID_REHEARSAL_ORIGIN": origin, "GITHUB_SHA": sha, "GITHUB_REF": "refs/heads/main",
			"GITHUB_REPOSITORY": "o/r", "INPUT_FETCH-DEPTH": c.depth, "INPUT_PERSIST-CREDENTIALS": c.persist, "INPUT_TOKEN": "tok"})
		ws := v["GITHUB_WORKSPACE"]
		write(t, filepath.Join(ws, "stale"), "left by an earlier job")
		if err := inWorkspace(checkout)(e); err != nil {
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
	if err := inWorkspace(checkout)(e); err == nil || !strings.Contains(err.Error(), "GITHUB_SHA") {
		t.Fatalf("checkout at a commit origin's ref is not at: %v", err)
	}
}

// fakeArtifacts plays act's artifact server: the v4 twirp calls and the
// signed upload and download URLs. onPut and onGet, when set, look at a
// transfer while it happens.
type fakeArtifacts struct {
	*httptest.Server
	mu    sync.Mutex
	blobs map[string][]byte
	onPut func(r *http.Request, body []byte)
	onGet func(w http.ResponseWriter, blob []byte)
}

func newFakeArtifacts(t *testing.T) *fakeArtifacts {
	f := &fakeArtifacts{blobs: map[string][]byte{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/twirp/"):
			var in map[string]any
			json.NewDecoder(r.Body).Decode(&in)
			name, _ := in["name"].(string)
			f.mu.Lock()
			defer f.mu.Unlock()
			var out any = map[string]any{"ok": true}
			switch path.Base(r.URL.Path) {
			case "ListArtifacts":
				arts := []map[string]any{}
				filter, _ := in["name_filter"].(string)
				for n, b := range f.blobs {
					if filter == "" || filter == n {
						arts = append(arts, map[string]any{"name": n, "databaseId": "1", "size": strconv.Itoa(len(b))})
					}
				}
				out = map[string]any{"artifacts": arts}
			case "CreateArtifact":
				out = map[string]any{"ok": true, "signedUploadUrl": f.URL + "/upload/" + name + "?sig=1"}
			case "FinalizeArtifact":
				out = map[string]any{"ok": true, "artifactId": "7"}
			case "GetSignedArtifactURL":
				out = map[string]any{"signedUrl": f.URL + "/download/" + name}
			case "DeleteArtifact":
				delete(f.blobs, name)
			}
			json.NewEncoder(w).Encode(out)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/upload/"):
			b, _ := io.ReadAll(r.Body)
			if f.onPut != nil {
				f.onPut(r, b)
			}
			f.mu.Lock()
			f.blobs[strings.TrimPrefix(r.URL.Path, "/upload/")] = b
			f.mu.Unlock()
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/download/"):
			f.mu.Lock()
			b, ok := f.blobs[strings.TrimPrefix(r.URL.Path, "/download/")]
			f.mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			if f.onGet != nil {
				f.onGet(w, b)
				return
			}
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// env is what the runner gives an artifact step: the results URL and a
// runtime token naming the run and the job.
func (f *fakeArtifacts) env(vars map[string]string) map[string]string {
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"scp":"Actions.Results:run-1:job-1"}`))
	vars["ACTIONS_RESULTS_URL"] = f.URL + "/"
	vars["ACTIONS_RUNTIME_TOKEN"] = "e30." + claims + ".sig"
	return vars
}

func zipNames(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = string(c)
	}
	return got
}

func relFiles(root string, files []string) string {
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(root, f)
		rel = append(rel, r)
	}
	return strings.Join(rel, " ")
}

// upload-artifact's glob (@actions/glob with excludeHiddenFiles) skips a
// hidden search path too, not only hidden entries below it.
func TestArtifactHiddenSearchRoot(t *testing.T) {
	e, v := testEnv(t, nil)
	ws := v["GITHUB_WORKSPACE"]
	for _, f := range []string{".out/a.log", ".out/sub/b.log", "build/.env", "build/ok.txt"} {
		write(t, filepath.Join(ws, f), f)
	}
	for _, p := range []string{".out/", ".out", ".out/*.log", ".out/**", "build/.env"} {
		_, files, err := artifactFiles(e, ws, []string{p}, false)
		if err != nil || len(files) != 0 {
			t.Errorf("path %s without include-hidden-files: files %v, err %v; want none", p, files, err)
		}
		if _, files, err := artifactFiles(e, ws, []string{p}, true); err != nil || len(files) == 0 {
			t.Errorf("path %s with include-hidden-files: files %v, err %v; want some", p, files, err)
		}
	}
	// Only the search path and what is below it count (the glob checks
	// each item's base name from the search path down): a literal file
	// under a hidden directory is uploaded on GitHub too.
	if root, files, err := artifactFiles(e, ws, []string{".out/sub/b.log"}, false); err != nil || relFiles(root, files) != "b.log" {
		t.Errorf(".out/sub/b.log: root %s files %v err %v; want b.log", root, files, err)
	}
	// if-no-files-found: error fails the step, as on GitHub.
	f := newFakeArtifacts(t)
	e2, _ := testEnv(t, f.env(map[string]string{"INPUT_PATH": ".out/", "INPUT_IF-NO-FILES-FOUND": "error", "INPUT_NAME": "x"}))
	v2ws := e2.Getenv("GITHUB_WORKSPACE")
	write(t, filepath.Join(v2ws, ".out", "a.log"), "a")
	if err := uploadArtifact(e2); err == nil || !strings.Contains(err.Error(), "No files were found") {
		t.Fatalf("upload of a hidden directory with if-no-files-found: error: %v", err)
	}
}

// @actions/glob follows symbolic links (to files and to directories) and
// stops at a link that loops back to a directory it is inside.
func TestArtifactFollowsSymlinks(t *testing.T) {
	f := newFakeArtifacts(t)
	e, v := testEnv(t, f.env(map[string]string{"INPUT_PATH": "build/", "INPUT_NAME": "links"}))
	ws := v["GITHUB_WORKSPACE"]
	write(t, filepath.Join(ws, "build", "real", "a.txt"), "a")
	for link, to := range map[string]string{"linkdir": "real", "linkfile": "real/a.txt", "loop": ".", "broken": "nowhere"} {
		if err := os.Symlink(to, filepath.Join(ws, "build", link)); err != nil {
			t.Fatal(err)
		}
	}
	root, files, err := artifactFiles(e, ws, []string{"build/"}, false)
	if want := "linkdir/a.txt linkfile real/a.txt"; err != nil || relFiles(root, files) != want {
		t.Fatalf("files %q err %v; want %s", relFiles(root, files), err, want)
	}
	if err := uploadArtifact(e); err != nil {
		t.Fatal(err)
	}
	got := zipNames(t, f.blobs["links"])
	if len(got) != 3 || got["linkdir/a.txt"] != "a" || got["linkfile"] != "a" || got["real/a.txt"] != "a" {
		t.Fatalf("zip holds %v", got)
	}
}

// @actions/artifact refuses file names a Windows file system cannot hold.
func TestArtifactFileNameCharacters(t *testing.T) {
	for _, c := range []string{`"`, ":", "<", ">", "|", "*", "?", "\r", "\n"} {
		e, v := testEnv(t, nil)
		ws := v["GITHUB_WORKSPACE"]
		name := "a" + c + "b.txt"
		write(t, filepath.Join(ws, "out", "sub", name), "x")
		write(t, filepath.Join(ws, "out", "fine.txt"), "x")
		_, _, err := artifactFiles(e, ws, []string{"out/"}, false)
		if err == nil || !strings.Contains(err.Error(), "/sub/"+name) || !strings.Contains(err.Error(), "following character") {
			t.Errorf("file name with %q: %v", c, err)
		}
	}
}

// download-artifact and upload-artifact stream through files, never
// holding a whole artifact in memory.
func TestArtifactStreamsThroughTempFiles(t *testing.T) {
	f := newFakeArtifacts(t)
	e, v := testEnv(t, f.env(map[string]string{"INPUT_PATH": "build/", "INPUT_NAME": "big"}))
	ws, tmp := v["GITHUB_WORKSPACE"], v["RUNNER_TEMP"]
	payload := strings.Repeat("0123456789abcdef", 1<<14)
	write(t, filepath.Join(ws, "build", "one.bin"), payload)
	write(t, filepath.Join(ws, "build", "two", "two.bin"), payload[:1000])
	tempIn := func(dir, prefix string) []string {
		ents, _ := os.ReadDir(dir)
		var got []string
		for _, en := range ents {
			if strings.HasPrefix(en.Name(), prefix) {
				got = append(got, en.Name())
			}
		}
		return got
	}
	var putTemp []string
	var putLength int64
	var putBody int
	f.onPut = func(r *http.Request, body []byte) {
		putTemp, putLength, putBody = tempIn(tmp, "fluid-artifact-"), r.ContentLength, len(body)
	}
	if err := uploadArtifact(e); err != nil {
		t.Fatal(err)
	}
	if len(putTemp) != 1 || putLength != int64(putBody) || putBody == 0 {
		t.Fatalf("upload: temp files in RUNNER_TEMP during the PUT %v, Content-Length %d for %d bytes; want one zip file streamed with its length", putTemp, putLength, putBody)
	}
	if left := tempIn(tmp, "fluid-artifact-"); len(left) != 0 {
		t.Fatalf("upload left %v in RUNNER_TEMP", left)
	}

	dest := filepath.Join(ws, "dl")
	e2, _ := testEnv(t, f.env(map[string]string{"GITHUB_WORKSPACE": ws, "INPUT_NAME": "big", "INPUT_PATH": dest}))
	var during []string
	f.onGet = func(w http.ResponseWriter, b []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		for i := 0; i < 100 && len(during) == 0; i++ {
			time.Sleep(20 * time.Millisecond)
			during = tempIn(dest, ".fluid-artifact-")
		}
		w.Write(b[len(b)/2:])
	}
	if err := downloadArtifact(e2); err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 {
		t.Fatalf("download: temp files in the destination while downloading %v; want the artifact streamed to one file", during)
	}
	if left := tempIn(dest, ".fluid-artifact-"); len(left) != 0 {
		t.Fatalf("download left %v", left)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "one.bin")); string(b) != payload {
		t.Fatalf("downloaded one.bin: %d bytes", len(b))
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "two", "two.bin")); string(b) != payload[:1000] {
		t.Fatalf("downloaded two/two.bin: %q", b)
	}
}

func standIn(t *testing.T, name string) func(*Env) error {
	for _, s := range Names {
		if s.Name == name {
			return s.run
		}
	}
	t.Fatalf("no stand-in %s", name)
	return nil
}

func stdout(e *Env) string { return e.Stdout.(*bytes.Buffer).String() }

// actions/cache leaves cache-hit unset on a miss (restoreImpl.ts: "cache-hit
// is intentionally not set to false here"), in the combined action and in
// cache/restore alike; only cache/restore has the key outputs.
func TestCacheMissLeavesCacheHitUnset(t *testing.T) {
	for _, name := range []string{"cache", "cache-restore"} {
		e, v := testEnv(t, map[string]string{"INPUT_PATH": "build", "INPUT_KEY": "k-1"})
		if err := standIn(t, name)(e); err != nil {
			t.Fatal(err)
		}
		o := outputs(t, v)
		if strings.Contains(o, "cache-hit") {
			t.Errorf("%s: a miss set cache-hit: %q", name, o)
		}
		if want := "cache-primary-key=k-1\n"; (name == "cache-restore") != (o == want) {
			t.Errorf("%s: outputs after a miss %q", name, o)
		}
		write(t, filepath.Join(v["GITHUB_WORKSPACE"], "build", "x"), "x")
		if err := cacheSave(e); err != nil {
			t.Fatal(err)
		}
		os.Remove(v["GITHUB_OUTPUT"])
		if err := standIn(t, name)(e); err != nil {
			t.Fatal(err)
		}
		want := "cache-hit=true\n"
		if name == "cache-restore" {
			want = "cache-primary-key=k-1\ncache-matched-key=k-1\ncache-hit=true\n"
		}
		if o := outputs(t, v); o != want {
			t.Errorf("%s: outputs after a hit %q, want %q", name, o, want)
		}
	}
}

type tarEntry struct {
	name, link, body string
	dir              bool
}

// plantCache stores a cache entry as the stand-in would, with a tar made
// by hand (meta.json without the roots a save records, as older entries).
func plantCache(t *testing.T, v map[string]string, key string, paths []string, entries []tarEntry) {
	t.Helper()
	version := cacheVersion(paths)
	dir := filepath.Join(v["FLUID_REHEARSAL_CACHE"], cacheID(key, version))
	os.MkdirAll(dir, 0o755)
	meta, _ := json.Marshal(map[string]any{"key": key, "version": version, "paths": paths, "created_unix_nano": time.Now().UnixNano()})
	write(t, filepath.Join(dir, "meta.json"), string(meta))
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, en := range entries {
		h := &tar.Header{Name: en.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(en.body)), ModTime: time.Now()}
		switch {
		case en.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case en.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, en.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, en.body)
	}
	tw.Close()
	write(t, filepath.Join(dir, "data.tar"), b.String())
}

// A name merely containing ".." restores; a ".." segment does not, and a
// failed restore is a warning and a miss (actions/cache's core.warning).
func TestCacheRestoreDotDotNames(t *testing.T) {
	e, v := testEnv(t, map[string]string{"INPUT_PATH": "build", "INPUT_KEY": "k"})
	ws := v["GITHUB_WORKSPACE"]
	write(t, filepath.Join(ws, "build", "fluid..img"), "img")
	if err := cacheSave(e); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(ws, "build"))
	if err := cacheRestore(e); err != nil {
		t.Fatalf("restore of build/fluid..img: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "build", "fluid..img")); string(b) != "img" {
		t.Fatalf("build/fluid..img restored as %q", b)
	}

	e2, v2 := testEnv(t, map[string]string{"INPUT_PATH": "build", "INPUT_KEY": "k"})
	plantCache(t, v2, "k", []string{"build"}, []tarEntry{{name: "w/build/../../escape", body: "x"}})
	if err := cacheRestore(e2); err != nil {
		t.Fatalf("a failed restore failed the step: %v", err)
	}
	if o := outputs(t, v2); strings.Contains(o, "cache-hit") {
		t.Errorf("a failed restore set %q", o)
	}
	if out := stdout(e2); !strings.Contains(out, "::warning::Failed to restore") || !strings.Contains(out, "Cache not found") {
		t.Errorf("a failed restore logged %q", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(v2["GITHUB_WORKSPACE"]), "escape")); err == nil {
		t.Error("w/build/../../escape was written outside the workspace")
	}
	// fail-on-cache-miss turns that miss into a failure.
	v2["INPUT_FAIL-ON-CACHE-MISS"] = "true"
	if err := cacheRestore(e2); err == nil || !strings.Contains(err.Error(), "fail-on-cache-miss") {
		t.Errorf("fail-on-cache-miss after a failed restore: %v", err)
	}
}

// Restoring never writes through a symbolic link out of the entry's roots.
func TestCacheRefusesSymlinkEscapes(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name    string
		why     string
		setup   func(ws, home string)
		paths   []string
		entries func(ws, home string) []tarEntry
		check   func(t *testing.T, ws, home string)
	}{{
		name:  "link planted by an earlier entry",
		why:   "build/link is a symbolic link",
		paths: []string{"build"},
		entries: func(ws, home string) []tarEntry {
			return []tarEntry{{name: "w/build", dir: true}, {name: "w/build/link", link: outside}, {name: "w/build/link/evil", body: "evil"}}
		},
	}, {
		name:  "link on disk",
		why:   "ws/build is a symbolic link",
		setup: func(ws, home string) { os.Symlink(outside, filepath.Join(ws, "build")) },
		paths: []string{"build"},
		entries: func(ws, home string) []tarEntry {
			return []tarEntry{{name: "w/build/evil", body: "evil"}}
		},
	}, {
		name:  "absolute entry outside the cached paths",
		why:   "is outside the paths the entry cached",
		paths: []string{"~/.magefile"},
		entries: func(ws, home string) []tarEntry {
			return []tarEntry{{name: "a" + home + "/.magefile/m", body: "mage"}, {name: "a" + outside + "/evil", body: "evil"}}
		},
	}, {
		name:  "link under a cached absolute path",
		why:   ".magefile/l is a symbolic link",
		paths: []string{"~/.magefile"},
		entries: func(ws, home string) []tarEntry {
			return []tarEntry{{name: "a" + home + "/.magefile", dir: true}, {name: "a" + home + "/.magefile/l", link: outside}, {name: "a" + home + "/.magefile/l/evil", body: "evil"}}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, v := testEnv(t, map[string]string{"INPUT_PATH": strings.Join(c.paths, "\n"), "INPUT_KEY": "k"})
			ws, home := v["GITHUB_WORKSPACE"], v["HOME"]
			os.MkdirAll(home, 0o755)
			if c.setup != nil {
				c.setup(ws, home)
			}
			plantCache(t, v, "k", c.paths, c.entries(ws, home))
			if err := cacheRestore(e); err != nil {
				t.Fatalf("restore failed the step: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(outside, "evil")); err == nil {
				os.Remove(filepath.Join(outside, "evil"))
				t.Fatalf("restore wrote %s through a symlink", filepath.Join(outside, "evil"))
			}
			if out := stdout(e); !strings.Contains(out, "::warning::Failed to restore") || !strings.Contains(out, c.why) {
				t.Errorf("warning %q, want one saying %q", out, c.why)
			}
			if o := outputs(t, v); strings.Contains(o, "cache-hit") {
				t.Errorf("outputs %q after a refused restore", o)
			}
		})
	}
	// A symlink in the destination's place is replaced, not written through.
	e, v := testEnv(t, map[string]string{"INPUT_PATH": "f", "INPUT_KEY": "k"})
	ws := v["GITHUB_WORKSPACE"]
	write(t, filepath.Join(outside, "target"), "orig")
	os.Symlink(filepath.Join(outside, "target"), filepath.Join(ws, "f"))
	os.Symlink(filepath.Join(outside, "planted"), filepath.Join(ws, "f.fluid-standin-restore"))
	plantCache(t, v, "k", []string{"f"}, []tarEntry{{name: "w/f", body: "new"}})
	if err := cacheRestore(e); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "orig" {
		t.Errorf("the symlink's target was overwritten: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(outside, "planted")); err == nil {
		t.Errorf("restore wrote through a planted temporary-file symlink")
	}
	if fi, err := os.Lstat(filepath.Join(ws, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("w/f restored as %v, %v; want a regular file", fi, err)
	}
}

// ** in a cache path is a globstar, and the version hashes the patterns as
// written, not what they matched.
func TestCacheGlobstar(t *testing.T) {
	e, v := testEnv(t, map[string]string{"INPUT_PATH": "build/**/*.o\nout/**\nlib/[ab].so", "INPUT_KEY": "k"})
	ws := v["GITHUB_WORKSPACE"]
	for _, f := range []string{"build/a/b/x.o", "build/y.o", "build/z.c", "out/deep/er/f", "out/.hidden", "lib/a.so", "lib/c.so"} {
		write(t, filepath.Join(ws, f), f)
	}
	if err := cacheSave(e); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"build", "out", "lib"} {
		os.RemoveAll(filepath.Join(ws, d))
	}
	if err := cacheRestore(e); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"build/a/b/x.o", "build/y.o", "out/deep/er/f", "out/.hidden", "lib/a.so"} {
		if b, _ := os.ReadFile(filepath.Join(ws, f)); string(b) != f {
			t.Errorf("%s restored as %q", f, b)
		}
	}
	for _, f := range []string{"build/z.c", "lib/c.so"} {
		if _, err := os.Stat(filepath.Join(ws, f)); err == nil {
			t.Errorf("%s was cached: no pattern matches it", f)
		}
	}
	b, err := os.ReadFile(filepath.Join(v["FLUID_REHEARSAL_CACHE"], cacheID("k", cacheVersion([]string{"build/**/*.o", "out/**", "lib/[ab].so"})), "meta.json"))
	if err != nil || !strings.Contains(string(b), `"build/**/*.o"`) {
		t.Fatalf("the entry's version is not the patterns' as written: %s %v", b, err)
	}
	// Nothing outside the workspace was cached: the entry restores nothing there.
	if !strings.Contains(string(b), `"roots": []`) {
		t.Fatalf("meta.json records no empty roots: %s", b)
	}
}

// The post step saves under the key the main step computed (state), even
// when the key's expression would now evaluate otherwise.
func TestCachePostSavesUnderStateKey(t *testing.T) {
	e, v := testEnv(t, map[string]string{"INPUT_PATH": "build", "INPUT_KEY": "k-after-build", "STATE_CACHE_KEY": "k-before-build"})
	write(t, filepath.Join(v["GITHUB_WORKSPACE"], "build", "x"), "x")
	if err := cachePost(e); err != nil {
		t.Fatal(err)
	}
	dir, version := v["FLUID_REHEARSAL_CACHE"], cacheVersion([]string{"build"})
	if _, err := os.Stat(filepath.Join(dir, cacheID("k-before-build", version))); err != nil {
		t.Errorf("not saved under the state's key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, cacheID("k-after-build", version))); err == nil {
		t.Error("saved under the re-read input key")
	}
}

// gh takes its flags and the tag in any order (cobra).
func TestGhReleaseDownloadFlagsAnyOrder(t *testing.T) {
	t.Chdir(t.TempDir()) // a --dir not taken would download into the working directory
	srv := githubtest.New("o", "r")
	defer srv.Close()
	srv.AddRelease("v1.0.0", map[string][]byte{"checksums.txt": []byte("sums"), "checksums.txt.sigstore.json": []byte("{}"), "fluid.img": []byte("img")})
	for _, args := range [][]string{
		{"--repo", "o/r", "v1.0.0", "--pattern", "checksums.txt*", "--dir", "@"},
		{"--pattern=checksums.txt*", "--repo=o/r", "-D", "@", "v1.0.0"},
		{"-R", "o/r", "-pchecksums.txt*", "v1.0.0", "-D@"},
		{"--skip-existing", "v1.0.0", "-p", "checksums.txt", "-p", "*.json", "--dir=@"},
	} {
		e, v := testEnv(t, map[string]string{"GITHUB_API_URL": srv.APIURL(), "GITHUB_REPOSITORY": "o/r"})
		dir := filepath.Join(v["RUNNER_TEMP"], "D")
		for i := range args {
			args[i] = strings.Replace(args[i], "@", dir, 1)
		}
		e.Args = append([]string{"release", "download"}, args...)
		if err := ghCLI(e); err != nil {
			t.Fatalf("gh release download %v: %v", args, err)
		}
		ents, _ := os.ReadDir(dir)
		var got []string
		for _, en := range ents {
			got = append(got, en.Name())
		}
		if strings.Join(got, " ") != "checksums.txt checksums.txt.sigstore.json" {
			t.Errorf("gh release download %v: got %v", args, got)
		}
	}
	for _, c := range []struct{ args, err string }{
		{"v1.0.0 v2.0.0", "accepts at most 1 arg(s), received 2"},
		{"v1.0.0 --clobber --skip-existing", "--clobber"},
		{"v1.0.0 --nope", "unknown flag: --nope"},
		{"v1.0.0 --pattern", "flag needs an argument"},
	} {
		e, _ := testEnv(t, map[string]string{"GITHUB_API_URL": srv.APIURL(), "GITHUB_REPOSITORY": "o/r"})
		e.Args = append([]string{"release", "download"}, strings.Fields(c.args)...)
		if err := ghCLI(e); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("gh release download %s: %v, want %q", c.args, err, c.err)
		}
	}
}

// fetch-tags, clean and filter are honoured or refused, never ignored; an
// origin path with % or a space is a valid file URL.
func TestCheckoutInputs(t *testing.T) {
	origin := filepath.Join(t.TempDir(), "o%41 b", "origin.git")
	sha := testOrigin(t, origin)
	env := func(in map[string]string) (*Env, map[string]string) {
		vars := map[string]string{"FLUID_REHEARSAL_ORIGIN": origin, "GITHUB_SHA": sha, "GITHUB_REF": "refs/heads/main",
			"GITHUB_REPOSITORY": "o/r", "INPUT_PERSIST-CREDENTIALS": "false"}
		for k, x := range in {
			vars[k] = x
		}
		return testEnv(t, vars)
	}
	// fetch-depth 1 with fetch-tags: the tags of the fetched history come too.
	e, v := env(map[string]string{"INPUT_FETCH-DEPTH": "1", "INPUT_FETCH-TAGS": "true"})
	ws := v["GITHUB_WORKSPACE"]
	if err := inWorkspace(checkout)(e); err != nil {
		t.Fatal(err)
	}
	if tags := gitRun(t, ws, "tag"); tags != "v1.0.0" {
		t.Errorf("fetch-depth 1, fetch-tags true: tags %q, want v1.0.0", tags)
	}
	if n := gitRun(t, ws, "rev-list", "--count", "HEAD"); n != "1" {
		t.Errorf("fetch-depth 1, fetch-tags true: %s commits", n)
	}
	// clean: false keeps what the last checkout of this repository left
	// (git clean runs only with clean: true).
	write(t, filepath.Join(ws, "untracked"), "left")
	v["INPUT_CLEAN"] = "false"
	if err := inWorkspace(checkout)(e); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ws, "untracked")); err != nil {
		t.Errorf("clean: false removed an untracked file: %v", err)
	}
	v["INPUT_CLEAN"] = "true"
	if err := inWorkspace(checkout)(e); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ws, "untracked")); err == nil {
		t.Error("clean: true left an untracked file")
	}
	// filter is refused by name.
	v["INPUT_FILTER"] = "blob:none"
	if err := inWorkspace(checkout)(e); err == nil || !strings.Contains(err.Error(), "filter") {
		t.Errorf("filter: %v", err)
	}
}

// gh attestation verify passes only for a statement the attest stand-in
// wrote for the file's SHA-256, made in the repository (owner) and by the
// workflow asked, with the predicate type asked; anything else is refused.
func TestGhAttestationVerify(t *testing.T) {
	store := filepath.Join(t.TempDir(), "attestations")
	vars := map[string]string{
		"FLUID_REHEARSAL_ATTESTATIONS": store, "GITHUB_REPOSITORY": "fluid-os/fluid",
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REF": "refs/tags/v1.2.3",
		"GITHUB_WORKFLOW_REF": "fluid-os/fluid/.github/workflows/release.yml@refs/tags/v1.2.3",
	}
	e, v := testEnv(t, vars)
	sums := filepath.Join(v["GITHUB_WORKSPACE"], "build", "dist", "checksums.txt")
	write(t, sums, "abc  fluid.tar.gz\n")
	v["INPUT_SUBJECT-PATH"] = "build/dist/checksums.txt"
	if err := standIn(t, "attest-build-provenance")(e); err != nil {
		t.Fatalf("attest: %v\n%s", err, stdout(e))
	}
	other := filepath.Join(t.TempDir(), "checksums.txt")
	write(t, other, "abd  fluid.tar.gz\n")
	const wf = "fluid-os/fluid/.github/workflows/release.yml"
	tests := []struct {
		name string
		args []string
		want string // "" passes; else in the error
	}{
		{"repo and workflow", []string{sums, "--repo", "fluid-os/fluid", "--signer-workflow", wf}, ""},
		{"flags first, host in workflow", []string{"-R", "fluid-os/fluid", "--signer-workflow=github.com/" + wf, sums}, ""},
		{"owner", []string{sums, "--owner", "fluid-os"}, ""},
		{"other repository", []string{sums, "--repo", "fork/fluid", "--signer-workflow", wf}, "not \"fork/fluid\""},
		{"other owner", []string{sums, "--owner", "fork"}, "not one of owner"},
		{"other workflow", []string{sums, "--repo", "fluid-os/fluid", "--signer-workflow", "fluid-os/fluid/.github/workflows/ci.yml"}, "not \"fluid-os/fluid/.github/workflows/ci.yml\""},
		{"workflow of another repository", []string{sums, "--repo", "fluid-os/fluid", "--signer-workflow", "fork/fluid/.github/workflows/release.yml"}, "signed by workflow"},
		{"other predicate", []string{sums, "--repo", "fluid-os/fluid", "--predicate-type", "https://spdx.dev/Document/v2.3"}, "predicate type"},
		{"file without attestation", []string{other, "--repo", "fluid-os/fluid"}, "no attestations found"},
		{"neither repo nor owner", []string{sums}, "exactly one of --owner or --repo"},
		{"unknown flag", []string{sums, "--repo", "fluid-os/fluid", "--cert-oidc-issuer", "x"}, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			ge := &Env{Args: append([]string{"attestation", "verify"}, tt.args...), Stdout: &out, Stderr: &out, getenv: func(k string) string { return v[k] }}
			err := ghCLI(ge)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == "" && !strings.Contains(out.String(), "Verification succeeded"):
				t.Fatalf("passed without saying so: %s", out.String())
			case tt.want != "" && err == nil:
				t.Fatalf("passed; want a refusal containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("refused with %v; want %q in it", err, tt.want)
			}
		})
	}

	// A statement filed under the file's digest whose subject is another
	// digest is refused (the store is keyed by digest; the statement must
	// say so too).
	t.Run("statement for another digest", func(t *testing.T) {
		dirs, _ := filepath.Glob(filepath.Join(store, "sha256-*"))
		if len(dirs) != 1 {
			t.Fatalf("attestation store holds %v", dirs)
		}
		sum := sha256.Sum256([]byte("abd  fluid.tar.gz\n"))
		forged := filepath.Join(store, "sha256-"+hex.EncodeToString(sum[:]))
		os.MkdirAll(forged, 0o755)
		stmts, _ := filepath.Glob(filepath.Join(dirs[0], "*.json"))
		data, _ := os.ReadFile(stmts[0])
		os.WriteFile(filepath.Join(forged, "x.intoto.json"), data, 0o644)
		var out bytes.Buffer
		ge := &Env{Args: []string{"attestation", "verify", other, "--repo", "fluid-os/fluid"}, Stdout: &out, Stderr: &out, getenv: func(k string) string { return v[k] }}
		if err := ghCLI(ge); err == nil || !strings.Contains(err.Error(), "no subject has digest") {
			t.Fatalf("a statement for another digest: %v", err)
		}
	})
}

// A stand-in that works in the workspace is not run without one, and gets
// $GITHUB_WORKSPACE when it is set.
func TestInWorkspace(t *testing.T) {
	var got []string
	run := inWorkspace(func(_ *Env, ws string) error { got = append(got, ws); return nil })
	e := &Env{getenv: func(string) string { return "" }}
	if err := run(e); err == nil || !strings.Contains(err.Error(), "GITHUB_WORKSPACE is not set") || len(got) != 0 {
		t.Fatalf("without a workspace: err %v, run with %q", err, got)
	}
	e.getenv = func(k string) string {
		if k == "GITHUB_WORKSPACE" {
			return "/ws"
		}
		return ""
	}
	if err := run(e); err != nil || len(got) != 1 || got[0] != "/ws" {
		t.Fatalf("with GITHUB_WORKSPACE=/ws: err %v, run with %q", err, got)
	}
}
