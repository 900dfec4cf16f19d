// Package verdict is how a refused check reads: which check (Check), on
// what, why and what it means (CheckError). The release verifier and the
// GitHub client both return it, so fluid download and fluid verify can tell
// a network failure from a forged file; it depends on nothing of the project.
package verdict

import "fmt"

// Check names one of the checks a release asset must pass.
type Check string

// The checks, in the order fluid download and fluid verify run them.
const (
	CheckRelease   Check = "release"   // the release exists
	CheckAsset     Check = "asset"     // the asset exists in the release
	CheckNetwork   Check = "network"   // GitHub could be reached
	CheckDownload  Check = "download"  // the asset arrived complete
	CheckSignature Check = "signature" // the bundle signs checksums.txt
	CheckIdentity  Check = "identity"  // the signer is this repo's release workflow on a tag
	CheckIssuer    Check = "issuer"    // the signer's OIDC issuer is GitHub Actions
	CheckChecksum  Check = "checksum"  // the asset matches checksums.txt
	CheckVersion   Check = "version"   // the signed files are the release asked for (no replay or downgrade)
	CheckImage     Check = "image"     // the image decompresses
)

// CheckError is a refused check: which check, on what, why, and what that
// means for the person holding the file.
type CheckError struct {
	Check   Check
	Subject string // asset or file name
	Err     error
	Meaning string
}

func (e *CheckError) Error() string {
	s := fmt.Sprintf("%s check failed for %s: %v", e.Check, e.Subject, e.Err)
	if e.Meaning != "" {
		s += " (" + e.Meaning + ")"
	}
	return s
}

func (e *CheckError) Unwrap() error { return e.Err }
