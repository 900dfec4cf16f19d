// Package container builds the command line that runs one build step inside
// the pinned LLVM 18 toolchain (the locked Debian rootfs, toolchain/lock.json):
// with bubblewrap in the unpacked rootfs (engine "bwrap", the default mode),
// or with docker or podman in the same bytes published as an OCI image, so
// a build on any host uses exactly the release toolchain.
//
// Nothing here starts a container: Wrap only turns a step's argv into the
// engine's argv. The caller (internal/toolchain when FLUID_TOOLCHAIN=container)
// runs it. The guarantees that keep the step's output independent of the host:
//
//   - the working tree is bind-mounted at the fixed path /src (MountPoint), and
//     every argument that names a host path under the tree is rewritten to
//     /src/..., so no host path can reach an artifact;
//   - the image is referenced by digest only (name@sha256:... or a local image
//     ID sha256:...), never by a tag that can move;
//   - the step runs as the calling user (files in build/ stay theirs), with a
//     fixed umask, TZ=UTC and a C.UTF-8 locale, no network, a read-only root
//     file system and a private /tmp;
//   - only the variables named in PassEnv (SOURCE_DATE_EPOCH and the build's
//     own FLUID_* knobs) cross from the host, by name.
package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Bwrap is the engine name (and the binary) that runs a step with
// bubblewrap in an unpacked rootfs instead of an image.
const Bwrap = "bwrap"

// MountPoint is where the working tree appears inside the container.
const MountPoint = "/src"

// EnvEngine selects the engine ("docker" or "podman"); default docker.
const EnvEngine = "FLUID_CONTAINER_ENGINE"

// EnvImage overrides the image reference (it must still carry a digest);
// default: the digest recorded in the toolchain lock.
const EnvImage = "FLUID_TOOLCHAIN_IMAGE"

// DefaultUmask is the umask every containerized step runs with.
const DefaultUmask = "0022"

// DefaultPassEnv returns the host variables that reach a containerized step.
// SOURCE_DATE_EPOCH is the one time that may reach an artifact; the FLUID_*
// and LIGHT knobs change what is built and are recorded in the manifest.
func DefaultPassEnv() []string {
	return []string{"SOURCE_DATE_EPOCH", "LIGHT", "FLUID_LIGHT", "FLUID_KTEST"}
}

// fixedEnv is set inside every step regardless of the host, so the time zone
// and locale of the person building never matter.
func fixedEnv() map[string]string {
	return map[string]string{
		"TZ":     "UTC",
		"LANG":   "C.UTF-8",
		"LC_ALL": "C.UTF-8",
		"HOME":   "/tmp",
	}
}

// Errors a caller can test for with errors.Is.
var (
	ErrNoImage      = errors.New("no toolchain image configured")
	ErrNotByDigest  = errors.New("toolchain image is not referenced by digest")
	ErrBadEngine    = errors.New("unknown container engine")
	ErrOutsideTree  = errors.New("path outside the mounted working tree")
	ErrRelativeRoot = errors.New("working tree root must be an absolute path")
	ErrEmptyArgv    = errors.New("empty command")
)

// Mount is an extra host directory made visible inside the container.
type Mount struct {
	Host      string // absolute host path
	Container string // absolute path inside the container
	ReadOnly  bool
}

// Options says how to run a step. The zero value is not usable: at least
// Image and Root must be set (DefaultOptions fills them from the tree).
type Options struct {
	// Engine is "docker" or "podman" (env FLUID_CONTAINER_ENGINE). Empty means docker.
	Engine string
	// Image is the toolchain image, "name@sha256:<64 hex>" or a local image
	// ID "sha256:<64 hex>" (env FLUID_TOOLCHAIN_IMAGE; default: the lock's digest).
	Image string
	// Root is the absolute host path of the working tree, mounted at /src.
	Root string
	// Dir is the host directory the step runs in; empty means Root. It must
	// lie inside Root or one of Mounts.
	Dir string
	// UID and GID the step runs as; DefaultOptions uses the caller's.
	UID, GID int
	// Umask in octal, e.g. "0022"; empty means DefaultUmask.
	Umask string
	// PassEnv names host variables passed through by name (the engine reads
	// their values from its own environment). Nil means DefaultPassEnv().
	PassEnv []string
	// SetEnv sets variables to fixed values inside the step, on top of (and
	// overriding) TZ=UTC, LANG/LC_ALL=C.UTF-8, HOME=/tmp.
	SetEnv map[string]string
	// Mounts are extra bind mounts; arguments under their host paths are
	// rewritten like those under Root.
	Mounts []Mount
	// Network allows network access; steps are offline by default.
	Network bool
	// Rootfs is the unpacked toolchain root file system bwrap uses as "/"
	// (engine bwrap only).
	Rootfs string
	// ImagePaths are absolute path prefixes that exist inside the image
	// (e.g. "/usr/lib/llvm-18/"); arguments under them pass unchanged, so a
	// step may name the toolchain's own files (compiler-rt archives).
	ImagePaths []string
}

var (
	digestRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$`)
	imageID   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	umaskRe   = regexp.MustCompile(`^0?[0-7]{3}$`)
	hex64     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// CheckImageRef returns an error unless ref names an image by digest.
func CheckImageRef(ref string) error {
	if ref == "" {
		return fmt.Errorf("%w: set %s to name@sha256:<digest> or record the digest in %s", ErrNoImage, EnvImage, "toolchain/lock.json")
	}
	if digestRef.MatchString(ref) || imageID.MatchString(ref) {
		return nil
	}
	return fmt.Errorf("%w: %q; use name@sha256:<64 hex digits> (a tag can move, a digest cannot)", ErrNotByDigest, ref)
}

// DefaultOptions returns the options for running steps of the tree at root
// in image (name@sha256:...; getenv(EnvImage) overrides it): the engine from
// the environment (getenv, usually os.Getenv), the calling user's uid/gid
// and the default umask.
func DefaultOptions(root, image string, getenv func(string) string) (Options, error) {
	if v := getenv(EnvImage); v != "" {
		image = v
	}
	opts := Options{
		Engine: getenv(EnvEngine),
		Image:  image,
		Root:   root,
		UID:    os.Getuid(),
		GID:    os.Getgid(),
		Umask:  DefaultUmask,
	}
	return opts, CheckImageRef(opts.Image)
}

// Wrap returns the engine command line that runs argv inside the toolchain
// image. Arguments naming host paths under Root (or a Mount) are rewritten to
// their container paths; argv[0], if an absolute host path outside the tree
// (e.g. /usr/lib/llvm-19/bin/clang), is replaced by its base name, resolved
// on the image's PATH (which starts with /usr/lib/llvm-18/bin). Any other
// argument holding an absolute host path under a mapped directory's parent is
// left alone; arguments that are exactly an absolute path outside every
// mapped directory are refused, since the step could not see them.
func Wrap(argv []string, opts Options) ([]string, error) {
	return wrap(argv, opts, os.Environ())
}

// wrap is Wrap with the environment the passed-through variables are read
// from (bwrap needs their values on its command line; docker and podman
// read them from their own environment).
func wrap(argv []string, opts Options, hostEnv []string) ([]string, error) {
	if len(argv) == 0 {
		return nil, ErrEmptyArgv
	}
	engine := opts.Engine
	if engine == "" {
		engine = "docker"
	}
	switch engine {
	case "docker", "podman":
		if err := CheckImageRef(opts.Image); err != nil {
			return nil, err
		}
	case Bwrap:
		if !filepath.IsAbs(opts.Rootfs) {
			return nil, fmt.Errorf("%w: bwrap needs the absolute path of the toolchain rootfs, got %q", ErrNoImage, opts.Rootfs)
		}
	default:
		return nil, fmt.Errorf("%w %q (from %s): use docker or podman", ErrBadEngine, engine, EnvEngine)
	}
	if !filepath.IsAbs(opts.Root) {
		return nil, fmt.Errorf("%w: %q", ErrRelativeRoot, opts.Root)
	}
	umask := opts.Umask
	if umask == "" {
		umask = DefaultUmask
	}
	if !umaskRe.MatchString(umask) {
		return nil, fmt.Errorf("umask %q is not an octal mask like 0022", umask)
	}

	maps := []Mount{{Host: filepath.Clean(opts.Root), Container: MountPoint}}
	for _, m := range opts.Mounts {
		if !filepath.IsAbs(m.Host) || !path.IsAbs(m.Container) {
			return nil, fmt.Errorf("mount %s:%s: both paths must be absolute", m.Host, m.Container)
		}
		maps = append(maps, Mount{Host: filepath.Clean(m.Host), Container: path.Clean(m.Container), ReadOnly: m.ReadOnly})
	}

	dir := opts.Dir
	if dir == "" {
		dir = opts.Root
	}
	workdir, ok := mapPath(filepath.Clean(dir), maps)
	if !ok {
		return nil, fmt.Errorf("%w: step directory %s is not inside %s", ErrOutsideTree, dir, opts.Root)
	}

	env := fixedEnv()
	for k, v := range opts.SetEnv {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("environment variable name %q is not valid", k)
		}
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pass := opts.PassEnv
	if pass == nil {
		pass = DefaultPassEnv()
	}
	for _, k := range pass {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("environment variable name %q is not valid", k)
		}
	}

	var cmd []string
	if engine == Bwrap {
		cmd = bwrapPrefix(opts, maps, workdir, env, keys, pass, hostEnv)
	} else {
		cmd = enginePrefix(engine, opts, maps, workdir, env, keys, pass)
	}
	cmd = append(cmd, "-c", `umask "$0" && exec "$@"`, umask)

	tool := argv[0]
	if filepath.IsAbs(tool) {
		if p, ok := mapPath(filepath.Clean(tool), maps); ok {
			tool = p
		} else if !inImage(tool, opts.ImagePaths) {
			tool = filepath.Base(tool)
		}
	}
	cmd = append(cmd, tool)
	for _, a := range argv[1:] {
		if filepath.IsAbs(a) {
			p, ok := mapPath(filepath.Clean(a), maps)
			if !ok && inImage(a, opts.ImagePaths) {
				cmd = append(cmd, a)
				continue
			}
			if !ok {
				return nil, fmt.Errorf("%w: argument %s is not under %s; the step inside the container cannot see it (add a Mount or build inside the tree)", ErrOutsideTree, a, opts.Root)
			}
			cmd = append(cmd, p)
			continue
		}
		cmd = append(cmd, rewriteArg(a, maps))
	}
	return cmd, nil
}

// enginePrefix is `docker run` / `podman run` up to the image and its
// /bin/sh entrypoint.
func enginePrefix(engine string, opts Options, maps []Mount, workdir string, env map[string]string, keys, pass []string) []string {
	cmd := []string{engine, "run", "--rm"}
	if !opts.Network {
		cmd = append(cmd, "--network=none")
	}
	cmd = append(cmd, "--read-only", "--tmpfs", "/tmp:rw,exec,mode=1777")
	if engine == "podman" {
		// Rootless podman maps the caller to root in the container unless told
		// otherwise; keep-id makes files in build/ the caller's (rootful
		// podman refuses it: root needs no mapping), and SELinux labels are
		// left alone instead of relabelling the user's tree.
		if opts.UID != 0 {
			cmd = append(cmd, "--userns=keep-id")
		}
		cmd = append(cmd, "--security-opt", "label=disable")
	}
	cmd = append(cmd, "--user", strconv.Itoa(opts.UID)+":"+strconv.Itoa(opts.GID))
	for _, m := range maps {
		spec := m.Host + ":" + m.Container
		if m.ReadOnly {
			spec += ":ro"
		}
		cmd = append(cmd, "--volume", spec)
	}
	cmd = append(cmd, "--workdir", workdir)
	for _, k := range keys {
		cmd = append(cmd, "--env", k+"="+rewriteArg(env[k], maps))
	}
	for _, k := range pass {
		if _, fixed := env[k]; fixed {
			continue
		}
		// NAME without a value: the engine copies it from its own environment
		// if set there, and leaves it unset otherwise.
		cmd = append(cmd, "--env", k)
	}
	return append(cmd, "--entrypoint", "/bin/sh", opts.Image)
}

// bwrapPrefix is the bubblewrap command line up to the rootfs's /bin/sh:
// the rootfs read-only at /, a private /dev, /proc and /tmp, the tree (and
// mounts) bound at their fixed places, every namespace unshared (so no
// network), no capabilities, /proc/sys read-only, and an environment
// cleared down to the fixed variables plus the passed-through ones, whose
// values come from hostEnv.
func bwrapPrefix(opts Options, maps []Mount, workdir string, env map[string]string, keys, pass []string, hostEnv []string) []string {
	// Run as root (a container, a CI image, sudo), bwrap makes no user
	// namespace and keeps every capability by default: a step could
	// remount / read-write (and write into the cached toolchain) or mount
	// a host disk, hence --cap-drop ALL. Even without capabilities, uid 0
	// may write the kernel's global sysctls (core_pattern: a host command
	// run as root at the next crash), and bwrap leaves /proc/sys writable
	// then, hence the read-only binds over /proc/sys and sysrq-trigger.
	cmd := []string{Bwrap, "--ro-bind", opts.Rootfs, "/", "--dev", "/dev", "--proc", "/proc",
		"--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger",
		"--tmpfs", "/tmp", "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"}
	if opts.Network {
		cmd = append(cmd, "--share-net")
	}
	for _, m := range maps {
		flag := "--bind"
		if m.ReadOnly {
			flag = "--ro-bind"
		}
		cmd = append(cmd, flag, m.Host, m.Container)
	}
	cmd = append(cmd, "--chdir", workdir)
	for _, k := range keys {
		cmd = append(cmd, "--setenv", k, rewriteArg(env[k], maps))
	}
	host := map[string]string{}
	for _, kv := range hostEnv {
		if k, v, ok := strings.Cut(kv, "="); ok {
			host[k] = v // the last assignment wins, as in exec
		}
	}
	for _, k := range pass {
		if _, fixed := env[k]; fixed {
			continue
		}
		if v, ok := host[k]; ok {
			cmd = append(cmd, "--setenv", k, v)
		}
	}
	return append(cmd, "--", "/bin/sh")
}

// InImage reports whether the absolute path p names a file of the image
// (under one of ImagePaths) rather than a host file a step sees through a
// bind (the tree or a mount).
func (o Options) InImage(p string) bool {
	if !filepath.IsAbs(p) || !inImage(p, o.ImagePaths) {
		return false
	}
	for _, h := range append([]string{o.Root}, mountHosts(o.Mounts)...) {
		if p == h || strings.HasPrefix(p, h+string(filepath.Separator)) {
			return false
		}
	}
	return true
}

func mountHosts(ms []Mount) []string {
	hs := make([]string, len(ms))
	for i, m := range ms {
		hs[i] = m.Host
	}
	return hs
}

// inImage reports whether a lies under one of the image's own prefixes.
func inImage(a string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(a, p) {
			return true
		}
	}
	return false
}

// mapPath maps an absolute host path to its container path.
func mapPath(p string, maps []Mount) (string, bool) {
	// Longest host prefix wins, so a mount nested in the tree takes precedence.
	best := -1
	for i, m := range maps {
		if (p == m.Host || strings.HasPrefix(p, m.Host+string(filepath.Separator))) &&
			(best < 0 || len(m.Host) > len(maps[best].Host)) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	rel := strings.TrimPrefix(p, maps[best].Host)
	return path.Clean(maps[best].Container + filepath.ToSlash(rel)), true
}

// HostPath maps a path as a step sees it back to the host: the inverse of
// the mounts (the tree at /src, the output directory, extra mounts). It
// reports false for paths outside every mount.
func (o Options) HostPath(p string) (string, bool) {
	maps := append([]Mount{{Host: filepath.Clean(o.Root), Container: MountPoint}}, o.Mounts...)
	best := -1
	for i, m := range maps {
		c := path.Clean(m.Container)
		if (p == c || strings.HasPrefix(p, c+"/")) && (best < 0 || len(c) > len(path.Clean(maps[best].Container))) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	rel := strings.TrimPrefix(p, path.Clean(maps[best].Container))
	return filepath.Join(maps[best].Host, filepath.FromSlash(rel)), true
}

// rewriteArg replaces every occurrence of a mapped host directory inside an
// argument such as -ffile-prefix-map=/home/me/fluid/= or -I/home/me/fluid/kernel.
func rewriteArg(a string, maps []Mount) string {
	sorted := append([]Mount(nil), maps...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i].Host) > len(sorted[j].Host) })
	for _, m := range sorted {
		a = replaceDir(a, m.Host, m.Container)
	}
	return a
}

// replaceDir replaces host with ctr where host occurs as a whole directory:
// followed by a separator, '=', ':' or the end of the string.
func replaceDir(s, host, ctr string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, host)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(host)
		boundary := end == len(s) || strings.ContainsRune("/=:,", rune(s[end]))
		b.WriteString(s[:i])
		if boundary {
			b.WriteString(ctr)
		} else {
			b.WriteString(host)
		}
		s = s[end:]
	}
}

// EnvMode selects where build steps run: "rootfs" (the default) runs them
// with bubblewrap in the locked rootfs, "container" in the same rootfs as an
// OCI image with docker or podman, "host" with the host's LLVM
// (internal/toolchain decides; this package only builds the command lines).
const EnvMode = "FLUID_TOOLCHAIN"

// Command returns an exec.Cmd that runs argv inside the container, with the
// engine's own environment set to env (so --env NAME passthrough reads
// from it). The caller sets Stdout/Stderr and runs it.
func (o Options) Command(ctx context.Context, argv []string, env []string) (*exec.Cmd, error) {
	full, err := wrap(argv, o, env)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = env
	return cmd, nil
}
