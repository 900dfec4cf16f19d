package release

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/release/releasetest"
	"github.com/fluid-os/fluid/internal/release/toolcache"
	"github.com/fluid-os/fluid/internal/verdict"
	releasefiles "github.com/fluid-os/fluid/release"
)

type keylessCase struct {
	name      string
	ca        *releasetest.CA
	cert      func(*releasetest.Cert) // changes the release workflow's certificate
	data      []byte                  // what is verified; nil = what was signed
	wantCheck verdict.Check
	wantMsg   string
	// cosignBlind: the cosign CLI has no flag for this check (the repository
	// and owner IDs, the source-repository extensions), so only fluid refuses.
	cosignBlind bool
}

const (
	testTag     = "v1.2.3"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testRepoID  = "812345678"
	testOwnerID = "98765432"
)

var keylessSums = []byte("0000000000000000000000000000000000000000000000000000000000000000  fluid-pgo.img.zst\n")

func ref(tag string) func(*releasetest.Cert) {
	return func(c *releasetest.Cert) {
		c.SAN = "https://github.com/fluid-os/fluid/.github/workflows/release.yml@" + tag
		c.SourceRef = tag
	}
}

// keylessCases: the release workflow on a release tag, and every way to miss it.
func keylessCases(ca, other *releasetest.CA) []keylessCase {
	return []keylessCase{
		{name: "release workflow on a tag", ca: ca},
		{name: "release workflow on a prerelease tag", ca: ca, cert: ref("refs/tags/v2.0.0-rc.1")},
		{name: "another repository", ca: ca, cert: func(c *releasetest.Cert) {
			*c = releasetest.Workflow("evil/fluid", testTag, testCommit, testRepoID, testOwnerID)
		}, wantCheck: verdict.CheckIdentity, wantMsg: "names repository evil/fluid, policy requires fluid-os/fluid"},
		{name: "another workflow", ca: ca, cert: func(c *releasetest.Cert) {
			c.SAN = "https://github.com/fluid-os/fluid/.github/workflows/ci.yml@refs/tags/v1.2.3"
		}, wantCheck: verdict.CheckIdentity, wantMsg: "names workflow .github/workflows/ci.yml, policy requires .github/workflows/release.yml"},
		{name: "a branch instead of a tag", ca: ca, cert: ref("refs/heads/main"),
			wantCheck: verdict.CheckIdentity, wantMsg: "names ref refs/heads/main, policy requires a release tag"},
		{name: "a tag not starting with v", ca: ca, cert: ref("refs/tags/nightly"), wantCheck: verdict.CheckIdentity, wantMsg: "names ref refs/tags/nightly"},
		{name: "a v tag that is not a version", ca: ca, cert: ref("refs/tags/vfoo"), wantCheck: verdict.CheckIdentity, wantMsg: "names ref refs/tags/vfoo"},
		{name: "a version tag with a suffix", ca: ca, cert: ref("refs/tags/v1.2.3.evil"), wantCheck: verdict.CheckIdentity, wantMsg: "names ref refs/tags/v1.2.3.evil"},
		{name: "another issuer", ca: ca, cert: func(c *releasetest.Cert) { c.Issuer = "https://accounts.google.com" },
			wantCheck: verdict.CheckIssuer, wantMsg: `certificate issuer is "https://accounts.google.com", policy requires "https://token.actions.githubusercontent.com"`},
		{name: "untrusted certificate authority", ca: other, wantCheck: verdict.CheckSignature, wantMsg: "certificate"},
		{name: "no signed certificate timestamp", ca: ca, cert: func(c *releasetest.Cert) { c.NoSCT = true },
			wantCheck: verdict.CheckSignature, wantMsg: "SCT"},
		{name: "timestamp from a log not in the trusted root", ca: ca, cert: func(c *releasetest.Cert) { c.OtherLogSCT = true },
			wantCheck: verdict.CheckSignature, wantMsg: "SCT"},
		{name: "repository re-created under the same name", ca: ca, cert: func(c *releasetest.Cert) { c.RepositoryID = "999" },
			wantCheck: verdict.CheckIdentity, wantMsg: `was issued to repository ID "999", policy pins fluid-os/fluid's ID 812345678`, cosignBlind: true},
		{name: "owner account re-registered", ca: ca, cert: func(c *releasetest.Cert) { c.OwnerID = "4242" },
			wantCheck: verdict.CheckIdentity, wantMsg: `was issued to owner ID "4242"`, cosignBlind: true},
		{name: "no repository ID", ca: ca, cert: func(c *releasetest.Cert) { c.RepositoryID, c.OwnerID = "", "" },
			wantCheck: verdict.CheckIdentity, wantMsg: `repository ID ""`, cosignBlind: true},
		{name: "run of another source repository", ca: ca, cert: func(c *releasetest.Cert) { c.SourceRepository = "https://github.com/evil/fluid" },
			wantCheck: verdict.CheckIdentity, wantMsg: `source repository "https://github.com/evil/fluid"`, cosignBlind: true},
		{name: "run of a branch with a tag's workflow", ca: ca, cert: func(c *releasetest.Cert) { c.SourceRef = "refs/heads/main" },
			wantCheck: verdict.CheckIdentity, wantMsg: `source ref "refs/heads/main"`, cosignBlind: true},
		{name: "no source commit", ca: ca, cert: func(c *releasetest.Cert) { c.Commit = "" },
			wantCheck: verdict.CheckIdentity, wantMsg: "records no source commit", cosignBlind: true},
		{name: "checksums altered after signing", ca: ca,
			data: []byte(strings.Replace(string(keylessSums), "0000", "1111", 1)), wantCheck: verdict.CheckSignature},
	}
}

func (tt keylessCase) bundle(t *testing.T) []byte {
	c := releasetest.Workflow("fluid-os/fluid", testTag, testCommit, testRepoID, testOwnerID)
	if tt.cert != nil {
		tt.cert(&c)
	}
	return tt.ca.Sign(t, c, keylessSums)
}

// pinnedPolicy is the project's policy with the test repository's IDs.
func pinnedPolicy(t *testing.T) Policy {
	p, err := ParsePolicy(releasefiles.PolicyJSON())
	if err != nil {
		t.Fatal(err)
	}
	p.RepositoryID, p.OwnerID = testRepoID, testOwnerID
	return p
}

func TestKeylessPolicy(t *testing.T) {
	ca := releasetest.NewCA(t)
	other := releasetest.NewCA(t)
	v, err := NewKeylessVerifier(pinnedPolicy(t), KeylessOptions{Trusted: ca.TrustedRoot(t), NoTransparencyLog: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range keylessCases(ca, other) {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data
			if data == nil {
				data = keylessSums
			}
			id, err := v.VerifyChecksums(tt.bundle(t), data)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("refused the release workflow's signature: %v", err)
				}
				if id.Commit != testCommit || id.RepositoryID != testRepoID || !strings.HasSuffix(id.SAN, "@refs/tags/"+id.Tag) {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			var ce *verdict.CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *verdict.CheckError (%s)", err, tt.wantCheck)
			}
			if ce.Check != tt.wantCheck {
				t.Fatalf("check = %s, want %s (err: %v)", ce.Check, tt.wantCheck, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("message %q does not name what did not match (%q)", err, tt.wantMsg)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// A policy that does not pin the IDs (a fork given with --repo) accepts any;
// one that pins them takes the IDs from the certificate, not from the name.
func TestKeylessUnpinnedPolicy(t *testing.T) {
	ca := releasetest.NewCA(t)
	v, err := NewKeylessVerifier(DefaultPolicy("fluid-os/fluid"), KeylessOptions{Trusted: ca.TrustedRoot(t), NoTransparencyLog: true})
	if err != nil {
		t.Fatal(err)
	}
	b := ca.Sign(t, releasetest.Workflow("fluid-os/fluid", testTag, testCommit, "1", "2"), keylessSums)
	if _, err := v.VerifyChecksums(b, keylessSums); err != nil {
		t.Fatalf("unpinned policy refused: %v", err)
	}
}

// A keyless verifier requires a transparency log entry unless told otherwise.
func TestKeylessNeedsTlogByDefault(t *testing.T) {
	ca := releasetest.NewCA(t)
	v, err := NewKeylessVerifier(pinnedPolicy(t), KeylessOptions{Trusted: ca.TrustedRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	b := ca.Sign(t, releasetest.Workflow("fluid-os/fluid", testTag, testCommit, testRepoID, testOwnerID), keylessSums)
	_, err = v.VerifyChecksums(b, keylessSums)
	var ce *verdict.CheckError
	if !errors.As(err, &ce) || ce.Check != verdict.CheckSignature {
		t.Fatalf("bundle without a Rekor entry accepted or wrong error: %v", err)
	}
}

// The real cosign CLI, given the same trusted root (with its CT log, so the
// SCT is checked) and the exact identity SECURITY.md tells users to pass
// for a tag, must agree with fluid on every case it has a flag for.
func TestKeylessPolicyWithCosignCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the cosign binary from tools/go.mod; skipped with -short")
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	cosign, err := toolcache.Ensure(context.Background(), root, toolcache.Cosign, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	pol := pinnedPolicy(t)
	ca, other := releasetest.NewCA(t), releasetest.NewCA(t)
	tr := ca.WriteTrustedRoot(t, t.TempDir())
	for _, tt := range keylessCases(ca, other) {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			data := tt.data
			if data == nil {
				data = keylessSums
			}
			os.WriteFile(filepath.Join(d, ChecksumsName), data, 0o644)
			os.WriteFile(filepath.Join(d, BundleName), tt.bundle(t), 0o644)
			tag := testTag
			if tt.name == "release workflow on a prerelease tag" {
				tag = "v2.0.0-rc.1"
			}
			// No Rekor in the test CA: the log check is off; the SCT, the
			// chain, the signature, the identity and the issuer are real.
			for _, idArgs := range [][]string{
				{"--certificate-identity", pol.IdentityFor(tag)},
				{"--certificate-identity-regexp", pol.IdentityRegexp},
			} {
				args := append([]string{"verify-blob", "--bundle", BundleName, "--new-bundle-format", "--trusted-root", tr}, idArgs...)
				cmd := exec.Command(cosign, append(args, "--certificate-oidc-issuer", pol.Issuer, "--insecure-ignore-tlog", ChecksumsName)...)
				cmd.Dir = d
				out, err := cmd.CombinedOutput()
				switch {
				case (tt.wantCheck == "" || tt.cosignBlind) && err != nil:
					t.Fatalf("cosign %s refused: %v\n%s", idArgs[0], err, out)
				case tt.wantCheck != "" && !tt.cosignBlind && err == nil:
					t.Fatalf("cosign %s accepted %s:\n%s", idArgs[0], tt.name, out)
				}
			}
		})
	}
}
