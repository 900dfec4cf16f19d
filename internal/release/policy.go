package release

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// GitHubActionsIssuer is the OIDC issuer of GitHub Actions tokens, which
// Fulcio records in the certificates it issues to workflows.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// Policy says whose keyless signature a release must carry: the release
// workflow of one repository, run for a version tag, authenticated by GitHub
// Actions' OIDC issuer. release/policy.json holds the project's policy.
type Policy struct {
	// Repository is "owner/name" on github.com.
	Repository string `json:"repository"`
	// Workflow is the workflow file's path in the repository.
	Workflow string `json:"workflow"`
	// RefPrefix is what the git ref the workflow ran for must start with.
	RefPrefix string `json:"ref_prefix"`
	// Issuer is the required OIDC issuer (certificate extension 1.3.6.1.4.1.57264.1.8 / .1).
	Issuer string `json:"issuer"`
	// IdentityRegexp is the certificate identity (SAN URI) pattern, the value
	// to give cosign verify-blob --certificate-identity-regexp. It must equal
	// what the fields above derive (see DeriveIdentityRegexp).
	IdentityRegexp string `json:"certificate_identity_regexp"`
}

// DefaultPolicy returns the policy for repository ("owner/name"): its
// .github/workflows/release.yml on a v* tag, issued by GitHub Actions.
func DefaultPolicy(repository string) Policy {
	p := Policy{
		Repository: repository,
		Workflow:   ".github/workflows/release.yml",
		RefPrefix:  "refs/tags/v",
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

// Validate checks that every field is set and that IdentityRegexp is the one
// the other fields derive, so the policy cosign users type and the one fluid
// enforces cannot drift apart.
func (p Policy) Validate() error {
	if strings.Count(p.Repository, "/") != 1 || strings.HasPrefix(p.Repository, "/") || strings.HasSuffix(p.Repository, "/") {
		return fmt.Errorf("verification policy: repository %q must be \"owner/name\"", p.Repository)
	}
	if p.Workflow == "" || p.RefPrefix == "" || p.Issuer == "" {
		return fmt.Errorf("verification policy: workflow, ref_prefix and issuer must all be set")
	}
	if want := p.DeriveIdentityRegexp(); p.IdentityRegexp != want {
		return fmt.Errorf("verification policy: certificate_identity_regexp is %q but the fields say %q; fix one of them", p.IdentityRegexp, want)
	}
	if _, err := regexp.Compile(p.IdentityRegexp); err != nil {
		return fmt.Errorf("verification policy: %w", err)
	}
	return nil
}

// DeriveIdentityRegexp returns the certificate identity pattern for the
// policy's repository, workflow and ref prefix.
func (p Policy) DeriveIdentityRegexp() string {
	return "^" + regexp.QuoteMeta("https://github.com/"+p.Repository+"/"+p.Workflow+"@"+p.RefPrefix) + ".*$"
}

// CheckIdentity checks a certificate's identity (its SAN URI) and OIDC issuer
// against the policy. The error is a *CheckError naming the first part that
// did not match: the issuer, the repository, the workflow or the ref.
func (p Policy) CheckIdentity(san, issuer string) error {
	if issuer != p.Issuer {
		return &CheckError{Check: CheckIssuer, Subject: ChecksumsName,
			Err:     fmt.Errorf("certificate issuer is %q, policy requires %q", issuer, p.Issuer),
			Meaning: "the signature was not made by a GitHub Actions workflow; it is not an official release"}
	}
	fail := func(format string, args ...any) error {
		return &CheckError{Check: CheckIdentity, Subject: ChecksumsName,
			Err:     fmt.Errorf("certificate identity %q: "+format, append([]any{san}, args...)...),
			Meaning: "the signature is valid but was made by someone other than " + p.Repository + "'s release workflow on a version tag; do not trust these files"}
	}
	u, err := url.Parse(san)
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
	if !strings.HasPrefix(ref, p.RefPrefix) {
		return fail("names ref %s, policy requires a ref starting with %s (a version tag)", ref, p.RefPrefix)
	}
	re, err := regexp.Compile(p.IdentityRegexp)
	if err != nil {
		return fmt.Errorf("verification policy: %w", err)
	}
	if !re.MatchString(san) {
		return fail("does not match %s", p.IdentityRegexp)
	}
	return nil
}
