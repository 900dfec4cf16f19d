package toolchain

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tarOf is a tarball of the given headers (bodies from Linkname for
// regular files whose Size is set: the body is strings.Repeat("x", Size)).
func tarOf(t *testing.T, hs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hs {
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1730000000, 0)
		}
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestExtractStaysInside: hostile tarballs must never make extract write,
// create, link or chmod anything outside the destination. Each case gets
// an "outside" directory next to the destination (holding a file "secret"),
// and a sentinel check afterwards that nothing there changed.
func TestExtractStaysInside(t *testing.T) {
	for _, c := range []struct {
		name string
		hs   func(outside string) []*tar.Header
	}{
		{"dot-dot name", func(string) []*tar.Header {
			return []*tar.Header{{Name: "./../outside/pwned", Typeflag: tar.TypeReg, Size: 3}}
		}},
		{"dot-dot directory itself", func(string) []*tar.Header {
			// path.Clean("./..") is "..", which has no "../" prefix.
			return []*tar.Header{{Name: "./..", Typeflag: tar.TypeDir, Mode: 0o777}}
		}},
		{"absolute name", func(outside string) []*tar.Header {
			return []*tar.Header{{Name: outside + "/pwned", Typeflag: tar.TypeReg, Size: 3}}
		}},
		{"file through a symlink", func(outside string) []*tar.Header {
			return []*tar.Header{
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "./a/pwned", Typeflag: tar.TypeReg, Size: 3},
			}
		}},
		{"relative symlink then file", func(string) []*tar.Header {
			return []*tar.Header{
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: "../outside"},
				{Name: "./a/pwned", Typeflag: tar.TypeReg, Size: 3},
			}
		}},
		{"directory through a symlink", func(outside string) []*tar.Header {
			return []*tar.Header{
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "./a/newdir/", Typeflag: tar.TypeDir},
			}
		}},
		{"directory entry over a symlink (chmod)", func(outside string) []*tar.Header {
			return []*tar.Header{
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "./a/", Typeflag: tar.TypeDir, Mode: 0o777},
			}
		}},
		{"symlink inside a symlinked dir", func(outside string) []*tar.Header {
			return []*tar.Header{
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "./a/l", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
			}
		}},
		{"hard link to ..", func(string) []*tar.Header {
			return []*tar.Header{{Name: "./h", Typeflag: tar.TypeLink, Linkname: "../outside/secret"}}
		}},
		{"hard link through a symlink", func(outside string) []*tar.Header {
			return []*tar.Header{
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "./h", Typeflag: tar.TypeLink, Linkname: "./a/secret"},
			}
		}},
		{"hard link into a symlinked dir", func(outside string) []*tar.Header {
			return []*tar.Header{
				{Name: "./f", Typeflag: tar.TypeReg, Size: 3},
				{Name: "./a", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "./a/h", Typeflag: tar.TypeLink, Linkname: "./f"},
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			os.Mkdir(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
			before := snapshot(t, base, "rootfs")
			baseSt, _ := os.Stat(base)
			tarball := filepath.Join(t.TempDir(), "rootfs.tar")
			var data []byte
			func() {
				defer func() {
					if r := recover(); r != nil {
						data = nil
					}
				}()
				data = tarOf(t, c.hs(outside)...)
			}()
			if data == nil {
				t.Skip("archive/tar cannot write this header")
			}
			os.WriteFile(tarball, data, 0o644)
			err := extract(tarball, filepath.Join(base, "rootfs"))
			if after := snapshot(t, base, "rootfs"); after != before {
				t.Errorf("extract changed things outside the rootfs:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if st, _ := os.Stat(base); st.Mode() != baseSt.Mode() {
				t.Errorf("extract changed the mode of the rootfs's parent: %v -> %v", baseSt.Mode(), st.Mode())
			}
			if err == nil {
				t.Errorf("hostile tarball accepted")
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
}

// sparseTar is GNU tar's `tar --sparse --format=pax -cf - big` of a
// 1 TiB file of zeros: 10 KiB that unpack to a terabyte.
const sparseTar = "H4sICOnqDGsCA3NwLnRhcgDt1E1OwzAQBWCvc4qcwJnxb7LItnSFkBAHMGChoKZBTipVnB43qzYIugAqVbxv42jGthLZL7K6C/t1DM8xjdVj9yL+AGXOmHnMliNpUoKtJs3OasuCmLx1otyLC9iNU0j5VcT/pFR5c/sgx7eQxij78DqklotFtdvmKhVKH1e3oY9tvjGF9sflFMNm7N5jy9Q0ltkp770rNJX91OUV7BtHVLuapWc2tVW1PnTDpy45lbfwc/fp67UCfkBW+ezu56NbdZso2VjDv/wjOJN/Pjyf5t94q0RJl8x/Gobpu3nn+suPuxJcnOaUkCcAAAAAAAAAAAAAAAAAAACAq/IBR+njCAAoAAA="

// TestExtractRefusesASparseBomb: a file cannot hold more bytes than the
// tarball it came from, so a sparse entry that would fill the disk is
// refused before anything is written.
func TestExtractRefusesASparseBomb(t *testing.T) {
	gz, _ := base64.StdEncoding.DecodeString(sparseTar)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(zr)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(tarball, data, 0o644)
	done := make(chan error, 1)
	go func() { done <- extract(tarball, filepath.Join(t.TempDir(), "rootfs")) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "more than the tarball") {
			t.Fatalf("sparse bomb: err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("extract is writing a terabyte of zeros (a sparse entry larger than the tarball was accepted)")
	}
}

// snapshot lists everything under dir except skip, with modes, link
// counts and contents, so any write, link or chmod shows.
func snapshot(t *testing.T, dir, skip string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == skip {
			return filepath.SkipDir
		}
		if rel == "." {
			return nil // its link count moves with the rootfs; its mode is checked apart
		}
		nlink := uint64(0)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			nlink = uint64(st.Nlink)
		}
		b.WriteString(rel + " " + fi.Mode().String() + " " + strconv.FormatUint(nlink, 10))
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// TestExtractKeepsTheRootsMode: the tarball's "./" entry sets the mode of
// the rootfs directory itself, so the unpacked tree does not depend on the
// umask of whoever ran deps.
func TestExtractKeepsTheRootsMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	tarball := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tarball, fakeRootfsTar(t), 0o644)
	rf := &Rootfs{Tree: &LockedTree{}, Dir: dir, Root: filepath.Join(dir, "rootfs")}
	if err := rf.unpack(tarball); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".", "src", "out", "usr"} {
		st, err := os.Stat(filepath.Join(rf.Root, p))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("/%s: mode %v (err %v) under umask 077, want 0755 as the tarball says", p, st.Mode().Perm(), err)
		}
	}
}

// TestExtractDropsSetIDBits: the sandbox mounts the rootfs nosuid, so a
// set-uid file in the cache could only ever take effect on the host (a
// set-uid-root su, when deps ran as root with the cache in /tmp).
func TestExtractDropsSetIDBits(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tarball, tarOf(t,
		&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "./su", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 3},
		&tar.Header{Name: "./chkpwd", Typeflag: tar.TypeReg, Mode: 0o2755, Size: 3},
		&tar.Header{Name: "./tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	), 0o644)
	root := filepath.Join(dir, "rootfs")
	if err := extract(tarball, root); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"su": 0o755, "chkpwd": 0o755, "tmp": 0o777 | fs.ModeSticky | fs.ModeDir} {
		st, err := os.Lstat(filepath.Join(root, name))
		if err != nil || st.Mode() != want {
			t.Errorf("/%s: mode %v (err %v), want %v", name, st.Mode(), err, want)
		}
	}
}
