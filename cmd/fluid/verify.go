package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/verdict"
)

func cmdVerify(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("verify", e)
	repo := fs.String("repo", defaultRepo(), "GitHub repository `owner/name` whose release workflow must have signed (keyless)")
	key := fs.String("key", "", "verify with this cosign public `key` instead of keyless")
	sumsPath := fs.String("checksums", "", "checksums `file` (default: checksums.txt beside the first FILE)")
	bundlePath := fs.String("bundle", "", "Sigstore bundle `file` (default: checksums.txt.sigstore.json beside the checksums)")
	troot := fs.String("trusted-root", "", "Sigstore trusted_root.json `file` (private Sigstore deployments)")
	rebuild := fs.Bool("rebuild", false, "rebuild the image from source with the locked toolchain and compare it and its manifest byte for byte (needs a clone of the repository)")
	source := fs.String("source", ".", "with --rebuild: a clone of the repository holding the commit the image's manifest names")
	manifestPath := fs.String("manifest", "", "with --rebuild: also compare this manifest.json of the same image (default: manifest.json beside the image, when it describes that image)")
	version := fs.String("version", "", "require the files to be release `tag` vX.Y.Z: its signed manifest.json must name that version (and, keyless, the certificate that tag and the manifest's commit)")
	keep := fs.Bool("keep", false, "with --rebuild: keep the rebuilt tree and print where it is")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *version != "" && !verdict.IsReleaseTag(*version) {
		return usageError{fmt.Sprintf("--version %q: want a release tag vMAJOR.MINOR.PATCH[-prerelease]", *version)}
	}
	if *rebuild {
		// --rebuild compares bytes with a rebuild; it checks no signature and
		// no version, so flags that ask for those would be silently ignored.
		for name, set := range map[string]bool{"--version": *version != "", "--key": *key != "", "--checksums": *sumsPath != "", "--bundle": *bundlePath != "", "--trusted-root": *troot != ""} {
			if set {
				return usageError{fmt.Sprintf("%s has no effect with --rebuild, which compares the image with a rebuild from source and checks no signature or version; run fluid verify %s FILE first, then fluid verify --rebuild", name, name)}
			}
		}
		return cmdRebuild(ctx, e, rebuildArgs{source: *source, manifest: *manifestPath, keep: *keep, images: fs.Args()})
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
	v, err := newVerifier(verifierOptions{repo: *repo, key: *key, trustedRoot: *troot, stderr: e.stderr, ctx: ctx})
	if err != nil {
		return err
	}
	// Files listed in checksums.txt are checked directly; a decompressed
	// image (fluid-pgo.img) is checked through its signed .zst beside it.
	var direct []string
	var viaZst []string
	if err := mustExist(*sumsPath, fmt.Sprintf("download %s from the same release into %s, or pass --checksums FILE", release.ChecksumsName, filepath.Dir(*sumsPath))); err != nil {
		return err
	}
	if err := mustExist(*bundlePath, fmt.Sprintf("download %s from the same release into %s, or pass --bundle FILE", release.BundleName, filepath.Dir(*bundlePath))); err != nil {
		return err
	}
	sumData, err := os.ReadFile(*sumsPath)
	if err != nil {
		return err
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
	// Every file must be there before anything is checked.
	for _, f := range viaZst {
		if err := mustExist(f, "pass the path of the image you want to check"); err != nil {
			return err
		}
		zst := f + release.CompressedExt
		if err := mustExist(zst, fmt.Sprintf("%s is checked through its signed %s: download %s from the same release into %s",
			filepath.Base(f), filepath.Base(zst), filepath.Base(zst), filepath.Dir(zst))); err != nil {
			return err
		}
	}
	for _, f := range direct {
		if err := mustExist(f, fmt.Sprintf("download %s from the same release into %s, or leave it out", filepath.Base(f), filepath.Dir(f))); err != nil {
			return err
		}
	}
	// The signed manifest says which release the files are: the one named
	// with the files, else the one beside checksums.txt when it lists one.
	manPath := ""
	for _, f := range direct {
		if filepath.Base(f) == release.ManifestAsset {
			manPath = f
		}
	}
	if beside := filepath.Join(filepath.Dir(*sumsPath), release.ManifestAsset); manPath == "" && listed[release.ManifestAsset] != "" {
		if _, err := os.Stat(beside); err == nil || *version != "" {
			manPath = beside
			direct = append(direct, beside)
		}
	}
	if *version != "" {
		if manPath == "" {
			return &missingError{path: filepath.Join(filepath.Dir(*sumsPath), release.ManifestAsset), err: os.ErrNotExist,
				hint: "--version is checked against the release's signed manifest.json; download it from the same release"}
		}
		if err := mustExist(manPath, fmt.Sprintf("--version is checked against the release's signed manifest.json; download it from the same release into %s", filepath.Dir(manPath))); err != nil {
			return err
		}
	}
	// Nothing that looks like success is printed before every check passed:
	// the signature, each checksum and each decompressed image.
	res, err := v.VerifyFiles(*sumsPath, *bundlePath, direct)
	if err != nil {
		return err
	}
	for _, f := range viaZst {
		if err := sameAsDecompressed(f, f+release.CompressedExt); err != nil {
			return err
		}
	}
	versionLine := ""
	if manPath != "" {
		manData, err := os.ReadFile(manPath)
		if err != nil {
			return err
		}
		// Offline there is no tag to ask GitHub about: the tag is --version,
		// else (keyless) the one the certificate names. A key-signed set
		// without --version has nothing to be checked against: its version
		// is reported, not checked.
		tag := *version
		if tag == "" {
			tag = res.Signer.Tag
		}
		if tag == "" {
			m, err := manifest.Parse(manData, manPath)
			if err != nil {
				return &verdict.CheckError{Check: verdict.CheckVersion, Subject: release.ManifestAsset, Err: err,
					Meaning: "the signed manifest does not say which release it is"}
			}
			versionLine = fmt.Sprintf("fluid: note: the signed manifest says version %s, commit %s; pass --version to require a version", m.Version, m.Commit)
		} else {
			m, err := release.BindRelease(res.Signer, manData, release.Binding{Tag: tag})
			if err != nil {
				return err
			}
			versionLine = fmt.Sprintf("fluid: version OK: release %s, built from commit %s", m.Version, m.Commit)
		}
	} else if res.Signer.Tag != "" {
		versionLine = fmt.Sprintf("fluid: note: signed for release %s; without its manifest.json the files' version was not checked", res.Signer.Tag)
	}
	fmt.Fprintf(e.stderr, "fluid: signature OK: %s signed by %s\n", *sumsPath, res.Signer)
	if versionLine != "" {
		fmt.Fprintln(e.stderr, versionLine)
	}
	for _, f := range direct {
		fmt.Fprintf(e.stdout, "OK  %s\n", f)
	}
	for _, f := range viaZst {
		fmt.Fprintf(e.stdout, "OK  %s (matches the signed %s)\n", f, filepath.Base(f)+release.CompressedExt)
	}
	return nil
}

// missingError is a file fluid verify needs that is not there: a refusal,
// with what to do about it.
type missingError struct {
	path string
	err  error  // from os.Stat
	hint string // what to do
}

func (m *missingError) Error() string {
	return fmt.Sprintf("%s is missing (%s; nothing was verified)", m.path, m.hint)
}
func (m *missingError) Unwrap() error { return m.err }

// mustExist returns a *missingError when path does not exist.
func mustExist(path, hint string) error {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &missingError{path: path, err: err, hint: hint}
		}
		return err
	}
	return nil
}

// sameAsDecompressed checks that img is exactly what zst decompresses to.
func sameAsDecompressed(img, zst string) error {
	want, err := hashDecompressed(zst)
	if err != nil {
		return &verdict.CheckError{Check: verdict.CheckImage, Subject: filepath.Base(zst), Err: err, Meaning: "the signed compressed image does not decompress"}
	}
	got, err := fileutil.SHA256(img)
	if err != nil {
		return err
	}
	if got != want {
		return &verdict.CheckError{Check: verdict.CheckChecksum, Subject: filepath.Base(img),
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
