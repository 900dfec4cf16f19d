package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	if _, err := os.Stat(arg); err != nil {
		return cannot(err)
	}
	opts := repro.ReleaseOptions{Image: arg, Source: a.source, Keep: a.keep, Log: e.stderr, Manifest: a.manifest, ManifestExplicit: a.manifest != ""}
	if a.manifest == "" {
		opts.Manifest = filepath.Join(filepath.Dir(arg), manifestName)
	}
	if strings.HasSuffix(arg, release.CompressedExt) {
		tmp, err := os.MkdirTemp("", "fluid-rebuild-")
		if err != nil {
			return cannot(err)
		}
		defer os.RemoveAll(tmp)
		opts.Image = filepath.Join(tmp, strings.TrimSuffix(filepath.Base(arg), release.CompressedExt))
		if err := release.DecompressFile(arg, opts.Image); err != nil {
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
