package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/github"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/verdict"
)

// imageAsset is the release asset of the image recipe called name ("pgo",
// "baseline"): the recipe's image (internal/build/recipe). The release
// carries it zstd-compressed.
func imageAsset(name string) (string, bool) {
	r, ok := recipe.ByName(name)
	if !ok || !r.Release {
		return "", false
	}
	return r.Image, true
}

const manifestName = "manifest.json"

// maxSmallAsset bounds checksums.txt and the bundle, read into memory.
const maxSmallAsset = 4 << 20

func cmdDownload(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("download", e)
	ver := fs.String("version", "latest", "release `tag` to fetch (vX.Y.Z) or latest")
	repo := fs.String("repo", defaultRepo(), "GitHub repository `owner/name`")
	out := fs.String("o", ".", "destination `dir`ectory")
	key := fs.String("key", "", "verify with this cosign public `key` instead of keyless (for key-signed releases)")
	img := fs.String("image", "pgo", "which image: pgo or baseline")
	troot := fs.String("trusted-root", "", "Sigstore trusted_root.json `file` (private Sigstore deployments; default: public-good via TUF)")
	timeout := fs.Duration("timeout", 0, "give up after this `duration` in all (e.g. 30m; default: no overall limit)")
	stall := fs.Duration("stall-timeout", github.DefaultStallTimeout, "give up on a download that delivers no data for this `duration` (0: wait forever)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *timeout < 0 || *stall < 0 {
		return usageError{"--timeout and --stall-timeout take a duration >= 0, e.g. 30m or 90s"}
	}
	if *stall == 0 {
		*stall = -1 // the client's "disabled"
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, *timeout, &overallTimeout{*timeout})
		defer cancel()
	}
	if fs.NArg() != 0 {
		return usageError{"download takes no file arguments"}
	}
	imgName, ok := imageAsset(*img)
	if !ok {
		return usageError{fmt.Sprintf("--image %q: want pgo or baseline", *img)}
	}
	client, err := github.New(*repo, github.Options{Token: e.getenv("GITHUB_TOKEN"), APIURL: e.getenv("GITHUB_API_URL"), Log: e.stderr, StallTimeout: *stall})
	if err != nil {
		return usageError{err.Error()}
	}
	v, err := newVerifier(verifierOptions{repo: *repo, key: *key, trustedRoot: *troot, stderr: e.stderr, ctx: ctx})
	if err != nil {
		return err
	}
	d := &downloader{client: client, verifier: v, e: e}
	files, err := d.run(ctx, *ver, imgName, *out)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(e.stdout, f)
	}
	return nil
}

// overallTimeout is the cause of the context's end when --timeout ran out.
type overallTimeout struct{ d time.Duration }

func (o *overallTimeout) Error() string { return fmt.Sprintf("gave up after --timeout %s", o.d) }

type downloader struct {
	client   *github.Client
	verifier *release.Verifier
	e        env
}

// run fetches, verifies and installs one image. It works in a staging
// directory inside dest (same file system, so the final renames are atomic)
// and removes it — and dest, if it created dest — on any failure.
func (d *downloader) run(ctx context.Context, version, imgName, dest string) (placed []string, err error) {
	rel, err := d.client.FindRelease(ctx, version)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.e.stderr, "fluid: release %s of %s\n", rel.Tag, d.client.Repository())
	compressed := imgName + release.CompressedExt
	// Every asset must exist before anything is fetched.
	need := []string{release.ChecksumsName, release.BundleName, compressed, manifestName}
	// ... and no larger than such an asset can be: the server's declared
	// size is what each download is held to.
	limits := map[string]int64{release.ChecksumsName: maxSmallAsset, release.BundleName: maxSmallAsset, manifestName: maxSmallAsset, compressed: release.MaxImageSize}
	for _, n := range need {
		a, err := rel.Asset(n)
		if err != nil {
			return nil, err
		}
		if a.GetSize() > int(limits[n]) || a.GetSize() < 0 {
			return nil, &verdict.CheckError{Check: verdict.CheckAsset, Subject: n,
				Err: fmt.Errorf("is %d bytes by the release's account, more than the %d a Fluid OS %s can be", a.GetSize(), limits[n], n), Meaning: "this is not a Fluid OS release asset; nothing was downloaded"}
		}
	}

	createdDest := false
	if _, statErr := os.Stat(dest); os.IsNotExist(statErr) {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", dest, err)
		}
		createdDest = true
	}
	stage, err := os.MkdirTemp(dest, ".fluid-download-")
	if err != nil {
		return nil, fmt.Errorf("create staging directory in %s: %w", dest, err)
	}
	cleanup := func() {
		os.RemoveAll(stage)
		if createdDest {
			os.Remove(dest) // only succeeds if empty: never removes the user's files
		}
	}
	// A second signal stops fluid at once, without running the defers.
	unregister := onEmergency(cleanup)
	defer func() {
		if err != nil {
			cleanup()
		} else {
			os.RemoveAll(stage)
		}
		unregister()
		if err == nil {
			return
		}
		var ie *installError
		if errors.As(err, &ie) {
			return // it says what the destination holds
		}
		var ot *overallTimeout
		if errors.As(context.Cause(ctx), &ot) {
			err = &verdict.CheckError{Check: verdict.CheckNetwork, Subject: d.client.Repository(), Err: ot,
				Meaning: "nothing was verified or kept in " + dest + "; run it again, with a longer --timeout on a slow connection"}
			return
		}
		if code, ok := interruptedCode(ctx); ok {
			err = &exitError{code: code, err: fmt.Errorf("interrupted (%v): the partial download was removed; nothing was written to %s", context.Cause(ctx), dest)}
			return
		}
		err = fmt.Errorf("%w\nnothing was written to %s", err, dest)
	}()

	// 1. Signature over checksums.txt.
	sums, err := d.fetchSmall(ctx, rel, release.ChecksumsName)
	if err != nil {
		return nil, err
	}
	bundle, err := d.fetchSmall(ctx, rel, release.BundleName)
	if err != nil {
		return nil, err
	}
	id, err := d.verifier.VerifyChecksums(bundle, sums)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.e.stderr, "fluid: signature OK: checksums.txt signed by %s\n", id)
	table, err := release.ParseChecksums(sums)
	if err != nil {
		return nil, &verdict.CheckError{Check: verdict.CheckChecksum, Subject: release.ChecksumsName, Err: err, Meaning: "the signed checksums file is malformed"}
	}
	for name, data := range map[string][]byte{release.ChecksumsName: sums, release.BundleName: bundle} {
		if err := atomicfile.WriteFile0644(filepath.Join(stage, name), data); err != nil {
			return nil, err
		}
	}

	// 2. The manifest, checked against checksums.txt, must name this release:
	// its version is the tag, its commit the one the tag points at (and,
	// keyless, the one the certificate records). Another release's genuine
	// files re-uploaded under this tag stop here, before the image is fetched.
	fetchChecked := func(n string) error {
		p := filepath.Join(stage, n)
		if err := d.fetchFile(ctx, rel, n, p); err != nil {
			return err
		}
		if err := table.VerifyFile(p, n); err != nil {
			return err
		}
		fmt.Fprintf(d.e.stderr, "fluid: checksum OK: %s\n", n)
		return nil
	}
	if err := fetchChecked(manifestName); err != nil {
		return nil, err
	}
	manData, err := os.ReadFile(filepath.Join(stage, manifestName))
	if err != nil {
		return nil, err
	}
	tagCommit, err := d.client.TagCommit(ctx, rel.Tag)
	if err != nil {
		return nil, err
	}
	m, err := release.BindRelease(id, manData, release.Binding{Tag: rel.Tag, TagCommit: tagCommit})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.e.stderr, "fluid: version OK: the signed manifest is release %s, commit %s, which the tag points at\n", m.Version, m.Commit)

	// 3. The image, checked against checksums.txt.
	if err := fetchChecked(compressed); err != nil {
		return nil, err
	}

	// 4. Decompress.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := release.DecompressFile(filepath.Join(stage, compressed), filepath.Join(stage, imgName)); err != nil {
		return nil, &verdict.CheckError{Check: verdict.CheckImage, Subject: compressed, Err: err,
			Meaning: "the signed, checksummed asset does not decompress; report this to the project"}
	}

	// 5. Move into place: the image last, so its presence means all is there.
	// Once begun, the moves run to their end (a signal waits for them).
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	emergency.Lock()
	defer emergency.Unlock()
	order := []string{release.ChecksumsName, release.BundleName, manifestName, compressed, imgName}
	placed, replaced, err := install(stage, dest, order)
	if err != nil {
		return nil, err
	}
	for _, n := range replaced {
		fmt.Fprintf(d.e.stderr, "fluid: replaced the existing %s\n", filepath.Join(dest, n))
	}
	fmt.Fprintf(d.e.stderr, "fluid: %s verified and written to %s\n", imgName, dest)
	return placed, nil
}

// installError is a failed install whose rollback has run: Report says
// exactly what the destination holds now.
type installError struct {
	err    error
	report string
}

func (e *installError) Error() string { return e.err.Error() + "\n" + e.report }
func (e *installError) Unwrap() error { return e.err }

// install moves each of names from stage into dest, in order. A file
// already at a destination name is first moved aside in dest (a unique
// hidden backup name) and deleted only once every file is in place; a
// directory there stops the install. On any failure it rolls back: it
// removes the files it moved in and puts every backed-up file back, and its
// *installError says which new files were removed, which of the user's files
// were restored, and which (if any) could not be and where they are now.
func install(stage, dest string, names []string) (placed, replaced []string, err error) {
	type step struct {
		name, dst string
		backup    string // where the user's file was moved; "" if there was none
		moved     bool   // the new file is at dst
	}
	var steps []*step
	defer func() {
		if err == nil {
			for _, s := range steps {
				if s.backup != "" {
					os.Remove(s.backup)
				}
			}
			return
		}
		var removed, restored, kept, failed []string
		for i := len(steps) - 1; i >= 0; i-- {
			s := steps[i]
			if s.moved {
				if rerr := os.Remove(s.dst); rerr != nil && !os.IsNotExist(rerr) {
					failed = append(failed, fmt.Sprintf("could not remove %s (written by this run): %v", s.dst, rerr))
					if s.backup != "" {
						kept = append(kept, fmt.Sprintf("your %s is kept as %s", s.name, s.backup))
					}
					continue
				}
				if s.backup == "" {
					removed = append(removed, s.name)
				}
			}
			if s.backup != "" {
				if rerr := os.Rename(s.backup, s.dst); rerr != nil {
					failed = append(failed, fmt.Sprintf("could not restore %s: %v", s.dst, rerr))
					kept = append(kept, fmt.Sprintf("your %s is kept as %s", s.name, s.backup))
					continue
				}
				restored = append(restored, s.name) // in place of the downloaded one, if it was moved in
			}
		}
		// Name the files in install order.
		slices.Reverse(removed)
		slices.Reverse(restored)
		var b strings.Builder
		switch {
		case len(removed) == 0 && len(restored) == 0 && len(failed) == 0:
			fmt.Fprintf(&b, "nothing was written to %s", dest)
		case len(failed) == 0:
			fmt.Fprintf(&b, "rolled back %s:", dest)
			if len(removed) > 0 {
				fmt.Fprintf(&b, " removed %s (written by this run);", strings.Join(removed, ", "))
			}
			if len(restored) > 0 {
				fmt.Fprintf(&b, " restored your %s;", strings.Join(restored, ", "))
			}
			fmt.Fprintf(&b, " %s holds what it held before", dest)
		default:
			fmt.Fprintf(&b, "the rollback of %s is incomplete: %s", dest, strings.Join(failed, "; "))
			if len(kept) > 0 {
				fmt.Fprintf(&b, "; %s", strings.Join(kept, "; "))
			}
			if len(removed) > 0 {
				fmt.Fprintf(&b, "; removed %s (written by this run)", strings.Join(removed, ", "))
			}
			if len(restored) > 0 {
				fmt.Fprintf(&b, "; restored your %s", strings.Join(restored, ", "))
			}
		}
		placed, replaced = nil, nil
		err = &installError{err: err, report: b.String()}
	}()
	for _, n := range names {
		s := &step{name: n, dst: filepath.Join(dest, n)}
		fi, lerr := os.Lstat(s.dst)
		switch {
		case lerr == nil && fi.IsDir():
			return nil, nil, fmt.Errorf("move %s into %s: %s is a directory; move it away or choose another -o", n, dest, s.dst)
		case lerr == nil:
			// Reserve a unique name, then move the user's file over it.
			tmp, cerr := os.CreateTemp(dest, "."+n+".fluid-backup-*")
			if cerr != nil {
				return nil, nil, fmt.Errorf("set aside the existing %s: %w", s.dst, cerr)
			}
			tmp.Close()
			if rerr := os.Rename(s.dst, tmp.Name()); rerr != nil {
				os.Remove(tmp.Name())
				return nil, nil, fmt.Errorf("set aside the existing %s: %w", s.dst, rerr)
			}
			s.backup = tmp.Name()
			replaced = append(replaced, n)
		case !os.IsNotExist(lerr):
			return nil, nil, fmt.Errorf("move %s into %s: %w", n, dest, lerr)
		}
		steps = append(steps, s)
		if rerr := os.Rename(filepath.Join(stage, n), s.dst); rerr != nil {
			return nil, nil, fmt.Errorf("move %s into %s: %w", n, dest, rerr)
		}
		s.moved = true
		placed = append(placed, s.dst)
	}
	return placed, replaced, nil
}

func (d *downloader) fetchSmall(ctx context.Context, rel *github.Release, name string) ([]byte, error) {
	a, err := rel.Asset(name)
	if err != nil {
		return nil, err
	}
	// run held its declared size to maxSmallAsset before anything was
	// fetched, and DownloadAsset holds the body to the declared size.
	var buf bytes.Buffer
	if err := d.client.DownloadAsset(ctx, a, &buf, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (d *downloader) fetchFile(ctx context.Context, rel *github.Release, name, path string) error {
	a, err := rel.Asset(name)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	var w io.Writer = f
	if d.e.stderrTTY {
		bar := progressbar.NewOptions64(int64(a.GetSize()),
			progressbar.OptionSetWriter(d.e.stderr),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(d.e.stderr) }),
			progressbar.OptionClearOnFinish())
		w = io.MultiWriter(f, bar)
		defer bar.Close()
	} else {
		fmt.Fprintf(d.e.stderr, "fluid: downloading %s (%s)\n", name, fileutil.HumanSize(int64(a.GetSize())))
	}
	if err := d.client.DownloadAsset(ctx, a, w, nil); err != nil {
		return err
	}
	return f.Close()
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && !strings.EqualFold(os.Getenv("TERM"), "dumb")
}
