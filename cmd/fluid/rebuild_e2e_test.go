package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"

	"github.com/fluid-os/fluid/internal/release"
)

// securityCloneURL is the repository URL SECURITY.md's rebuild block
// clones; the test points it at the local release's clone.
const securityCloneURL = "https://github.com/fluid-os/fluid.git"

// TestSecurityRebuildInstructions makes a local release and checks it the
// way SECURITY.md ("Rebuilding from source") tells a user to, running that
// section's command block as written:
//
//   - clone A of this repository (HEAD plus the working tree's changes, as
//     one more commit), at one path, umask 022, TZ=UTC: `go tool mage
//     releaseKey` and `go tool mage release` with the local key, as
//     SECURITY.md's key-based signing section says;
//   - the release's signed assets are "downloaded" (copied) where the block
//     expects them and pass `fluid verify --key`;
//   - the block runs with `sh -e` from another directory with umask 077,
//     TZ=Asia/Kathmandu and another locale: its `git clone` (of clone A
//     instead of GitHub) is clone B, and each `fluid verify --rebuild` must
//     report its image identical;
//   - the baseline image with the release's manifest.json (the PGO one) is
//     refused with exit 2;
//   - one changed byte in a kernel string constant in clone B (uncommitted,
//     so the rebuild uses it) makes `fluid verify --rebuild` exit 1 and name
//     the source file, the kernel payload and the files that differ.
//
// About 2 minutes with warm caches (Go build cache, the locked rootfs in
// ~/.cache/fluid-os, the release tools); the first run on a machine builds
// goreleaser, cosign and six CLI binaries and needs -timeout 30m.
func TestSecurityRebuildInstructions(t *testing.T) {
	testutil.Long(t, "makes a local release and rebuilds both images (about 2 minutes warm)")
	// Like every real-build test: a missing prerequisite is a broken setup,
	// not a reason to skip.
	testutil.RequireTools(t, "git", "bwrap")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	start := time.Now()
	root := repoRoot(t)
	block, images := securityRebuildBlock(t, filepath.Join(root, "SECURITY.md"))
	tmp := t.TempDir()

	bin := filepath.Join(tmp, "bin")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "fluid"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build fluid: %v\n%s", err, out)
	}

	// Clone A makes the release.
	a := filepath.Join(tmp, "release-side", "fluid")
	mustRun(t, exec.CommandContext(ctx, "git", "clone", "--quiet", root, a))
	overlayWorkingTree(t, root, a)
	keys := filepath.Join(tmp, "keys")
	envA := testEnv("TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "FLUID_KEY_DIR="+keys, "COSIGN_PASSWORD=e2e-test")
	if out, code := withUmask(ctx, a, 0o022, envA, "go", "tool", "mage", "releaseKey"); code != 0 {
		t.Fatalf("mage releaseKey: exit %d\n%s", code, tail(out, 30))
	}
	t0 := time.Now()
	// SNAPSHOT=1: clone A has release/cosign.pub untracked (releaseKey
	// wrote it), which goreleaser refuses for a tagged release, and the
	// tree under test may carry a v* tag (release.yml's check job runs this
	// suite on the tag; found by `mage rehearse`).
	out, code := withUmask(ctx, a, 0o022, append(envA, "SNAPSHOT=1", "COSIGN_KEY_FILE="+filepath.Join(keys, "cosign.key")), "go", "tool", "mage", "release")
	if code != 0 {
		t.Fatalf("mage release: exit %d\n%s", code, tail(out, 60))
	}
	t.Logf("clone A %s: mage release took %s", a, time.Since(t0).Round(time.Second))

	// The user's side: another path, the assets where the block wants them.
	home := filepath.Join(tmp, "user", "some", "deeper", "place")
	files, err := release.ReleaseFiles(filepath.Join(a, "build", "dist"), filepath.Join(a, "build", "release-assets"))
	if err != nil {
		t.Fatal(err)
	}
	dl := filepath.Join(home, filepath.Dir(images[0]))
	for _, f := range files {
		testutil.CopyFile(t, f, filepath.Join(dl, filepath.Base(f)))
	}
	for _, img := range images {
		if _, err := os.Stat(filepath.Join(home, img)); err != nil {
			t.Fatalf("SECURITY.md rebuilds %s, which the release does not have: %v", img, err)
		}
	}
	envB := testEnv("TZ=Asia/Kathmandu", "LANG=fr_FR.UTF-8", "LC_ALL=fr_FR.UTF-8", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	verifyArgs := []string{"fluid", "verify", "--key", filepath.Join(a, "release", "cosign.pub")}
	for _, img := range images {
		verifyArgs = append(verifyArgs, img)
	}
	if out, code := withUmask(ctx, home, 0o077, envB, append(verifyArgs, filepath.Join(filepath.Dir(images[0]), manifestName))...); code != 0 {
		t.Fatalf("fluid verify --key of the local release: exit %d\n%s", code, out)
	}

	// SECURITY.md's block, as written but for the clone URL.
	script := strings.ReplaceAll(block, securityCloneURL, a)
	t0 = time.Now()
	out, code = withUmask(ctx, home, 0o077, envB, "sh", "-e", "-c", script)
	t.Logf("SECURITY.md's block (umask 077, TZ=Asia/Kathmandu) took %s:\n%s", time.Since(t0).Round(time.Second), verdicts(out))
	if code != 0 {
		t.Fatalf("SECURITY.md's rebuild commands failed on an honest release: exit %d\n%s", code, tail(out, 80))
	}
	for _, img := range images {
		if !strings.Contains(out, "identical: "+img+"\n") {
			t.Errorf("no `identical: %s` in the output:\n%s", img, tail(out, 80))
		}
	}
	clone := filepath.Join(home, cloneDir(t, block))
	var baseline string
	for _, img := range images {
		if strings.Contains(img, release.BaselineImageAsset) {
			baseline = img
		}
	}

	// The pairing the old instructions used: refused, not "different".
	out, code = withUmask(ctx, home, 0o077, envB, "fluid", "verify", "--rebuild", "--source", clone,
		"--manifest", filepath.Join(filepath.Dir(baseline), manifestName), baseline)
	if code != exitUsage || !strings.Contains(out, "leave out --manifest") {
		t.Errorf("baseline image with the PGO manifest: exit %d, want %d:\n%s", code, exitUsage, tail(out, 20))
	}

	// One changed source byte in clone B: reported as different.
	changed := changeOneByte(t, clone)
	t0 = time.Now()
	out, code = withUmask(ctx, home, 0o077, envB, "fluid", "verify", "--rebuild", "--source", clone, baseline)
	t.Logf("one changed byte in %s (%s):\n%s", changed, time.Since(t0).Round(time.Second), verdicts(out))
	if code != exitDifferent {
		t.Fatalf("a changed source byte: exit %d, want %d (different)\n%s", code, exitDifferent, tail(out, 60))
	}
	for _, want := range []string{
		"different: " + baseline,
		`path="` + changed + `"].sha256`,
		"kernel payload differs",
		"/KERNEL.ELF (ELF section",
		"has uncommitted changes, and the rebuild uses them: " + changed,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, tail(out, 60))
		}
	}
	t.Logf("total %s", time.Since(start).Round(time.Second))
}

// TestSecurityRebuildBlock checks, even with -short, that SECURITY.md's
// rebuild block still has the shape TestSecurityRebuildInstructions runs:
// a clone of the repository, then one `fluid verify --rebuild` per release
// image, from that clone, with flags this fluid knows.
func TestSecurityRebuildBlock(t *testing.T) {
	block, images := securityRebuildBlock(t, filepath.Join(repoRoot(t), "SECURITY.md"))
	dir := cloneDir(t, block)
	for _, l := range strings.Split(block, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "fluid" {
			continue
		}
		if !strings.Contains(l, "--source "+dir+" ") {
			t.Errorf("%q does not rebuild from the clone %s", l, dir)
		}
		if strings.Contains(l, "--manifest") {
			t.Errorf("%q passes --manifest: the release's manifest.json is the PGO image's, and the baseline image has its own inside", l)
		}
	}
	t.Logf("clone %s, images %v", dir, images)
}

// securityRebuildBlock returns the first ```sh block of SECURITY.md's
// "Rebuilding from source" section and the images its `fluid verify
// --rebuild` lines name (both release images, or the test fails).
func securityRebuildBlock(t *testing.T, path string) (string, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "### Rebuilding from source")
	if i < 0 {
		t.Fatalf("%s has no \"### Rebuilding from source\" section", path)
	}
	s = s[i:]
	j := strings.Index(s, "```sh\n")
	if j < 0 {
		t.Fatalf("%s: no ```sh block under \"Rebuilding from source\"", path)
	}
	s = s[j+len("```sh\n"):]
	block, _, ok := strings.Cut(s, "```")
	if !ok {
		t.Fatalf("%s: unterminated ```sh block", path)
	}
	if !strings.Contains(block, "git clone "+securityCloneURL) {
		t.Fatalf("SECURITY.md's rebuild block no longer clones %s; update the test:\n%s", securityCloneURL, block)
	}
	var images []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 2 && f[0] == "fluid" && f[1] == "verify" && f[2] == "--rebuild" {
			images = append(images, f[len(f)-1])
		}
	}
	sort.Strings(images)
	if len(images) != 2 || !strings.Contains(images[0], release.BaselineImageAsset) || !strings.Contains(images[1], release.PGOImageAsset) {
		t.Fatalf("SECURITY.md's rebuild block must rebuild both release images, one `fluid verify --rebuild` each; it names %v:\n%s", images, block)
	}
	return block, images
}

// cloneDir is the directory the block's `git clone URL DIR` makes.
func cloneDir(t *testing.T, block string) string {
	t.Helper()
	for _, l := range strings.Split(block, "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "git" && f[1] == "clone" {
			return f[3]
		}
	}
	t.Fatalf("SECURITY.md's block has no `git clone URL DIR` line:\n%s", block)
	return ""
}

// changeOneByte upper-cases the first letter of the first kprintf format
// string in the kernel's C sources (sorted by path) and returns the file,
// repo-relative: one source byte that changes the kernel.
func changeOneByte(t *testing.T, clone string) string {
	t.Helper()
	var srcs []string
	filepath.WalkDir(filepath.Join(clone, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".c") {
			srcs = append(srcs, p)
		}
		return nil
	})
	sort.Strings(srcs)
	const call = `kprintf("`
	for _, p := range srcs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; ; {
			i := bytes.Index(data[off:], []byte(call))
			if i < 0 {
				break
			}
			k := off + i + len(call)
			if c := data[k]; c >= 'a' && c <= 'z' {
				data[k] = c - 'a' + 'A'
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				rel, _ := filepath.Rel(clone, p)
				return filepath.ToSlash(rel)
			}
			off = k
		}
	}
	t.Fatalf("no kprintf(\"<lower-case letter> in %s/kernel to change", clone)
	return ""
}

// overlayWorkingTree makes clone (of root's HEAD) hold root's working tree:
// modified and untracked-but-not-ignored files copied, deleted ones
// removed, committed as one more commit when anything changed. The test
// then checks the code as it is, not only as last committed.
func overlayWorkingTree(t *testing.T, root, clone string) {
	t.Helper()
	list := func(args ...string) []string {
		out, err := exec.Command("git", append([]string{"-C", root, "ls-files", "-z"}, args...)...).Output()
		if err != nil {
			t.Fatalf("git ls-files %v: %v", args, err)
		}
		var l []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				l = append(l, f)
			}
		}
		return l
	}
	for _, f := range list("--cached", "--others", "--exclude-standard") {
		src := filepath.Join(root, f)
		if fi, err := os.Lstat(src); err == nil && fi.Mode().IsRegular() {
			testutil.CopyFile(t, src, filepath.Join(clone, f))
		}
	}
	for _, f := range list("--deleted") {
		os.Remove(filepath.Join(clone, f))
	}
	mustRun(t, exec.Command("git", "-C", clone, "add", "-A"))
	if exec.Command("git", "-C", clone, "diff", "--cached", "--quiet").Run() == nil {
		return
	}
	cmd := exec.Command("git", "-C", clone, "-c", "user.name=fluid test", "-c", "user.email=test@fluid.invalid", "-c", "commit.gpgsign=false",
		"commit", "--quiet", "-m", "test: the working tree of "+root)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
	mustRun(t, cmd)
}

// testEnv is this process's environment without the knobs that would change
// what a build or a release does, plus extra.
func testEnv(extra ...string) []string {
	drop := map[string]bool{"TZ": true, "LANG": true, "PWD": true, "OLDPWD": true, "SOURCE_DATE_EPOCH": true,
		"FLUID_TOOLCHAIN": true, "FLUID_LLVM": true, "LIGHT": true, "FLUID_BUILD_DIR": true, "FLUID_VERSION": true,
		"FLUID_KEY_DIR": true, "FLUID_PGO_IMAGE": true, "FLUID_IMAGE": true, "FLUID_MANIFEST": true, "SNAPSHOT": true, "TAG": true,
		"COSIGN_KEY": true, "COSIGN_KEY_FILE": true, "COSIGN_PASSWORD": true, "GIT_DIR": true, "GIT_WORK_TREE": true}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] || strings.HasPrefix(k, "LC_") || (k == "PATH" && hasKey(extra, "PATH")) {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// withUmask runs argv in dir with the umask and env, returning its combined
// output and exit code (-1 if it could not run).
func withUmask(ctx context.Context, dir string, umask int, env []string, argv ...string) (string, int) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error(), -1
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `umask "$0" && exec "$@"`, fmt.Sprintf("%04o", umask)}, argv...)...)
	cmd.Dir, cmd.Env = dir, env
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return b.String(), 0
	case errors.As(err, &ee):
		return b.String(), ee.ExitCode()
	}
	return b.String() + err.Error(), -1
}

func mustRun(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
}

// verdicts keeps the lines of fluid's own output (not the builds' logs).
func verdicts(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "identical:") || strings.HasPrefix(l, "different:") || strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "fluid") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// repoRoot is the tree this test runs in.
func repoRoot(t *testing.T) string { return toolchaintest.Root(t) }
