package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/verdict"
	releasefiles "github.com/fluid-os/fluid/release"
)

// projectPolicy is the keyless policy shipped in release/policy.json.
func projectPolicy() (release.Policy, error) {
	return release.ParsePolicy(releasefiles.PolicyJSON())
}

// policyFor returns the keyless policy for repo: the shipped one for the
// project's repository, the same rules for a fork — whose repository and
// owner IDs fluid cannot know, so a fork's policy does not pin them.
func policyFor(repo string) (release.Policy, error) {
	p, err := projectPolicy()
	if err != nil {
		return release.Policy{}, err
	}
	// GitHub's names are case-insensitive: FLUID-OS/fluid is the project.
	if repo == "" || strings.EqualFold(repo, p.Repository) {
		if keylessTest != nil && keylessTest.repositoryID != "" {
			p.RepositoryID, p.OwnerID = keylessTest.repositoryID, keylessTest.ownerID
		}
		return p, nil
	}
	fork := release.DefaultPolicy(repo)
	fork.Workflow, fork.TagPattern, fork.Issuer = p.Workflow, p.TagPattern, p.Issuer
	fork.IdentityRegexp = fork.DeriveIdentityRegexp()
	return fork, fork.Validate()
}

// keylessTest lets this package's tests verify bundles of the private test
// CA (internal/release/releasetest), which has no transparency log, and pin
// the project policy to the test repository's IDs. Nothing else sets it.
var keylessTest *struct {
	noTransparencyLog bool
	repositoryID      string
	ownerID           string
}

// verifierOptions are the flags that choose how signatures are checked.
type verifierOptions struct {
	repo        string
	key         string // --key: cosign public key file
	trustedRoot string // --trusted-root: Sigstore trusted_root.json (private deployments)
	stderr      io.Writer
	ctx         context.Context // bounds the trusted-root fetch (signals, --timeout)
}

// tufTestMirror, set only by this package's tests, points the TUF fetch at a
// local mirror.
var tufTestMirror string

// tufTimeout bounds each request of the trusted-root fetch.
const tufTimeout = 60 * time.Second

// fetchTrustedRoot fetches Sigstore's public-good trusted root through TUF
// (cached in ~/.sigstore), each request bounded by tufTimeout, the whole by
// ctx: sigstore-go's fetch takes no context, so it runs aside and is
// abandoned when ctx ends.
func fetchTrustedRoot(ctx context.Context) (*root.TrustedRoot, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	opts := tuf.DefaultOptions().WithContext(ctx)
	if tufTestMirror != "" {
		opts.RepositoryBaseURL = tufTestMirror
	}
	opts.Fetcher = fetcher.NewDefaultFetcher().NewFetcherWithHTTPClient(&http.Client{
		Timeout:   tufTimeout,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 30 * time.Second, ResponseHeaderTimeout: tufTimeout},
	})
	type result struct {
		tr  *root.TrustedRoot
		err error
	}
	done := make(chan result, 1)
	go func() {
		tr, err := root.FetchTrustedRootWithOptions(opts)
		done <- result{tr, err}
	}()
	select {
	case r := <-done:
		return r.tr, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
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
	if proj, _ := projectPolicy(); pol.Repository == proj.Repository && !pol.Pinned() {
		// The shipped policy: the release job refuses to sign keyless until
		// it pins the IDs (release.Policy.CheckSigningRepository).
		return nil, &verdict.CheckError{Check: verdict.CheckIdentity, Subject: pol.Repository,
			Err: errors.New("this fluid's release/policy.json does not pin " + pol.Repository + "'s repository and owner IDs"),
			Meaning: "no keyless release of " + pol.Repository + " can be checked for a re-created repository, so none is accepted; " +
				"use the fluid CLI from the release you verify or a newer one (the release job refuses to sign until the IDs are pinned)"}
	}
	if !pol.Pinned() && o.stderr != nil {
		fmt.Fprintf(o.stderr, "fluid: note: --repo %s: the signer is checked by repository name only; fluid cannot know that repository's GitHub IDs, so a repository deleted and re-created under the same name would pass\n", pol.Repository)
	}
	var tm root.TrustedMaterial
	if o.trustedRoot != "" {
		tr, err := root.NewTrustedRootFromPath(o.trustedRoot)
		if err != nil {
			return nil, fmt.Errorf("read --trusted-root %s: %w", o.trustedRoot, err)
		}
		tm = tr
	} else {
		tr, err := fetchTrustedRoot(o.ctx)
		if err != nil {
			return nil, &verdict.CheckError{Check: verdict.CheckNetwork, Subject: "Sigstore trusted root",
				Err:     err,
				Meaning: "keyless verification needs Sigstore's trusted root (fetched once through TUF, then cached in ~/.sigstore); check your network, or verify a key-signed release with --key"}
		}
		tm = tr
	}
	opts := release.KeylessOptions{Trusted: tm}
	if keylessTest != nil {
		opts.NoTransparencyLog = keylessTest.noTransparencyLog
	}
	return release.NewKeylessVerifier(pol, opts)
}
