//go:build mage

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/magefile/mage/mg"
)

// Release builds a signed release into build/dist without publishing it, in one go: releaseBuild, then sign. Signing: COSIGN_KEY_FILE (outside the repo) + COSIGN_PASSWORD locally, keyless in GitHub Actions.
func Release() error { return fluidRelease("release") }

// ReleaseBuild builds an unsigned release into build/dist: refuses a toolchain off the LLVM 18 pin (FLUID_RELEASE_ALLOW_LLVM=<major> overrides), builds build/fluid-baseline.img and build/fluid-pgo.img (PGO from the committed profiles; a stale profile is an error) and compresses them with the PGO build's manifest into build/release-assets (FLUID_PGO_IMAGE, FLUID_IMAGE, FLUID_MANIFEST use given files instead), then runs goreleaser (pinned in tools/go.mod): the fluid CLI for 6 platforms, SBOMs, checksums.txt over every asset. A snapshot unless HEAD carries a v* tag (SNAPSHOT=1 forces one). Prints the asset sizes and checksums.txt's SHA-256.
func ReleaseBuild() error { return fluidRelease("build") }

// Sign signs the release in build/dist without building anything: checks checksums.txt's SHA-256 against FLUID_CHECKSUMS_SHA256 (required in GitHub Actions) and every file it lists, then cosign sign-blob writes build/dist/checksums.txt.sigstore.json. COSIGN_KEY_FILE (outside the repo) + COSIGN_PASSWORD locally, keyless in GitHub Actions.
func Sign() error { return fluidRelease("sign") }

// Publish uploads the release built by `mage release` to GitHub through go-github: creates or updates the release for TAG (default: the v* tag at HEAD), skips assets already there with the same size and SHA-256, replaces changed or half-uploaded ones, never duplicates; retries on 5xx and waits out rate limits. GITHUB_TOKEN authenticates; GITHUB_REPOSITORY (owner/name) and GITHUB_API_URL choose the target (FLUID_RETRY_BASE_DELAY shortens the backoff); DRY_RUN=1 prints what it would do and changes nothing.
func Publish() error { return fluidRelease("publish") }

// ReleaseKey makes a cosign key pair for local key-signed releases: the encrypted private key goes to FLUID_KEY_DIR (default ~/.config/fluid, never inside the repository), the public key to release/cosign.pub. Needs COSIGN_PASSWORD. Refuses to overwrite an existing key.
func ReleaseKey() error { return fluidRelease("release-key") }

// PinPolicy writes the repository's and its owner's GitHub IDs into release/policy.json (from the GitHub API; GITHUB_TOKEN optional). fluid checks keyless releases against them; the release job refuses to sign keyless until they are pinned. Commit the file.
func PinPolicy() error { return fluidRelease("pin-policy") }

// VerifyBench prints how long verifying a release image takes (signature over checksums.txt, SHA-256 of the compressed image, decompression) and the compressed vs raw size, using build/fluid.img when built, else a generated 64 MiB image.
func VerifyBench() error {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "VerifyImage", "-benchtime", "5x", "./internal/release/")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// fluidRelease runs cmd/fluid-release: the release code lives outside the
// mage binary so every other target starts fast.
func fluidRelease(sub string) error { return goRunCmd("./cmd/fluid-release", sub) }

// goRunCmd runs a command of this module (`go run PKG ARGS...`) in mage's
// working directory, for targets whose code would make the mage binary big.
func goRunCmd(pkg string, args ...string) error {
	// The module holding this magefile (mage compiles without -trimpath);
	// the command runs in mage's working directory (-w), like a target.
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("cannot locate the magefiles directory")
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", append([]string{"run", pkg}, args...)...)
	cmd.Dir = filepath.Dir(filepath.Dir(self))
	cmd.Env = append(os.Environ(), "FLUID_WORKDIR="+wd)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return mg.Fatalf(ee.ExitCode(), "%s %v failed (see above)", pkg, args)
		}
		return err
	}
	return nil
}
