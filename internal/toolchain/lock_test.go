package toolchain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

// TestLockAndDefinitionAreStrict: hand edits that the decoder would take
// are refused. Edits to the definition also fix up the lock's
// definition_sha256 (as someone hiding the edit would), so only the new
// rule can catch them.
func TestLockAndDefinitionAreStrict(t *testing.T) {
	root, lt := committedLock(t)
	defSum := lt.Lock.DefinitionSHA256
	nasm := `"nasm": "` + lt.Lock.Packages["nasm"] + `"`
	for _, c := range []struct {
		name      string
		def, lock func(string) string
		want      string
	}{
		{"lock: trailing data", nil, func(s string) string { return s + `{"suite": "sid"}` }, "data after the object"},
		{"lock: mis-cased key", nil, func(s string) string { return strings.Replace(s, `"suite"`, `"Suite"`, 1) }, "toolchainLock` writes"},
		{"lock: duplicate key", nil, func(s string) string {
			return strings.Replace(s, `"packages": {`, `"packages": {"nasm": "0.1"}, "packages": {`, 1)
		}, "toolchainLock` writes"},
		{"lock: version that splits --include", nil, func(s string) string {
			return strings.Replace(s, nasm, `"nasm": "2.16.03-1,netcat-openbsd"`, 1)
		}, "not a Debian version"},
		{"lock: empty version", nil, func(s string) string { return strings.Replace(s, nasm, `"nasm": ""`, 1) }, "not a Debian version"},
		{"definition: trailing data", func(s string) string { return s + "junk" }, nil, "data after the object"},
		{"definition: duplicate key", func(s string) string {
			return strings.Replace(s, `"suite": "trixie",`, `"suite": "sid", "suite": "trixie",`, 1)
		}, nil, `key "suite" appears twice`},
		{"definition: mis-cased key", func(s string) string { return strings.Replace(s, `"variant"`, `"Variant"`, 1) }, nil, `key "Variant" is not spelled`},
		{"definition: mirror breaks out of the hook", func(s string) string {
			return strings.Replace(s, `"http://deb.debian.org/debian"`, `"http://deb.debian.org/debian'; touch /tmp/pwned; '"`, 1)
		}, nil, "not a plain http(s) URL"},
		{"definition: suite with spaces", func(s string) string {
			return strings.Replace(s, `"suite": "trixie"`, `"suite": "trixie main contrib"`, 1)
		}, nil, "plain words"},
		{"definition: variant with options", func(s string) string {
			return strings.Replace(s, `"variant": "apt"`, `"variant": "apt --hook-dir=/tmp"`, 1)
		}, nil, "not one of mmdebstrap's variants"},
		{"definition: keyring outside the tree", func(s string) string {
			return strings.Replace(s, `"keyring": "`+lt.Definition.Keyring+`"`, `"keyring": "../outside.gpg"`, 1)
		}, nil, "must be a path inside the tree"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "tree")
			for _, f := range []string{DefinitionFile, LockFile, lt.Definition.Keyring} {
				testutil.CopyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
			}
			testutil.CopyFile(t, filepath.Join(root, lt.Definition.Keyring), filepath.Join(base, "outside.gpg"))
			edit := func(p string, f func(string) string) string {
				data, _ := os.ReadFile(p)
				out := f(string(data))
				if out == string(data) {
					t.Fatalf("edit of %s changed nothing; update the test", p)
				}
				os.WriteFile(p, []byte(out), 0o644)
				return out
			}
			if c.def != nil {
				def := edit(filepath.Join(dir, DefinitionFile), c.def)
				edit(filepath.Join(dir, LockFile), func(s string) string { return strings.Replace(s, defSum, sha256Hex([]byte(def)), 1) })
			}
			if c.lock != nil {
				edit(filepath.Join(dir, LockFile), c.lock)
			}
			_, err := ReadLock(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a refusal saying %q, got %v", c.want, err)
			}
		})
	}
}
