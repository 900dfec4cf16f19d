package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	releasefiles "github.com/fluid-os/fluid/release"
)

// Image asset names in a release (zstd-compressed, see CompressedExt).
const (
	PGOImageAsset      = "fluid-pgo.img"
	BaselineImageAsset = "fluid-baseline.img"
	ManifestAsset      = "manifest.json"
)

// Inputs are the build outputs a release ships. Paths are taken as given;
// `mage releaseBuild` passes the images of the release recipes
// (build/fluid-pgo.img, build/fluid-baseline.img) and the PGO build's
// manifest (build/manifest-pgo.json), or the files FLUID_PGO_IMAGE,
// FLUID_IMAGE and FLUID_MANIFEST name.
type Inputs struct {
	PGOImage      string
	BaselineImage string
	Manifest      string
}

// PreparedAsset is one file written by PrepareAssets.
type PreparedAsset struct {
	Name    string // asset name
	Path    string // where it was written
	RawSize int64  // size before compression (same as Size for the manifest)
	Size    int64  // size of the asset
}

// PrepareAssets writes the release's non-CLI assets into dir (emptied first):
// each image zstd-compressed, and the manifest. goreleaser's checksum and
// release extra_files pick them up from there.
func PrepareAssets(in Inputs, dir string) ([]PreparedAsset, error) {
	type src struct{ path, name, hint string }
	srcs := []src{
		{in.PGOImage, PGOImageAsset, "build the PGO image first, or point FLUID_PGO_IMAGE at it"},
		{in.BaselineImage, BaselineImageAsset, "build the baseline image first (go tool mage build), or point FLUID_IMAGE at it"},
		{in.Manifest, ManifestAsset, "the build writes it beside the image (go tool mage build)"},
	}
	for _, s := range srcs {
		if s.path == "" {
			return nil, fmt.Errorf("release inputs: no path for %s", s.name)
		}
		if _, err := os.Stat(s.path); err != nil {
			return nil, fmt.Errorf("release input %s for %s: %w; %s", s.path, s.name, err, s.hint)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clean %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var out []PreparedAsset
	for _, s := range srcs {
		fi, err := os.Stat(s.path)
		if err != nil {
			return nil, err
		}
		a := PreparedAsset{Name: s.name, RawSize: fi.Size()}
		if s.name == ManifestAsset {
			data, err := os.ReadFile(s.path)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", s.path, err)
			}
			a.Path = filepath.Join(dir, s.name)
			if err := atomicfile.WriteFile0644(a.Path, data); err != nil {
				return nil, err
			}
		} else {
			a.Name += CompressedExt
			a.Path = filepath.Join(dir, a.Name)
			if err := CompressFile(s.path, a.Path); err != nil {
				return nil, err
			}
		}
		fi, err = os.Stat(a.Path)
		if err != nil {
			return nil, err
		}
		a.Size = fi.Size()
		out = append(out, a)
	}
	return out, nil
}

// SigningEnv is the one place that decides how a release is signed (Sign,
// run by `mage release` and `mage sign`), from the environment:
//   - COSIGN_KEY (PEM of a cosign private key) — key-based, passed through;
//   - COSIGN_KEY_FILE (path, outside the repository) — key-based; the key is
//     read and handed to cosign as COSIGN_KEY in the child's
//     environment only, never written anywhere or printed;
//   - in GitHub Actions with an OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL) —
//     keyless.
//
// Key-based signing needs COSIGN_PASSWORD set (empty for an unencrypted key).
// It returns the extra environment for the child and a description of the mode.
func SigningEnv(getenv func(string) string, lookup func(string) (string, bool), repoRoot string) ([]string, string, error) {
	if getenv("COSIGN_KEY") != "" || getenv("COSIGN_KEY_FILE") != "" {
		if _, ok := lookup("COSIGN_PASSWORD"); !ok {
			return nil, "", errors.New("signing: COSIGN_PASSWORD is not set; set it to the key's password (empty for an unencrypted key) so cosign does not prompt")
		}
	}
	if getenv("COSIGN_KEY") != "" {
		return nil, "key-based (COSIGN_KEY)", nil
	}
	if p := getenv("COSIGN_KEY_FILE"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, "", fmt.Errorf("signing: COSIGN_KEY_FILE: %w", err)
		}
		inside, err := pathInside(abs, repoRoot)
		if err != nil {
			return nil, "", fmt.Errorf("signing: COSIGN_KEY_FILE: %w", err)
		}
		if inside {
			return nil, "", fmt.Errorf("signing: COSIGN_KEY_FILE %s is inside the repository; keep private keys outside it (e.g. ~/.config/fluid/cosign.key) so they can never be committed", p)
		}
		pem, err := os.ReadFile(abs)
		if err != nil {
			return nil, "", fmt.Errorf("signing: read COSIGN_KEY_FILE: %w", err)
		}
		if !strings.Contains(string(pem), "PRIVATE KEY") {
			return nil, "", fmt.Errorf("signing: COSIGN_KEY_FILE %s does not hold a PEM private key (make one with cosign generate-key-pair)", p)
		}
		return []string{"COSIGN_KEY=" + string(pem)}, "key-based (COSIGN_KEY_FILE)", nil
	}
	if getenv("ACTIONS_ID_TOKEN_REQUEST_URL") != "" {
		// fluid checks the certificate's repository and owner IDs against
		// release/policy.json: signing in the project's repository without
		// them pinned (or with other ones) makes a release fluid refuses.
		pol, err := ParsePolicy(releasefiles.PolicyJSON())
		if err != nil {
			return nil, "", err
		}
		if err := pol.CheckSigningRepository(getenv); err != nil {
			return nil, "", err
		}
		return nil, "keyless (GitHub Actions OIDC)", nil
	}
	return nil, "", errors.New("signing: no key and no OIDC token. For a local release set COSIGN_KEY_FILE=/path/outside/repo/cosign.key and COSIGN_PASSWORD; keyless signing runs in GitHub Actions (release.yml, id-token: write)")
}

// pathInside reports whether path, with every symlink resolved, is dir or
// lies under it (dir's symlinks resolved too). It compares whole path
// components, so "<dir>/..keys" and "<dir>/...x" are inside and "<dir>/../x"
// is not, and a symlink outside that points into dir is inside.
func pathInside(path, dir string) (bool, error) {
	realPath, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, err
	}
	realPath, err = filepath.Abs(realPath)
	if err != nil {
		return false, err
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false, fmt.Errorf("repository root: %w", err)
	}
	realDir, err = filepath.Abs(realDir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(realDir, realPath)
	if err != nil {
		// No relative path (e.g. another volume): not inside.
		return false, nil
	}
	if rel == "." {
		return true, nil
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return false, nil
	}
	return true, nil
}

// GoreleaserOptions configure RunGoreleaser.
type GoreleaserOptions struct {
	Root       string   // repository root: a git work tree with .goreleaser.yaml
	Goreleaser string   // goreleaser binary (toolcache)
	Snapshot   bool     // --snapshot: no tag needed, version X.Y.Z-snapshot
	Offline    bool     // GOPROXY=off, GOFLAGS=-mod=mod: build from the module cache only
	Env        []string // extra environment (e.g. SOURCE_DATE_EPOCH)
	Stdout     io.Writer
	Stderr     io.Writer
}

// RunGoreleaser builds, archives and checksums (it does not sign: Sign
// does) the CLI release into
// Root/build/dist without publishing (publishing is Publish's job, so that a
// rerun is idempotent): `goreleaser release --clean --skip=publish,announce`.
// A tagged (non-snapshot) run keeps goreleaser's validation: a dirty tree or
// a HEAD that is not the tag is refused.
func RunGoreleaser(ctx context.Context, o GoreleaserOptions) error {
	args := []string{"release", "--clean", "--skip=publish,announce"}
	if o.Snapshot {
		args = append(args, "--snapshot")
	}
	cmd := exec.CommandContext(ctx, o.Goreleaser, args...)
	cmd.Dir = o.Root
	env := os.Environ()
	if o.Offline {
		env = append(env, "GOPROXY=off", "GOFLAGS=-mod=mod", "GOSUMDB=off")
	}
	cmd.Env = append(env, o.Env...)
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("goreleaser %s in %s: %w (its log above says which step failed)", strings.Join(args, " "), o.Root, err)
	}
	return nil
}

// ReleaseFiles returns every file to publish for a release built into
// distDir: checksums.txt, its bundle, and each asset checksums.txt lists,
// found in distDir or in assetsDir. Each listed file is checked against its
// checksum, so a stale or damaged file is never published.
func ReleaseFiles(distDir, assetsDir string) ([]string, error) {
	sumsPath := filepath.Join(distDir, ChecksumsName)
	if _, err := os.Stat(sumsPath); err != nil {
		return nil, fmt.Errorf("release files: %w; run go tool mage release first", err)
	}
	bundlePath := filepath.Join(distDir, BundleName)
	if _, err := os.Stat(bundlePath); err != nil {
		return nil, fmt.Errorf("release files: %s is missing: the release is not signed; run go tool mage release (or go tool mage sign) with a signing key", bundlePath)
	}
	listed, err := CheckedFiles(distDir, assetsDir, "")
	if err != nil {
		return nil, fmt.Errorf("release files: %w", err)
	}
	return append([]string{sumsPath, bundlePath}, listed...), nil
}

// CheckedFiles checks an unsigned or signed build in distDir: when
// wantSHA256 is not empty, checksums.txt's own SHA-256 must be it (the
// digest the build job handed over); then every asset checksums.txt lists
// must exist, in distDir or in assetsDir, with its listed SHA-256. It
// returns the listed files' paths, sorted by name.
func CheckedFiles(distDir, assetsDir, wantSHA256 string) ([]string, error) {
	sumsPath := filepath.Join(distDir, ChecksumsName)
	data, err := os.ReadFile(sumsPath)
	if err != nil {
		return nil, fmt.Errorf("%w; build the release first (go tool mage releaseBuild or release)", err)
	}
	if wantSHA256 != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, strings.TrimSpace(wantSHA256)) {
			return nil, fmt.Errorf("%s has SHA-256 %s, but the build handed over %s: refusing files that are not the ones built", sumsPath, got, wantSHA256)
		}
	}
	sums, err := ParseChecksums(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sumsPath, err)
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s lists no files", sumsPath)
	}
	names := slices.Sorted(maps.Keys(sums))
	var files []string
	for _, n := range names {
		p := filepath.Join(distDir, n)
		if _, err := os.Stat(p); err != nil {
			p = filepath.Join(assetsDir, n)
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("%s is listed in %s but found neither in %s nor in %s", n, sumsPath, distDir, assetsDir)
			}
		}
		if err := sums.VerifyFile(p, n); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	return files, nil
}

// SignOptions configure Sign.
type SignOptions struct {
	DistDir    string   // holds checksums.txt; the bundle is written beside it
	AssetsDir  string   // the images and manifest (build/release-assets)
	Cosign     string   // cosign binary (toolcache)
	WantSHA256 string   // checksums.txt's SHA-256 as the build handed it over ("" locally: not checked)
	Env        []string // from SigningEnv (the one place that decides the mode), plus e.g. COSIGN_PASSWORD
	Stdout     io.Writer
	Stderr     io.Writer
}

// SignArgs are cosign's arguments for the release signature: a Sigstore
// bundle (protobuf format, verifiable by cosign v2 and v3 and sigstore-go)
// over checksums.txt, which covers every asset. keyed (COSIGN_KEY in the
// child's environment, as SigningEnv arranges) signs with that key and
// uploads nothing; otherwise keyless: cosign finds GitHub's ambient OIDC
// token itself, gets a Fulcio certificate for the workflow's identity and
// logs the signature in Rekor.
func SignArgs(checksums, bundle string, keyed bool) []string {
	args := []string{"sign-blob", "--new-bundle-format", "--bundle=" + bundle}
	if keyed {
		args = append(args, "--key=env://COSIGN_KEY", "--tlog-upload=false")
	} else {
		args = append(args, "--tlog-upload=true")
	}
	return append(args, "--yes", checksums)
}

// Sign is the one way a release is signed (`mage release` and `mage sign`;
// goreleaser does not sign): it checks the build with CheckedFiles (the
// handed-over SHA-256 of checksums.txt, then every listed file), removes a
// stale bundle, and runs cosign sign-blob over checksums.txt, writing
// checksums.txt.sigstore.json beside it. It returns the bundle's path.
func Sign(ctx context.Context, o SignOptions) (string, error) {
	if _, err := CheckedFiles(o.DistDir, o.AssetsDir, o.WantSHA256); err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	sums := filepath.Join(o.DistDir, ChecksumsName)
	bundle := filepath.Join(o.DistDir, BundleName)
	if err := os.Remove(bundle); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("sign: %w", err)
	}
	env := append(os.Environ(), o.Env...)
	keyed := false
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "COSIGN_KEY" {
			keyed = v != ""
		}
	}
	args := SignArgs(sums, bundle, keyed)
	cmd := exec.CommandContext(ctx, o.Cosign, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if err := cmd.Run(); err != nil {
		os.Remove(bundle)
		return "", fmt.Errorf("sign: cosign %s: %w", strings.Join(args[:len(args)-1], " "), err)
	}
	if _, err := os.Stat(bundle); err != nil {
		return "", fmt.Errorf("sign: cosign wrote no bundle: %w", err)
	}
	// Signing must not have changed what it signed.
	if _, err := CheckedFiles(o.DistDir, o.AssetsDir, o.WantSHA256); err != nil {
		os.Remove(bundle)
		return "", fmt.Errorf("sign: after signing: %w", err)
	}
	return bundle, nil
}
