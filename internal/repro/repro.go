// Package repro proves that a Fluid OS build is reproducible: it builds the
// tree twice from a clean copy, in two different directories, with different
// TZ, LANG, umask and working-directory paths and at different wall-clock
// times, and compares every artifact byte for byte. On a difference it names
// the artifact, the first differing offset and what lies there (the ELF
// section, or the disk-image region), and adds diffoscope's report when
// diffoscope is installed.
//
// The build itself is a Builder, so tests can plant nondeterminism; the real
// one (MageBuilder) runs `go tool mage <targets>` in the copy, exactly as a
// person would.
package repro

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/gitenv"
	"github.com/fluid-os/fluid/internal/profile/committed"
)

// Spec is one build of one copy of the tree.
type Spec struct {
	// Label is "A" or "B" (or "rebuild").
	Label string
	// Root is the copy's root directory; artifacts go to Root/build.
	Root string
	// Env is the complete environment for the build (TZ, LANG, HOME, PATH,
	// SOURCE_DATE_EPOCH, ...).
	Env []string
	// Umask the build runs with, e.g. 0o022; InheritUmask keeps the
	// caller's.
	Umask int
}

// InheritUmask as a Spec's or Variant's Umask runs the build with the
// calling process's umask.
const InheritUmask = -1

// Getenv returns the value of key in the spec's environment.
func (s Spec) Getenv(key string) string {
	for i := len(s.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.Env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Builder builds everything in spec.Root, writing progress to log.
type Builder interface {
	Build(ctx context.Context, spec Spec, log io.Writer) error
}

// BuilderFunc adapts a function to Builder.
type BuilderFunc func(ctx context.Context, spec Spec, log io.Writer) error

// Build calls f.
func (f BuilderFunc) Build(ctx context.Context, spec Spec, log io.Writer) error {
	return f(ctx, spec, log)
}

// MageBuilder builds a copy by running `go tool mage <Targets...>` in it as
// a child process, under `sh -c 'umask ...'` so the umask applies to that
// build alone.
type MageBuilder struct {
	// Targets to run, in order; empty means Targets(spec.Root).
	Targets []string
}

// Targets returns the mage targets that build what a release ships from the
// tree at root: the target of every recipe in the table that has one
// ("build", "pgo"), leaving out those fed by committed profiles when the
// tree has none (committed.Present), so the PGO modules and the PGO image
// are compared whenever there are profiles.
func Targets(root string) []string {
	return recipe.WorkingTargets(committed.Present(root))
}

// Build runs the mage targets in spec.Root.
func (m MageBuilder) Build(ctx context.Context, spec Spec, log io.Writer) error {
	targets := m.Targets
	if len(targets) == 0 {
		targets = Targets(spec.Root)
	}
	args := append([]string{"-c", `umask "$0" && exec "$@"`, fmt.Sprintf("%04o", spec.Umask), "go", "tool", "mage"}, targets...)
	if spec.Umask == InheritUmask {
		args = append([]string{"-c", `exec "$@"`, "sh", "go", "tool", "mage"}, targets...)
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", args...)
	cmd.Dir = spec.Root
	cmd.Env = spec.Env
	cmd.Stdout, cmd.Stderr = log, log
	killRest := ownProcessGroup(cmd)
	cmd.WaitDelay = 10 * time.Second // after the cancel's SIGTERM: then SIGKILL
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			killRest()
			return fmt.Errorf("build %s (go tool mage %s in %s): interrupted: %w", spec.Label, strings.Join(targets, " "), spec.Root, context.Cause(ctx))
		}
		return fmt.Errorf("build %s (go tool mage %s in %s): %w", spec.Label, strings.Join(targets, " "), spec.Root, err)
	}
	return nil
}

// Variant is how one of the two builds differs from the other.
type Variant struct {
	Label  string
	Subdir string // path of the copy under the work directory
	TZ     string // "" keeps the caller's TZ
	Lang   string // "" keeps the caller's LANG and LC_ALL
	Umask  int    // InheritUmask keeps the caller's
}

// DefaultVariants returns the two builds verify compares. The directory
// names have different lengths and depths, so a leaked path changes sizes and
// offsets, not just bytes; the time zones are 26 hours apart.
func DefaultVariants() [2]Variant {
	return [2]Variant{
		{Label: "A", Subdir: "a/fluid", TZ: "UTC", Lang: "C.UTF-8", Umask: 0o022},
		{Label: "B", Subdir: "build-b/some/deeper/path/fluid-os-checkout", TZ: "Pacific/Kiritimati", Lang: "fr_FR.UTF-8", Umask: 0o077},
	}
}

// Options configures Verify.
type Options struct {
	// Source is the tree to copy: the tracked and untracked-but-not-ignored
	// files (git ls-files), plus .git so the build can read the commit.
	Source string
	// WorkDir holds the copies; empty means a new temporary directory that
	// is removed afterwards unless Keep is set.
	WorkDir string
	Keep    bool
	// Builder builds each copy; nil means MageBuilder{}.
	Builder Builder
	// SourceDateEpoch is passed to both builds; empty means the
	// SOURCE_DATE_EPOCH environment variable, else the last commit's time,
	// else unset (the build's own fixed default applies to both).
	SourceDateEpoch string
	// MinGap is the least wall-clock time between the starts of the two
	// builds (default 2s: more than FAT's 2-second timestamp resolution and
	// __TIME__'s one second), so a clock that leaks into an artifact shows.
	MinGap time.Duration
	// Variants overrides DefaultVariants.
	Variants *[2]Variant
	// Log receives progress lines and the builds' output; nil discards.
	Log io.Writer
	// BaseEnv is the environment the builds start from (nil: os.Environ());
	// TZ, LANG, LC_ALL, PWD and SOURCE_DATE_EPOCH are replaced per build.
	BaseEnv []string
}

// Result is what Verify found.
type Result struct {
	Comparison
	// DirA and DirB are the two copies (gone unless Options.Keep).
	DirA, DirB string
	// BuildA and BuildB are each build's wall time; Total is verify's.
	BuildA, BuildB, Total time.Duration
}

// Verify builds opts.Source twice and compares every artifact under build/.
// It returns the comparison and, when anything differs, an error wrapping
// ErrNotReproducible that names each artifact, offset and section.
func Verify(ctx context.Context, opts Options) (Result, error) {
	start := time.Now()
	var res Result
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	work, cleanup, err := workDir(opts)
	if err != nil {
		return res, err
	}
	defer cleanup()
	sde, err := sourceDateEpoch(ctx, opts)
	if err != nil {
		return res, err
	}
	variants := DefaultVariants()
	if opts.Variants != nil {
		variants = *opts.Variants
	}
	gap := opts.MinGap
	if gap == 0 {
		gap = 2 * time.Second
	}
	var dirs [2]string
	var took [2]time.Duration
	var started time.Time
	for i, v := range variants {
		dirs[i] = filepath.Join(work, filepath.FromSlash(v.Subdir))
		fmt.Fprintf(log, "verify: build %s in %s (TZ=%s LANG=%s umask %04o)\n", v.Label, dirs[i], v.TZ, v.Lang, v.Umask)
		if err := CopyTree(ctx, opts.Source, dirs[i]); err != nil {
			return res, err
		}
		// The gap is between the builds' starts, after each copy: a slow
		// first copy must not eat it (seen under load in `mage rehearse`).
		if i > 0 {
			if wait := gap - time.Since(started); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return res, ctx.Err()
				}
			}
		}
		started = time.Now()
		if err := buildOne(ctx, opts, v, dirs[i], sde, log); err != nil {
			return res, err
		}
		took[i] = time.Since(started)
		fmt.Fprintf(log, "verify: build %s took %s\n", v.Label, took[i].Round(time.Millisecond))
	}
	res.DirA, res.DirB = dirs[0], dirs[1]
	res.BuildA, res.BuildB = took[0], took[1]
	res.Comparison, err = CompareTrees(ctx, dirs[0], dirs[1], "build")
	res.Total = time.Since(start)
	if err != nil {
		return res, err
	}
	if err := res.Comparison.Err(); err != nil {
		fmt.Fprintf(log, "verify: compared %d artifacts in %s\n", len(res.Same)+len(res.Differences), (res.Total - res.BuildA - res.BuildB).Round(time.Millisecond))
		for _, d := range res.Differences {
			if d.Diffoscope != "" {
				fmt.Fprintf(log, "verify: diffoscope %s:\n%s\n", d.Path, d.Diffoscope)
			}
		}
		return res, err
	}
	fmt.Fprintf(log, "verify: %d artifacts identical (build A %s, build B %s, total %s)\n",
		len(res.Same), res.BuildA.Round(time.Millisecond), res.BuildB.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	return res, nil
}

func buildOne(ctx context.Context, opts Options, v Variant, dir, sde string, log io.Writer) error {
	base := opts.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	env := make([]string, 0, len(base)+6)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PWD", "SOURCE_DATE_EPOCH", "OLDPWD":
			continue
		case "TZ":
			if v.TZ != "" {
				continue
			}
		case "LANG", "LC_ALL":
			if v.Lang != "" {
				continue
			}
		}
		env = append(env, kv)
	}
	if v.TZ != "" {
		env = append(env, "TZ="+v.TZ)
	}
	if v.Lang != "" {
		env = append(env, "LANG="+v.Lang, "LC_ALL="+v.Lang)
	}
	env = append(env, "PWD="+dir)
	if sde != "" {
		env = append(env, "SOURCE_DATE_EPOCH="+sde)
	}
	b := opts.Builder
	if b == nil {
		b = MageBuilder{}
	}
	spec := Spec{Label: v.Label, Root: dir, Env: env, Umask: v.Umask}
	if err := b.Build(ctx, spec, log); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

func workDir(opts Options) (string, func(), error) {
	if opts.WorkDir != "" {
		if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
			return "", nil, fmt.Errorf("verify: create work directory: %w", err)
		}
		return opts.WorkDir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "fluid-verify-")
	if err != nil {
		return "", nil, fmt.Errorf("verify: create work directory: %w", err)
	}
	if opts.Keep {
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// sourceDateEpoch picks the one time both builds share: opts, else the
// environment, else the last commit's time. With none of them (a tree with
// no commits) it returns "" and each build falls back to the build's own
// documented default, which is the same for both.
func sourceDateEpoch(ctx context.Context, opts Options) (string, error) {
	v := opts.SourceDateEpoch
	if v == "" {
		v = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds since 1970", v)
		}
		return v, nil
	}
	out, err := exec.CommandContext(ctx, "git", "-C", opts.Source, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return "", nil
	}
	return strings.TrimSpace(string(out)), nil
}

// CopyTree copies the files of the source tree to dst (which must not exist
// or be empty): what `git ls-files --cached --others --exclude-standard`
// lists, plus .git, so the copy is what a fresh clone with the working
// tree's changes would be. Without git it copies everything except build/.
// File modes keep their executable bit; timestamps are not copied, on
// purpose: the copy's mtimes are "now", which must not matter.
func CopyTree(ctx context.Context, src, dst string) error {
	files, err := sourceFiles(ctx, src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("copy tree to %s: %w", dst, err)
	}
	for _, rel := range files {
		if err := copyFile(filepath.Join(src, rel), filepath.Join(dst, rel)); err != nil {
			return fmt.Errorf("copy tree to %s: %w", dst, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(src, ".git")); err == nil && fi.IsDir() {
		err := filepath.WalkDir(filepath.Join(src, ".git"), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				// Another process may rewrite .git/index.lock and friends
				// while we copy; a vanished file is not an error.
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if e.IsDir() {
				// Empty directories too: a repository whose refs are all
				// packed (a CI checkout of a tag or pull request: detached,
				// no branch) has an empty refs/, and git does not take a
				// .git without it as a repository (found by `mage rehearse`).
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			if !e.Type().IsRegular() || strings.HasSuffix(p, ".lock") {
				return nil
			}
			if err := copyFile(p, filepath.Join(dst, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy .git to %s: %w", dst, err)
		}
	}
	return nil
}

func sourceFiles(ctx context.Context, src string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Env = gitenv.Environ()
	out, err := cmd.Output()
	if err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f == "" {
				continue
			}
			// A file deleted in the working tree but still in the index.
			if fi, err := os.Lstat(filepath.Join(src, f)); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			// The output directory never travels: each build starts clean
			// even if build/ is not in .gitignore.
			if strings.HasPrefix(f, "build/") {
				continue
			}
			files = append(files, filepath.FromSlash(f))
		}
		sort.Strings(files)
		return files, nil
	}
	var files []string
	err = filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() && (rel == "build" || rel == ".git") {
			return filepath.SkipDir
		}
		if e.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list source files in %s: %w", src, err)
	}
	return files, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if fi.Mode()&0o111 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
