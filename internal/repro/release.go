package repro

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/gitenv"
	"github.com/fluid-os/fluid/internal/manifest"
)

// ErrCannotRebuild is wrapped when VerifyRelease could not rebuild the
// image at all (so it says nothing about whether the image is honest): the
// manifest names no locked toolchain, the source lacks the commit, the build
// failed, ...
var ErrCannotRebuild = errors.New("could not rebuild")

// ErrWrongManifest is wrapped when the manifest VerifyRelease was given
// describes another image than the one it was asked to rebuild (e.g. the
// release's manifest.json, which is the PGO image's, with the baseline image).
var ErrWrongManifest = errors.New("the manifest describes another image")

// LockFile is the toolchain lock of a source tree (internal/toolchain's
// LockFile): the rebuild uses the one of the tree it rebuilds.
const LockFile = "toolchain/lock.json"

// ReleaseOptions configure VerifyRelease.
type ReleaseOptions struct {
	// Image is the release image to check, decompressed (fluid-pgo.img or
	// fluid-baseline.img).
	Image string
	// Manifest is the release's manifest.json, or "". The image is always
	// compared against the manifest it carries (ImageManifestPath); a given
	// manifest of the same image is compared too. One of another image (the
	// release's manifest.json is the PGO image's) is an ErrWrongManifest
	// when ManifestExplicit, else it is set aside with a note.
	Manifest         string
	ManifestExplicit bool
	// Source is a git checkout of the project that holds the manifest's
	// commit. At that commit its working tree is used as it is (uncommitted
	// changes included, with a note); otherwise the commit is checked out
	// from its history into the work directory.
	Source string
	// WorkDir, Keep, Log and BaseEnv are as in Options. The rebuild runs
	// with the caller's TZ, LANG and umask: the build must not depend on them.
	WorkDir string
	Keep    bool
	Log     io.Writer
	BaseEnv []string
	// Builder replaces `go tool mage <ReleaseTargets>` (tests).
	Builder Builder
}

// ReleaseResult is what VerifyRelease found.
type ReleaseResult struct {
	// Claim is the manifest the rebuild is compared against, and ClaimFrom
	// says where it came from.
	Claim     *manifest.Manifest
	ClaimFrom string
	// Targets are the mage targets that rebuilt the image; Light whether
	// LIGHT=1 was set (the manifest's variant says "+light").
	Targets []string
	Light   bool
	// Notes are things the person should know about how the rebuild ran
	// (which commit, a dirty tree, a lock that differs from the manifest's).
	Notes []string
	// Dir is the rebuilt tree (removed unless Keep), RebuiltImage and
	// RebuiltManifest the two files compared.
	Dir, RebuiltImage, RebuiltManifest string
	// ManifestDiff lists the JSON paths whose values differ between the
	// claim and the rebuilt manifest; nil when they are byte-identical.
	ManifestDiff []string
	// ImageFirst is the first differing byte of the image and what holds it
	// (""  when identical); ImageDiff every differing region and file.
	ImageFirst string
	ImageDiff  []string
	// ImageSHA256 and ManifestSHA256 are the rebuilt files' hashes.
	ImageSHA256, ManifestSHA256 string
	// Build is the rebuild's wall time.
	Build time.Duration
}

// Identical reports whether image and manifest matched the rebuild.
func (r *ReleaseResult) Identical() bool {
	return r != nil && r.ManifestDiff == nil && r.ImageFirst == "" && len(r.ImageDiff) == 0
}

// ReleaseTargets returns the mage targets that build a release image of
// the given manifest variant into the working image (build/fluid.img,
// build/manifest.json), with the same bytes `mage release` gives the
// recipe's own image: the recipe table (internal/build/recipe) maps the
// variant to its recipe and the recipe to its mage target ("baseline":
// `mage build`, "pgo": `mage pgo`). A "+light" suffix means LIGHT=1.
func ReleaseTargets(variant string) (targets []string, light bool, err error) {
	r, light, err := recipe.ByVariant(variant)
	if err != nil || !r.Release || r.Target == "" {
		var names []string
		for _, r := range recipe.Shipped() {
			names = append(names, fmt.Sprintf("%q", r.Variant(false)))
		}
		return nil, false, fmt.Errorf("%w: the manifest's variant is %q; a release image is %s", ErrCannotRebuild, variant, strings.Join(names, " or "))
	}
	return []string{r.Target}, light, nil
}

// VerifyRelease rebuilds a release image from source and compares the
// image and its manifest with the rebuild, byte for byte.
//
// The manifest it checks against is the one inside the image (for the
// baseline image the only one; for the PGO image the same bytes as the
// release's manifest.json). From it come the commit to rebuild, the variant
// (baseline: `mage build`, pgo: `mage pgo`), SOURCE_DATE_EPOCH, the version
// string and the toolchain mode; a manifest of a host-toolchain build is
// refused, as no one can reproduce that. The toolchain is the locked one of
// the source being rebuilt (its toolchain/lock.json); a note says when that
// lock is not the one the manifest records.
//
// It returns an error wrapping ErrCannotRebuild or ErrWrongManifest when it
// could not rebuild, one wrapping ErrNotReproducible (with the result)
// when image or manifest differ, and nil when both are identical.
func VerifyRelease(ctx context.Context, opts ReleaseOptions) (*ReleaseResult, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	res := &ReleaseResult{}
	imgName := filepath.Base(opts.Image)
	own, err := ImageManifest(opts.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	ownM, err := manifest.Parse(own, imgName+":"+ImageManifestPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	claim, claimM := own, ownM
	res.ClaimFrom = fmt.Sprintf("%s's own %s", imgName, ImageManifestPath)
	if opts.Manifest != "" {
		data, err := readManifestFile(opts.Manifest)
		switch {
		case err != nil && opts.ManifestExplicit:
			return nil, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
		case errors.Is(err, fs.ErrNotExist):
			// Nothing beside the image: its own manifest is enough.
		case err != nil:
			res.Notes = append(res.Notes, fmt.Sprintf("%s is set aside: %v; %s is compared against its own %s", opts.Manifest, err, imgName, ImageManifestPath))
		case bytes.Equal(data, own):
			res.ClaimFrom = fmt.Sprintf("%s (the same bytes as %s's own %s)", opts.Manifest, imgName, ImageManifestPath)
		default:
			given, perr := manifest.Parse(data, opts.Manifest)
			if perr == nil && given.Variant != ownM.Variant {
				if opts.ManifestExplicit {
					return nil, fmt.Errorf("%w: %s is the manifest of the %s image (variant %q), but %s is the %s image (variant %q in its own %s); a release's manifest.json is its PGO image's, and every image carries its own: leave out --manifest to compare %s against its own",
						ErrWrongManifest, opts.Manifest, printable(given.Variant), given.Variant, imgName, printable(ownM.Variant), ownM.Variant, ImageManifestPath, imgName)
				}
				res.Notes = append(res.Notes, fmt.Sprintf("%s is the %s image's manifest (variant %q); %s is compared against its own %s",
					opts.Manifest, printable(given.Variant), given.Variant, imgName, ImageManifestPath))
				break
			}
			if perr != nil {
				return nil, fmt.Errorf("%w: %v", ErrCannotRebuild, perr)
			}
			// The same image, other bytes: the release contradicts itself.
			// The rebuild is compared with the given manifest, and the image
			// (which holds its own) with the rebuilt image.
			res.Notes = append(res.Notes, fmt.Sprintf("%s is not the manifest inside %s: %s", opts.Manifest, imgName, strings.Join(firstN(JSONDiffBytes(own, data), 5), "; ")))
			claim, claimM = data, given
			res.ClaimFrom = opts.Manifest
		}
	}
	res.Claim = claimM

	env := claimM.Environment
	// Where the rebuild's steps run: "locked" (the locked rootfs, through
	// bubblewrap or as the same bytes in an OCI image: identical builds) in
	// the default rootfs mode, or in the container when the caller asks for
	// it with FLUID_TOOLCHAIN=container. "rootfs" and "container" are what
	// manifests said before both became "locked".
	tcMode := "rootfs"
	switch env.Mode {
	case manifest.ModeLocked:
		if getenvIn(opts.BaseEnv, "FLUID_TOOLCHAIN") == "container" {
			tcMode = "container"
		}
	case "rootfs", "container":
		tcMode = env.Mode
	case "host":
		return res, fmt.Errorf("%w: %s was built with the host's LLVM (toolchain_environment.mode is \"host\", FLUID_TOOLCHAIN=host), not with the locked toolchain, so no one can rebuild it byte for byte; releases are never built this way, so this image is not a release build", ErrCannotRebuild, imgName)
	case "":
		return res, fmt.Errorf("%w: %s's manifest records no toolchain_environment: it predates the locked toolchain, so it cannot be rebuilt byte for byte", ErrCannotRebuild, imgName)
	default:
		return res, fmt.Errorf("%w: %s's manifest names toolchain mode %q, which this fluid does not know", ErrCannotRebuild, imgName, env.Mode)
	}
	if env.LockSHA256 == "" {
		return res, fmt.Errorf("%w: %s's manifest records mode %q but no lock_sha256", ErrCannotRebuild, imgName, env.Mode)
	}
	if claimM.Commit == "" || claimM.Commit == "unknown" {
		return res, fmt.Errorf("%w: %s's manifest records no commit (it was built outside git), so there is no source to rebuild", ErrCannotRebuild, imgName)
	}
	if err := checkClaim(claimM); err != nil {
		return res, fmt.Errorf("%w: %s's manifest is not one a build writes: %v", ErrCannotRebuild, imgName, err)
	}
	res.Targets, res.Light, err = ReleaseTargets(claimM.Variant)
	if err != nil {
		return res, err
	}

	work, cleanup, err := workDir(Options{WorkDir: opts.WorkDir, Keep: opts.Keep})
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	defer cleanup()
	dir := filepath.Join(work, "src")
	if opts.Keep {
		res.Dir = dir // reported even when the rebuild fails
	}
	notes, err := checkoutCommit(ctx, opts.Source, claimM.Commit, claimM.Version, dir, log)
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return res, err
	}
	res.Dir = dir
	lock, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(LockFile)))
	if err != nil {
		return res, fmt.Errorf("%w: commit %s has no %s: it predates the locked toolchain", ErrCannotRebuild, claimM.Commit, LockFile)
	}
	if sum := sha256.Sum256(lock); hex.EncodeToString(sum[:]) != env.LockSHA256 {
		res.Notes = append(res.Notes, fmt.Sprintf("the source's %s has sha256 %s, but the manifest records lock_sha256 %s: the rebuild uses the source's lock, so expect toolchain_environment (and likely more) to differ",
			LockFile, hex.EncodeToString(sum[:]), env.LockSHA256))
	}

	base := opts.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	var benv []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "FLUID_TOOLCHAIN", "FLUID_LLVM", "LIGHT", "FLUID_BUILD_DIR", "FLUID_VERSION":
			continue
		}
		if strings.HasPrefix(k, "GIT_") { // GIT_DIR & co. would make the build read another repository
			continue
		}
		benv = append(benv, kv)
	}
	benv = append(benv, "FLUID_TOOLCHAIN="+tcMode, "FLUID_VERSION="+claimM.Version)
	if res.Light {
		benv = append(benv, "LIGHT=1")
	}
	b := opts.Builder
	if b == nil {
		b = MageBuilder{Targets: res.Targets}
	}
	sde := strconv.FormatInt(claimM.SourceDateEpoch, 10)
	fmt.Fprintf(log, "rebuild: go tool mage %s in %s (commit %s, variant %s, FLUID_TOOLCHAIN=%s, SOURCE_DATE_EPOCH=%s, FLUID_VERSION=%s)\n",
		strings.Join(res.Targets, " "), dir, claimM.Commit, claimM.Variant, tcMode, sde, claimM.Version)
	start := time.Now()
	v := Variant{Label: "rebuild", Umask: InheritUmask}
	if err := buildOne(ctx, Options{Builder: b, BaseEnv: benv}, v, dir, sde, log); err != nil {
		return res, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	res.Build = time.Since(start)
	res.RebuiltImage, res.RebuiltManifest = filepath.Join(dir, filepath.FromSlash(ImagePath)), filepath.Join(dir, filepath.FromSlash(ManifestPath))
	got, err := readManifestFile(res.RebuiltManifest)
	if err != nil {
		return res, fmt.Errorf("%w: the build did not produce %s: %v", ErrCannotRebuild, ManifestPath, err)
	}
	if _, err := os.Stat(res.RebuiltImage); err != nil {
		return res, fmt.Errorf("%w: the build did not produce %s: %v", ErrCannotRebuild, ImagePath, err)
	}

	if res.ImageSHA256, err = fileutil.SHA256(res.RebuiltImage); err != nil {
		return res, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	sum := sha256.Sum256(got)
	res.ManifestSHA256 = hex.EncodeToString(sum[:])
	if !bytes.Equal(claim, got) {
		res.ManifestDiff = JSONDiffBytes(claim, got)
		if len(res.ManifestDiff) == 0 {
			res.ManifestDiff = []string{"same content, different bytes (key order or formatting): the manifest writer is not canonical"}
		}
	}
	d, err := compareImages(opts.Image, res.RebuiltImage)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	if d != nil {
		d.Path = imgName
		res.ImageFirst = d.String()
		if res.ImageDiff, err = DiffDiskImages(opts.Image, res.RebuiltImage); err != nil {
			return res, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
		}
	}
	if res.Identical() {
		return res, nil
	}
	return res, fmt.Errorf("%w: %s does not match its rebuild from %s (commit %s)", ErrNotReproducible, imgName, opts.Source, short12(claimM.Commit))
}

// getenvIn returns key's value in env (nil: the process environment).
func getenvIn(env []string, key string) string {
	if env == nil {
		return os.Getenv(key)
	}
	return Spec{Env: env}.Getenv(key)
}

// JSONDiffBytes is JSONDiff of two JSON documents; a document that is not
// JSON is reported as such.
func JSONDiffBytes(a, b []byte) []string {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return []string{"the first is not JSON: " + err.Error()}
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return []string{"the second is not JSON: " + err.Error()}
	}
	return JSONDiff(va, vb, "")
}

func firstN(l []string, n int) []string {
	if len(l) > n {
		return append(l[:n:n], fmt.Sprintf("... and %d more", len(l)-n))
	}
	return l
}

func short12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// checkoutCommit puts the source of commit into dst: a copy of src's
// working tree when src is at that commit (uncommitted changes included,
// with a note naming them), else a checkout of the commit from src's
// history. A src without the commit is ErrCannotRebuild, and so is one
// where only a remote-tracking ref, a stash or no ref at all holds it: the
// rebuild runs that commit's build code (magefiles/) on this machine, and
// the commit comes from the image being checked, so it must be one the
// clone's own branches or tags (or HEAD) hold. When the clone has a tag
// named version at another commit, a note says so.
func checkoutCommit(ctx context.Context, src, commit, version, dst string, log io.Writer) ([]string, error) {
	gitRaw := func(dir string, args ...string) (string, error) {
		// --no-optional-locks: git status must not refresh the clone's index.
		cmd := exec.CommandContext(ctx, "git", append([]string{"--no-optional-locks", "-C", dir}, args...)...)
		cmd.Env = gitenv.Environ()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return string(out), nil
	}
	git := func(dir string, args ...string) (string, error) {
		out, err := gitRaw(dir, args...)
		return strings.TrimSpace(out), err
	}
	top, err := git(src, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a git checkout of the project (%v); clone the repository and pass it with --source", ErrCannotRebuild, src, err)
	}
	if a, errA := os.Stat(src); errA != nil || !sameFile(a, top) {
		return nil, fmt.Errorf("%w: %s is not the top of a git checkout: git finds the repository at %s; pass the clone of the project itself with --source", ErrCannotRebuild, src, top)
	}
	head, err := git(top, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCannotRebuild, top, err)
	}
	var notes []string
	if t, err := git(top, "rev-parse", "--quiet", "--verify", "refs/tags/"+version+"^{commit}"); version != "" && err == nil && t != commit {
		// version is checked (checkClaim): no revision syntax gets here.
		notes = append(notes, fmt.Sprintf("tag %s in %s is commit %s, but the image's manifest (version %s) names commit %s: the image was not built from that tag; the rebuild checks the commit the manifest names",
			version, top, short12(t), version, short12(commit)))
	}
	if head == commit {
		st, err := gitRaw(top, "status", "--porcelain", "-z", "--untracked-files=normal")
		if err == nil && len(st) > 0 {
			var files []string
			for _, l := range strings.Split(st, "\x00") {
				if len(l) > 3 { // "XY path"; a rename's source follows as its own entry
					files = append(files, l[3:])
				}
			}
			notes = append(notes, fmt.Sprintf("%s is at commit %s but has uncommitted changes, and the rebuild uses them: %s", top, short12(commit), strings.Join(firstN(files, 10), ", ")))
		}
		fmt.Fprintf(log, "rebuild: copying %s (at commit %s) to %s\n", top, short12(commit), dst)
		if err := CopyTree(ctx, top, dst); err != nil {
			return notes, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
		}
		if fi, err := os.Lstat(filepath.Join(top, ".git")); err != nil || !fi.IsDir() {
			// A linked worktree (or a submodule): .git is a file naming
			// the repository elsewhere, which CopyTree does not copy. The
			// copy gets its own, at the same commit, so the build records it.
			if err := attachGit(ctx, git, top, dst, commit); err != nil {
				return notes, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
			}
		}
		return notes, nil
	}
	if _, err := git(top, "cat-file", "-e", commit+"^{commit}"); err != nil {
		return notes, fmt.Errorf("%w: commit %s, which the manifest names, is not in %s (at %s): fetch it (git -C %s fetch --tags origin) or clone the repository afresh",
			ErrCannotRebuild, commit, top, short12(head), top)
	}
	if refs, err := git(top, "for-each-ref", "--contains", commit, "--format=%(refname)", "refs/heads", "refs/tags"); err != nil {
		return notes, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	} else if refs == "" {
		if _, err := git(top, "merge-base", "--is-ancestor", commit, "HEAD"); err != nil {
			where := "no branch or tag"
			if others, _ := git(top, "for-each-ref", "--contains", commit, "--format=%(refname)"); others != "" {
				where = "only " + strings.Join(firstN(strings.Fields(others), 5), ", ")
			}
			return notes, fmt.Errorf("%w: commit %s, which the image's manifest names, is in %s but on no local branch or tag and not in HEAD's history (it is on %s); "+
				"rebuilding runs that commit's build code on this machine, so fluid takes only commits the clone's branches or tags hold: "+
				"if you trust it, check it out (git -C %s checkout %s) and run again",
				ErrCannotRebuild, commit, top, where, top, short12(commit))
		}
	}
	notes = append(notes, fmt.Sprintf("%s is at %s; the rebuild checks out commit %s (the manifest's) from its history", top, short12(head), short12(commit)))
	fmt.Fprintf(log, "rebuild: checking out commit %s of %s into %s\n", commit, top, dst)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return notes, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	if _, err := git(filepath.Dir(dst), "clone", "--quiet", "--no-checkout", "--shared", top, dst); err != nil {
		return notes, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	if _, err := git(dst, "checkout", "--quiet", "--detach", commit); err != nil {
		return notes, fmt.Errorf("%w: %v", ErrCannotRebuild, err)
	}
	return notes, nil
}

// attachGit gives the copy of a working tree at dst a repository of its
// own whose HEAD is commit (detached) and whose index is commit's, leaving
// the copied files as they are.
func attachGit(ctx context.Context, git func(string, ...string) (string, error), top, dst, commit string) error {
	tmp := dst + ".git-clone"
	defer os.RemoveAll(tmp)
	if _, err := git(filepath.Dir(dst), "clone", "--quiet", "--no-checkout", "--shared", top, tmp); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, ".git"), filepath.Join(dst, ".git")); err != nil {
		return err
	}
	if _, err := git(dst, "update-ref", "--no-deref", "HEAD", commit); err != nil {
		return err
	}
	_, err := git(dst, "reset", "--quiet")
	return err
}

func sameFile(a os.FileInfo, path string) bool {
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// checkClaim checks the manifest fields the rebuild uses as arguments or
// prints: they come from the image, so they must have the form a build
// writes (and so can be neither a git option or revision expression nor
// a terminal escape sequence).
func checkClaim(m *manifest.Manifest) error {
	if !isHex(m.Commit) || (len(m.Commit) != 40 && len(m.Commit) != 64) {
		return fmt.Errorf("commit %q is not a full commit hash (40 or 64 lower-case hex digits)", m.Commit)
	}
	if !isHex(m.Environment.LockSHA256) || len(m.Environment.LockSHA256) != 64 {
		return fmt.Errorf("toolchain_environment.lock_sha256 %q is not 64 lower-case hex digits", m.Environment.LockSHA256)
	}
	if m.SourceDateEpoch < 0 {
		return fmt.Errorf("source_date_epoch %d is negative", m.SourceDateEpoch)
	}
	// What `git describe` and release tags give; no revision syntax (~ ^ @
	// : ..), as the version is also looked up as a tag.
	if len(m.Version) > 128 || strings.HasPrefix(m.Version, "-") || strings.Contains(m.Version, "..") ||
		strings.Trim(m.Version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_") != "" {
		return fmt.Errorf("version %q is not a version string (letters, digits and . + - _)", m.Version)
	}
	return nil
}

func isHex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdef") == ""
}

// printable returns s when it is printable ASCII, else s quoted with Go
// escapes, so a string from an untrusted manifest cannot reach the
// terminal as an escape sequence.
func printable(s string) string {
	for _, r := range s {
		if r < 0x20 || r > 0x7E {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// readManifestFile reads a manifest.json: a regular file of at most
// MaxManifestSize bytes (not a FIFO or a device that never ends).
func readManifestFile(p string) ([]byte, error) {
	// Stat before opening: opening a FIFO blocks until a writer comes.
	if fi, err := os.Stat(p); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("%s is larger than %d MiB: not a manifest", p, MaxManifestSize>>20)
	}
	return data, nil
}
