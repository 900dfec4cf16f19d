// Package container builds the command line that runs one build step inside
// the pinned LLVM 18 toolchain image (.github/toolchain/Dockerfile) with
// docker or podman, so a build on any host uses exactly the release
// toolchain.
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
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// MountPoint is where the working tree appears inside the container.
const MountPoint = "/src"

// EnvEngine selects the engine ("docker" or "podman"); default docker.
const EnvEngine = "FLUID_CONTAINER_ENGINE"

// EnvImage overrides the image reference (it must still carry a digest);
// default: the digest recorded in LockFile.
const EnvImage = "FLUID_TOOLCHAIN_IMAGE"

// LockFile is the file, relative to the working tree, that records which
// image digest the Dockerfile was built into.
const LockFile = ".github/toolchain/image.lock"

// DockerfilePath is the toolchain image definition, relative to the tree.
const DockerfilePath = ".github/toolchain/Dockerfile"

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
	// ID "sha256:<64 hex>" (env FLUID_TOOLCHAIN_IMAGE; default from image.lock).
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
		return fmt.Errorf("%w: set %s to name@sha256:<digest> or record the digest in %s", ErrNoImage, EnvImage, LockFile)
	}
	if digestRef.MatchString(ref) || imageID.MatchString(ref) {
		return nil
	}
	return fmt.Errorf("%w: %q; use name@sha256:<64 hex digits> (a tag can move, a digest cannot)", ErrNotByDigest, ref)
}

// DefaultOptions returns the options for running steps of the tree at root:
// the engine and image from the environment (getenv, usually os.Getenv) or
// else from image.lock, the calling user's uid/gid and the default umask.
func DefaultOptions(root string, getenv func(string) string) (Options, error) {
	opts := Options{
		Engine: getenv(EnvEngine),
		Image:  getenv(EnvImage),
		Root:   root,
		UID:    os.Getuid(),
		GID:    os.Getgid(),
		Umask:  DefaultUmask,
	}
	if opts.Image == "" {
		lock, err := ReadLock(filepath.Join(root, LockFile))
		if err != nil {
			return opts, err
		}
		opts.Image = lock.Ref()
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
	if len(argv) == 0 {
		return nil, ErrEmptyArgv
	}
	if err := CheckImageRef(opts.Image); err != nil {
		return nil, err
	}
	engine := opts.Engine
	if engine == "" {
		engine = "docker"
	}
	if engine != "docker" && engine != "podman" {
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

	cmd := []string{engine, "run", "--rm"}
	if !opts.Network {
		cmd = append(cmd, "--network=none")
	}
	cmd = append(cmd, "--read-only", "--tmpfs", "/tmp:rw,exec,mode=1777")
	if engine == "podman" {
		// Rootless podman maps the caller to root in the container unless told
		// otherwise; keep-id makes files in build/ the caller's, and SELinux
		// labels are left alone instead of relabelling the user's tree.
		cmd = append(cmd, "--userns=keep-id", "--security-opt", "label=disable")
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
	for _, k := range keys {
		cmd = append(cmd, "--env", k+"="+rewriteArg(env[k], maps))
	}
	pass := opts.PassEnv
	if pass == nil {
		pass = DefaultPassEnv()
	}
	for _, k := range pass {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("environment variable name %q is not valid", k)
		}
		if _, fixed := env[k]; fixed {
			continue
		}
		// NAME without a value: the engine copies it from its own environment
		// if set there, and leaves it unset otherwise.
		cmd = append(cmd, "--env", k)
	}
	cmd = append(cmd, "--entrypoint", "/bin/sh", opts.Image,
		"-c", `umask "$0" && exec "$@"`, umask)

	tool := argv[0]
	if filepath.IsAbs(tool) {
		if p, ok := mapPath(filepath.Clean(tool), maps); ok {
			tool = p
		} else {
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

// Lock is the content of .github/toolchain/image.lock.
type Lock struct {
	// Image is the repository the toolchain image is published to.
	Image string
	// Digest is the image's manifest digest, "sha256:<64 hex>", or empty when
	// the current Dockerfile has not been published yet.
	Digest string
	// DockerfileSHA256 is the SHA-256 of the Dockerfile the digest was built from.
	DockerfileSHA256 string
}

// Ref returns the pull reference name@digest, or "" without a digest.
func (l Lock) Ref() string {
	if l.Digest == "" {
		return ""
	}
	return l.Image + "@" + l.Digest
}

// ReadLock parses an image.lock file: "key=value" lines, '#' comments.
func ReadLock(file string) (Lock, error) {
	var l Lock
	f, err := os.Open(file)
	if err != nil {
		return l, fmt.Errorf("read toolchain image lock: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return l, fmt.Errorf("%s:%d: want key=value, got %q", file, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "image":
			l.Image = v
		case "digest":
			l.Digest = v
		case "dockerfile-sha256":
			l.DockerfileSHA256 = v
		default:
			return l, fmt.Errorf("%s:%d: unknown key %q (image, digest, dockerfile-sha256)", file, n, k)
		}
	}
	if err := sc.Err(); err != nil {
		return l, fmt.Errorf("read %s: %w", file, err)
	}
	if l.Image == "" {
		return l, fmt.Errorf("%s: no image= line", file)
	}
	if l.Digest != "" && !imageID.MatchString(l.Digest) {
		return l, fmt.Errorf("%s: digest %q is not sha256:<64 hex digits>", file, l.Digest)
	}
	if !hex64.MatchString(l.DockerfileSHA256) {
		return l, fmt.Errorf("%s: dockerfile-sha256 %q is not 64 hex digits", file, l.DockerfileSHA256)
	}
	return l, nil
}

// DockerfileSHA256 returns the hex SHA-256 of the toolchain Dockerfile in the
// tree at root: the key image.lock records its digest under.
func DockerfileSHA256(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, DockerfilePath))
	if err != nil {
		return "", fmt.Errorf("hash toolchain Dockerfile: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// CheckLock verifies that image.lock was written for the current Dockerfile,
// so a digest can never silently describe an older image definition.
func CheckLock(root string) (Lock, error) {
	lock, err := ReadLock(filepath.Join(root, LockFile))
	if err != nil {
		return lock, err
	}
	sum, err := DockerfileSHA256(root)
	if err != nil {
		return lock, err
	}
	if sum != lock.DockerfileSHA256 {
		return lock, fmt.Errorf("%s records dockerfile-sha256=%s but %s hashes to %s: the Dockerfile changed; set dockerfile-sha256=%s and clear digest= (CI builds and publishes the new image and prints its digest to record)", LockFile, lock.DockerfileSHA256, DockerfilePath, sum, sum)
	}
	return lock, nil
}

// EnvMode selects where build steps run: "container" runs them in the
// pinned image (this package), anything else on the host.
const EnvMode = "FLUID_TOOLCHAIN"

// FromEnv returns the options for running the steps of the tree at root in
// the container when FLUID_TOOLCHAIN=container, or nil when steps run on the
// host. It fails, saying what to set, when container mode is asked for but
// no image digest is known.
func FromEnv(root string, getenv func(string) string) (*Options, error) {
	if getenv(EnvMode) != "container" {
		return nil, nil
	}
	opts, err := DefaultOptions(root, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s=container: %w", EnvMode, err)
	}
	return &opts, nil
}

// Command returns an exec.Cmd that runs argv inside the container, with the
// engine's own environment set to env (so --env NAME passthrough reads
// from it). The caller sets Stdout/Stderr and runs it.
func (o Options) Command(ctx context.Context, argv []string, env []string) (*exec.Cmd, error) {
	full, err := Wrap(argv, o)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = env
	return cmd, nil
}
