package release

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fluid-os/fluid/internal/verdict"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Verifier checks the Sigstore bundle over a release's checksums file, either
// keyless (a Fulcio certificate for the policy's workflow, chained to a
// trusted root) or with one public key.
type Verifier struct {
	policy  Policy
	keyed   bool
	sigv    *verify.Verifier
	pubDesc string
}

// KeylessOptions tune keyless verification.
type KeylessOptions struct {
	// Trusted is the trusted material: the Sigstore public-good root from
	// TUF (root.FetchTrustedRoot) in real use, a private CA in tests.
	Trusted root.TrustedMaterial
	// NoTransparencyLog accepts bundles without a Rekor entry and checks the
	// certificate against the current time instead of a log timestamp. Only
	// for private trusted roots without a log (tests); releases made by the
	// workflow always carry a Rekor entry. The certificate still needs an SCT.
	NoTransparencyLog bool
}

// NewKeylessVerifier returns a verifier that requires a certificate issued
// under opts.Trusted whose identity satisfies policy.
func NewKeylessVerifier(policy Policy, opts KeylessOptions) (*Verifier, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	if opts.Trusted == nil {
		return nil, errors.New("keyless verification needs a trusted root")
	}
	// As cosign does by default: the certificate must carry a signed
	// certificate timestamp from a CT log in the trusted root, proof that
	// Fulcio published it.
	vopts := []verify.VerifierOption{verify.WithSignedCertificateTimestamps(1)}
	if opts.NoTransparencyLog {
		vopts = append(vopts, verify.WithCurrentTime())
	} else {
		vopts = append(vopts, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	}
	v, err := verify.NewVerifier(opts.Trusted, vopts...)
	if err != nil {
		return nil, fmt.Errorf("set up keyless verifier: %w", err)
	}
	return &Verifier{policy: policy, sigv: v}, nil
}

// NewKeyVerifier returns a verifier that requires a signature by the public
// key in pemKey (a cosign.pub file). Key-signed local releases carry no
// transparency log entry and no certificate.
func NewKeyVerifier(pemKey []byte, name string) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	if err != nil {
		return nil, fmt.Errorf("read public key %s: %w (want a PEM public key as written by cosign generate-key-pair)", name, err)
	}
	sv, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", name, err)
	}
	key := root.NewExpiringKey(sv, timeZero, timeZero)
	trusted := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	v, err := verify.NewVerifier(trusted, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, fmt.Errorf("set up key verifier: %w", err)
	}
	return &Verifier{keyed: true, sigv: v, pubDesc: name}, nil
}

// Identity is who signed a verified checksums file.
type Identity struct {
	// Key is the public key's name for key-based signatures.
	Key string
	// SAN and Issuer come from the signing certificate for keyless ones.
	SAN, Issuer string
	// Tag is the release tag the certificate's identity names (keyless).
	Tag string
	// What Fulcio recorded about the workflow run (keyless): the source
	// repository URI, the ref and commit it ran for, and GitHub's numeric
	// repository and owner IDs.
	SourceRepository, SourceRef, Commit string
	RepositoryID, OwnerID               string
}

func (id Identity) String() string {
	if id.Key != "" {
		return "key " + id.Key
	}
	s := id.SAN + " (issuer " + id.Issuer + ", commit " + id.Commit
	if id.RepositoryID != "" {
		s += ", repository ID " + id.RepositoryID
	}
	return s + ")"
}

// VerifyChecksums checks that bundleJSON is a valid Sigstore bundle signing
// exactly the bytes of checksums, by a signer the verifier accepts. Errors are
// *verdict.CheckError values: verdict.CheckSignature for a bad or unreadable bundle,
// verdict.CheckIssuer or verdict.CheckIdentity for a good signature by the wrong signer.
func (v *Verifier) VerifyChecksums(bundleJSON, checksums []byte) (Identity, error) {
	sigFail := func(err error, meaning string) error {
		return &verdict.CheckError{Check: verdict.CheckSignature, Subject: BundleName, Err: err, Meaning: meaning}
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return Identity{}, sigFail(fmt.Errorf("not a Sigstore protobuf bundle: %w", err),
			"the bundle is damaged or in cosign's old format; it must come from cosign sign-blob --new-bundle-format")
	}
	var pol verify.PolicyBuilder
	if v.keyed {
		pol = verify.NewPolicy(verify.WithArtifact(bytes.NewReader(checksums)), verify.WithKey())
	} else {
		// The identity is checked below, field by field, so the error can say
		// which part did not match; sigstore-go checks chain, signature and
		// timestamps here.
		pol = verify.NewPolicy(verify.WithArtifact(bytes.NewReader(checksums)), verify.WithoutIdentitiesUnsafe())
	}
	res, err := v.sigv.Verify(&b, pol)
	if err != nil {
		return Identity{}, sigFail(err, "the checksums file or its signature was altered, or it was signed by a key or authority you do not trust; do not use these files")
	}
	if v.keyed {
		return Identity{Key: v.pubDesc}, nil
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return Identity{}, sigFail(errors.New("bundle carries no signing certificate"), "keyless releases are signed with a Fulcio certificate; use --key for key-signed releases")
	}
	cert := res.Signature.Certificate
	id := Identity{SAN: cert.SubjectAlternativeName, Issuer: cert.Issuer,
		SourceRepository: cert.SourceRepositoryURI, SourceRef: cert.SourceRepositoryRef, Commit: cert.SourceRepositoryDigest,
		RepositoryID: cert.SourceRepositoryIdentifier, OwnerID: cert.SourceRepositoryOwnerIdentifier}
	if err := v.policy.CheckIdentity(&id); err != nil {
		return Identity{}, err
	}
	// Belt and braces: sigstore-go's own matcher must agree with ours.
	san, err := verify.NewSANMatcher("", v.policy.IdentityRegexp)
	if err != nil {
		return Identity{}, fmt.Errorf("verification policy: %w", err)
	}
	iss, err := verify.NewIssuerMatcher(v.policy.Issuer, "")
	if err != nil {
		return Identity{}, fmt.Errorf("verification policy: %w", err)
	}
	ext := certificate.Extensions{SourceRepositoryURI: "https://github.com/" + v.policy.Repository,
		SourceRepositoryRef: "refs/tags/" + id.Tag, SourceRepositoryIdentifier: v.policy.RepositoryID, SourceRepositoryOwnerIdentifier: v.policy.OwnerID}
	ci, err := verify.NewCertificateIdentity(san, iss, ext)
	if err != nil {
		return Identity{}, fmt.Errorf("verification policy: %w", err)
	}
	if err := ci.Verify(*cert); err != nil {
		return Identity{}, &verdict.CheckError{Check: verdict.CheckIdentity, Subject: ChecksumsName, Err: err,
			Meaning: "the signer is not " + v.policy.Repository + "'s release workflow on a version tag"}
	}
	return id, nil
}

// VerifiedRelease is the result of VerifyFiles.
type VerifiedRelease struct {
	Signer    Identity
	Checksums Checksums
}

// VerifyFiles runs every check fluid verify makes on files already on disk:
// the bundle at bundlePath signs the checksums file at checksumsPath, and each
// of files is listed there with its SHA-256. Files are matched by base name.
func (v *Verifier) VerifyFiles(checksumsPath, bundlePath string, files []string) (*VerifiedRelease, error) {
	sumData, err := os.ReadFile(checksumsPath)
	if err != nil {
		return nil, missing(err, ChecksumsName, checksumsPath)
	}
	bundleData, err := os.ReadFile(bundlePath)
	if err != nil {
		return nil, missing(err, BundleName, bundlePath)
	}
	id, err := v.VerifyChecksums(bundleData, sumData)
	if err != nil {
		return nil, err
	}
	sums, err := ParseChecksums(sumData)
	if err != nil {
		return nil, &verdict.CheckError{Check: verdict.CheckChecksum, Subject: ChecksumsName, Err: err, Meaning: "the signed checksums file is malformed"}
	}
	for _, f := range files {
		if err := sums.VerifyFile(f, filepath.Base(f)); err != nil {
			return nil, err
		}
	}
	return &VerifiedRelease{Signer: id, Checksums: sums}, nil
}

func missing(err error, what, path string) error {
	if errIsNotExist(err) {
		return fmt.Errorf("%s not found at %s: download it from the same release as the files you verify", what, path)
	}
	return fmt.Errorf("read %s: %w", path, err)
}

// timeZero is the zero time, for validity periods without bounds.
var timeZero = time.Time{}
