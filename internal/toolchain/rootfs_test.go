package toolchain

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/testutil"
)

// committedLock is the repository root and the toolchain definition and
// lock committed there.
func committedLock(t *testing.T) (string, *LockedTree) {
	t.Helper()
	root := testutil.Root(t)
	lt, err := ReadLock(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, lt
}

// TestLockAgreesWithDefinition: the committed lock was made from the
// committed definition and keyring, pins LLVM 18.1.x and every included
// package (the OCI digest is checked in internal/toolchain/publish).
// Editing either file alone must fail.
func TestLockAgreesWithDefinition(t *testing.T) {
	root, lt := committedLock(t)
	if !strings.HasPrefix(lt.Lock.LLVMVersion, "18.1.") || lt.Definition.LLVMMajor != PinnedLLVMMajor {
		t.Errorf("lock pins LLVM %s, definition %d; the release pin is %d", lt.Lock.LLVMVersion, lt.Definition.LLVMMajor, PinnedLLVMMajor)
	}
	for _, p := range []string{"libc6", "libstdc++6", "clang-18", "nasm", "libclang-rt-18-dev"} {
		if lt.Lock.Packages[p] == "" {
			t.Errorf("lock pins no version of %s", p)
		}
	}

	// A copy of the three files, then one edit at a time.
	for name, edit := range map[string]func(dir string){
		"definition includes another package": func(dir string) {
			rewrite(t, filepath.Join(dir, DefinitionFile), `"nasm"]`, `"nasm", "bolt-18"]`)
		},
		"lock drops a package the definition includes": func(dir string) {
			rewrite(t, filepath.Join(dir, LockFile), `"nasm": "`, `"nasm-gone": "`)
		},
		"keyring changed": func(dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, lt.Definition.Keyring), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{0})
			f.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{DefinitionFile, LockFile, lt.Definition.Keyring} {
				testutil.CopyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
			}
			if _, err := ReadLock(dir); err != nil {
				t.Fatalf("unedited copy refused: %v", err)
			}
			edit(dir)
			_, err := ReadLock(dir)
			if err == nil || !strings.Contains(err.Error(), "disagrees with the definition") || !strings.Contains(err.Error(), "mage toolchainLock") {
				t.Fatalf("edit accepted or unclear: %v", err)
			}
		})
	}
}

func rewrite(t *testing.T, p, old, new string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s lacks %q; update the test", p, old)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeRootfsTar is a tiny rootfs: a "clang" binary, a symlink to it, the
// dpkg file list that owns it, and a device node (skipped on unpack).
func fakeRootfsTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1730000000, 0)
	add := func(h *tar.Header, body string) {
		h.ModTime = mt
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/bin/clang-18", Typeflag: tar.TypeReg, Mode: 0o755}, "\x7fELF pretend clang 18.1.8\n")
	add(&tar.Header{Name: "./usr/bin/clang", Typeflag: tar.TypeSymlink, Linkname: "clang-18", Mode: 0o777}, "")
	add(&tar.Header{Name: "./var/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./var/lib/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./var/lib/dpkg/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./var/lib/dpkg/info/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./var/lib/dpkg/info/clang-18.list", Typeflag: tar.TypeReg, Mode: 0o644}, "/.\n/usr\n/usr/bin\n/usr/bin/clang-18\n")
	add(&tar.Header{Name: "./var/lib/dpkg/status", Typeflag: tar.TypeReg, Mode: 0o644},
		"Package: clang-18\nStatus: install ok installed\nVersion: 1:18.1.8-18+b1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n")
	add(&tar.Header{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAlteredCacheIsRefused unpacks a rootfs, then changes one byte of its
// "clang" in place — same size, modification time put back — the way a
// stray write or a bad disk would: the check must refuse the cache, name
// the file and its package, and say how to recreate it. A cache that was
// left alone passes, and the device node was not unpacked.
func TestAlteredCacheIsRefused(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(tarball, fakeRootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	rf := &Rootfs{Tree: &LockedTree{}, Dir: dir, Root: filepath.Join(dir, "rootfs")}
	if err := rf.unpack(tarball); err != nil {
		t.Fatal(err)
	}
	if err := rf.check(); err != nil {
		t.Fatalf("untouched cache refused: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(rf.Root, "dev/null")); err == nil {
		t.Error("a device node was unpacked")
	}
	sum, err := rf.FileSHA256("/usr/bin/clang") // through the symlink
	if err != nil || len(sum) != 64 {
		t.Fatalf("FileSHA256 through a symlink: %q %v", sum, err)
	}
	pkgs, err := TarballPackages(tarball)
	if err != nil || len(pkgs) != 1 || pkgs["clang-18"] != "1:18.1.8-18+b1" {
		t.Errorf("TarballPackages = %v, %v (only installed packages)", pkgs, err)
	}

	clang := filepath.Join(rf.Root, "usr/bin/clang-18")
	st, _ := os.Stat(clang)
	data, _ := os.ReadFile(clang)
	data[5] ^= 0x20
	if err := os.WriteFile(clang, data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(clang, st.ModTime(), st.ModTime())
	err = rf.check()
	if !errors.Is(err, ErrRootfs) {
		t.Fatalf("altered clang accepted: %v", err)
	}
	for _, want := range []string{"/usr/bin/clang-18 changed content", "from package clang-18", "rm -rf " + dir, "No build step ran"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}

	// An added file is named too.
	data[5] ^= 0x20
	os.WriteFile(clang, data, 0o755)
	os.WriteFile(filepath.Join(rf.Root, "usr/bin/intruder"), []byte("x"), 0o755)
	if err := rf.check(); err == nil || !strings.Contains(err.Error(), "/usr/bin/intruder was added") {
		t.Errorf("added file: %v", err)
	}
}

// TestAlteredToolchainStopsTheBuildFirst goes through FindIn, the entry
// every build takes: a tree whose lock names a prepared cache, then one
// byte of that cache's clang changed. FindIn must refuse before returning
// a toolchain, so no step can run.
func TestAlteredToolchainStopsTheBuildFirst(t *testing.T) {
	lt, rf := fakeCache(t) // a finished cache for a copy of the tree's lock
	tree := lt.Root
	if _, err := FindIn(tree); errors.Is(err, ErrRootfs) && strings.Contains(err.Error(), "altered") {
		t.Fatalf("untouched cache refused: %v", err)
	}
	clang := filepath.Join(rf.Root, "usr/bin/clang-18")
	data, _ := os.ReadFile(clang)
	data[len(data)-2] ^= 1
	os.WriteFile(clang, data, 0o755)
	tc, err := FindIn(tree)
	if tc != nil || !errors.Is(err, ErrRootfs) || !strings.Contains(err.Error(), "/usr/bin/clang-18 changed content") {
		t.Fatalf("FindIn with an altered clang: %v, %v", tc, err)
	}
}

// TestCreationMatchesTheLock creates the rootfs tarball from the lock with
// mmdebstrap in a fresh directory, at another time than the cache's
// creation, and checks it is byte for byte the tarball the lock records
// (internal/toolchain/publish checks that it is the OCI image the lock
// records). It needs the Debian archive.
func TestCreationMatchesTheLock(t *testing.T) {
	testutil.Long(t, "runs mmdebstrap (about a minute)")
	root := testutil.Root(t)
	lt, err := ReadLock(root)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "elsewhere", "rootfs.tar")
	os.MkdirAll(filepath.Dir(out), 0o755)
	start := time.Now()
	if err := CreateTarball(context.Background(), lt, lt.Lock.IncludeArgs(), out, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Logf("mmdebstrap: %s", time.Since(start).Round(time.Second))
	if err := checkTarball(out, lt.Lock.Rootfs); err != nil {
		t.Fatalf("%v\n%s", err, diagnoseTarball(out, lt.Lock))
	}
}

// TestLockEncodingIsStable: Encode of a decoded lock gives the file's bytes
// (so the lock's hash, the cache key, does not depend on who wrote it).
func TestLockEncodingIsStable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.Root(t), LockFile))
	if err != nil {
		t.Fatal(err)
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	again, err := l.Encode()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoded lock differs from %s", LockFile)
	}
	if d := DiffLocks(l, l); len(d) != 0 {
		t.Errorf("DiffLocks(l, l) = %v", d)
	}
	l2 := l
	l2.Packages = map[string]string{}
	for k, v := range l.Packages {
		l2.Packages[k] = v
	}
	l2.Packages["nasm"] = "9.9"
	delete(l2.Packages, "sed")
	got := strings.Join(DiffLocks(l, l2), "\n")
	if !strings.Contains(got, "~ nasm "+l.Packages["nasm"]+" -> 9.9") || !strings.Contains(got, "- sed ") {
		t.Errorf("DiffLocks:\n%s", got)
	}
}
