// Package releasetest is a private Sigstore for tests: a Fulcio-like
// certificate authority that issues GitHub Actions workflow certificates
// (the SAN URI and the Fulcio extensions GitHub's OIDC token fills in), a
// certificate transparency log whose signed certificate timestamps it embeds,
// and the protobuf bundles cosign sign-blob --new-bundle-format writes. It has
// no Rekor: verifiers run with release.KeylessOptions.NoTransparencyLog, and
// the cosign CLI with --insecure-ignore-tlog. Everything else — the chain, the
// SCT, the signature, the identity and the extensions — is checked for real.
package releasetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"
)

// Issuer is GitHub Actions' OIDC issuer (release.GitHubActionsIssuer).
const Issuer = "https://token.actions.githubusercontent.com"

// CA is a root certificate authority with its own CT log.
type CA struct {
	Cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	ctKey  *ecdsa.PrivateKey
	serial int64
}

// NewCA makes a CA and a CT log, valid from an hour ago for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fluid test fulcio", Organization: []string{"fluid-test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
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
	return &CA{Cert: cert, key: key, ctKey: newKey(t), serial: 100}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logID is the CT log's ID: the SHA-256 of its DER public key.
func (ca *CA) logID(t testing.TB) [32]byte {
	der, err := x509.MarshalPKIXPublicKey(&ca.ctKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(der)
}

// TrustedRoot is a sigstore-go trusted root holding this CA and its CT log.
func (ca *CA) TrustedRoot(t testing.TB) *root.TrustedRoot {
	t.Helper()
	id := ca.logID(t)
	ctlogs := map[string]*root.TransparencyLog{hex.EncodeToString(id[:]): {
		BaseURL: "https://ctfe.test", ID: id[:], HashFunc: crypto.SHA256, PublicKey: &ca.ctKey.PublicKey,
		SignatureHashFunc: crypto.SHA256, ValidityPeriodStart: time.Now().Add(-time.Hour),
	}}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca.Cert, URI: "https://fulcio.test",
			ValidityPeriodStart: time.Now().Add(-time.Hour)}},
		ctlogs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// WriteTrustedRoot writes the trusted root as trusted_root.json into dir (for
// --trusted-root) and returns its path.
func (ca *CA) WriteTrustedRoot(t testing.TB, dir string) string {
	t.Helper()
	data, err := ca.TrustedRoot(t).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Cert is what a signing certificate says. Workflow fills it in as Fulcio
// does for a GitHub Actions run; tests then change one field.
type Cert struct {
	SAN    string // the workflow identity: https://github.com/<repo>/<workflow>@<ref>
	Issuer string
	// The Fulcio extensions (1.3.6.1.4.1.57264.1.12, .14, .13, .15, .17).
	SourceRepository, SourceRef, Commit string
	RepositoryID, OwnerID               string
	// NoSCT leaves out the signed certificate timestamp; OtherLogSCT signs
	// it with a log the trusted root does not hold.
	NoSCT, OtherLogSCT bool
}

// Workflow is the certificate Fulcio issues to repo's release workflow run
// for tag at commit, with GitHub's numeric repository and owner IDs.
func Workflow(repo, tag, commit, repoID, ownerID string) Cert {
	return Cert{
		SAN:              "https://github.com/" + repo + "/.github/workflows/release.yml@refs/tags/" + tag,
		Issuer:           Issuer,
		SourceRepository: "https://github.com/" + repo,
		SourceRef:        "refs/tags/" + tag,
		Commit:           commit,
		RepositoryID:     repoID,
		OwnerID:          ownerID,
	}
}

var (
	oidIssuerV1     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidSourceRepo   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}
	oidSourceDigest = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 13}
	oidSourceRef    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 14}
	oidRepoID       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 15}
	oidOwnerID      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 17}
	oidSCTList      = asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT)
)

// Sign issues a certificate saying c, signs data with its key, and returns
// the protobuf Sigstore bundle (v0.3) as JSON.
func (ca *CA) Sign(t testing.TB, c Cert, data []byte) []byte {
	t.Helper()
	key := newKey(t)
	u, err := url.Parse(c.SAN)
	if err != nil {
		t.Fatal(err)
	}
	exts := []pkix.Extension{{Id: oidIssuerV1, Value: []byte(c.Issuer)}, {Id: oidIssuerV2, Value: derString(t, c.Issuer)}}
	for _, e := range []struct {
		id  asn1.ObjectIdentifier
		val string
	}{{oidSourceRepo, c.SourceRepository}, {oidSourceDigest, c.Commit}, {oidSourceRef, c.SourceRef}, {oidRepoID, c.RepositoryID}, {oidOwnerID, c.OwnerID}} {
		if e.val != "" {
			exts = append(exts, pkix.Extension{Id: e.id, Value: derString(t, e.val)})
		}
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(ca.serial),
		NotBefore:       time.Now().Add(-time.Minute).Truncate(time.Second),
		NotAfter:        time.Now().Add(10 * time.Minute).Truncate(time.Second),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:            []*url.URL{u},
		ExtraExtensions: exts,
	}
	der := ca.issue(t, tmpl, &key.PublicKey)
	if !c.NoSCT {
		// Fulcio's flow: the log signs the precertificate (the TBS without the
		// SCT list), then the certificate is issued with the SCT embedded.
		pre, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		logKey, logID := ca.ctKey, ca.logID(t)
		if c.OtherLogSCT {
			logKey = newKey(t)
			d, _ := x509.MarshalPKIXPublicKey(&logKey.PublicKey)
			logID = sha256.Sum256(d)
		}
		sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: logID}, Timestamp: uint64(time.Now().UnixMilli())}
		input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
			Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
			TimestampedEntry: &ct.TimestampedEntry{Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
				PrecertEntry: &ct.PreCert{IssuerKeyHash: sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo), TBSCertificate: pre.RawTBSCertificate}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(input)
		sig, err := logKey.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
		list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := cttls.Marshal(*list)
		if err != nil {
			t.Fatal(err)
		}
		val, err := asn1.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSCTList, Value: val})
		der = ca.issue(t, tmpl, &key.PublicKey)
	}
	return bundle(t, key, data, &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: der}},
	})
}

// bundle signs data's SHA-256 with key and returns, as JSON, the v0.3
// Sigstore bundle holding that message signature and the verification
// material vm (a certificate or a public key hint).
func bundle(t testing.TB, key *ecdsa.PrivateKey, data []byte, vm *protobundle.VerificationMaterial) []byte {
	t.Helper()
	digest := sha256.Sum256(data)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	out, err := protojson.Marshal(&protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) []byte {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func derString(t testing.TB, s string) []byte {
	v, err := asn1.MarshalWithParams(s, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Key is a cosign key pair's stand-in: an ECDSA P-256 key whose bundles have
// the shape of `cosign sign-blob --key --new-bundle-format --tlog-upload=false`
// (a public key hint, no certificate, no log entry).
type Key struct {
	priv   *ecdsa.PrivateKey
	PubPEM []byte // the public key as cosign.pub holds it
}

// NewKey makes a key pair.
func NewKey(t testing.TB) *Key {
	t.Helper()
	k := newKey(t)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{priv: k, PubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// Sign signs data and returns the bundle as JSON.
func (k *Key) Sign(t testing.TB, data []byte) []byte {
	t.Helper()
	return bundle(t, k.priv, data, &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: "test"}},
	})
}
