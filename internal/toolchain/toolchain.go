// Package toolchain finds the LLVM toolchain and the other host tools the
// build needs, checks their versions, and fingerprints them so every artifact
// can say exactly what produced it.
//
// The release toolchain is LLVM 18 (PinnedLLVMMajor). On a host the build
// accepts LLVM 18 or any newer major: Debian bookworm packages clang-19, not
// 18. FLUID_LLVM overrides the choice: either a major version ("19", looked
// up as /usr/lib/llvm-19/bin) or a directory that holds clang, ld.lld and the
// llvm tools.
package toolchain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/container"
	"github.com/fluid-os/fluid/internal/fileutil"
)

// PinnedLLVMMajor is the LLVM major version releases are built with.
const PinnedLLVMMajor = 18

// MinLLVMMajor is the oldest LLVM major the build accepts on a host.
const MinLLVMMajor = 18

// EnvLLVM names the environment variable that overrides which LLVM to use.
const EnvLLVM = "FLUID_LLVM"

// Tool is one resolved host tool.
type Tool struct {
	Name    string `json:"name"`    // logical name, e.g. "clang"
	Path    string `json:"-"`       // absolute path; never written to artifacts
	Version string `json:"version"` // the first line the tool prints about itself
	SHA256  string `json:"sha256"`  // of the resolved binary
}

// Toolchain is the set of tools a build uses.
type Toolchain struct {
	LLVMDir   string // directory holding clang, ld.lld, llvm-*
	LLVMMajor int
	Tools     map[string]*Tool
	// Mode is ModeRootfs, ModeContainer or ModeHost.
	Mode string
	// Container is set in rootfs mode (engine bwrap) and container mode
	// (docker/podman): the LLVM tools and nasm run there; see Command.
	Container *container.Options
	// Rootfs is the verified rootfs (rootfs mode only).
	Rootfs *Rootfs
	// Lock is the toolchain lock (rootfs and container modes).
	Lock *LockedTree

	cache *probeCache // host mode: remembered versions and hashes
}

// Requirement describes one tool the build looks for.
type Requirement struct {
	Name     string   // logical name
	Binary   string   // file name to look for
	InLLVM   bool     // look in the LLVM directory rather than PATH
	VersArgs []string // arguments that make it print its version
	Package  string   // Debian/Ubuntu package; "%d" is replaced by the LLVM major
	Optional bool     // only some targets need it (checked by Need)
}

// Requirements lists every tool, in the order they are checked.
var Requirements = []Requirement{
	{Name: "clang", Binary: "clang", InLLVM: true, VersArgs: []string{"--version"}, Package: "clang-%d"},
	{Name: "ld.lld", Binary: "ld.lld", InLLVM: true, VersArgs: []string{"--version"}, Package: "lld-%d"},
	{Name: "llvm-profdata", Binary: "llvm-profdata", InLLVM: true, VersArgs: []string{"--version"}, Package: "llvm-%d"},
	{Name: "llvm-objcopy", Binary: "llvm-objcopy", InLLVM: true, VersArgs: []string{"--version"}, Package: "llvm-%d"},
	{Name: "llvm-size", Binary: "llvm-size", InLLVM: true, VersArgs: []string{"--version"}, Package: "llvm-%d"},
	{Name: "nasm", Binary: "nasm", VersArgs: []string{"-v"}, Package: "nasm"},
	{Name: "qemu", Binary: "qemu-system-x86_64", VersArgs: []string{"--version"}, Package: "qemu-system-x86", Optional: true},
	{Name: "fsck.fat", Binary: "fsck.fat", VersArgs: []string{"--help"}, Package: "dosfstools", Optional: true},
	{Name: "mdir", Binary: "mdir", VersArgs: []string{"--version"}, Package: "mtools", Optional: true},
	{Name: "gdb", Binary: "gdb", VersArgs: []string{"--version"}, Package: "gdb", Optional: true},
}

// ProfileRuntimePackage is the package holding libclang_rt.profile for
// x86_64 (libclang_rt.profile-x86_64.a), which the PGO loop links.
const ProfileRuntimePackage = "libclang-rt-%d-dev"

// ErrMissing is wrapped by every "tool not found / too old" error.
var ErrMissing = errors.New("toolchain incomplete")

var clangVersionRE = regexp.MustCompile(`clang version (\d+)\.(\d+)\.(\d+)`)

// Find locates the toolchain. It never fails for optional tools; use Need
// for those. The error is one paragraph a person can act on.
func Find() (*Toolchain, error) {
	dir, err := llvmDir(os.Getenv(EnvLLVM))
	if err != nil {
		return nil, err
	}
	tc := &Toolchain{LLVMDir: dir, Tools: map[string]*Tool{}, cache: loadProbeCache()}
	defer tc.cache.save()
	var missing []string
	for _, r := range Requirements {
		t, err := resolveCached(r, dir, tc.cache)
		if err != nil {
			if !r.Optional {
				missing = append(missing, err.Error())
			}
			continue
		}
		tc.Tools[r.Name] = t
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s\n%s", ErrMissing, strings.Join(missing, "; "), installHint(majorFromDir(dir)))
	}
	m := clangVersionRE.FindStringSubmatch(tc.Tools["clang"].Version)
	if m == nil {
		return nil, fmt.Errorf("%w: could not read clang's version from %q (at %s); set %s to an LLVM %d+ directory",
			ErrMissing, tc.Tools["clang"].Version, tc.Tools["clang"].Path, EnvLLVM, MinLLVMMajor)
	}
	tc.LLVMMajor, _ = strconv.Atoi(m[1])
	if tc.LLVMMajor < MinLLVMMajor {
		return nil, fmt.Errorf("%w: clang at %s is LLVM %d, the build needs LLVM %d or newer (releases use %d).\n%s",
			ErrMissing, tc.Tools["clang"].Path, tc.LLVMMajor, MinLLVMMajor, PinnedLLVMMajor, installHint(PinnedLLVMMajor))
	}
	return tc, nil
}

// Need checks that optional tools are present, e.g. Need("qemu", "gdb").
func (tc *Toolchain) Need(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, ok := tc.Tools[n]; ok {
			continue
		}
		for _, r := range Requirements {
			if r.Name == n {
				missing = append(missing, fmt.Sprintf("%s (%s, from package %s) was not found on PATH", n, r.Binary, pkgName(r.Package, tc.LLVMMajor)))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s\n%s", ErrMissing, strings.Join(missing, "; "), installHint(tc.LLVMMajor))
	}
	return nil
}

// Path returns the absolute path of a tool ("" if absent).
func (tc *Toolchain) Path(name string) string {
	if t, ok := tc.Tools[name]; ok {
		return t.Path
	}
	return ""
}

// Identity is the toolchain description recorded in manifests and profiles:
// exact versions and binary hashes, no host paths.
type Identity struct {
	// Mode says where the steps ran: rootfs, container or host.
	Mode      string `json:"mode"`
	LLVMMajor int    `json:"llvm_major"`
	// LockSHA256 is the SHA-256 of toolchain/lock.json (rootfs and
	// container modes), LLVMVersion the version it pins.
	LockSHA256  string  `json:"lock_sha256,omitempty"`
	LLVMVersion string  `json:"llvm_version,omitempty"`
	Tools       []*Tool `json:"tools"`
}

// Identity fingerprints every tool that was found (hashing each binary).
func (tc *Toolchain) Identity() (Identity, error) {
	id := Identity{Mode: tc.Mode, LLVMMajor: tc.LLVMMajor}
	if id.Mode == "" {
		id.Mode = ModeHost
	}
	if tc.Lock != nil {
		id.LockSHA256, id.LLVMVersion = tc.Lock.LockSHA256, tc.Lock.Lock.LLVMVersion
	}
	names := slices.Sorted(maps.Keys(tc.Tools))
	for _, n := range names {
		t := tc.Tools[n]
		if t.SHA256 == "" && tc.Container == nil {
			var k string
			if tc.cache != nil {
				k = tc.cache.key(t.Path, nil)
				if e, ok := tc.cache.get(k + "|sha"); ok {
					t.SHA256 = e.SHA256
				}
			}
			if t.SHA256 == "" {
				sum, err := fileutil.SHA256(t.Path)
				if err != nil {
					return id, fmt.Errorf("fingerprint %s: %w", n, err)
				}
				t.SHA256 = sum
				if tc.cache != nil {
					tc.cache.put(k+"|sha", probeEntry{SHA256: sum})
				}
			}
		}
		id.Tools = append(id.Tools, t)
	}
	if tc.cache != nil {
		tc.cache.save()
	}
	return id, nil
}

// Key is a short string that changes whenever a tool's version changes; build
// steps mix it into their cache keys.
func (tc *Toolchain) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "mode=%s\n", tc.Mode)
	if tc.Lock != nil {
		fmt.Fprintf(h, "lock=%s\n", tc.Lock.LockSHA256)
	}
	if tc.Container != nil {
		fmt.Fprintf(h, "image=%s\n", tc.Container.Image)
	}
	for _, r := range Requirements {
		if t, ok := tc.Tools[r.Name]; ok {
			fmt.Fprintf(h, "%s=%s\n", t.Name, t.Version)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Summary is a one-line description for logs.
func (tc *Toolchain) Summary() string {
	where := "host (" + EnvMode + "=host: not for releases)"
	switch {
	case tc.Rootfs != nil:
		where = "locked rootfs " + short(tc.Lock.LockSHA256) + " through bubblewrap"
	case tc.Container != nil:
		where = "container " + tc.Container.Image
	}
	version := func(n string) string {
		if t, ok := tc.Tools[n]; ok {
			return firstLine(t.Version)
		}
		return "no " + n
	}
	return fmt.Sprintf("LLVM %d (%s), %s, on the %s", tc.LLVMMajor, version("clang"), version("nasm"), where)
}

func llvmDir(override string) (string, error) {
	if override != "" {
		if n, err := strconv.Atoi(override); err == nil {
			d := fmt.Sprintf("/usr/lib/llvm-%d/bin", n)
			if !isExec(filepath.Join(d, "clang")) {
				return "", fmt.Errorf("%w: %s=%s but %s/clang does not exist.\n%s", ErrMissing, EnvLLVM, override, d, installHint(n))
			}
			return d, nil
		}
		if !isExec(filepath.Join(override, "clang")) {
			return "", fmt.Errorf("%w: %s=%s is not a directory holding clang; point it at an LLVM bin directory (e.g. /usr/lib/llvm-19/bin) or give a major version (e.g. 19)", ErrMissing, EnvLLVM, override)
		}
		return override, nil
	}
	// Prefer the release pin, then the newest installed major.
	if d := fmt.Sprintf("/usr/lib/llvm-%d/bin", PinnedLLVMMajor); isExec(filepath.Join(d, "clang")) {
		return d, nil
	}
	for n := 30; n > PinnedLLVMMajor; n-- {
		if d := fmt.Sprintf("/usr/lib/llvm-%d/bin", n); isExec(filepath.Join(d, "clang")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("clang"); err == nil {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Dir(real), nil
		}
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w: no LLVM found (looked for /usr/lib/llvm-N/bin/clang with N >= %d and for clang on PATH).\n%s", ErrMissing, MinLLVMMajor, installHint(0))
}

// resolveCached is resolve, answering the version from the probe cache when
// the binary is unchanged since it was last asked.
func resolveCached(r Requirement, llvm string, c *probeCache) (*Tool, error) {
	path, err := locate(r, llvm)
	if err != nil {
		return nil, err
	}
	k := c.key(path, r.VersArgs)
	if e, ok := c.get(k); ok && e.Version != "" {
		return &Tool{Name: r.Name, Path: path, Version: e.Version}, nil
	}
	t, err := resolve(r, llvm)
	if err == nil {
		c.put(k, probeEntry{Version: t.Version})
	}
	return t, err
}

// locate finds a tool's binary without running it.
func locate(r Requirement, llvm string) (string, error) {
	if r.InLLVM {
		path := filepath.Join(llvm, r.Binary)
		if !isExec(path) {
			return "", fmt.Errorf("%s is missing from %s (package %s)", r.Binary, llvm, pkgName(r.Package, majorFromDir(llvm)))
		}
		return path, nil
	}
	p, err := exec.LookPath(r.Binary)
	if err != nil {
		return "", fmt.Errorf("%s was not found on PATH (package %s)", r.Binary, r.Package)
	}
	return filepath.Abs(p)
}

func resolve(r Requirement, llvm string) (*Tool, error) {
	path, err := locate(r, llvm)
	if err != nil {
		return nil, err
	}
	out, _ := exec.Command(path, r.VersArgs...).CombinedOutput()
	v := firstLine(string(out)) // fsck.fat --help starts "fsck.fat 4.2 (2021-01-31)"
	if v == "" {
		return nil, fmt.Errorf("%s at %s printed no version", r.Binary, path)
	}
	return &Tool{Name: r.Name, Path: path, Version: v}, nil
}

func majorFromDir(dir string) int {
	m := regexp.MustCompile(`llvm-(\d+)`).FindStringSubmatch(dir)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func pkgName(p string, major int) string {
	if !strings.Contains(p, "%d") {
		return p
	}
	if major == 0 {
		major = PinnedLLVMMajor
	}
	return fmt.Sprintf(p, major)
}

// Packages returns the Debian/Ubuntu packages for an LLVM major.
func Packages(major int) []string {
	seen := map[string]bool{}
	var pkgs []string
	for _, r := range Requirements {
		p := pkgName(r.Package, major)
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	return append(pkgs, pkgName(ProfileRuntimePackage, major))
}

func installHint(major int) string {
	if major == 0 {
		return "Run `go tool mage deps` (as root it installs with apt; otherwise it prints the apt-get command). " +
			"LLVM 18 is the release pin; on Debian bookworm use LLVM 19 (clang-19 lld-19 llvm-19 libclang-rt-19-dev), or set " + EnvLLVM + "."
	}
	return fmt.Sprintf("Run `go tool mage deps` (as root it installs with apt), or: sudo apt-get install -y %s",
		strings.Join(Packages(major), " "))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// CheckReleasePin refuses any toolchain but the locked one: releases are
// built in the locked rootfs (or the same bytes as the OCI image), so that
// anyone can rebuild them bit for bit.
func (tc *Toolchain) CheckReleasePin() error {
	if tc.Lock != nil && (tc.Mode == ModeRootfs || tc.Mode == ModeContainer) && tc.LLVMMajor == PinnedLLVMMajor {
		return nil
	}
	return fmt.Errorf("release refused: the toolchain is %s, but releases are built only with the locked LLVM %d rootfs (%s), so that anyone can rebuild them byte for byte. Unset %s (the default is the locked rootfs) and run again",
		tc.Summary(), PinnedLLVMMajor, LockFile, EnvMode)
}
