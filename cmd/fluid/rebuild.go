package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/repro"
)

type rebuildArgs struct {
	source   string   // --source: a clone of the repository
	manifest string   // --manifest, or ""
	keep     bool     // --keep
	images   []string // the one image
}

// cmdRebuild is `fluid verify --rebuild IMAGE`: it rebuilds the image from
// source at the commit its manifest names, with the locked toolchain, and
// compares image and manifest byte for byte (internal/repro.VerifyRelease).
// Exit status: 0 identical, 1 different, 3 could not rebuild.
func cmdRebuild(ctx context.Context, e env, a rebuildArgs) error {
	if len(a.images) != 1 {
		return usageError{"--rebuild takes one image: fluid-pgo.img or fluid-baseline.img from a release, compressed (.img.zst) or not"}
	}
	arg := a.images[0]
	cannot := func(err error) error {
		return &exitError{code: exitNoRebuild, err: fmt.Errorf("could not rebuild %s: %s", arg, strings.TrimPrefix(err.Error(), repro.ErrCannotRebuild.Error()+": "))}
	}
	mod, err := os.ReadFile(filepath.Join(a.source, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/fluid-os/fluid\n") {
		return cannot(fmt.Errorf("fluid verify --rebuild needs a source checkout: %s is not one (no go.mod for github.com/fluid-os/fluid).\n"+
			"Clone the repository (git clone https://github.com/fluid-os/fluid.git) and pass it with --source DIR, or run this command from inside it", a.source))
	}
	if fi, err := os.Stat(arg); err != nil {
		return cannot(err)
	} else if !fi.Mode().IsRegular() {
		return cannot(fmt.Errorf("%s is not a regular file", arg))
	}
	opts := repro.ReleaseOptions{Image: arg, Source: a.source, Keep: a.keep, Log: e.stderr, Manifest: a.manifest, ManifestExplicit: a.manifest != "", Builder: rebuildBuilder}
	if a.manifest == "" {
		opts.Manifest = filepath.Join(filepath.Dir(arg), manifestName)
	}
	if strings.HasSuffix(arg, release.CompressedExt) {
		tmp, err := os.MkdirTemp("", "fluid-rebuild-")
		if err != nil {
			return cannot(err)
		}
		defer os.RemoveAll(tmp)
		name := strings.TrimSuffix(filepath.Base(arg), release.CompressedExt)
		if name == "" || name == "." || name == ".." {
			name = "image.img"
		}
		opts.Image = filepath.Join(tmp, name)
		if err := decompressImage(ctx, arg, opts.Image); err != nil {
			if ctx.Err() != nil {
				return cannot(fmt.Errorf("interrupted: %w", context.Cause(ctx)))
			}
			return cannot(fmt.Errorf("decompress: %w", err))
		}
	}
	fmt.Fprintf(e.stderr, "fluid: rebuilding %s from %s with the locked toolchain (a full build: minutes)\n", arg, a.source)
	res, err := repro.VerifyRelease(ctx, opts)
	if res != nil {
		for _, n := range res.Notes {
			fmt.Fprintf(e.stderr, "fluid: note: %s\n", n)
		}
		if a.keep && res.Dir != "" {
			fmt.Fprintf(e.stderr, "fluid: the rebuilt tree is kept in %s\n", res.Dir)
		}
	}
	if err != nil && ctx.Err() != nil {
		return cannot(fmt.Errorf("interrupted (%v); the build was stopped", context.Cause(ctx)))
	}
	switch {
	case errors.Is(err, repro.ErrWrongManifest):
		return &exitError{code: exitUsage, err: errors.New(strings.TrimPrefix(err.Error(), repro.ErrWrongManifest.Error()+": "))}
	case errors.Is(err, repro.ErrNotReproducible):
		printDifference(e, arg, a.source, res)
		return &exitError{code: exitDifferent, err: fmt.Errorf("DIFFERENT: %s", strings.TrimPrefix(err.Error(), repro.ErrNotReproducible.Error()+": "))}
	case err != nil:
		return cannot(err)
	}
	m := res.Claim
	fmt.Fprintf(e.stdout, "identical: %s\n", arg)
	fmt.Fprintf(e.stdout, "  image     bit for bit the rebuild's %s (sha256 %s)\n", repro.ImagePath, res.ImageSHA256)
	fmt.Fprintf(e.stdout, "  manifest  %s: bit for bit the rebuild's %s (sha256 %s)\n", res.ClaimFrom, repro.ManifestPath, res.ManifestSHA256)
	fmt.Fprintf(e.stdout, "  rebuilt   commit %s, variant %s (go tool mage %s), toolchain %s %s, SOURCE_DATE_EPOCH %d, in %s\n",
		m.Commit, m.Variant, strings.Join(res.Targets, " "), m.Environment.Mode, shortSum(m.Environment.LockSHA256), m.SourceDateEpoch, res.Build.Round(1e8))
	return nil
}

// printDifference prints what differs between the release and the rebuild.
func printDifference(e env, arg, src string, res *repro.ReleaseResult) {
	fmt.Fprintf(e.stdout, "different: %s does not match its rebuild from %s (commit %s)\n", arg, src, res.Claim.Commit)
	if res.ManifestDiff != nil {
		fmt.Fprintf(e.stdout, "  manifest: %s vs the rebuild's %s:\n", res.ClaimFrom, repro.ManifestPath)
		for i, d := range res.ManifestDiff {
			if i == 20 {
				fmt.Fprintf(e.stdout, "    ... and %d more\n", len(res.ManifestDiff)-i)
				break
			}
			fmt.Fprintf(e.stdout, "    %s\n", d)
		}
	} else {
		fmt.Fprintf(e.stdout, "  manifest: %s is identical to the rebuild's\n", res.ClaimFrom)
	}
	if res.ImageFirst != "" {
		fmt.Fprintf(e.stdout, "  image: %s\n", res.ImageFirst)
		for _, d := range res.ImageDiff {
			fmt.Fprintf(e.stdout, "    %s\n", d)
		}
	} else {
		fmt.Fprintln(e.stdout, "  image: identical to the rebuild's")
	}
	fmt.Fprintf(e.stdout, "  (first value: the release; second: the rebuild)\n")
}

func shortSum(s string) string {
	if len(s) > 12 {
		return "lock " + s[:12]
	}
	return "lock " + s
}

// rebuildBuilder replaces `go tool mage` in tests; nil in fluid.
var rebuildBuilder repro.Builder

// maxImageSize bounds what a compressed image may expand to: the largest
// image the build makes (a variable so tests can lower it).
var maxImageSize int64 = repro.MaxImageSize

// decompressImage expands the zstd image src into the new file dst. It
// stops at once when ctx ends, when the first sector is not a Fluid OS MBR
// (so a compressed file of something else is not written out in full), and
// when the image expands past maxImageSize: a small hostile .zst cannot fill
// the disk.
func decompressImage(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	// A release image is compressed with an 8 MiB window (release.CompressFile).
	dec, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return err
	}
	defer dec.Close()
	r := &ctxReader{ctx: ctx, r: io.LimitReader(dec, maxImageSize+1)}
	head := make([]byte, 512)
	if _, err := io.ReadFull(r, head); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if !repro.ImageHead(head) {
		return fmt.Errorf("%s: %w: it decompresses to something without the Fluid OS MBR", src, repro.ErrNotImage)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = out.Write(head)
	var n int64
	if err == nil {
		n, err = io.Copy(out, r)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && int64(len(head))+n > maxImageSize {
		err = fmt.Errorf("%s expands past %d MiB, more than any Fluid OS image; refusing", src, maxImageSize>>20)
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// ctxReader fails once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
