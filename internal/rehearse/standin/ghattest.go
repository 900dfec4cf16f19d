package standin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SLSAProvenanceV1 is gh attestation verify's default --predicate-type.
const SLSAProvenanceV1 = "https://slsa.dev/provenance/v1"

// ghAttestationVerify stands in for
//
//	gh attestation verify FILE (--repo OWNER/NAME | --owner OWNER) [--signer-workflow [HOST/]OWNER/NAME/PATH] [--predicate-type URI]
//
// against the rehearsal's attestation store (FLUID_REHEARSAL_ATTESTATIONS,
// written by the attest-build-provenance stand-in; GitHub's attestations
// API in real life). It passes only when a statement exists for FILE's
// SHA-256 whose subject has that digest, whose predicate type is the one
// asked, whose workflow repository is the --repo (or under the --owner)
// and, with --signer-workflow, whose workflow file is that one in that
// repository. The statements are unsigned (a rehearsal has no OIDC token),
// so the signature and certificate checks of the real command are not
// rehearsed; everything the statement says is.
func ghAttestationVerify(e *Env, args []string) error {
	o, err := parseAttestationVerify(args)
	if err != nil {
		return err
	}
	store, err := e.Rehearsal("ATTESTATIONS")
	if err != nil {
		return err
	}
	f, err := os.Open(o.file)
	if err != nil {
		return fmt.Errorf("failed to load digest for %s: %w", o.file, err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	digest := hex.EncodeToString(h.Sum(nil))
	paths, _ := filepath.Glob(filepath.Join(store, "sha256-"+digest, "*.json"))
	sort.Strings(paths)
	if len(paths) == 0 {
		return fmt.Errorf("✗ Loading attestations from GitHub API failed: no attestations found for sha256:%s (%s)", digest, o.file)
	}
	var refusals []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if why := o.check(data, digest); why != "" {
			refusals = append(refusals, filepath.Base(p)+": "+why)
			continue
		}
		fmt.Fprintf(e.Stdout, "Loaded 1 attestation from the rehearsal's store for sha256:%s\n", digest)
		fmt.Fprintf(e.Stdout, "✓ Verification succeeded! (rehearsal: unsigned statement; subject, predicate type, repository and workflow checked)\n")
		return nil
	}
	return fmt.Errorf("✗ Verification failed for %s (sha256:%s): %s", o.file, digest, strings.Join(refusals, "; "))
}

type attestationVerify struct {
	file, repo, owner, signerWorkflow, predicateType string
}

// check says why one statement does not satisfy the verification, or "".
func (o attestationVerify) check(data []byte, digest string) string {
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate struct {
			BuildDefinition struct {
				ExternalParameters struct {
					Workflow struct {
						Repository string `json:"repository"`
						Path       string `json:"path"`
					} `json:"workflow"`
				} `json:"externalParameters"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return "not an in-toto statement: " + err.Error()
	}
	found := false
	for _, s := range st.Subject {
		if strings.EqualFold(s.Digest["sha256"], digest) {
			found = true
		}
	}
	if !found {
		return "no subject has digest sha256:" + digest
	}
	if st.PredicateType != o.predicateType {
		return fmt.Sprintf("predicate type %q, want %q", st.PredicateType, o.predicateType)
	}
	wf := st.Predicate.BuildDefinition.ExternalParameters.Workflow
	// https://github.com/owner/name -> owner/name
	repo := wf.Repository
	if i := strings.Index(repo, "://"); i >= 0 {
		repo = repo[i+3:]
		if j := strings.Index(repo, "/"); j >= 0 {
			repo = repo[j+1:]
		}
	}
	switch {
	case o.repo != "" && !strings.EqualFold(repo, o.repo):
		return fmt.Sprintf("made in repository %q, not %q", repo, o.repo)
	case o.owner != "" && !strings.EqualFold(strings.SplitN(repo, "/", 2)[0], o.owner):
		return fmt.Sprintf("made in repository %q, not one of owner %q", repo, o.owner)
	}
	if o.signerWorkflow != "" {
		want := o.signerWorkflow
		if i := strings.Index(want, "://"); i >= 0 {
			want = want[i+3:]
		}
		if parts := strings.SplitN(want, "/", 2); len(parts) == 2 && strings.Contains(parts[0], ".") {
			want = parts[1] // a host (github.com/) first
		}
		got := repo + "/" + wf.Path
		if wf.Path == "" || !strings.EqualFold(got, want) {
			return fmt.Sprintf("signed by workflow %q, not %q", got, want)
		}
	}
	return ""
}

// parseAttestationVerify reads gh attestation verify's arguments (pflag
// forms, flags before and after the file).
func parseAttestationVerify(args []string) (attestationVerify, error) {
	o := attestationVerify{predicateType: SLSAProvenanceV1}
	set := func(p *string) func(string) { return func(v string) { *p = v } }
	str := map[string]func(string){"repo": set(&o.repo), "R": set(&o.repo), "owner": set(&o.owner), "o": set(&o.owner),
		"signer-workflow": set(&o.signerWorkflow), "predicate-type": set(&o.predicateType)}
	pos, err := parsePflags(args, str, nil, func(flag, _ string, _ bool) error {
		return fmt.Errorf("gh stand-in: attestation verify %s is not supported by the rehearsal's stand-in (internal/rehearse/standin/ghattest.go)", flag)
	})
	if err != nil {
		return o, err
	}
	if len(pos) != 1 {
		return o, fmt.Errorf("accepts 1 arg(s), received %d", len(pos))
	}
	o.file = pos[0]
	if strings.HasPrefix(o.file, "oci://") {
		return o, errors.New("gh stand-in: attestation verify of an OCI image is not supported by the rehearsal's stand-in")
	}
	if (o.repo == "") == (o.owner == "") {
		return o, errors.New("exactly one of --owner or --repo is required")
	}
	return o, nil
}
