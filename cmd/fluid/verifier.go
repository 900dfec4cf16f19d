package main

import (
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/fluid-os/fluid/internal/release"
	relfiles "github.com/fluid-os/fluid/release"
)

// projectPolicy is the keyless policy shipped in release/policy.json.
func projectPolicy() (release.Policy, error) {
	return release.ParsePolicy(relfiles.PolicyJSON())
}

// policyFor returns the keyless policy for repo: the shipped one for the
// project's repository, the same rules for a fork.
func policyFor(repo string) (release.Policy, error) {
	p, err := projectPolicy()
	if err != nil {
		return release.Policy{}, err
	}
	if repo == "" || repo == p.Repository {
		return p, nil
	}
	fork := release.DefaultPolicy(repo)
	fork.Workflow, fork.RefPrefix, fork.Issuer = p.Workflow, p.RefPrefix, p.Issuer
	fork.IdentityRegexp = fork.DeriveIdentityRegexp()
	return fork, fork.Validate()
}

// verifierOptions are the flags that choose how signatures are checked.
type verifierOptions struct {
	repo        string
	key         string // --key: cosign public key file
	trustedRoot string // --trusted-root: Sigstore trusted_root.json (private deployments)
}

// newVerifier builds the verifier the flags ask for: key-based with --key,
// otherwise keyless against the Sigstore public-good trusted root (fetched
// and cached through TUF) or --trusted-root.
func newVerifier(o verifierOptions) (*release.Verifier, error) {
	if o.key != "" {
		pem, err := os.ReadFile(o.key)
		if err != nil {
			return nil, fmt.Errorf("read --key %s: %w", o.key, err)
		}
		return release.NewKeyVerifier(pem, o.key)
	}
	pol, err := policyFor(o.repo)
	if err != nil {
		return nil, err
	}
	var tm root.TrustedMaterial
	if o.trustedRoot != "" {
		tr, err := root.NewTrustedRootFromPath(o.trustedRoot)
		if err != nil {
			return nil, fmt.Errorf("read --trusted-root %s: %w", o.trustedRoot, err)
		}
		tm = tr
	} else {
		tr, err := root.FetchTrustedRoot()
		if err != nil {
			return nil, &release.CheckError{Check: release.CheckNetwork, Subject: "Sigstore trusted root",
				Err:     err,
				Meaning: "keyless verification needs Sigstore's trusted root (fetched once through TUF, then cached in ~/.sigstore); check your network, or verify a key-signed release with --key"}
		}
		tm = tr
	}
	return release.NewKeylessVerifier(pol, release.KeylessOptions{Trusted: tm})
}
