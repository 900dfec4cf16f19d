package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/repro"
)

func cmdVerify(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("verify", e)
	repo := fs.String("repo", defaultRepo(), "GitHub repository `owner/name` whose release workflow must have signed (keyless)")
	key := fs.String("key", "", "verify with this cosign public `key` instead of keyless")
	sumsPath := fs.String("checksums", "", "checksums `file` (default: checksums.txt beside the first FILE)")
	bundlePath := fs.String("bundle", "", "Sigstore bundle `file` (default: checksums.txt.sigstore.json beside the checksums)")
	troot := fs.String("trusted-root", "", "Sigstore trusted_root.json `file` (private Sigstore deployments)")
	rebuild := fs.Bool("rebuild", false, "rebuild the image from source and compare it and its manifest byte for byte (needs a source checkout)")
	source := fs.String("source", ".", "with --rebuild: the source checkout (of the release's tag) to rebuild from")
	manifestPath := fs.String("manifest", "", "with --rebuild: the release's manifest.json (default: beside the image)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rebuild {
		return cmdRebuild(ctx, e, *source, *manifestPath, fs.Args())
	}
	var files []string
	for _, f := range fs.Args() {
		switch filepath.Base(f) {
		case release.ChecksumsName:
			if *sumsPath == "" {
				*sumsPath = f
			}
		case release.BundleName:
			if *bundlePath == "" {
				*bundlePath = f
			}
		default:
			files = append(files, f)
		}
	}
	if len(files) == 0 && *sumsPath == "" {
		return usageError{"name the files to verify (images, manifest.json, archives)"}
	}
	if *sumsPath == "" {
		*sumsPath = filepath.Join(filepath.Dir(files[0]), release.ChecksumsName)
	}
	if *bundlePath == "" {
		*bundlePath = filepath.Join(filepath.Dir(*sumsPath), release.BundleName)
	}
	v, err := newVerifier(verifierOptions{repo: *repo, key: *key, trustedRoot: *troot})
	if err != nil {
		return err
	}
	// Files listed in checksums.txt are checked directly; a decompressed
	// image (fluid-pgo.img) is checked through its signed .zst beside it.
	var direct []string
	var viaZst []string
	sumData, err := os.ReadFile(*sumsPath)
	if err != nil {
		return fmt.Errorf("%s not found at %s: download it from the same release, or pass --checksums", release.ChecksumsName, *sumsPath)
	}
	listed, _ := release.ParseChecksums(sumData)
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := listed[name]; !ok && listed[name+release.CompressedExt] != "" {
			viaZst = append(viaZst, f)
			direct = append(direct, f+release.CompressedExt)
			continue
		}
		direct = append(direct, f)
	}
	res, err := v.VerifyFiles(*sumsPath, *bundlePath, direct)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "fluid: signature OK: %s signed by %s\n", *sumsPath, res.Signer)
	for _, f := range direct {
		fmt.Fprintf(e.stdout, "OK  %s\n", f)
	}
	for _, f := range viaZst {
		if err := sameAsDecompressed(f, f+release.CompressedExt); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "OK  %s (matches the signed %s)\n", f, filepath.Base(f)+release.CompressedExt)
	}
	return nil
}

// sameAsDecompressed checks that img is exactly what zst decompresses to.
func sameAsDecompressed(img, zst string) error {
	want, err := hashDecompressed(zst)
	if err != nil {
		return &release.CheckError{Check: release.CheckImage, Subject: filepath.Base(zst), Err: err, Meaning: "the signed compressed image does not decompress"}
	}
	got, err := release.SHA256File(img)
	if err != nil {
		return err
	}
	if got != want {
		return &release.CheckError{Check: release.CheckChecksum, Subject: filepath.Base(img),
			Err:     fmt.Errorf("SHA-256 is %s, the signed %s decompresses to %s", got, filepath.Base(zst), want),
			Meaning: "the image was changed after it was downloaded; do not boot it, download it again"}
	}
	return nil
}

func hashDecompressed(zst string) (string, error) {
	f, err := os.Open(zst)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return "", err
	}
	defer dec.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(dec, release.MaxImageSize)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cmdRebuild rebuilds the image from a source checkout with the
// reproducibility pipeline (internal/repro) and compares the given image and
// its manifest with the rebuild, byte for byte.
func cmdRebuild(ctx context.Context, e env, source, manifestPath string, args []string) error {
	if len(args) != 1 {
		return usageError{"--rebuild takes one image (fluid.img, or fluid-baseline.img[.zst] from a release)"}
	}
	image := args[0]
	mod, err := os.ReadFile(filepath.Join(source, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/fluid-os/fluid\n") {
		return fmt.Errorf("fluid verify --rebuild needs a source checkout of the release's tag: %s is not one (no go.mod for github.com/fluid-os/fluid).\n"+
			"Clone the repository, check out the tag (git checkout vX.Y.Z), and run this command from there or pass --source DIR", source)
	}
	// A release's manifest.json describes its PGO build, so the baseline
	// image is rebuilt without `mage pgo` and compared as an image only
	// (its own manifest is inside it), unless --manifest names one.
	baseline := strings.HasPrefix(filepath.Base(image), strings.TrimSuffix(release.BaselineImageAsset, ".img"))
	checkManifest := manifestPath != "" || !baseline
	if manifestPath == "" {
		manifestPath = filepath.Join(filepath.Dir(image), manifestName)
	}
	if _, err := os.Stat(manifestPath); err != nil && checkManifest {
		return fmt.Errorf("manifest not found at %s: download manifest.json from the same release or pass --manifest", manifestPath)
	}
	if strings.HasSuffix(image, release.CompressedExt) {
		tmp, err := os.MkdirTemp("", "fluid-rebuild-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		raw := filepath.Join(tmp, strings.TrimSuffix(filepath.Base(image), release.CompressedExt))
		if err := release.DecompressFile(image, raw); err != nil {
			return err
		}
		image = raw
	}
	fmt.Fprintf(e.stderr, "fluid: rebuilding %s from %s (a full build; minutes)\n", repro.ImagePath, source)
	opts := repro.Options{Source: source, Log: e.stderr}
	if baseline {
		opts.Builder = repro.MageBuilder{Targets: []string{"build"}} // no pgo: the -O2 modules
	}
	r, err := repro.Rebuild(ctx, opts)
	if err != nil {
		return fmt.Errorf("rebuild from %s: %w", source, err)
	}
	defer r.Close()
	if !checkManifest {
		fmt.Fprintf(e.stderr, "fluid: %s is the baseline image: comparing the image only (its manifest is inside it; the release's manifest.json describes the PGO build)\n", filepath.Base(args[0]))
	} else if err := repro.CompareManifest(manifestPath, r.Manifest); err != nil {
		return &release.CheckError{Check: "rebuild", Subject: manifestName, Err: err,
			Meaning: "the source, toolchain or SOURCE_DATE_EPOCH differ from the release's; check out the exact tag and use the pinned toolchain"}
	}
	if err := repro.CompareImage(image, r.Image); err != nil {
		return &release.CheckError{Check: "rebuild", Subject: filepath.Base(image), Err: err,
			Meaning: "the image is not what its source builds to"}
	}
	if !checkManifest {
		fmt.Fprintf(e.stdout, "OK  %s is bit-for-bit the baseline rebuild of %s\n", args[0], source)
		return nil
	}
	fmt.Fprintf(e.stdout, "OK  %s is bit-for-bit the rebuild of %s, and %s matches\n", args[0], source, manifestPath)
	return nil
}
