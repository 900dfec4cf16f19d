package release

import (
	"bytes"
	"fmt"
	"text/template"
)

// NotesData fills release/notes.md.tmpl.
type NotesData struct {
	Tag            string
	Commit         string
	Signer         string // e.g. "the release workflow (keyless)" or "a maintainer's key"
	IdentityRegexp string
	Issuer         string
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
