package release

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/verdict"
)

// GitHubActionsIssuer is the OIDC issuer of GitHub Actions tokens, which
// Fulcio records in the certificates it issues to workflows.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// Policy says whose keyless signature a release must carry: the release
// workflow of one repository — by name and, once pinned, by GitHub's numeric
// repository and owner IDs, which a repository re-created under the same name
// does not get — run for a release tag, authenticated by GitHub Actions' OIDC
// issuer. release/policy.json holds the project's policy.
type Policy struct {
	// Repository is "owner/name" on github.com.
	Repository string `json:"repository"`
	// RepositoryID and OwnerID are GitHub's numeric IDs of the repository and
	// of its owner (Fulcio certificate extensions 1.3.6.1.4.1.57264.1.15 and
	// .17). Both empty: not pinned (a fork given with --repo); the project's
	// own policy must pin them (Pinned) before a keyless release is signed.
	RepositoryID string `json:"repository_id"`
	OwnerID      string `json:"repository_owner_id"`
	// Workflow is the workflow file's path in the repository.
	Workflow string `json:"workflow"`
	// TagPattern is the regexp a release tag must match in full (without
	// refs/tags/); verdict.ReleaseTagPattern for the project.
	TagPattern string `json:"tag_pattern"`
	// Issuer is the required OIDC issuer (certificate extension 1.3.6.1.4.1.57264.1.8 / .1).
	Issuer string `json:"issuer"`
	// IdentityRegexp is the certificate identity (SAN URI) pattern, the value
	// to give cosign verify-blob --certificate-identity-regexp. It must equal
	// what the fields above derive (see DeriveIdentityRegexp).
	IdentityRegexp string `json:"certificate_identity_regexp"`
}

// DefaultPolicy returns the policy for repository ("owner/name"): its
// .github/workflows/release.yml on a release tag, issued by GitHub Actions,
// with the repository IDs not pinned.
func DefaultPolicy(repository string) Policy {
	p := Policy{
		Repository: repository,
		Workflow:   ".github/workflows/release.yml",
		TagPattern: verdict.ReleaseTagPattern,
		Issuer:     GitHubActionsIssuer,
	}
	p.IdentityRegexp = p.DeriveIdentityRegexp()
	return p
}

// ParsePolicy reads a policy file and checks that it is complete and that its
// identity regexp matches its fields.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("parse verification policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

var decimalID = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)

// Validate checks that every field is set, that the IDs are both pinned (as
// decimal numbers) or both not, and that IdentityRegexp is the one the other
// fields derive, so the policy cosign users type and the one fluid enforces
// cannot drift apart.
func (p Policy) Validate() error {
	if strings.Count(p.Repository, "/") != 1 || strings.HasPrefix(p.Repository, "/") || strings.HasSuffix(p.Repository, "/") {
		return fmt.Errorf("verification policy: repository %q must be \"owner/name\"", p.Repository)
	}
	if p.Workflow == "" || p.TagPattern == "" || p.Issuer == "" {
		return fmt.Errorf("verification policy: workflow, tag_pattern and issuer must all be set")
	}
	if (p.RepositoryID == "") != (p.OwnerID == "") {
		return fmt.Errorf("verification policy: set both repository_id and repository_owner_id, or neither")
	}
	for name, id := range map[string]string{"repository_id": p.RepositoryID, "repository_owner_id": p.OwnerID} {
		if id != "" && !decimalID.MatchString(id) {
			return fmt.Errorf("verification policy: %s %q is not a GitHub ID (a decimal number, as `gh api repos/%s --jq .id` prints)", name, id, p.Repository)
		}
	}
	if _, err := regexp.Compile("^(" + p.TagPattern + ")$"); err != nil {
		return fmt.Errorf("verification policy: tag_pattern: %w", err)
	}
	if want := p.DeriveIdentityRegexp(); p.IdentityRegexp != want {
		return fmt.Errorf("verification policy: certificate_identity_regexp is %q but the fields say %q; fix one of them", p.IdentityRegexp, want)
	}
	if _, err := regexp.Compile(p.IdentityRegexp); err != nil {
		return fmt.Errorf("verification policy: %w", err)
	}
	return nil
}

// Pinned reports whether the policy pins the repository and owner IDs.
func (p Policy) Pinned() bool { return p.RepositoryID != "" && p.OwnerID != "" }

// DeriveIdentityRegexp returns the certificate identity pattern for the
// policy's repository, workflow and tag pattern.
func (p Policy) DeriveIdentityRegexp() string {
	return "^" + regexp.QuoteMeta("https://github.com/"+p.Repository+"/"+p.Workflow+"@refs/tags/") + p.TagPattern + "$"
}

// IdentityFor is the exact certificate identity of the release workflow run
// for tag: what cosign verify-blob --certificate-identity takes.
func (p Policy) IdentityFor(tag string) string {
	return "https://github.com/" + p.Repository + "/" + p.Workflow + "@refs/tags/" + tag
}

// MatchTag reports whether tag is a release tag under the policy.
func (p Policy) MatchTag(tag string) bool {
	re, err := regexp.Compile("^(" + p.TagPattern + ")$")
	return err == nil && re.MatchString(tag)
}

// CheckIdentity checks a signing certificate against the policy: its OIDC
// issuer, its identity (repository, workflow, and a release tag as the ref),
// the source repository, ref and commit Fulcio recorded for the run, and the
// repository and owner IDs when the policy pins them. It fills in id.Tag. The
// error is a *verdict.CheckError naming the first part that did not match.
func (p Policy) CheckIdentity(id *Identity) error {
	if id.Issuer != p.Issuer {
		return &verdict.CheckError{Check: verdict.CheckIssuer, Subject: ChecksumsName,
			Err:     fmt.Errorf("certificate issuer is %q, policy requires %q", id.Issuer, p.Issuer),
			Meaning: "the signature was not made by a GitHub Actions workflow; it is not an official release"}
	}
	fail := func(format string, args ...any) error {
		return &verdict.CheckError{Check: verdict.CheckIdentity, Subject: ChecksumsName,
			Err:     fmt.Errorf("certificate identity %q: "+format, append([]any{id.SAN}, args...)...),
			Meaning: "the signature is valid but was made by someone other than " + p.Repository + "'s release workflow on a release tag; do not trust these files"}
	}
	u, err := url.Parse(id.SAN)
	if err != nil || u.Scheme != "https" || u.Host != "github.com" {
		return fail("is not a https://github.com/ workflow URI")
	}
	path, ref, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "@")
	if !ok {
		return fail("has no @ref")
	}
	parts := strings.SplitN(path, "/", 3)
	if len(parts) != 3 {
		return fail("names no workflow file")
	}
	if repo := parts[0] + "/" + parts[1]; repo != p.Repository {
		return fail("names repository %s, policy requires %s", repo, p.Repository)
	}
	if parts[2] != p.Workflow {
		return fail("names workflow %s, policy requires %s", parts[2], p.Workflow)
	}
	tag, isTag := strings.CutPrefix(ref, "refs/tags/")
	if !isTag || !p.MatchTag(tag) {
		return fail("names ref %s, policy requires a release tag refs/tags/vMAJOR.MINOR.PATCH[-prerelease]", ref)
	}
	re, err := regexp.Compile(p.IdentityRegexp)
	if err != nil {
		return fmt.Errorf("verification policy: %w", err)
	}
	if !re.MatchString(id.SAN) {
		return fail("does not match %s", p.IdentityRegexp)
	}
	// What Fulcio recorded about the run, from the OIDC token.
	if want := "https://github.com/" + p.Repository; id.SourceRepository != want {
		return fail("was issued for source repository %q, policy requires %s", id.SourceRepository, want)
	}
	if id.SourceRef != ref {
		return fail("was issued for a run of source ref %q, not of the tag %s it names", id.SourceRef, ref)
	}
	if !isFullCommit(id.Commit) {
		return fail("records no source commit (extension 1.3.6.1.4.1.57264.1.13 is %q)", id.Commit)
	}
	if p.Pinned() {
		if id.RepositoryID != p.RepositoryID {
			return fail("was issued to repository ID %q, policy pins %s's ID %s (a repository deleted and re-created under the same name gets a new ID)", id.RepositoryID, p.Repository, p.RepositoryID)
		}
		if id.OwnerID != p.OwnerID {
			return fail("was issued to owner ID %q, policy pins %s's owner ID %s (an account renamed and its name re-registered gets a new ID)", id.OwnerID, p.Repository, p.OwnerID)
		}
	}
	id.Tag = tag
	return nil
}

func isFullCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckSigningRepository is the release job's guard before it signs keyless.
// In the project's own repository (GITHUB_REPOSITORY is the policy's), the
// policy must pin the repository and owner IDs and they must be the ones
// GitHub gives the job (GITHUB_REPOSITORY_ID, GITHUB_REPOSITORY_OWNER_ID):
// otherwise users' fluid, which checks the certificate's IDs against
// release/policy.json, would refuse the release. A fork signs for itself;
// its users verify it with --repo, by name.
func (p Policy) CheckSigningRepository(getenv func(string) string) error {
	if getenv("GITHUB_REPOSITORY") != p.Repository {
		return nil
	}
	repoID, ownerID := getenv("GITHUB_REPOSITORY_ID"), getenv("GITHUB_REPOSITORY_OWNER_ID")
	if !p.Pinned() {
		return fmt.Errorf("signing: release/policy.json does not pin %s's repository and owner IDs, so fluid would refuse this keyless release; set \"repository_id\": %q and \"repository_owner_id\": %q (this job's GITHUB_REPOSITORY_ID and GITHUB_REPOSITORY_OWNER_ID) and tag again", p.Repository, repoID, ownerID)
	}
	if repoID != p.RepositoryID || ownerID != p.OwnerID {
		return fmt.Errorf("signing: this job runs in repository ID %q, owner ID %q, but release/policy.json pins %s to %s, %s; users' fluid would refuse the release (was the repository re-created?)", repoID, ownerID, p.Repository, p.RepositoryID, p.OwnerID)
	}
	return nil
}

// Marshal returns the policy as release/policy.json holds it: indented
// JSON in field order, with a final newline.
func (p Policy) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// PinPolicyFile sets the repository and owner IDs in the policy file at path
// (release/policy.json), as GitHub gives them for the policy's repository,
// and rewrites it atomically. It refuses to change IDs already pinned to
// other values: a repository whose IDs changed was re-created, and that is a
// decision for a maintainer to make by editing the file, not for a tool.
func PinPolicyFile(path string, repoID, ownerID int64) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("pin policy: %w", err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return Policy{}, fmt.Errorf("pin policy %s: %w", path, err)
	}
	rid, oid := strconv.FormatInt(repoID, 10), strconv.FormatInt(ownerID, 10)
	if p.Pinned() && (p.RepositoryID != rid || p.OwnerID != oid) {
		return Policy{}, fmt.Errorf("pin policy: %s pins %s to repository ID %s, owner ID %s, but GitHub now says %s, %s: the repository or its owner was re-created; if that is intended, edit %s by hand", path, p.Repository, p.RepositoryID, p.OwnerID, rid, oid, path)
	}
	p.RepositoryID, p.OwnerID = rid, oid
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("pin policy: %w", err)
	}
	out, err := p.Marshal()
	if err != nil {
		return Policy{}, err
	}
	if err := atomicfile.WriteFile0644(path, out); err != nil {
		return Policy{}, err
	}
	return p, nil
}
