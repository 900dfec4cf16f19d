package verdict

import "regexp"

// ReleaseTagPattern is what a release tag looks like: vMAJOR.MINOR.PATCH with
// an optional -prerelease (semantic versioning, no build metadata). It is
// matched against the whole tag.
const ReleaseTagPattern = `v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z][0-9A-Za-z.-]*)?`

var releaseTagRe = regexp.MustCompile(`^` + ReleaseTagPattern + `$`)

// IsReleaseTag reports whether tag looks like a release (ReleaseTagPattern).
func IsReleaseTag(tag string) bool { return releaseTagRe.MatchString(tag) }
