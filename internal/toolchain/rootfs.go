package toolchain

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fluid-os/fluid/internal/atomicfile"
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
//	<key>/ready        written last; without it the directory is unfinished
//
// Invariant: when ready exists, rootfs/ was unpacked from a tarball whose
// SHA-256 and size equal the lock's, and files.txt describes every file in
// it. checkRootfs re-establishes "rootfs/ still matches files.txt" cheaply
// (a stat per file, a hash only where the stat facts moved).

// EnvMirror overrides the archive the rootfs is created from, e.g. a
// snapshot.debian.org URL for the lock's date. The rootfs's own
// sources.list always names the definition's mirror, so the tarball is the
// same whichever mirror served the packages.
const EnvMirror = "FLUID_TOOLCHAIN_MIRROR"

// CacheRoot is $FLUID_CACHE_DIR, else <user cache dir>/fluid-os.
func CacheRoot() string {
	if d := os.Getenv("FLUID_CACHE_DIR"); d != "" {
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
		return nil, fmt.Errorf("toolchain cache: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rf := &Rootfs{Tree: lt, Dir: dir, Root: filepath.Join(dir, "rootfs")}
	if fileExists(filepath.Join(dir, "ready")) {
		if err := rf.check(); err != nil {
			return nil, err
		}
		return rf, nil
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
	if err := atomicfile.WriteFile(filepath.Join(dir, "ready"), []byte(lt.LockSHA256+"\n"), 0o644); err != nil {
		return nil, err
	}
	return rf, nil
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
	got, err := hashFile(p)
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
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
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
func extract(tarball, dst string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
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
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || name == "" {
			continue
		}
		if strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return fmt.Errorf("entry %q leaves the rootfs", h.Name)
		}
		p := filepath.Join(dst, filepath.FromSlash(name))
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
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{p, mode, h.ModTime})
		case tar.TypeReg:
			w, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
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
				_ = os.Chmod(p, mode) // chown clears set-id bits
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
			target := path.Clean(strings.TrimPrefix(h.Linkname, "./"))
			if strings.HasPrefix(target, "../") {
				return fmt.Errorf("hard link %q leaves the rootfs", h.Name)
			}
			if err := os.Link(filepath.Join(dst, filepath.FromSlash(target)), p); err != nil {
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
			if r.sum, err = hashFile(p); err != nil {
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
	switch {
	case err != nil:
		return fmt.Sprintf("/%s is missing", name)
	case got.typ != r.typ:
		return fmt.Sprintf("/%s changed type", name)
	case got.typ != 'l' && got.mode != r.mode:
		return fmt.Sprintf("/%s changed mode %o -> %o", name, r.mode, got.mode)
	case got.size != r.size:
		return fmt.Sprintf("/%s changed size %d -> %d", name, r.size, got.size)
	case got.mtime == r.mtime && got.ctime == r.ctime && got.ino == r.ino:
		return ""
	}
	switch r.typ {
	case 'f':
		sum, err := hashFile(p)
		if err != nil || sum != r.sum {
			return fmt.Sprintf("/%s changed content (SHA-256 %s, recorded %s)", name, short(sum), short(r.sum))
		}
	case 'l':
		t, _ := os.Readlink(p)
		if sha256Hex([]byte(t)) != r.sum {
			return fmt.Sprintf("/%s points elsewhere (%s)", name, t)
		}
	case 'd':
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
	return ""
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
	lists, _ := filepath.Glob(filepath.Join(rf.Root, "var/lib/dpkg/info/*.list"))
	found := map[string]bool{}
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, b := range bad {
			f := strings.Fields(b)
			if len(f) == 0 {
				continue
			}
			if bytes.Contains(data, []byte("\n"+f[0]+"\n")) || bytes.HasPrefix(data, []byte(f[0]+"\n")) {
				found[strings.SplitN(strings.TrimSuffix(filepath.Base(l), ".list"), ":", 2)[0]] = true
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
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

// hashReader is sha256 of a stream, hex.
func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
