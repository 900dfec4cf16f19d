package toolchain

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

// fakeCache is a finished cache (as EnsureRootfs leaves it) of the tree's
// lock, unpacked from the fake tarball, under a temp FLUID_CACHE_DIR.
func fakeCache(t *testing.T) (*LockedTree, *Rootfs) {
	t.Helper()
	root := testutil.Root(t)
	tree := t.TempDir()
	for _, f := range []string{DefinitionFile, LockFile, "toolchain/debian-archive-keyring.gpg"} {
		testutil.CopyFile(t, filepath.Join(root, f), filepath.Join(tree, f))
	}
	t.Setenv("FLUID_CACHE_DIR", t.TempDir())
	t.Setenv(EnvMode, "")
	lt, err := ReadLock(tree)
	if err != nil {
		t.Fatal(err)
	}
	dir := lt.CacheDir()
	os.MkdirAll(dir, 0o755)
	tarball := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tarball, fakeRootfsTar(t), 0o644)
	rf := &Rootfs{Tree: lt, Dir: dir, Root: filepath.Join(dir, "rootfs")}
	if err := rf.unpack(tarball); err != nil {
		t.Fatal(err)
	}
	var tools strings.Builder
	for name := range lt.inRootfs() {
		tools.WriteString(name + "\tDebian " + name + " version 18.1.8 (18+b1)\n")
	}
	os.WriteFile(filepath.Join(dir, "tools.txt"), []byte(tools.String()), 0o644)
	if err := rf.writeReady(); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureRootfs(context.Background(), lt, io.Discard); err != nil {
		t.Fatalf("untouched cache refused: %v", err)
	}
	return lt, rf
}

// TestReadyGuardsTheRecords: the check compares the tree with files.txt,
// so files.txt itself (and tools.txt, whose versions every manifest
// records) must not change unnoticed. Each alteration is refused with the
// one paragraph that says how to recreate the cache; undone, it passes.
func TestReadyGuardsTheRecords(t *testing.T) {
	lt, rf := fakeCache(t)
	files := filepath.Join(rf.Dir, "files.txt")
	tools := filepath.Join(rf.Dir, "tools.txt")
	ready := filepath.Join(rf.Dir, "ready")
	for _, c := range []struct {
		name, want string
		edit       func() (undo func())
	}{
		{"files.txt truncated, a file added where the lost lines were", "files.txt changed", func() func() {
			data, _ := os.ReadFile(files)
			lines := strings.SplitAfter(string(data), "\n")
			var kept []string
			for _, l := range lines {
				if !strings.HasSuffix(strings.TrimSpace(l), " var") && !strings.Contains(l, " var/") {
					kept = append(kept, l)
				}
			}
			os.WriteFile(files, []byte(strings.Join(kept, "")), 0o644)
			intruder := filepath.Join(rf.Root, "var/lib/dpkg/info/intruder")
			os.WriteFile(intruder, []byte("x"), 0o644)
			return func() { os.WriteFile(files, data, 0o644); os.Remove(intruder) }
		}},
		{"files.txt hash edited to match an altered clang", "files.txt changed", func() func() {
			data, _ := os.ReadFile(files)
			clang := filepath.Join(rf.Root, "usr/bin/clang-18")
			orig, _ := os.ReadFile(clang)
			bad := append([]byte{}, orig...)
			bad[3] ^= 1
			os.WriteFile(clang, bad, 0o755)
			edited := strings.Replace(string(data), sha256Hex(orig), sha256Hex(bad), 1)
			os.WriteFile(files, []byte(edited), 0o644)
			return func() { os.WriteFile(files, data, 0o644); os.WriteFile(clang, orig, 0o755) }
		}},
		{"files.txt bad line", "files.txt changed", func() func() {
			data, _ := os.ReadFile(files)
			os.WriteFile(files, []byte("f 7x5 1 zz 1 2 3 usr\n"+string(data)), 0o644)
			return func() { os.WriteFile(files, data, 0o644) }
		}},
		{"tools.txt edited", "tools.txt changed", func() func() {
			data, _ := os.ReadFile(tools)
			os.WriteFile(tools, []byte(strings.ReplaceAll(string(data), "18.1.8", "18.1.9")), 0o644)
			return func() { os.WriteFile(tools, data, 0o644) }
		}},
		{"tools.txt missing", "tools.txt is unreadable", func() func() {
			data, _ := os.ReadFile(tools)
			os.Remove(tools)
			return func() { os.WriteFile(tools, data, 0o644) }
		}},
		{"ready names another lock", "names the lock", func() func() {
			data, _ := os.ReadFile(ready)
			os.WriteFile(ready, []byte(strings.Repeat("0", 64)+"\n"), 0o644)
			return func() { os.WriteFile(ready, data, 0o644) }
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			undo := c.edit()
			_, err := EnsureRootfs(context.Background(), lt, io.Discard)
			if !errors.Is(err, ErrRootfs) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "rm -rf "+rf.Dir) {
				t.Errorf("want a refusal saying %q and how to recreate the cache, got %v", c.want, err)
			}
			undo()
			if _, err := EnsureRootfs(context.Background(), lt, io.Discard); err != nil {
				t.Errorf("undone, still refused: %v", err)
			}
		})
	}
}

// dropLines rewrites the file at path without the lines (each with its
// newline) that drop matches.
func dropLines(t *testing.T, path string, drop func(line string) bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !drop(l) {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFirstFormatCacheStillChecked: a cache made before ready held the
// records' hashes (and before files.txt had a line for the root) is still
// accepted, and an addition to its root directory is still found.
func TestFirstFormatCacheStillChecked(t *testing.T) {
	lt, rf := fakeCache(t)
	os.WriteFile(filepath.Join(rf.Dir, "ready"), []byte(lt.LockSHA256+"\n"), 0o644)
	dropLines(t, filepath.Join(rf.Dir, "files.txt"), func(l string) bool { return strings.HasSuffix(l, " .\n") })
	if _, err := EnsureRootfs(context.Background(), lt, io.Discard); err != nil {
		t.Fatalf("first-format cache refused: %v", err)
	}
	os.WriteFile(filepath.Join(rf.Root, "intruder"), nil, 0o644)
	if _, err := EnsureRootfs(context.Background(), lt, io.Discard); err == nil || !strings.Contains(err.Error(), "/intruder was added") {
		t.Fatalf("addition to the root of a first-format cache: %v", err)
	}
}

// TestToolsRecordLackingATool: a tools.txt without clang's line is refused
// as an altered cache, not as "could not read clang's version from """.
func TestToolsRecordLackingATool(t *testing.T) {
	_, rf := fakeCache(t)
	dropLines(t, filepath.Join(rf.Dir, "tools.txt"), func(l string) bool { return strings.HasPrefix(l, "clang\t") })
	_, err := rf.Toolchain(t.TempDir())
	if !errors.Is(err, ErrRootfs) || !strings.Contains(err.Error(), "no version of clang") || !strings.Contains(err.Error(), "rm -rf "+rf.Dir) {
		t.Fatalf("tools.txt without clang: %v", err)
	}
}

// TestAlterationMessages: modes read as chmod writes them, and a changed
// directory does not list every package that owns a file in it.
func TestAlterationMessages(t *testing.T) {
	lt, rf := fakeCache(t)
	os.Chmod(filepath.Join(rf.Root, "usr/bin"), 0o757)
	_, err := EnsureRootfs(context.Background(), lt, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "/usr/bin changed mode 0755 -> 0757") || strings.Contains(err.Error(), "from package") {
		t.Errorf("a directory made writable: want its mode, no packages:\n%v", err)
	}
	clang := filepath.Join(rf.Root, "usr/bin/clang-18")
	os.Chmod(clang, 0o755|fs.ModeSetuid)
	_, err = EnsureRootfs(context.Background(), lt, io.Discard)
	if err == nil {
		t.Fatal("set-id bit and writable directory accepted")
	}
	for _, want := range []string{"/usr/bin/clang-18 changed mode 0755 -> 4755", "/usr/bin changed mode 0755 -> 0757", "(from package clang-18)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}

	// The rootfs directory itself swapped for a symlink to a copy: named
	// as such, without the whole package list (every package owns "/.").
	_, rf = fakeCache(t)
	os.Rename(rf.Root, rf.Root+".real")
	os.Symlink(rf.Root+".real", rf.Root)
	_, err = EnsureRootfs(context.Background(), rf.Tree, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "the rootfs directory "+rf.Root+" changed type") || strings.Contains(err.Error(), "from package") {
		t.Errorf("rootfs directory replaced by a symlink:\n%v", err)
	}
}

// TestNoBubblewrapIsOneParagraph: without bwrap on PATH, the toolchain is
// refused up front with the install command, instead of every step failing
// with `exec: "bwrap": executable file not found`.
func TestNoBubblewrapIsOneParagraph(t *testing.T) {
	_, rf := fakeCache(t)
	t.Setenv("PATH", t.TempDir())
	_, err := rf.Toolchain(t.TempDir())
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "apt-get install -y bubblewrap") {
		t.Fatalf("no bwrap: %v", err)
	}
}

// TestCacheDirFromTheEnvironment: a relative FLUID_CACHE_DIR works (it is
// made absolute: bubblewrap needs an absolute rootfs), and one that cannot
// be created is refused naming FLUID_CACHE_DIR.
func TestCacheDirFromTheEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("FLUID_CACHE_DIR", "relative cache")
	if got := CacheRoot(); !filepath.IsAbs(got) || filepath.Base(got) != "relative cache" {
		t.Errorf("CacheRoot() = %q, want an absolute path", got)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	t.Setenv("FLUID_CACHE_DIR", filepath.Join(notDir, "cache"))
	lt := &LockedTree{LockSHA256: strings.Repeat("a", 64)}
	_, err := EnsureRootfs(context.Background(), lt, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "point FLUID_CACHE_DIR at a writable directory") {
		t.Fatalf("uncreatable cache dir: %v", err)
	}
}
