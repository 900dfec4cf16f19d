package release

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/manifest"
)

// encoding/json keeps the last of duplicate keys, matches keys
// case-insensitively ("Version") and stops after the first JSON value, so a
// manifest of such a shape could name one version to fluid and another to
// SECURITY.md's `grep -Fx '  "version": "v0.1.0",' manifest.json`. It needs
// a signed manifest of that shape (the signer's build or a key holder), so
// this is defence in depth: BindRelease accepts only the canonical bytes the
// build writes, and refuses every variant, whatever grep would say.
func TestHostileManifestNotCanonical(t *testing.T) {
	m := &manifest.Manifest{Project: "fluid-os", Version: "v0.1.0", Commit: testCommit, Variant: "pgo"}
	canon, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{
		"duplicate key":         bytes.Replace(canon, []byte(`  "commit":`), []byte("  \"version\": \"v0.0.9\",\n  \"commit\":"), 1),
		"case-folded key":       bytes.Replace(canon, []byte(`  "commit":`), []byte("  \"Version\": \"v0.0.9\",\n  \"commit\":"), 1),
		"trailing second value": append(bytes.Replace(canon, []byte(`"v0.1.0"`), []byte(`"v0.0.9"`), 1), []byte("\n"+string(canon))...),
	}
	for name, data := range variants {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "manifest.json")
			os.WriteFile(p, data, 0o644)
			grepOK := exec.Command("grep", "-Fx", `  "version": "v0.1.0",`, p).Run() == nil
			_, fluidErr := BindRelease(Identity{Key: "k"}, data, Binding{Tag: "v0.1.0"})
			if fluidErr == nil || !strings.Contains(fluidErr.Error(), "canonical form") {
				t.Errorf("non-canonical manifest bound to v0.1.0 (grep -Fx says v0.1.0: %v): %v", grepOK, fluidErr)
			}
		})
	}
}
