package toolchain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/container"
)

// Where build steps run (FLUID_TOOLCHAIN):
const (
	// ModeRootfs (the default): every step runs with bubblewrap in the
	// locked Debian rootfs; the host needs no LLVM.
	ModeRootfs = "rootfs"
	// ModeContainer: the same rootfs as an OCI image, by the lock's digest,
	// with docker or podman.
	ModeContainer = "container"
	// ModeHost: the host's LLVM (18 or newer; FLUID_LLVM picks), for
	// compiler hacking. Manifests say so and releases refuse it.
	ModeHost = "host"
)

// EnvMode names the variable that picks the mode.
const EnvMode = container.EnvMode

// Mode reads FLUID_TOOLCHAIN; unknown values are an error.
func Mode(getenv func(string) string) (string, error) {
	switch v := getenv(EnvMode); v {
	case "", ModeRootfs:
		return ModeRootfs, nil
	case ModeContainer, ModeHost:
		return v, nil
	default:
		return "", fmt.Errorf("%w: %s=%q: use %s (the default: the locked LLVM through bubblewrap), %s (the same rootfs as an OCI image with docker/podman) or %s (the host's LLVM, never for releases)",
			ErrMissing, EnvMode, v, ModeRootfs, ModeContainer, ModeHost)
	}
}

// FindIn locates the toolchain for the tree at root in the mode
// FLUID_TOOLCHAIN selects. In rootfs mode it creates the rootfs from the
// lock when the cache lacks it (progress on stderr) and refuses a cache
// that was altered, before any step runs. QEMU, gdb and the FAT tools
// always come from the host.
func FindIn(root string) (*Toolchain, error) {
	mode, err := Mode(os.Getenv)
	if err != nil {
		return nil, err
	}
	if mode == ModeHost {
		tc, err := Find()
		if err != nil {
			return nil, err
		}
		tc.Mode = ModeHost
		return tc, nil
	}
	lt, err := ReadLock(root)
	if err != nil {
		return nil, err
	}
	if mode == ModeContainer {
		opts, err := container.DefaultOptions(root, lt.Lock.OCI.Ref(), os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("%s=container: %w", EnvMode, err)
		}
		tc, err := findInContainer(opts, lt)
		if err != nil {
			return nil, err
		}
		return tc, nil
	}
	rf, err := EnsureRootfs(context.Background(), lt, os.Stderr)
	if err != nil {
		return nil, err
	}
	return rf.Toolchain(root)
}

// llvmDirIn is where the rootfs keeps LLVM's tools.
func (lt *LockedTree) llvmDirIn() string {
	return fmt.Sprintf("/usr/lib/llvm-%d/bin", lt.Definition.LLVMMajor)
}

// inRootfs lists the tools that come from the rootfs, with their paths there.
func (lt *LockedTree) inRootfs() map[string]string {
	m := map[string]string{}
	for _, r := range Requirements {
		switch {
		case r.InLLVM:
			m[r.Name] = lt.llvmDirIn() + "/" + r.Binary
		case r.Name == "nasm":
			m[r.Name] = "/usr/bin/nasm"
		}
	}
	return m
}

// sandboxOptions are the bubblewrap options for steps of the tree at root.
func (rf *Rootfs) sandboxOptions(root string) container.Options {
	return container.Options{
		Engine: container.Bwrap, Rootfs: rf.Root, Root: root,
		UID: os.Getuid(), GID: os.Getgid(), Umask: container.DefaultUmask,
		ImagePaths: []string{"/usr/"},
	}
}

// Toolchain is the toolchain whose LLVM tools and nasm run in this rootfs.
func (rf *Rootfs) Toolchain(root string) (*Toolchain, error) {
	if err := needBwrap(); err != nil {
		return nil, err
	}
	versions, err := rf.readTools()
	if err != nil {
		return nil, err
	}
	opts := rf.sandboxOptions(root)
	tc := &Toolchain{Mode: ModeRootfs, LLVMDir: rf.Tree.llvmDirIn(), Tools: map[string]*Tool{}, Container: &opts, Rootfs: rf, Lock: rf.Tree}
	for name, p := range rf.Tree.inRootfs() {
		sum, err := rf.FileSHA256(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRootfs, err)
		}
		tc.Tools[name] = &Tool{Name: name, Path: p, Version: versions[name], SHA256: sum}
	}
	if err := tc.setMajor(); err != nil {
		return nil, err
	}
	tc.addHostTools()
	return tc, nil
}

// setMajor reads the LLVM major from clang's version line.
func (tc *Toolchain) setMajor() error {
	m := clangVersionRE.FindStringSubmatch(tc.Tools["clang"].Version)
	if m == nil {
		return fmt.Errorf("%w: could not read clang's version from %q", ErrMissing, tc.Tools["clang"].Version)
	}
	tc.LLVMMajor, _ = strconv.Atoi(m[1])
	return nil
}

// addHostTools adds the optional host tools (QEMU, gdb, FAT tools).
func (tc *Toolchain) addHostTools() {
	c := loadProbeCache()
	defer c.save()
	for _, r := range Requirements {
		if r.Optional {
			if t, err := resolveCached(r, "", c); err == nil {
				tc.Tools[r.Name] = t
			}
		}
	}
}

// probeTools asks every rootfs tool for its version, once per cache, and
// records the answers in tools.txt.
func (rf *Rootfs) probeTools(ctx context.Context) error {
	// The tools run with an empty directory at /src, not the cache
	// directory (whose records ready is about to vouch for).
	work, err := os.MkdirTemp("", "fluid-toolchain-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	paths := rf.Tree.inRootfs()
	got, err := probeIn(ctx, rf.sandboxOptions(work), paths)
	if err != nil {
		return fmt.Errorf("%w: running the rootfs's tools with bubblewrap failed (%v)\nIs bubblewrap installed (`go tool mage deps`), and may this user create namespaces (on Ubuntu 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0)?",
			ErrRootfs, err)
	}
	var b strings.Builder
	for _, r := range Requirements {
		if _, ok := paths[r.Name]; !ok {
			continue
		}
		p, ok := got[r.Name]
		if !ok {
			return fmt.Errorf("%w: %s in the rootfs printed no version", ErrRootfs, paths[r.Name])
		}
		fmt.Fprintf(&b, "%s\t%s\n", r.Name, p.Version)
	}
	if !strings.Contains(got["clang"].Version, "version "+rf.Tree.Lock.LLVMVersion) {
		return fmt.Errorf("%w: the rootfs's clang says %q, the lock says LLVM %s", ErrRootfs, got["clang"].Version, rf.Tree.Lock.LLVMVersion)
	}
	return os.WriteFile(filepath.Join(rf.Dir, "tools.txt"), []byte(b.String()), 0o644)
}

func (rf *Rootfs) readTools() (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(rf.Dir, "tools.txt"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v; recreate the cache: rm -rf %s && go tool mage deps", ErrRootfs, err, rf.Dir)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			m[k] = v
		}
	}
	var lacks []string
	for name := range rf.Tree.inRootfs() {
		if strings.TrimSpace(m[name]) == "" {
			lacks = append(lacks, name)
		}
	}
	if len(lacks) > 0 {
		sort.Strings(lacks)
		return nil, fmt.Errorf("%w: %s names no version of %s (it is written when the cache is made, and every manifest records it). No build step ran. Recreate the cache: rm -rf %s && go tool mage deps",
			ErrRootfs, filepath.Join(rf.Dir, "tools.txt"), strings.Join(lacks, ", "), rf.Dir)
	}
	return m, nil
}

// HostPath maps a path a step reported (a depfile entry) to the file on
// the host, or "" when the host cannot see it (a header inside an image).
// Relative paths are relative to the tree and returned unchanged.
func (tc *Toolchain) HostPath(p string) string {
	if !filepath.IsAbs(p) || tc.Container == nil {
		return p
	}
	if h, ok := tc.Container.HostPath(p); ok {
		return h
	}
	if tc.Rootfs != nil {
		return tc.Rootfs.HostPath(p)
	}
	return ""
}

// InputPath maps a step input to the host file to hash: host paths stay,
// files of the rootfs (e.g. compiler-rt's archives under /usr/lib/llvm-18)
// become their place in the cache, and files only an image holds give ""
// (the toolchain key covers them).
func (tc *Toolchain) InputPath(p string) string {
	if tc.Container == nil || !tc.Container.InImage(p) {
		return p
	}
	if tc.Rootfs != nil {
		return tc.Rootfs.HostPath(p)
	}
	return ""
}

// Root is the tree steps run in ("" in host mode: the caller's directory).
func (tc *Toolchain) Root() string {
	if tc.Container != nil {
		return tc.Container.Root
	}
	return ""
}

// WithMount returns a copy of tc whose steps also see the host directory
// dir at the same path (tests compiling into a temp directory).
func (tc *Toolchain) WithMount(dir string) *Toolchain {
	if tc.Container == nil {
		return tc
	}
	c := *tc
	o := *tc.Container
	o.Mounts = append(append([]container.Mount{}, o.Mounts...), container.Mount{Host: dir, Container: dir})
	c.Container = &o
	return &c
}
