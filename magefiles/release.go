//go:build mage

package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"

	"github.com/magefile/mage/sh"
)

// Release builds a signed release into build/dist without publishing it, in one go: releaseBuild, then sign. Signing: COSIGN_KEY_FILE (outside the repo) + COSIGN_PASSWORD locally, keyless in GitHub Actions.
func Release() error { return fluidRelease("release") }

// ReleaseBuild builds an unsigned release into build/dist: refuses a toolchain off the LLVM 18 pin (FLUID_RELEASE_ALLOW_LLVM=<major> overrides), builds build/fluid-baseline.img and build/fluid-pgo.img (PGO from the committed profiles; a stale profile is an error) and compresses them with the PGO build's manifest into build/release-assets (FLUID_PGO_IMAGE, FLUID_IMAGE, FLUID_MANIFEST use given files instead), then runs goreleaser (pinned in tools/go.mod): the fluid CLI for 6 platforms, SBOMs, checksums.txt over every asset. A snapshot unless HEAD carries a v* tag (SNAPSHOT=1 forces one). Prints the asset sizes and checksums.txt's SHA-256.
func ReleaseBuild() error { return fluidRelease("build") }

// Sign signs the release in build/dist (built by `mage releaseBuild`, or handed over by release.yml's build job) without building anything: checks checksums.txt's SHA-256 against FLUID_CHECKSUMS_SHA256 (required in GitHub Actions, where the build job hands it over) and every file it lists against it, then runs cosign sign-blob (pinned in tools/go.mod), writing build/dist/checksums.txt.sigstore.json. Signing: COSIGN_KEY_FILE (outside the repo) or COSIGN_KEY + COSIGN_PASSWORD locally, keyless through GitHub's OIDC token in GitHub Actions.
func Sign() error { return fluidRelease("sign") }

// Publish uploads the release built by `mage release` to GitHub through go-github: creates or updates the release for TAG (default: the v* tag at HEAD), skips assets already there with the same size and SHA-256, replaces changed or half-uploaded ones, never duplicates; retries on 5xx and waits out rate limits. GITHUB_TOKEN authenticates; GITHUB_REPOSITORY (owner/name) and GITHUB_API_URL choose the target (FLUID_RETRY_BASE_DELAY shortens the backoff); DRY_RUN=1 prints what it would do and changes nothing.
func Publish() error { return fluidRelease("publish") }

// ReleaseKey makes a cosign key pair for local key-signed releases: the encrypted private key goes to FLUID_KEY_DIR (default ~/.config/fluid, never inside the repository), the public key to release/cosign.pub. Needs COSIGN_PASSWORD. Refuses to overwrite an existing key.
func ReleaseKey() error { return fluidRelease("release-key") }

// PinPolicy writes the repository's and its owner's GitHub IDs into release/policy.json (from GET /repos/{owner}/{repo}; GITHUB_REPOSITORY, default the policy's repository; GITHUB_TOKEN optional, GITHUB_API_URL for another server). fluid checks a keyless release's certificate against them, so a repository re-created under the same name fails; the release job refuses to sign keyless until they are pinned. Refuses to change IDs already pinned to other values. Commit the file.
func PinPolicy() error { return fluidRelease("pin-policy") }

// VerifyBench prints how long verifying a release image takes (signature over checksums.txt, SHA-256 of the compressed image, decompression) and the compressed vs raw size, using build/fluid.img when built, else a generated 64 MiB image.
func VerifyBench() error {
	return sh.RunV("go", "test", "-run", "^$", "-bench", "VerifyImage", "-benchtime", "5x", "./internal/release/")
}

// fluidRelease runs cmd/fluid-release, which implements the release targets
// above (their documentation is here, once): the release code lives outside
// the mage binary so every other target starts fast.
func fluidRelease(sub string) error { return goRunCmd("./cmd/fluid-release", sub) }

// goRunCmd runs a command of this module, `go -C MODULE run PKG ARGS...`,
// for targets whose code would make the mage binary big. The command runs in
// mage's working directory (-w; FLUID_WORKDIR tells it), which need not be
// this checkout, so the module is found from this file's compiled-in path
// (mage builds without -trimpath) rather than from the working directory.
func goRunCmd(pkg string, args ...string) error {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("cannot locate the magefiles directory")
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	return sh.RunWithV(map[string]string{"FLUID_WORKDIR": wd}, "go", append([]string{"-C", filepath.Dir(filepath.Dir(self)), "run", pkg}, args...)...)
}
