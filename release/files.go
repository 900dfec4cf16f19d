// Package releasefiles (directory release/) holds the project's release
// verification material, embedded so the fluid CLI carries it without a
// source checkout: the keyless policy (policy.json) and, when the project
// has one, the public key for key-signed releases (cosign.pub). The release
// notes template lives beside them.
package releasefiles

import _ "embed"

//go:embed policy.json
var policyJSON []byte

// PolicyJSON returns the bytes of release/policy.json: the certificate
// identity and OIDC issuer that official release signatures must carry.
func PolicyJSON() []byte { return append([]byte(nil), policyJSON...) }

//go:embed notes.md.tmpl
var notesTemplate []byte

// NotesTemplate returns release/notes.md.tmpl, the Go text/template of the
// release notes (fields: see internal/release.NotesData).
func NotesTemplate() []byte { return append([]byte(nil), notesTemplate...) }
