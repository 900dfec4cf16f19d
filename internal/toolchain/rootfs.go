package toolchain

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/container"
	"github.com/fluid-os/fluid/internal/fileutil"
)

// The rootfs cache. One directory per lock (keyed by the lock file's hash),
// under $FLUID_CACHE_DIR/toolchain or the user cache dir's fluid-os/toolchain:
//
//	<key>/rootfs.tar   the tarball mmdebstrap made, as the lock records it
//	<key>/rootfs/      the tarball unpacked: bubblewrap's "/"
//	<key>/files.txt    one line per file of rootfs/: type, mode, size,
//	                   SHA-256, and the stat facts (mtime, ctime, inode)
//	                   that let a check skip rehashing unchanged files
//	<key>/tools.txt    what each tool said about its version
//	<key>/ready        written last; without it the directory is unfinished.
//	                   The lock's SHA-256, then "files.txt <sha256>" and
//	                   "tools.txt <sha256>" (a first-format ready has the
//	                   lock's line only)
//
// Invariant: when ready exists, rootfs/ was unpacked from a tarball whose
// SHA-256 and size equal the lock's, and files.txt describes every file in
// it. checkReady re-establishes "the records are the ones written then" (two
// hashes of small files) and check "rootfs/ still matches files.txt"
// cheaply (a stat per file, a hash only where the stat facts moved).

// EnvMirror overrides the archive the rootfs is created from, e.g. a
// snapshot.debian.org URL for the lock's date. The rootfs's own
// sources.list always names the definition's mirror, so the tarball is the
// same whichever mirror served the packages.
const EnvMirror = "FLUID_TOOLCHAIN_MIRROR"

// CacheRoot is $FLUID_CACHE_DIR, else <user cache dir>/fluid-os.
// A relative FLUID_CACHE_DIR is taken relative to the working directory
// (bubblewrap needs an absolute rootfs).
func CacheRoot() string {
	if d := os.Getenv("FLUID_CACHE_DIR"); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "fluid-os-cache")
	}
	return filepath.Join(d, "fluid-os")
}

// CacheDir is where the rootfs of this lock is kept.
func (lt *LockedTree) CacheDir() string {
	root := lt.cacheRoot
	if root == "" {
		root = CacheRoot()
	}
	return filepath.Join(root, "toolchain", lt.LockSHA256[:16])
}

// Rootfs is an unpacked toolchain rootfs that matched its lock when checked.
type Rootfs struct {
	Tree  *LockedTree
	Dir   string // the cache directory
	Root  string // Dir/rootfs: what bubblewrap binds at /
	files map[string]fileRecord
}

// ErrRootfs is wrapped by every refusal of a rootfs (archive moved past the
// lock, cache altered, tools missing).
var ErrRootfs = errors.New("toolchain rootfs refused")

// EnsureRootfs returns the verified rootfs of the lock, creating the
// tarball with mmdebstrap and unpacking it when the cache lacks it. A
// cache that no longer matches its record is refused (never silently
// repaired: something changed files that every build trusts).
func EnsureRootfs(ctx context.Context, lt *LockedTree, log io.Writer) (*Rootfs, error) {
	dir := lt.CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: the toolchain cache directory %s cannot be created (%v). It is $FLUID_CACHE_DIR/toolchain/<lock hash>, or under the user cache directory when FLUID_CACHE_DIR is unset: point FLUID_CACHE_DIR at a writable directory",
			ErrRootfs, dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rf := &Rootfs{Tree: lt, Dir: dir, Root: filepath.Join(dir, "rootfs")}
	if fileExists(filepath.Join(dir, "ready")) {
		if err := rf.checkReady(); err != nil {
			return nil, err
		}
		if err := rf.check(); err != nil {
			return nil, err
		}
		return rf, nil
	}
	if err := needBwrap(); err != nil {
		return nil, err
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if err := checkTarball(tarball, lt.Lock.Rootfs); err != nil {
		start := time.Now()
		fmt.Fprintf(log, "toolchain: creating the LLVM %s rootfs from %s with mmdebstrap (once per lock; about a minute)\n", lt.Lock.LLVMVersion, LockFile)
		if err := CreateTarball(ctx, lt, lt.Lock.IncludeArgs(), tarball, log); err != nil {
			return nil, err
		}
		if err := checkTarball(tarball, lt.Lock.Rootfs); err != nil {
			diag := diagnoseTarball(tarball, lt.Lock)
			bad := tarball + ".mismatch"
			_ = os.Rename(tarball, bad)
			return nil, fmt.Errorf("%w: mmdebstrap made a rootfs tarball that is not the one %s records (%v). %s The tarball is kept as %s for inspection",
				ErrRootfs, LockFile, err, diag, bad)
		}
		fmt.Fprintf(log, "toolchain: rootfs tarball matches the lock (%s, %d MB, %.0fs)\n", short(lt.Lock.Rootfs.SHA256), lt.Lock.Rootfs.Size>>20, time.Since(start).Seconds())
	}
	if err := rf.unpack(tarball); err != nil {
		return nil, err
	}
	if err := rf.probeTools(ctx); err != nil {
		return nil, err
	}
	if err := rf.writeReady(); err != nil {
		return nil, err
	}
	return rf, nil
}

// writeReady marks the cache finished: the lock's SHA-256, then the
// SHA-256 of each record.
func (rf *Rootfs) writeReady() error {
	ready := rf.Tree.LockSHA256 + "\n"
	for _, f := range readyRecords {
		sum, err := fileutil.SHA256(filepath.Join(rf.Dir, f))
		if err != nil {
			return err
		}
		ready += f + " " + sum + "\n"
	}
	return atomicfile.WriteFile(filepath.Join(rf.Dir, "ready"), []byte(ready), 0o644)
}

// readyRecords are the files of the cache directory whose SHA-256 ready
// holds (after the lock's): the file record the check trusts and the tool
// versions every manifest records. A truncated or edited record would
// otherwise pass (the check can only compare the tree with what the record
// still says).
var readyRecords = []string{"files.txt", "tools.txt"}

// checkReady compares ready with the lock and the records. A ready file
// of the first format (the lock's SHA-256 alone) carries no record hashes;
// such a cache is checked against its record as it stands.
func (rf *Rootfs) checkReady() error {
	data, err := os.ReadFile(filepath.Join(rf.Dir, "ready"))
	if err != nil {
		return rf.altered([]string{fmt.Sprintf("its ready file is unreadable (%v)", err)})
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if lines[0] != rf.Tree.LockSHA256 {
		return rf.altered([]string{fmt.Sprintf("its ready file names the lock %s, not this one (%s)", short(lines[0]), short(rf.Tree.LockSHA256))})
	}
	var bad []string
	for _, l := range lines[1:] {
		name, want, ok := strings.Cut(l, " ")
		if !ok || !slices.Contains(readyRecords, name) || !hex64RE.MatchString(want) {
			return rf.altered([]string{fmt.Sprintf("its ready file has a malformed line %q", l)})
		}
		got, err := fileutil.SHA256(filepath.Join(rf.Dir, name))
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("its record %s is unreadable (%v)", name, err))
		case got != want:
			bad = append(bad, fmt.Sprintf("its record %s changed (SHA-256 %s, %s when the cache was made)", name, short(got), short(want)))
		}
	}
	if len(bad) > 0 {
		return rf.altered(bad)
	}
	return nil
}

// needBwrap refuses, in one paragraph, a host without bubblewrap: every
// step would fail on its own otherwise.
func needBwrap() error {
	if _, err := exec.LookPath(container.Bwrap); err != nil {
		return fmt.Errorf("%w: build steps run in the locked rootfs through bubblewrap, and bwrap is not on PATH. Run `go tool mage deps` (as root it installs it with apt), or: sudo apt-get install -y bubblewrap (%s=host builds with the host's LLVM instead, never for releases)",
			ErrMissing, EnvMode)
	}
	return nil
}

// lockDir serializes creators of one cache directory (parallel test
// packages, two terminals).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("toolchain cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("toolchain cache lock %s: %w", f.Name(), err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// MmdebstrapArgs is the mmdebstrap command line that creates the rootfs
// tarball at out with the given package requests (name or name=version).
// The hook makes the files mmdebstrap would copy from the host (hostname,
// resolv.conf) and the sources list the same on every machine.
func MmdebstrapArgs(lt *LockedTree, include []string, out string) []string {
	d := lt.Definition
	mirror := d.Mirror
	if m := os.Getenv(EnvMirror); m != "" {
		mirror = m
	}
	hook := fmt.Sprintf(`printf 'fluid-toolchain\n' > "$1/etc/hostname"; : > "$1/etc/resolv.conf"; printf 'deb %s %s main\n' > "$1/etc/apt/sources.list"`, d.Mirror, d.Suite)
	return []string{"mmdebstrap",
		"--variant=" + d.Variant,
		"--format=tar",
		"--architectures=" + d.Architecture,
		"--keyring=" + filepath.Join(lt.Root, d.Keyring),
		"--aptopt=Acquire::Languages \"none\"",
		"--include=" + strings.Join(include, ","),
		"--customize-hook=" + hook,
		d.Suite, out, mirror,
	}
}

// CreateTarball runs mmdebstrap and leaves the tarball at out (atomically:
// a failed run leaves nothing there).
func CreateTarball(ctx context.Context, lt *LockedTree, include []string, out string, log io.Writer) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("%w: creating the toolchain rootfs needs mmdebstrap (and bubblewrap to run it), which are not installed. Run `go tool mage deps` (as root it installs them with apt), or: sudo apt-get install -y mmdebstrap bubblewrap", ErrMissing)
	}
	tmp := strings.TrimSuffix(out, ".tar") + ".partial.tar"
	_ = os.Remove(tmp)
	argv := MmdebstrapArgs(lt, include, tmp)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(lt.Definition.SourceDateEpoch, 10), "LC_ALL=C.UTF-8", "TZ=UTC")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return explainMmdebstrap(lt, err, buf.String())
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("toolchain rootfs: %w", err)
	}
	return nil
}

var aptVersionNotFound = regexp.MustCompile(`Version '([^']+)' for '([^']+)' was not found`)

// explainMmdebstrap turns a failed mmdebstrap run into one paragraph.
func explainMmdebstrap(lt *LockedTree, err error, out string) error {
	tail := lastLines(out, 12)
	if m := aptVersionNotFound.FindAllStringSubmatch(out, -1); len(m) > 0 {
		var gone []string
		for _, x := range m {
			gone = append(gone, x[2]+" "+x[1])
		}
		return fmt.Errorf("%w: the archive %s no longer has the versions %s pins (%s): Debian has moved past the lock. Either create the rootfs from Debian's snapshot archive as it was when the lock was made — %s=http://snapshot.debian.org/archive/debian/<YYYYMMDDT000000Z>/ go tool mage deps (any date at which those versions were current) — or move the toolchain: `go tool mage toolchainLock` resolves %s against today's archive and prints what changed; commit it and re-capture profiles/.\nmmdebstrap said:\n%s",
			ErrRootfs, lt.Definition.Mirror, LockFile, strings.Join(gone, ", "), EnvMirror, DefinitionFile, tail)
	}
	return fmt.Errorf("%w: mmdebstrap failed (%v) creating the rootfs of %s; is the archive %s reachable? Its last lines:\n%s", ErrRootfs, err, LockFile, lt.Definition.Mirror, tail)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkTarball compares a tarball's size and SHA-256 with the lock's.
func checkTarball(p string, want TarballLock) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.Size() != want.Size {
		return fmt.Errorf("%s is %d bytes, the lock says %d", p, st.Size(), want.Size)
	}
	got, err := fileutil.SHA256(p)
	if err != nil {
		return err
	}
	if got != want.SHA256 {
		return fmt.Errorf("%s has SHA-256 %s, the lock says %s", p, got, want.SHA256)
	}
	return nil
}

// diagnoseTarball says which packages differ between a tarball and the lock.
func diagnoseTarball(tarball string, l Lock) string {
	got, err := TarballPackages(tarball)
	if err != nil {
		return fmt.Sprintf("Its package list could not be read (%v).", err)
	}
	diff := DiffLocks(l, Lock{Packages: got, Rootfs: l.Rootfs, OCI: l.OCI, LLVMVersion: l.LLVMVersion})
	if len(diff) == 0 {
		return fmt.Sprintf("Every package has its locked version, so the bytes differ for another reason: most likely a different mmdebstrap (the lock was made with %s; this machine has %s). Use that mmdebstrap, or regenerate the lock with `go tool mage toolchainLock`.", l.Mmdebstrap, MmdebstrapVersion())
	}
	return fmt.Sprintf("These packages differ from the lock (- locked, + got): %s. The archive has moved past the lock: use Debian's snapshot archive for the lock's date (%s=http://snapshot.debian.org/archive/debian/<date>/), or move the toolchain with `go tool mage toolchainLock`.", strings.Join(diff, "; "), EnvMirror)
}

// MmdebstrapVersion is what `mmdebstrap --version` prints, or "".
func MmdebstrapVersion() string {
	out, err := exec.Command("mmdebstrap", "--version").Output()
	if err != nil {
		return ""
	}
	return firstLine(string(out))
}

// TarballPackages reads dpkg's status file out of a rootfs tarball.
func TarballPackages(tarball string) (map[string]string, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s holds no var/lib/dpkg/status", tarball)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", tarball, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) == "var/lib/dpkg/status" {
			return parseDpkgStatus(tr)
		}
	}
}

// parseDpkgStatus maps installed packages to versions.
func parseDpkgStatus(r io.Reader) (map[string]string, error) {
	pkgs := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var name, version, status string
	flush := func() {
		if name != "" && version != "" && strings.HasSuffix(status, " installed") {
			pkgs[name] = version
		}
		name, version, status = "", "", ""
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			name = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Version: "):
			version = strings.TrimPrefix(line, "Version: ")
		case strings.HasPrefix(line, "Status: "):
			status = strings.TrimPrefix(line, "Status: ")
		}
	}
	flush()
	return pkgs, sc.Err()
}

// mountPoints are the directories unpack adds to the tarball's tree.
var mountPoints = []string{"src", "out"}

// fileRecord is one line of files.txt.
type fileRecord struct {
	typ   byte // f file, l symlink, d directory
	mode  fs.FileMode
	size  int64
	sum   string // SHA-256 of the content (files) or the link target (links)
	mtime int64
	ctime int64
	ino   uint64
	name  string // relative to rootfs/, slash-separated
}

func (r fileRecord) String() string {
	return fmt.Sprintf("%c %o %d %s %d %d %d %s", r.typ, r.mode.Perm()|r.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), r.size, r.sum, r.mtime, r.ctime, r.ino, r.name)
}

// unixMode is a mode as chmod spells it (04755, not Go's set-id bits).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// unpack extracts the tarball into Dir/rootfs and writes files.txt.
func (rf *Rootfs) unpack(tarball string) error {
	tmp := rf.Root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	_ = os.RemoveAll(rf.Root) // a stale, unfinished unpack
	if err := extract(tarball, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("toolchain: unpack %s: %w", tarball, err)
	}
	// The mount points bubblewrap binds the tree and the output directory
	// on (the root is read-only, so they must exist beforehand).
	for _, d := range mountPoints {
		p := filepath.Join(tmp, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil { // whatever the umask
			return err
		}
	}
	if err := os.Rename(tmp, rf.Root); err != nil {
		return err
	}
	recs, err := recordTree(rf.Root)
	if err != nil {
		return fmt.Errorf("toolchain: record %s: %w", rf.Root, err)
	}
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	rf.files = map[string]fileRecord{}
	for _, r := range recs {
		rf.files[r.name] = r
	}
	return atomicfile.WriteFile(filepath.Join(rf.Dir, "files.txt"), []byte(b.String()), 0o644)
}

// extract unpacks regular files, directories, symlinks and hard links;
// device nodes are skipped (bubblewrap gives each step its own /dev).
//
// Nothing it does may reach outside dst, whatever the tarball holds: names
// with ".." or a leading "/" are refused, and every entry's parent must be
// a directory extract itself made, so a symlink in the tarball (a -> /etc)
// is never followed by a later entry (a/passwd, a/, a hard link to
// a/shadow). A file cannot hold more bytes than the tarball (a sparse
// entry that would fill the disk is refused). Set-id bits of files are
// dropped: the sandbox mounts the rootfs nosuid anyway.
func extract(tarball, dst string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	budget := st.Size()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	root := os.Geteuid() == 0
	type dirMeta struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	// made holds the directories extract created (or found as real
	// directories): the only places an entry may be put.
	made := map[string]bool{".": true}
	host := func(name string) string {
		if name == "." {
			return dst
		}
		return filepath.Join(dst, filepath.FromSlash(name))
	}
	// dirOK checks that name is a directory extract made; with create, it
	// makes name and its missing parents (0755 until the modes are set).
	var dirOK func(name string, create bool) error
	dirOK = func(name string, create bool) error {
		if made[name] {
			return nil
		}
		if err := dirOK(path.Dir(name), create); err != nil {
			return err
		}
		var st unix.Stat_t
		switch err := unix.Lstat(host(name), &st); {
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		case errors.Is(err, unix.ENOENT) && create:
			if err := os.Mkdir(host(name), 0o755); err != nil {
				return err
			}
		case err == nil:
			return fmt.Errorf("/%s is not a directory of the rootfs (a symlink or file in the tarball that a later entry would go through)", name)
		default:
			return fmt.Errorf("/%s: %w", name, err)
		}
		made[name] = true
		return nil
	}
	clean := func(n string) (string, error) {
		name := path.Clean(strings.TrimPrefix(n, "./"))
		if name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) || strings.ContainsRune(name, 0) {
			return "", fmt.Errorf("%q leaves the rootfs", n)
		}
		return name, nil
	}
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name, err := clean(h.Name)
		if err != nil {
			return fmt.Errorf("entry %w", err)
		}
		mode := fs.FileMode(h.Mode).Perm()
		if h.Mode&04000 != 0 {
			mode |= fs.ModeSetuid
		}
		if h.Mode&02000 != 0 {
			mode |= fs.ModeSetgid
		}
		if h.Mode&01000 != 0 {
			mode |= fs.ModeSticky
		}
		if name == "." {
			if h.Typeflag != tar.TypeDir {
				return fmt.Errorf("entry %q: the rootfs itself must be a directory", h.Name)
			}
			dirs = append(dirs, dirMeta{dst, mode, h.ModTime})
			continue
		}
		if err := dirOK(path.Dir(name), true); err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		p := host(name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := dirOK(name, true); err != nil {
				return fmt.Errorf("entry %q: %w", h.Name, err)
			}
			dirs = append(dirs, dirMeta{p, mode, h.ModTime})
		case tar.TypeReg:
			// No set-id files: bubblewrap mounts the rootfs nosuid, so
			// the bits would only ever work on the host, where a
			// set-uid-root su from the cache (unpacked as root) is a
			// stale copy outside the host's package manager.
			mode &^= fs.ModeSetuid | fs.ModeSetgid
			if budget -= h.Size; h.Size < 0 || budget < 0 {
				return fmt.Errorf("entry %q claims %d bytes, more than the tarball holds (a sparse file?)", h.Name, h.Size)
			}
			w, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, tr); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
			if root {
				_ = os.Lchown(p, h.Uid, h.Gid)
			}
			if err := os.Chtimes(p, h.ModTime, h.ModTime); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
			if root {
				_ = os.Lchown(p, h.Uid, h.Gid)
			}
		case tar.TypeLink:
			target, err := clean(h.Linkname)
			if err != nil {
				return fmt.Errorf("hard link %q to %w", h.Name, err)
			}
			if err := dirOK(path.Dir(target), false); err != nil {
				return fmt.Errorf("hard link %q to %q: %w", h.Name, h.Linkname, err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(host(target), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				return fmt.Errorf("hard link %q: %q is not a file unpacked before it", h.Name, h.Linkname)
			}
			if err := os.Link(host(target), p); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			// skipped: see above
		default:
			return fmt.Errorf("entry %q has unsupported type %q", h.Name, h.Typeflag)
		}
	}
	// Directory modes and times last, deepest first, so a read-only
	// directory does not stop its own unpacking.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].path) > len(dirs[j].path) })
	for _, d := range dirs {
		if root {
			_ = os.Chmod(d.path, d.mode)
		} else {
			_ = os.Chmod(d.path, d.mode|0o700)
		}
		_ = os.Chtimes(d.path, d.mtime, d.mtime)
	}
	return nil
}

// recordTree hashes every file under dir and notes its stat facts.
func recordTree(dir string) ([]fileRecord, error) {
	var recs []fileRecord
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p) // "." for the root itself
		r, err := statRecord(p, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		switch r.typ {
		case 'f':
			if r.sum, err = fileutil.SHA256(p); err != nil {
				return err
			}
		case 'l':
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			r.sum = sha256Hex([]byte(t))
		}
		recs = append(recs, r)
		return nil
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].name < recs[j].name })
	return recs, err
}

// statRecord is a fileRecord without the hash.
func statRecord(p, name string) (fileRecord, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fileRecord{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return recordOf(&st, p, name)
}

// recordOf turns a raw stat into a fileRecord (no hash).
func recordOf(st *unix.Stat_t, p, name string) (fileRecord, error) {
	r := fileRecord{name: name, mode: fs.FileMode(st.Mode & 0o777), size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino}
	if st.Mode&unix.S_ISUID != 0 {
		r.mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		r.mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		r.mode |= fs.ModeSticky
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		r.typ = 'f'
	case unix.S_IFLNK:
		r.typ = 'l'
		r.mode = 0o777
	case unix.S_IFDIR:
		r.typ = 'd'
		r.size = 0
	default:
		return r, fmt.Errorf("%s is neither a file, a link nor a directory", p)
	}
	return r, nil
}

// readRecords parses files.txt (in its order: sorted by name).
func readRecords(p string) (map[string]fileRecord, []string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	recs := make(map[string]fileRecord, 12000)
	order := make([]string, 0, 12000)
	text := string(data)
	for n := 1; len(text) > 0; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		var f [8]string
		for i := 0; i < 7; i++ {
			f[i], line, _ = strings.Cut(line, " ")
		}
		f[7] = line
		mode, err1 := strconv.ParseUint(f[1], 8, 32)
		size, err2 := strconv.ParseInt(f[2], 10, 64)
		mt, err3 := strconv.ParseInt(f[4], 10, 64)
		ct, err4 := strconv.ParseInt(f[5], 10, 64)
		ino, err5 := strconv.ParseUint(f[6], 10, 64)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil || len(f[0]) != 1 || f[7] == "" {
			return nil, nil, fmt.Errorf("%s:%d: malformed line", p, n)
		}
		recs[f[7]] = fileRecord{typ: f[0][0], mode: fs.FileMode(mode), size: size, sum: f[3], mtime: mt, ctime: ct, ino: ino, name: f[7]}
		order = append(order, f[7])
	}
	return recs, order, nil
}

// check compares rootfs/ with files.txt: every recorded entry still exists
// with its type, mode and size, and where its mtime, ctime or inode moved
// its content still hashes to the record. Additions are found through the
// directories: adding, removing or renaming an entry changes its
// directory's mtime and ctime, so only directories whose stat facts moved
// are listed. The first differences are named, with their packages.
//
// It stats each of the ~10,000 entries once, spread over a few goroutines:
// this runs before every build, so it must cost a few milliseconds.
func (rf *Rootfs) check() error {
	recs, names, err := readRecords(filepath.Join(rf.Dir, "files.txt"))
	if err != nil {
		return rf.altered([]string{fmt.Sprintf("its file record is unreadable (%v)", err)})
	}
	// Each worker takes whole directories (by a hash of the parent's
	// name) and stats their entries relative to one open descriptor of
	// the directory, so the kernel resolves a short name, not a path.
	workers := runtime.NumCPU()
	results := make([][]string, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			dirs := map[string]int{}
			defer func() {
				for _, fd := range dirs {
					unix.Close(fd)
				}
			}()
			for _, name := range names {
				parent, base := path.Split(name)
				if crc32.ChecksumIEEE([]byte(parent))%uint32(workers) != uint32(w) {
					continue
				}
				if msg := rf.checkEntry(recs, recs[name], dirs, parent, base); msg != "" {
					results[w] = append(results[w], msg)
				}
			}
		}(w)
	}
	wg.Wait()
	var bad []string
	for _, r := range results {
		bad = append(bad, r...)
	}
	if _, ok := recs["."]; !ok {
		// A record of the first format has no line for the root
		// directory: list it, so an addition there is still found.
		if msg := rf.additions(recs, "."); msg != "" {
			bad = append(bad, msg)
		}
	}
	if len(bad) > 0 {
		return rf.altered(bad)
	}
	rf.files = recs
	return nil
}

// checkEntry checks one recorded entry; "" when it is as recorded.
func (rf *Rootfs) checkEntry(recs map[string]fileRecord, r fileRecord, dirs map[string]int, parent, base string) string {
	name := r.name
	p := rf.Root
	if name != "." {
		p = filepath.Join(rf.Root, filepath.FromSlash(name))
	}
	var got fileRecord
	var err error
	fd, ok := dirs[parent]
	if !ok && name != "." {
		fd, err = unix.Open(filepath.Join(rf.Root, filepath.FromSlash(parent)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fd = -1
		}
		dirs[parent] = fd
	}
	if name == "." || fd < 0 {
		got, err = statRecord(p, name)
	} else {
		var st unix.Stat_t
		if err = unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			got, err = recordOf(&st, p, name)
		}
	}
	shown := "/" + name
	if name == "." {
		shown = "the rootfs directory " + rf.Root
	}
	switch {
	case err != nil:
		return fmt.Sprintf("%s is missing", shown)
	case got.typ != r.typ:
		return fmt.Sprintf("%s changed type", shown)
	case got.typ != 'l' && got.mode != r.mode:
		return fmt.Sprintf("%s changed mode %04o -> %04o", shown, unixMode(r.mode), unixMode(got.mode))
	case got.size != r.size:
		return fmt.Sprintf("%s changed size %d -> %d", shown, r.size, got.size)
	case got.mtime == r.mtime && got.ctime == r.ctime && got.ino == r.ino:
		return ""
	}
	switch r.typ {
	case 'f':
		sum, err := fileutil.SHA256(p)
		if err != nil || sum != r.sum {
			return fmt.Sprintf("%s changed content (SHA-256 %s, recorded %s)", shown, short(sum), short(r.sum))
		}
	case 'l':
		t, _ := os.Readlink(p)
		if sha256Hex([]byte(t)) != r.sum {
			return fmt.Sprintf("%s points elsewhere (%s)", shown, t)
		}
	case 'd':
		return rf.additions(recs, name)
	}
	return ""
}

// additions names the entries of the directory name that the record lacks.
func (rf *Rootfs) additions(recs map[string]fileRecord, name string) string {
	p := rf.Root
	if name != "." {
		p = filepath.Join(rf.Root, filepath.FromSlash(name))
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return fmt.Sprintf("/%s cannot be listed (%v)", name, err)
	}
	var added []string
	for _, e := range ents {
		child := e.Name()
		if name != "." {
			child = name + "/" + child
		}
		if _, ok := recs[child]; !ok {
			added = append(added, "/"+child+" was added")
		}
	}
	return strings.Join(added, "; ")
}

// altered is the refusal of a cache that no longer matches its record.
func (rf *Rootfs) altered(bad []string) error {
	sort.Strings(bad)
	more := ""
	if len(bad) > 5 {
		more = fmt.Sprintf(" and %d more", len(bad)-5)
		bad = bad[:5]
	}
	owners := rf.owners(bad)
	return fmt.Errorf("%w: the cached toolchain in %s was altered after it was unpacked from the tarball %s records: %s%s%s. No build step ran. Nothing in the lock or the archive is at fault: recreate the cache with `rm -rf %s && go tool mage deps` (it unpacks the tarball again, or recreates it with mmdebstrap)",
		ErrRootfs, rf.Root, LockFile, strings.Join(bad, "; "), more, owners, rf.Dir)
}

// owners names the packages whose files are among the complaints.
func (rf *Rootfs) owners(bad []string) string {
	// Directories are shared by many packages (every package with a
	// program lists /usr/bin): only files and links name their owner.
	var paths []string
	for _, b := range bad {
		f := strings.Fields(b)
		if len(f) == 0 || !strings.HasPrefix(f[0], "/") {
			continue
		}
		if st, err := os.Lstat(rf.HostPath(f[0])); err == nil && st.IsDir() {
			continue
		}
		paths = append(paths, f[0])
	}
	if len(paths) == 0 {
		return ""
	}
	lists, _ := filepath.Glob(filepath.Join(rf.Root, "var/lib/dpkg/info/*.list"))
	found := map[string]bool{}
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, p := range paths {
			if bytes.Contains(data, []byte("\n"+p+"\n")) || bytes.HasPrefix(data, []byte(p+"\n")) {
				found[strings.SplitN(strings.TrimSuffix(filepath.Base(l), ".list"), ":", 2)[0]] = true
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(found))
	return fmt.Sprintf(" (from package %s)", strings.Join(names, ", "))
}

// HostPath maps a path as a step sees it inside the rootfs to the host.
func (rf *Rootfs) HostPath(p string) string {
	return filepath.Join(rf.Root, filepath.FromSlash(strings.TrimPrefix(p, "/")))
}

// resolve follows symlinks inside the rootfs (absolute targets are taken
// relative to it) and returns the rootfs-relative path of the file.
func (rf *Rootfs) resolve(p string) (string, error) {
	cur := strings.TrimPrefix(path.Clean(p), "/")
	for hops := 0; hops < 40; hops++ {
		// Resolve the first symlink among cur's components.
		parts := strings.Split(cur, "/")
		changed := false
		for i := range parts {
			prefix := strings.Join(parts[:i+1], "/")
			t, err := os.Readlink(filepath.Join(rf.Root, filepath.FromSlash(prefix)))
			if err != nil {
				continue
			}
			var next string
			if path.IsAbs(t) {
				next = strings.TrimPrefix(path.Clean(t), "/")
			} else {
				next = path.Clean(path.Join(path.Dir(prefix), t))
			}
			cur = path.Clean(path.Join(append([]string{next}, parts[i+1:]...)...))
			changed = true
			break
		}
		if !changed {
			return cur, nil
		}
	}
	return "", fmt.Errorf("%s: too many symlinks in the rootfs", p)
}

// FileSHA256 is the recorded SHA-256 of the file a rootfs path resolves to.
func (rf *Rootfs) FileSHA256(p string) (string, error) {
	rel, err := rf.resolve(p)
	if err != nil {
		return "", err
	}
	if r, ok := rf.files[rel]; ok && r.typ == 'f' {
		return r.sum, nil
	}
	return "", fmt.Errorf("%s (%s) is not a file of the toolchain rootfs", p, rel)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
