// Package build compiles Fluid OS: the NASM boot stages, the kernel variants,
// the workload modules and the disk image, into build/.
//
// Every artifact is produced by a step whose cache key is the content hash
// of its inputs (including every header the compiler reports), the command
// line and the toolchain's versions, so a second build with nothing changed
// runs nothing. Builds are deterministic: no absolute paths reach outputs
// (-ffile-prefix-map), and SOURCE_DATE_EPOCH is the only time used.
package build

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fluid-os/fluid/internal/container"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// Options configure a Builder. Zero values are filled by New.
type Options struct {
	Root            string               // repository root; default: found from the working directory
	Out             string               // output directory; default Root/build
	Light           bool                 // LIGHT=1: shrink workloads (defines FLUID_LIGHT=1)
	Version         string               // FLUID_VERSION; default `git describe --tags --always`, else "dev"
	Commit          string               // default `git rev-parse HEAD`, else "unknown"
	SourceDateEpoch int64                // default $SOURCE_DATE_EPOCH, else the last commit's time, else 0
	Jobs            int                  // parallel compile jobs; default NumCPU
	Log             io.Writer            // one line per step that runs; default os.Stdout
	Toolchain       *toolchain.Toolchain // default toolchain.Find()
	// Llama, when set, are the llama module's files instead of the
	// default generated model and its reference run (NewLlamaFiles); the
	// FLUID_LLAMA_MODEL knob sets it too (ByoLlama, in New).
	Llama *LlamaFiles
	byo   byoEnv
}

// Builder builds artifacts into Out.
type Builder struct {
	root, out string
	opt       Options
	tc        *toolchain.Toolchain
	tcKey     string
	log       io.Writer
	jobs      int
	hash      *hasher

	// The default llama files, generated once (llamaImageFiles).
	llamaOnce            sync.Once
	llamaModel, llamaRun []byte
	llamaErr             error
}

// New resolves defaults and checks the toolchain.
func New(opt Options) (*Builder, error) {
	var err error
	if opt.Root, opt.Out, err = opt.dirs(); err != nil {
		return nil, err
	}
	if opt.Log == nil {
		opt.Log = os.Stdout
	}
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.NumCPU()
	}
	if opt.Toolchain == nil {
		if opt.Toolchain, err = toolchain.FindIn(opt.Root); err != nil {
			return nil, err
		}
	}
	if c := opt.Toolchain.Container; c != nil {
		// Steps run inside the image with the tree at /src; an output
		// directory outside the tree is mounted too.
		if r, err := filepath.Rel(opt.Root, opt.Out); err != nil || strings.HasPrefix(r, "..") {
			cc := *c
			cc.Mounts = append(append([]container.Mount{}, c.Mounts...), container.Mount{Host: opt.Out, Container: "/out"})
			tc := *opt.Toolchain
			tc.Container = &cc
			opt.Toolchain = &tc
		}
	}
	if opt.Llama == nil {
		if opt.Llama, err = opt.byo.resolve(); err != nil {
			return nil, err
		}
	}
	if opt.Version == "" {
		opt.Version = envOr("FLUID_VERSION", gitOut(opt.Root, "describe", "--tags", "--always"), "dev")
	}
	if opt.Commit == "" {
		opt.Commit = envOr("", gitOut(opt.Root, "rev-parse", "HEAD"), "unknown")
	}
	if opt.SourceDateEpoch == 0 {
		opt.SourceDateEpoch, err = sourceDateEpoch(opt.Root)
		if err != nil {
			return nil, err
		}
	}
	return &Builder{
		root: opt.Root, out: opt.Out, opt: opt, tc: opt.Toolchain,
		tcKey: opt.Toolchain.Key(), log: opt.Log, jobs: opt.Jobs,
		hash: &hasher{sums: map[string]string{}},
	}, nil
}

// dirs resolves the repository root (found from the working directory when
// unset) and the output directory (default: build/ in the root), both
// absolute.
func (opt Options) dirs() (root, out string, err error) {
	root = opt.Root
	if root == "" {
		if root, err = fileutil.FindRoot("."); err != nil {
			return "", "", err
		}
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", "", err
	}
	out = opt.Out
	if out == "" {
		out = filepath.Join(root, "build")
	}
	out, err = filepath.Abs(out)
	return root, out, err
}

// Clean removes the output directory opt names (build/ by default; the
// committed profiles/ is never in it), saying so on w. It needs no
// toolchain.
func Clean(opt Options, w io.Writer) error {
	_, out, err := opt.dirs()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "clean: removing %s\n", out)
	return os.RemoveAll(out)
}

// Root is the repository root.
func (b *Builder) Root() string { return b.root }

// Out is the output directory.
func (b *Builder) Out() string { return b.out }

// Toolchain is the toolchain in use.
func (b *Builder) Toolchain() *toolchain.Toolchain { return b.tc }

// Options returns the resolved options.
func (b *Builder) Options() Options { return b.opt }

// Lock takes an exclusive lock on Out/.lock so that concurrent builders
// (parallel test packages, two terminals) never write the same files.
func (b *Builder) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(b.out, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// rel returns p relative to the root when it is inside it.
func (b *Builder) rel(p string) string {
	if !filepath.IsAbs(p) {
		return filepath.ToSlash(p)
	}
	if r, err := filepath.Rel(b.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return p
}

// outRel is a path under Out, relative to the root when possible.
func (b *Builder) outRel(parts ...string) string {
	return b.rel(filepath.Join(append([]string{b.out}, parts...)...))
}

// env is the environment build commands run in: fixed locale and time zone,
// SOURCE_DATE_EPOCH set, nothing else that varies between machines.
func (b *Builder) env() []string {
	env := []string{
		"LC_ALL=C", "LANG=C", "TZ=UTC",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(b.opt.SourceDateEpoch, 10),
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func sourceDateEpoch(root string) (int64, error) {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a non-negative integer of seconds since 1970", v)
		}
		return n, nil
	}
	if s := gitOut(root, "log", "-1", "--format=%ct"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
	}
	// Outside git (a source tarball): a fixed, documented epoch.
	return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), nil
}

func gitOut(root string, args ...string) string {
	cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func envOr(key, fallback, def string) string {
	if key != "" {
		if v := os.Getenv(key); v != "" {
			return v
		}
	}
	if fallback != "" {
		return fallback
	}
	return def
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// goSources lists the non-test Go files of internal packages that do
// in-process build steps (the module packer, the image writer), so those
// steps rerun exactly when their code changes.
func (b *Builder) goSources(pkgs ...string) []string {
	var files []string
	for _, p := range pkgs {
		m, _ := filepath.Glob(filepath.Join(b.root, "internal", p, "*.go"))
		for _, f := range m {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, b.rel(f))
			}
		}
	}
	return files
}

// NewLocked is New followed by Lock: what a command-line entry point that
// writes into Out needs. Call the returned function to unlock.
func NewLocked(opt Options) (*Builder, func(), error) {
	b, err := New(opt)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := b.Lock()
	if err != nil {
		return nil, nil, err
	}
	return b, unlock, nil
}
