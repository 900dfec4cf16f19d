package repro

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/testutil"
)

// imageWithManifest is a disk image whose /manifest.json is the manifest
// of an honest release of src's HEAD (as makeRelease writes it), changed by
// edit, which gets the manifest as generic JSON.
func imageWithManifest(t *testing.T, src string, edit func(m map[string]any)) string {
	t.Helper()
	_, man := makeRelease(t, src, "baseline", "")
	data, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return writeImage(t, []image.File{{Path: "/manifest.json", Data: data}})
}

// neverBuild fails the test if the rebuild gets as far as building.
func neverBuild(t *testing.T) Builder {
	return BuilderFunc(func(ctx context.Context, spec Spec, log io.Writer) error {
		t.Errorf("the rebuild ran a build in %s", spec.Root)
		return errors.New("must not build")
	})
}

// The manifest inside the image is the attacker's: fields the rebuild passes
// to git or to the build, or prints, must have the form a build writes.
func TestVerifyReleaseHostileManifestFields(t *testing.T) {
	src := releaseRepo(t)
	gitIn(t, src, "branch", "feature")
	head := gitIn(t, src, "rev-parse", "HEAD")
	for _, tt := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"commit is a ref name", func(m map[string]any) { m["commit"] = "HEAD" }, `commit "HEAD" is not a full commit hash`},
		{"commit is a branch", func(m map[string]any) { m["commit"] = "feature" }, `commit "feature" is not a full commit hash`},
		{"commit is abbreviated", func(m map[string]any) { m["commit"] = head[:12] }, "is not a full commit hash"},
		{"commit is upper case", func(m map[string]any) { m["commit"] = strings.ToUpper(head) }, "is not a full commit hash"},
		{"commit is a git option", func(m map[string]any) { m["commit"] = "--output=/tmp/pwned" }, "is not a full commit hash"},
		{"commit is a revision expression", func(m map[string]any) { m["commit"] = head + "~1" }, "is not a full commit hash"},
		{"commit with an escape sequence", func(m map[string]any) { m["commit"] = "\x1b]0;pwned\x07" }, `commit "\x1b]0;pwned\a" is not`},
		{"lock_sha256 is not a hash", func(m map[string]any) {
			m["toolchain_environment"].(map[string]any)["lock_sha256"] = "\x1b[2Jidentical"
		}, "lock_sha256"},
		{"version with a newline", func(m map[string]any) { m["version"] = "v1\nidentical: fluid-pgo.img" }, "is not a version string"},
		{"version is an option", func(m map[string]any) { m["version"] = "--help" }, "is not a version string"},
		{"version is a revision expression", func(m map[string]any) { m["version"] = "v0.1.0~1" }, "is not a version string"},
		{"negative SOURCE_DATE_EPOCH", func(m map[string]any) { m["source_date_epoch"] = -1 }, "negative"},
		{"path traversal in the inputs", func(m map[string]any) {
			m["inputs"] = []any{map[string]any{"path": "../../etc/passwd", "sha256": strings.Repeat("0", 64)}}
		}, "want a clean repo-relative path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := imageWithManifest(t, src, tt.edit)
			_, err := VerifyRelease(context.Background(), ReleaseOptions{Image: img, Source: src, Builder: neverBuild(t)})
			if !errors.Is(err, ErrCannotRebuild) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrCannotRebuild with %q", err, tt.want)
			}
		})
	}
}

// The commit comes from the image, and the rebuild runs that commit's
// build code: only commits the clone's branches, tags or HEAD hold.
func TestVerifyReleaseCommitReachability(t *testing.T) {
	ctx := context.Background()
	src := releaseRepo(t)
	base := gitIn(t, src, "rev-parse", "HEAD")
	// An unreviewed commit, then only on a remote-tracking ref (as a
	// fetched branch of origin would be), and one no ref holds at all.
	gitIn(t, src, "checkout", "-q", "-b", "evil")
	os.WriteFile(filepath.Join(src, "kernel", "main.c"), []byte("evil\n"), 0o644)
	commitAll(t, src, "evil")
	evil := gitIn(t, src, "rev-parse", "HEAD")
	gitIn(t, src, "update-ref", "refs/remotes/origin/evil", evil)
	os.WriteFile(filepath.Join(src, "kernel", "main.c"), []byte("dangling\n"), 0o644)
	commitAll(t, src, "dangling")
	dangling := gitIn(t, src, "rev-parse", "HEAD")
	gitIn(t, src, "checkout", "-q", "-")
	gitIn(t, src, "branch", "-q", "-D", "evil")
	gitIn(t, src, "checkout", "-q", "--detach", base)
	gitIn(t, src, "branch", "-q", "-D", "master")
	gitIn(t, src, "checkout", "-q", "-b", "main")
	os.WriteFile(filepath.Join(src, "kernel", "main.c"), []byte("newer on main\n"), 0o644)
	commitAll(t, src, "newer")
	gitIn(t, src, "tag", "v0.1.0-test", "HEAD") // the release's version, at another commit

	for _, tt := range []struct {
		name, commit, want string
	}{
		{"only on a remote-tracking ref", evil, "only refs/remotes/origin/evil"},
		{"on no ref", dangling, "on no branch or tag"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := imageWithManifest(t, src, func(m map[string]any) { m["commit"] = tt.commit })
			_, err := VerifyRelease(ctx, ReleaseOptions{Image: img, Source: src, Builder: neverBuild(t)})
			if !errors.Is(err, ErrCannotRebuild) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "runs that commit's build code") {
				t.Fatalf("err = %v, want ErrCannotRebuild with %q", err, tt.want)
			}
		})
	}
	// The commit on main's history: rebuilt, with a note that the tag named
	// like the version is elsewhere.
	gitIn(t, src, "checkout", "-q", "--detach", base)
	img, _ := makeRelease(t, src, "baseline", "")
	gitIn(t, src, "checkout", "-q", "main")
	res := verifyBaseline(t, img, src, "a commit of main")
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "tag v0.1.0-test in "+src+" is commit") || !strings.Contains(notes, "was not built from that tag") {
		t.Errorf("no note about the tag: %q", notes)
	}
}

// A linked worktree at the commit: its .git is a file, which the copy did
// not have, so the rebuild recorded commit "unknown" and called an honest
// image different.
func TestVerifyReleaseWorktree(t *testing.T) {
	src := releaseRepo(t)
	img, _ := makeRelease(t, src, "baseline", "")
	wt := filepath.Join(t.TempDir(), "a worktree")
	gitIn(t, src, "worktree", "add", "-q", "--detach", wt, "HEAD")
	verifyBaseline(t, img, wt, "worktree at the commit")
}

// GIT_DIR and friends in the caller's environment must not make the
// rebuild read another repository than --source.
func TestVerifyReleaseIgnoresGitEnvironment(t *testing.T) {
	src := releaseRepo(t)
	img, _ := makeRelease(t, src, "baseline", "")
	other := releaseRepo(t)
	os.WriteFile(filepath.Join(other, "kernel", "main.c"), []byte("other\n"), 0o644)
	commitAll(t, other, "other")
	t.Setenv("GIT_DIR", filepath.Join(other, ".git"))
	t.Setenv("GIT_WORK_TREE", other)
	verifyBaseline(t, img, src, "with GIT_DIR set")
}

// --source must be the clone, not a directory inside some other
// repository (git would quietly use the enclosing one).
func TestVerifyReleaseSourceNotTopLevel(t *testing.T) {
	src := releaseRepo(t)
	img, _ := makeRelease(t, src, "baseline", "")
	_, err := VerifyRelease(context.Background(), ReleaseOptions{Image: img, Source: filepath.Join(src, "kernel"), Builder: neverBuild(t)})
	if !errors.Is(err, ErrCannotRebuild) || !strings.Contains(err.Error(), "is not the top of a git checkout") {
		t.Fatalf("err = %v", err)
	}
}

// Checking a dirty clone does not write to it (git status would refresh
// its index).
func TestVerifyReleaseLeavesSourceAlone(t *testing.T) {
	src := releaseRepo(t)
	img, _ := makeRelease(t, src, "baseline", "")
	// Same bytes, new mtime: the index's stat data is stale.
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(src, "kernel", "main.c"), later, later)
	os.WriteFile(filepath.Join(src, "untracked.txt"), []byte("x\n"), 0o644)
	index := filepath.Join(src, ".git", "index")
	before, _ := os.ReadFile(index)
	st, _ := os.Stat(index)
	verifyBaseline(t, img, src, "a checkout with stale stat data")
	after, _ := os.ReadFile(index)
	st2, _ := os.Stat(index)
	if !bytes.Equal(before, after) || !st.ModTime().Equal(st2.ModTime()) {
		t.Errorf("the rebuild rewrote %s", index)
	}
}

// A manifest.json beside the image, or given with --manifest, that never
// ends (a FIFO, a device, a huge file) must not hang or fill memory.
func TestVerifyReleaseManifestNotAFile(t *testing.T) {
	src := releaseRepo(t)
	img, _ := makeRelease(t, src, "baseline", "")
	fifo := filepath.Join(t.TempDir(), "manifest.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no mkfifo:", err)
	}
	huge := filepath.Join(t.TempDir(), "manifest.json")
	f, _ := os.Create(huge)
	f.Truncate(MaxManifestSize + 1)
	f.Close()
	for _, tt := range []struct {
		name, manifest string
		explicit       bool
		want           string
	}{
		{"fifo beside", fifo, false, ""},
		{"fifo given", fifo, true, "not a regular file"},
		{"/dev/zero given", "/dev/zero", true, "not a regular file"},
		{"huge given", huge, true, "larger than 16 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				res, err := VerifyRelease(context.Background(), ReleaseOptions{Image: img, Source: src, Manifest: tt.manifest, ManifestExplicit: tt.explicit, Builder: fakeRelease{variant: "baseline"}})
				if err == nil && !strings.Contains(strings.Join(res.Notes, "\n"), "is set aside: "+tt.manifest+" is not a regular file") {
					t.Errorf("no note: %q", res.Notes)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrCannotRebuild) || !strings.Contains(err.Error(), tt.want)) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("still reading after 20s")
			}
		})
	}
}

// Manifest keys (the toolchain map's are free-form) reach the terminal in
// the report: quoted when they hold anything but printable ASCII.
func TestJSONDiffQuotesKeysAndValues(t *testing.T) {
	d := strings.Join(JSONDiffBytes([]byte(`{"toolchain":{"\u001bc":1,"a\rb":2,"ok":"x\u202ey"}}`), []byte(`{"toolchain":{"ok":"z"}}`)), "\n")
	if strings.ContainsAny(d, "\x1b\r\u202e") {
		t.Errorf("raw control characters in %q", d)
	}
	if !strings.Contains(d, `.toolchain["\x1bc"]: only in the first`) || !strings.Contains(d, `.toolchain.ok: "x\u202ey" vs "z"`) {
		t.Errorf("diff %q", d)
	}
}

// Cancelling a rebuild kills the whole build, not only `go`: `go tool
// mage` runs mage as its own child, which went on building (and writing
// into the directory being removed) after the go command was killed.
func TestMageBuilderCancelKillsTheBuild(t *testing.T) {
	testutil.NeedTools(t, "go")
	dir := testutil.TempTree(t, map[string]string{
		"go.mod": "module example.com/fake\n\ngo 1.24\n\ntool example.com/fake/mage\n",
		"mage/main.go": `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	for i := 0; ; i++ {
		os.WriteFile(fmt.Sprintf("tick-%d", i), nil, 0o644)
		time.Sleep(50 * time.Millisecond)
	}
}
`,
	})
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		env := append(os.Environ(), "TMPDIR="+tmp, "GOTMPDIR=")
		errc <- MageBuilder{Targets: []string{"build"}}.Build(ctx, Spec{Label: "t", Root: dir, Env: env, Umask: InheritUmask}, io.Discard)
	}()
	ticks := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "tick-*"))
		return len(m)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for ticks() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the fake mage never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("Build: %v, want interrupted", err)
	}
	n := ticks()
	time.Sleep(500 * time.Millisecond)
	if m := ticks(); m != n {
		t.Errorf("the build went on after Build returned: %d files, then %d", n, m)
	}
	// go removed its temporary build directory (it had the time to).
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
