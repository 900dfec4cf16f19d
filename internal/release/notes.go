package release

import (
	"bytes"
	"fmt"
	"text/template"

	"github.com/sigstore/sigstore-go/pkg/bundle"
)

// NotesData fills release/notes.md.tmpl.
type NotesData struct {
	Tag      string
	Commit   string
	Keyless  bool   // signed keyless (a certificate in the bundle), else with a key
	Identity string // keyless: the exact certificate identity for Tag (Policy.IdentityFor)
	Issuer   string // keyless: the OIDC issuer
}

// BundleIsKeyless reports whether a Sigstore bundle was signed keyless (it
// carries a certificate) rather than with a key (a public key hint): the
// release notes show the command that verifies what was actually made.
func BundleIsKeyless(bundleJSON []byte) (bool, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return false, fmt.Errorf("read %s: %w", BundleName, err)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", BundleName, err)
	}
	if vc.Certificate() != nil {
		return true, nil
	}
	if vc.PublicKey() != nil {
		return false, nil
	}
	return false, fmt.Errorf("read %s: the bundle holds neither a certificate nor a public key hint", BundleName)
}

// RenderNotes renders the release notes template; a field the template names
// but NotesData lacks is an error, not an empty string.
func RenderNotes(tmpl []byte, d NotesData) (string, error) {
	t, err := template.New("notes.md.tmpl").Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return "", fmt.Errorf("release notes template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("release notes template: %w", err)
	}
	return b.String(), nil
}
