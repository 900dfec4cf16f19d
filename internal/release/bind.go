package release

import (
	"bytes"
	"fmt"
	"os"

	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/verdict"
)

// Binding is what a set of release files must be: the release tag asked for
// and, when known (from the GitHub API), the commit that tag points at.
type Binding struct {
	Tag       string
	TagCommit string // "" when not known (files verified offline)
}

// BindRelease checks that verified release files are the release b names and
// not another one's files replayed under its tag (a downgrade). It runs after
// the signature and checksum checks, on the signed manifest.json:
//
//   - the tag looks like a release (vMAJOR.MINOR.PATCH[-prerelease]);
//   - the manifest's version is the tag (both signing modes: the manifest is
//     covered by the signed checksums);
//   - keyless: the certificate names that tag (refs/tags/<tag>) and the
//     commit Fulcio recorded for the run is the manifest's commit;
//   - with b.TagCommit: the tag points at the manifest's commit.
//
// It returns the manifest. Errors are *verdict.CheckError values with verdict.CheckVersion.
func BindRelease(id Identity, manifestJSON []byte, b Binding) (*manifest.Manifest, error) {
	fail := func(meaning, format string, args ...any) error {
		return &verdict.CheckError{Check: verdict.CheckVersion, Subject: ManifestAsset, Err: fmt.Errorf(format, args...), Meaning: meaning}
	}
	const replay = "these are another release's genuine files published under this tag (a replay or downgrade); do not use them"
	if !verdict.IsReleaseTag(b.Tag) {
		return nil, fail("only vMAJOR.MINOR.PATCH[-prerelease] tags are releases", "release tag %q is not a release version", b.Tag)
	}
	m, err := manifest.Parse(manifestJSON, ManifestAsset)
	if err != nil {
		return nil, fail("the signed manifest does not say which release it is", "%v", err)
	}
	// The build writes manifests in one canonical form. Anything else (a key
	// twice, a key in other case, a second JSON value) could read as one
	// version here and another to `grep` in SECURITY.md's by-hand check.
	if canon, err := m.Marshal(); err != nil || !bytes.Equal(canon, manifestJSON) {
		return nil, fail("release manifests are written by the build in one canonical form; this one was not", "manifest.json is not in the canonical form the build writes (duplicate or differently spelled keys, or trailing data)")
	}
	if m.Version != b.Tag {
		return nil, fail(replay, "manifest.json says the images are version %q, but this is release %s", m.Version, b.Tag)
	}
	if id.Key == "" {
		if id.Tag != b.Tag {
			return nil, fail(replay, "the signing certificate was issued to the release workflow run for tag %s, but this is release %s", id.Tag, b.Tag)
		}
		if id.Commit != m.Commit {
			return nil, fail(replay, "the signing certificate was issued to a run at commit %s, but manifest.json says the images were built from %s", id.Commit, m.Commit)
		}
	}
	if b.TagCommit != "" && b.TagCommit != m.Commit {
		return nil, fail(replay, "tag %s points at commit %s, but manifest.json says the images were built from %s", b.Tag, b.TagCommit, m.Commit)
	}
	return m, nil
}

// CheckReleaseManifest is the release build's own check of what fluid will
// check: the manifest at path (the PGO image's, shipped as manifest.json)
// must name tag as its version and commit as its source, in canonical form.
func CheckReleaseManifest(path, tag, commit string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if _, err := BindRelease(Identity{Key: "the release build"}, data, Binding{Tag: tag, TagCommit: commit}); err != nil {
		return fmt.Errorf("release: the images were not built as release %s at %s, so fluid would refuse them (build at the tag, with FLUID_VERSION unset): %w", tag, commit, err)
	}
	return nil
}
