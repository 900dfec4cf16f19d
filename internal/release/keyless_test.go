package release

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/fluid-os/fluid/internal/release/toolcache"
	relfiles "github.com/fluid-os/fluid/release"
)

// testCA is a private Fulcio-like certificate authority: a root that issues
// short-lived code-signing certificates carrying a workflow identity (SAN URI)
// and the OIDC issuer extension, as Fulcio does for GitHub Actions.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fluid test fulcio", Organization: []string{"fluid-test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// trustedRoot is a sigstore-go trusted root holding only this CA.
func (ca *testCA) trustedRoot(t *testing.T) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca.cert, URI: "https://fulcio.test"}},
		nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// signBundle issues a certificate for (san, issuer), signs data with its key
// and returns the protobuf Sigstore bundle as JSON.
func (ca *testCA) signBundle(t *testing.T, san, issuer string, data []byte) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(san)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(10 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:         []*url.URL{u},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: v2},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(data)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: der}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type keylessCase struct {
	name      string
	ca        *testCA
	san       string
	issuer    string
	data      []byte // what is verified; nil = what was signed
	wantCheck Check
	wantMsg   string
}

const goodSAN = "https://github.com/fluid-os/fluid/.github/workflows/release.yml@refs/tags/v1.2.3"

var keylessSums = []byte("0000000000000000000000000000000000000000000000000000000000000000  fluid-pgo.img.zst\n")

// keylessCases: the release workflow on a tag, and every way to miss it.
func keylessCases(ca, other *testCA) []keylessCase {
	return []keylessCase{
		{name: "release workflow on a tag", ca: ca, san: goodSAN, issuer: GitHubActionsIssuer},
		{name: "another repository", ca: ca, san: "https://github.com/evil/fluid/.github/workflows/release.yml@refs/tags/v1.2.3",
			issuer: GitHubActionsIssuer, wantCheck: CheckIdentity, wantMsg: "names repository evil/fluid, policy requires fluid-os/fluid"},
		{name: "another workflow", ca: ca, san: "https://github.com/fluid-os/fluid/.github/workflows/ci.yml@refs/tags/v1.2.3",
			issuer: GitHubActionsIssuer, wantCheck: CheckIdentity, wantMsg: "names workflow .github/workflows/ci.yml, policy requires .github/workflows/release.yml"},
		{name: "a branch instead of a tag", ca: ca, san: "https://github.com/fluid-os/fluid/.github/workflows/release.yml@refs/heads/main",
			issuer: GitHubActionsIssuer, wantCheck: CheckIdentity, wantMsg: "names ref refs/heads/main, policy requires a ref starting with refs/tags/v"},
		{name: "a tag not starting with v", ca: ca, san: "https://github.com/fluid-os/fluid/.github/workflows/release.yml@refs/tags/nightly",
			issuer: GitHubActionsIssuer, wantCheck: CheckIdentity, wantMsg: "names ref refs/tags/nightly"},
		{name: "another issuer", ca: ca, san: goodSAN, issuer: "https://accounts.google.com",
			wantCheck: CheckIssuer, wantMsg: `certificate issuer is "https://accounts.google.com", policy requires "https://token.actions.githubusercontent.com"`},
		{name: "untrusted certificate authority", ca: other, san: goodSAN, issuer: GitHubActionsIssuer,
			wantCheck: CheckSignature, wantMsg: "certificate"},
		{name: "checksums altered after signing", ca: ca, san: goodSAN, issuer: GitHubActionsIssuer,
			data: []byte(strings.Replace(string(keylessSums), "0000", "1111", 1)), wantCheck: CheckSignature},
	}
}

func TestKeylessPolicy(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	pol := DefaultPolicy("fluid-os/fluid")
	v, err := NewKeylessVerifier(pol, KeylessOptions{Trusted: ca.trustedRoot(t), NoTransparencyLog: true})
	if err != nil {
		t.Fatal(err)
	}
	sums := keylessSums
	for _, tt := range keylessCases(ca, other) {
		t.Run(tt.name, func(t *testing.T) {
			bundle := tt.ca.signBundle(t, tt.san, tt.issuer, sums)
			data := tt.data
			if data == nil {
				data = sums
			}
			id, err := v.VerifyChecksums(bundle, data)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("refused the release workflow's signature: %v", err)
				}
				if id.SAN != tt.san || id.Issuer != tt.issuer {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CheckError (%s)", err, tt.wantCheck)
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

// A key-based verifier must not accept a keyless bundle, and a keyless
// verifier requires a transparency log entry unless told otherwise.
func TestKeylessNeedsTlogByDefault(t *testing.T) {
	ca := newTestCA(t)
	v, err := NewKeylessVerifier(DefaultPolicy("fluid-os/fluid"), KeylessOptions{Trusted: ca.trustedRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	sums := []byte("x\n")
	b := ca.signBundle(t, "https://github.com/fluid-os/fluid/.github/workflows/release.yml@refs/tags/v1.0.0", GitHubActionsIssuer, sums)
	_, err = v.VerifyChecksums(b, sums)
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Check != CheckSignature {
		t.Fatalf("bundle without a Rekor entry accepted or wrong error: %v", err)
	}
}

// The real cosign CLI, given the same trusted root and the policy from
// release/policy.json, must agree with sigstore-go on every case.
func TestKeylessPolicyWithCosignCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the cosign binary from tools/go.mod; skipped with -short")
	}
	root, err := toolcache.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	cosign, err := toolcache.Ensure(context.Background(), root, toolcache.Cosign, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	pol, err := ParsePolicy(relfiles.PolicyJSON())
	if err != nil {
		t.Fatal(err)
	}
	ca, other := newTestCA(t), newTestCA(t)
	dir := t.TempDir()
	trJSON, err := ca.trustedRoot(t).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	tr := filepath.Join(dir, "trusted_root.json")
	os.WriteFile(tr, trJSON, 0o644)
	for _, tt := range keylessCases(ca, other) {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			data := tt.data
			if data == nil {
				data = keylessSums
			}
			os.WriteFile(filepath.Join(d, ChecksumsName), data, 0o644)
			os.WriteFile(filepath.Join(d, BundleName), tt.ca.signBundle(t, tt.san, tt.issuer, keylessSums), 0o644)
			// No Rekor in a private test CA: the log and SCT checks are off,
			// everything else (chain, signature, identity, issuer) is real.
			cmd := exec.Command(cosign, "verify-blob", "--bundle", BundleName, "--new-bundle-format", "--trusted-root", tr,
				"--certificate-identity-regexp", pol.IdentityRegexp, "--certificate-oidc-issuer", pol.Issuer,
				"--insecure-ignore-tlog", "--insecure-ignore-sct", ChecksumsName)
			cmd.Dir = d
			out, err := cmd.CombinedOutput()
			if tt.wantCheck == "" && err != nil {
				t.Fatalf("cosign refused the release workflow's signature: %v\n%s", err, out)
			}
			if tt.wantCheck != "" && err == nil {
				t.Fatalf("cosign accepted %s:\n%s", tt.name, out)
			}
		})
	}
}
