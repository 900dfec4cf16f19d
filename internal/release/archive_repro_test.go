package release_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/release/toolcache"
	"github.com/fluid-os/fluid/internal/testutil"
)

// archiveOwner is what .goreleaser.yaml sets as owner and group of every
// archive entry; goreleaser writes the name with uid/gid 0.
const archiveOwner = "root"

// TestCLIArchivesReproducibleForAnyBuilder builds the CLI archives twice from
// one commit with the real .goreleaser.yaml: once from a checkout with 0644
// files under umask 022, once from a checkout with 0600 files under umask
// 077 and, when the test runs as root, owned by another uid/gid (12345).
// Every tar.gz and zip must come out byte for byte the same, and every entry
// must carry the configured owner (root, uid/gid 0) and mode (0755 for the
// binary, 0644 for the docs), not the builder's.
func TestCLIArchivesReproducibleForAnyBuilder(t *testing.T) {
	ctx, root := longTest(t, "runs goreleaser twice (six CLI builds each)", 20*time.Minute)
	goreleaser, err := toolcache.Ensure(ctx, root, toolcache.Goreleaser, func(s string) { t.Log(s) })
	if err != nil {
		t.Skipf("goreleaser cannot be built, so the archives cannot be checked: %v", err)
	}

	work := t.TempDir()
	repo := filepath.Join(work, "repo")
	copyRepo(t, root, repo)
	gitCommit(t, repo)
	// checksum.extra_files expects the release images; a stand-in will do,
	// the archives do not depend on it.
	assets := filepath.Join(repo, "build", "release-assets")
	if err := os.MkdirAll(assets, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assets, "stand-in.txt"), []byte("stand-in\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	build := func(name, umask string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		// `exec "$0" "$@"`: goreleaser and everything it runs (go build,
		// git) inherit the umask.
		cmd := exec.CommandContext(ctx, "sh", "-c", `umask `+umask+` && exec "$0" "$@"`,
			goreleaser, "release", "--clean", "--snapshot", "--skip=publish,announce,sign,sbom")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOSUMDB=off",
			"SOURCE_DATE_EPOCH=1767225600",
			// The second checkout belongs to another user; git refuses such
			// a repository unless it is declared safe.
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("goreleaser (%s, umask %s): %v\n%s", name, umask, err, tailLines(string(out), 60))
		}
		dst := filepath.Join(work, name)
		if err := os.Rename(filepath.Join(repo, "build", "dist"), dst); err != nil {
			t.Fatal(err)
		}
		return dst, time.Since(start)
	}

	// Builder A: files 0644 (0755 directories), umask 022, owned by the
	// test's user.
	setModes(t, repo, 0o644, 0o755)
	distA, took := build("dist-a", "022")
	t.Logf("build A (umask 022, uid %d) took %s", os.Getuid(), took.Round(time.Second))

	// Builder B: a checkout made under umask 077 and, as root, owned by
	// someone else.
	setModes(t, repo, 0o600, 0o700)
	other := "the test's own user"
	if os.Getuid() == 0 {
		const uid, gid = 12345, 12345
		err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
		other = "uid/gid 12345"
	} else {
		t.Log("not root: builder B differs from A by umask and file modes only, not by owner")
	}
	distB, took := build("dist-b", "077")
	t.Logf("build B (umask 077, files 0600, %s) took %s", other, took.Round(time.Second))

	archives := archivesIn(t, distA)
	if len(archives) == 0 {
		t.Fatalf("no .tar.gz or .zip archives in %s", distA)
	}
	if got := archivesIn(t, distB); strings.Join(got, " ") != strings.Join(archives, " ") {
		t.Fatalf("the two builds made different archives:\nA: %v\nB: %v", archives, got)
	}
	for _, name := range archives {
		a, err := os.ReadFile(filepath.Join(distA, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(distB, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between builder A and builder B", name)
		}
		for _, dist := range []string{distA, distB} {
			checkArchiveEntries(t, filepath.Join(dist, name))
		}
	}
	if !t.Failed() {
		t.Logf("%d archives identical across builders: %s", len(archives), strings.Join(archives, ", "))
	}
}

// setModes gives every file and directory of the checkout (except .git,
// which git itself manages) the mode a checkout under some umask would have.
func setModes(t *testing.T, repo string, file, dir os.FileMode) {
	t.Helper()
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.Chmod(p, dir)
		}
		if d.Type().IsRegular() {
			return os.Chmod(p, file)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func archivesIn(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, n := range testutil.DirNames(t, dir) {
		if strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".zip") {
			names = append(names, n)
		}
	}
	return names
}

// wantMode is the mode an archive entry must have: 0755 for the CLI binary,
// 0644 for everything else (the docs).
func wantMode(name string) os.FileMode {
	if base := filepath.Base(name); base == "fluid" || base == "fluid.exe" {
		return 0o755
	}
	return 0o644
}

func checkArchiveEntries(t *testing.T, path string) {
	t.Helper()
	name := filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path))
	seen := map[string]bool{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			seen[filepath.Base(f.Name)] = true
			if got, want := f.Mode(), wantMode(f.Name); got != want {
				t.Errorf("%s: %s has mode %v, want %v", name, f.Name, got, want)
			}
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			seen[filepath.Base(h.Name)] = true
			if h.Uid != 0 || h.Gid != 0 || h.Uname != archiveOwner || h.Gname != archiveOwner {
				t.Errorf("%s: %s is owned by uid %d (%q), gid %d (%q); want 0 (%q) and 0 (%q)",
					name, h.Name, h.Uid, h.Uname, h.Gid, h.Gname, archiveOwner, archiveOwner)
			}
			if got, want := os.FileMode(h.Mode), wantMode(h.Name); got != want {
				t.Errorf("%s: %s has mode %v, want %v", name, h.Name, got, want)
			}
			if h.Typeflag != tar.TypeReg {
				t.Errorf("%s: %s is of type %q, want a regular file", name, h.Name, h.Typeflag)
			}
		}
	}
	if !seen["SECURITY.md"] || !(seen["fluid"] || seen["fluid.exe"]) {
		t.Errorf("%s holds %v; want the fluid binary and SECURITY.md", name, seen)
	}
}
