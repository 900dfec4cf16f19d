// Package releasecmd is what cmd/fluid-release runs: the release half of
// the pipeline behind `go tool mage release`, `releaseBuild`, `sign`,
// `publish`, `releaseKey` and `pinPolicy` (each documented once, on its
// mage target in magefiles/release.go). Run dispatches by subcommand.
package releasecmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/github"
	"github.com/fluid-os/fluid/internal/profile/committed"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/release/toolcache"
	releasefiles "github.com/fluid-os/fluid/release"
)

// Commands are the subcommands Run knows, in the order usage lists them.
var Commands = []string{"release", "build", "sign", "publish", "release-key", "pin-policy", "tools"}

// Run runs one subcommand in the repository at or above the working
// directory.
func Run(ctx context.Context, sub string) error {
	switch sub {
	case "release":
		return Release(ctx)
	case "build":
		_, err := Build(ctx)
		return err
	case "sign":
		return Sign(ctx)
	case "publish":
		return Publish(ctx)
	case "release-key":
		return ReleaseKey(ctx)
	case "tools":
		return Tools(ctx)
	case "pin-policy":
		return PinPolicy(ctx)
	}
	return fmt.Errorf("unknown command %q; want one of %s", sub, strings.Join(Commands, ", "))
}

// Release is `go tool mage release` (documented once, on the target in
// magefiles/release.go); release.SigningEnv refuses a missing key before
// anything is built.
func Release(ctx context.Context) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	// Refuse a missing key before the long build, not after it.
	if _, _, err := release.SigningEnv(os.Getenv, os.LookupEnv, root); err != nil {
		return err
	}
	sum, err := Build(ctx)
	if err != nil {
		return err
	}
	// The digest this process just built: signing checks the files did not
	// change in between, as the sign job checks what the build job handed over.
	return sign(ctx, sum)
}

// Build is `go tool mage releaseBuild` (documented on the target in
// magefiles/release.go); it returns checksums.txt's SHA-256.
func Build(ctx context.Context) (string, error) {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return "", err
	}
	in, err := releaseImages(ctx)
	if err != nil {
		return "", err
	}
	if out, _ := exec.Command("git", "-C", root, "remote").Output(); strings.TrimSpace(string(out)) == "" {
		fmt.Println("release: WARNING: this repository has no git remote; goreleaser then leaves the commit time out of the CLI binaries' and archives' timestamps, so they will not be reproducible (add the GitHub remote)")
	}
	tag := relHeadTag(root)
	snapshot := tag == "" || os.Getenv("SNAPSHOT") == "1"
	if !snapshot {
		// fluid download refuses a release whose signed manifest does not
		// name its tag and the commit the tag points at: check it here, before
		// anything is packaged or signed.
		head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
		if err != nil {
			return "", fmt.Errorf("release: git rev-parse HEAD: %w", err)
		}
		if err := release.CheckReleaseManifest(in.Manifest, tag, strings.TrimSpace(string(head))); err != nil {
			return "", err
		}
	}
	assets, err := release.PrepareAssets(in, filepath.Join(root, "build", "release-assets"))
	if err != nil {
		return "", err
	}
	goreleaser, err := toolcache.Ensure(ctx, root, toolcache.Goreleaser, func(s string) { fmt.Println("release:", s) })
	if err != nil {
		return "", err
	}
	fmt.Printf("release: %s, unsigned build\n", map[bool]string{true: "snapshot", false: "tag " + tag}[snapshot])
	if err := release.RunGoreleaser(ctx, release.GoreleaserOptions{
		Root: root, Goreleaser: goreleaser, Snapshot: snapshot, Stdout: os.Stdout, Stderr: os.Stderr,
	}); err != nil {
		return "", err
	}
	dist := filepath.Join(root, "build", "dist")
	files, err := release.CheckedFiles(dist, filepath.Join(root, "build", "release-assets"), "")
	if err != nil {
		return "", err
	}
	for _, a := range assets {
		fmt.Printf("release: %-24s %10d bytes raw -> %9d bytes (%.1f%%)\n", a.Name, a.RawSize, a.Size, 100*float64(a.Size)/float64(a.RawSize))
	}
	sum, err := fileutil.SHA256(filepath.Join(dist, release.ChecksumsName))
	if err != nil {
		return "", err
	}
	fmt.Printf("release: %d files listed in build/dist/%s (sha256:%s), unsigned: go tool mage sign signs them\n", len(files), release.ChecksumsName, sum)
	return sum, nil
}

// Sign is `go tool mage sign` (documented on the target in
// magefiles/release.go).
func Sign(ctx context.Context) error {
	want := strings.TrimSpace(os.Getenv("FLUID_CHECKSUMS_SHA256"))
	if want == "" && os.Getenv("GITHUB_ACTIONS") == "true" {
		return errors.New("sign: FLUID_CHECKSUMS_SHA256 is not set: in GitHub Actions the signing job signs only a checksums.txt whose SHA-256 the build job handed over")
	}
	return sign(ctx, want)
}

// sign signs build/dist after checking checksums.txt against want (if not
// empty) and every file against checksums.txt: the one signing path of
// Release and Sign.
func sign(ctx context.Context, want string) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	signEnv, mode, err := release.SigningEnv(os.Getenv, os.LookupEnv, root)
	if err != nil {
		return err
	}
	cosign, err := toolcache.Ensure(ctx, root, toolcache.Cosign, func(s string) { fmt.Println("sign:", s) })
	if err != nil {
		return err
	}
	fmt.Printf("sign: signing %s\n", mode)
	dist := filepath.Join(root, "build", "dist")
	bundle, err := release.Sign(ctx, release.SignOptions{
		DistDir: dist, AssetsDir: filepath.Join(root, "build", "release-assets"), Cosign: cosign,
		WantSHA256: want, Env: signEnv, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		return err
	}
	files, err := release.ReleaseFiles(dist, filepath.Join(root, "build", "release-assets"))
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(root, bundle)
	fmt.Printf("sign: %s written; %d files in build/dist ready for `go tool mage publish`\n", rel, len(files))
	return nil
}

// Publish is `go tool mage publish` (documented on the target in
// magefiles/release.go).
func Publish(ctx context.Context) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	tag := relEnvOr("TAG", relHeadTag(root))
	if tag == "" {
		return errors.New("publish: no tag: HEAD carries no v* tag; set TAG=vX.Y.Z (snapshots are not published)")
	}
	dryRun := os.Getenv("DRY_RUN") == "1"
	token := os.Getenv("GITHUB_TOKEN")
	if token == "" && !dryRun {
		return errors.New("publish: GITHUB_TOKEN is not set (a token with contents: write on the repository); DRY_RUN=1 shows the plan without one")
	}
	pol, err := release.ParsePolicy(releasefiles.PolicyJSON())
	if err != nil {
		return err
	}
	repo := relEnvOr("GITHUB_REPOSITORY", pol.Repository)
	files, err := release.ReleaseFiles(filepath.Join(root, "build", "dist"), filepath.Join(root, "build", "release-assets"))
	if err != nil {
		return err
	}
	commit, _ := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	// The notes show the commands for what was made: keyless or key-signed,
	// read from the bundle itself.
	bundleJSON, err := os.ReadFile(filepath.Join(root, "build", "dist", release.BundleName))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	keyless, err := release.BundleIsKeyless(bundleJSON)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	notes, err := release.RenderNotes(releasefiles.NotesTemplate(), release.NotesData{
		Tag: tag, Commit: strings.TrimSpace(string(commit)), Keyless: keyless,
		Identity: release.DefaultPolicy(repo).IdentityFor(tag), Issuer: pol.Issuer,
	})
	if err != nil {
		return err
	}
	retry := github.Retry{}
	if d := os.Getenv("FLUID_RETRY_BASE_DELAY"); d != "" { // e.g. 10ms in tests
		if retry.BaseDelay, err = time.ParseDuration(d); err != nil {
			return fmt.Errorf("publish: FLUID_RETRY_BASE_DELAY=%q: %w", d, err)
		}
	}
	c, err := github.New(repo, github.Options{Token: token, APIURL: os.Getenv("GITHUB_API_URL"), Log: os.Stderr, Retry: retry})
	if err != nil {
		return err
	}
	// The tag must point at the commit the release was built from (or is
	// created there): fluid download checks the manifest's commit against it.
	res, err := c.Publish(ctx, github.PublishOptions{Tag: tag, Body: notes, Assets: files, DryRun: dryRun, Out: os.Stdout,
		Commit: strings.TrimSpace(string(commit))})
	if err != nil {
		return err
	}
	fmt.Printf("publish %s: %d uploaded, %d replaced, %d already there\n", tag, len(res.Uploaded), len(res.Replaced), len(res.Skipped))
	return nil
}

// PinPolicy is `go tool mage pinPolicy` (documented on the target in
// magefiles/release.go).
func PinPolicy(ctx context.Context) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	path := filepath.Join(root, "release", "policy.json")
	pol, err := release.ParsePolicy(releasefiles.PolicyJSON())
	if err != nil {
		return err
	}
	repo := relEnvOr("GITHUB_REPOSITORY", pol.Repository)
	if !strings.EqualFold(repo, pol.Repository) {
		return fmt.Errorf("pin policy: GITHUB_REPOSITORY is %s, but release/policy.json is %s's policy; a fork edits the policy's repository first", repo, pol.Repository)
	}
	c, err := github.New(pol.Repository, github.Options{Token: os.Getenv("GITHUB_TOKEN"), APIURL: os.Getenv("GITHUB_API_URL"), Log: os.Stderr})
	if err != nil {
		return err
	}
	rid, oid, err := c.RepositoryIDs(ctx)
	if err != nil {
		return err
	}
	p, err := release.PinPolicyFile(path, rid, oid)
	if err != nil {
		return err
	}
	fmt.Printf("pin policy: release/policy.json pins %s to repository ID %s, owner ID %s; commit it\n", p.Repository, p.RepositoryID, p.OwnerID)
	return nil
}

// ReleaseKey is `go tool mage releaseKey` (documented on the target in
// magefiles/release.go).
func ReleaseKey(ctx context.Context) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	if _, ok := os.LookupEnv("COSIGN_PASSWORD"); !ok {
		return errors.New("release key: set COSIGN_PASSWORD (the private key is encrypted with it)")
	}
	dir := os.Getenv("FLUID_KEY_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(home, ".config", "fluid")
	}
	abs, _ := filepath.Abs(dir)
	if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("release key: FLUID_KEY_DIR %s is inside the repository; pick a directory outside it", dir)
	}
	if _, err := os.Stat(filepath.Join(abs, "cosign.key")); err == nil {
		return fmt.Errorf("release key: %s already exists; move it away first", filepath.Join(abs, "cosign.key"))
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	cosign, err := toolcache.Ensure(ctx, root, toolcache.Cosign, func(s string) { fmt.Println("release key:", s) })
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, cosign, "generate-key-pair")
	cmd.Dir = abs
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("release key: cosign generate-key-pair: %w", err)
	}
	pub, err := os.ReadFile(filepath.Join(abs, "cosign.pub"))
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile0644(filepath.Join(root, "release", "cosign.pub"), pub); err != nil {
		return err
	}
	fmt.Printf("release key: private key %s (keep it secret, never commit it); public key release/cosign.pub\n", filepath.Join(abs, "cosign.key"))
	return nil
}

// Tools builds every pinned tool, the release tools of tools/go.mod
// (goreleaser, cosign) first, then act of tools/rehearse/go.mod, into the
// per-user tool cache unless they are there already, and prints their
// paths. A machine that runs this early (say, beside other work) has them
// ready for the release tests, `mage release` and act. A module that fails
// to build does not keep the others from being built and printed.
func Tools(ctx context.Context) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	bins, err := toolcache.EnsureAllModules(ctx, root, func(s string) { fmt.Println("tools:", s) })
	for _, m := range toolcache.Modules {
		for _, t := range m.Tools {
			if bins[t] != "" {
				fmt.Printf("%s\t%s\n", t.Name(), bins[t])
			}
		}
	}
	return err
}

func relEnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// relHeadTag returns the v* tag at HEAD, or "".
func relHeadTag(root string) string {
	out, err := exec.Command("git", "-C", root, "tag", "--points-at", "HEAD", "--list", "v*").Output()
	if err != nil {
		return ""
	}
	tags := strings.Fields(string(out))
	if len(tags) == 0 {
		return ""
	}
	return tags[len(tags)-1]
}

// releaseImages builds the release's two images and picks the PGO build's
// manifest, unless FLUID_PGO_IMAGE / FLUID_IMAGE / FLUID_MANIFEST name
// prebuilt files (all three).
func releaseImages(ctx context.Context) (release.Inputs, error) {
	if p, bl, m := os.Getenv("FLUID_PGO_IMAGE"), os.Getenv("FLUID_IMAGE"), os.Getenv("FLUID_MANIFEST"); p != "" || bl != "" || m != "" {
		if p == "" || bl == "" || m == "" {
			return release.Inputs{}, errors.New("set all of FLUID_PGO_IMAGE, FLUID_IMAGE and FLUID_MANIFEST to release prebuilt files, or none to build them")
		}
		fmt.Println("release: using prebuilt images from FLUID_PGO_IMAGE, FLUID_IMAGE, FLUID_MANIFEST")
		return release.Inputs{PGOImage: p, BaselineImage: bl, Manifest: m}, nil
	}
	b, unlock, err := build.NewLocked(build.OptionsFromEnv())
	if err != nil {
		return release.Inputs{}, err
	}
	defer unlock()
	if err := b.Toolchain().CheckReleasePin(); err != nil {
		return release.Inputs{}, err
	}
	imgs, err := b.Release(ctx, committed.Dir{Root: b.Root()})
	if err != nil {
		return release.Inputs{}, err
	}
	base, pgo := imgs[recipe.Baseline.Name], imgs[recipe.PGO.Name]
	fmt.Printf("release: images %s (%s) and %s (%s)\n", b.Rel(base.Image), base.Summary, b.Rel(pgo.Image), pgo.Summary)
	return release.Inputs{PGOImage: pgo.Image, BaselineImage: base.Image, Manifest: pgo.Manifest}, nil
}
