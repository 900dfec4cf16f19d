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
	"strings"
)

// attest stands in for actions/attest-build-provenance: it resolves the
// subjects as the action does (subject-path globs, or subject-digest +
// subject-name) and writes the SLSA v1 provenance statement the action
// would sign. Signing it needs GitHub's OIDC token and Sigstore's public
// Fulcio, which a rehearsal has neither of, so the statement stays unsigned
// and the step says so; the rehearsal checks that the subject exists and
// has the digest the release's checksums name.
func attest(e *Env, ws string) error {
	type subject struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	var subjects []subject
	if p := e.Input("subject-path", ""); p != "" {
		for _, pat := range strings.FieldsFunc(p, func(r rune) bool { return r == '\n' || r == ',' }) {
			pat = strings.TrimSpace(pat)
			if pat == "" {
				continue
			}
			matches, _ := filepath.Glob(expandPath(e, ws, pat))
			if len(matches) == 0 {
				return fmt.Errorf("Could not find subject at path %s", pat)
			}
			for _, m := range matches {
				f, err := os.Open(m)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					return err
				}
				subjects = append(subjects, subject{Name: filepath.Base(m), Digest: map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))}})
			}
		}
	} else if d, n := e.Input("subject-digest", ""), e.Input("subject-name", ""); d != "" && n != "" {
		alg, hexd, ok := strings.Cut(d, ":")
		if !ok {
			return fmt.Errorf("subject-digest %q: want <alg>:<hex>", d)
		}
		subjects = append(subjects, subject{Name: n, Digest: map[string]string{alg: hexd}})
	} else {
		return errors.New("One of subject-path or subject-digest must be provided")
	}
	server, repo := e.Getenv("GITHUB_SERVER_URL"), e.Getenv("GITHUB_REPOSITORY")
	if server == "" {
		server = "https://github.com"
	}
	// GITHUB_WORKFLOW_REF is owner/repo/.github/workflows/x.yml@ref; the
	// provenance names the workflow file by its path in the repository.
	wfPath, _, _ := strings.Cut(strings.TrimPrefix(e.Getenv("GITHUB_WORKFLOW_REF"), repo+"/"), "@")
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       subjects,
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters": map[string]any{"workflow": map[string]any{
					"ref": e.Getenv("GITHUB_REF"), "repository": server + "/" + repo, "path": wfPath,
				}},
				"internalParameters": map[string]any{"github": map[string]any{
					"event_name": e.Getenv("GITHUB_EVENT_NAME"), "repository_id": e.Getenv("GITHUB_REPOSITORY_ID"),
				}},
				"resolvedDependencies": []any{map[string]any{
					"uri": "git+" + server + "/" + repo + "@" + e.Getenv("GITHUB_REF"), "digest": map[string]string{"gitCommit": e.Getenv("GITHUB_SHA")},
				}},
			},
			"runDetails": map[string]any{
				"builder":  map[string]any{"id": "fluid-standin (go tool mage rehearse): unsigned rehearsal provenance"},
				"metadata": map[string]any{"invocationId": server + "/" + repo + "/actions/runs/" + e.Getenv("GITHUB_RUN_ID") + "/attempts/" + e.Getenv("GITHUB_RUN_ATTEMPT")},
			},
		},
	}
	b, _ := json.MarshalIndent(stmt, "", "  ")
	tmp := e.Getenv("RUNNER_TEMP")
	if tmp == "" {
		return errors.New("RUNNER_TEMP is not set")
	}
	sum := sha256.Sum256(b)
	out := filepath.Join(tmp, "provenance-"+hex.EncodeToString(sum[:6])+".intoto.json")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	// The rehearsal's attestation store stands in for GitHub's attestations
	// API: one directory per subject digest, read by `gh attestation verify`.
	store := e.Getenv("FLUID_REHEARSAL_ATTESTATIONS")
	for _, s := range subjects {
		e.Logf("provenance statement for %s sha256:%s (unsigned: the rehearsal has no OIDC token)", s.Name, s.Digest["sha256"])
		if store == "" || s.Digest["sha256"] == "" {
			continue
		}
		dir := filepath.Join(store, "sha256-"+s.Digest["sha256"])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(out)), b, 0o644); err != nil {
			return err
		}
	}
	if err := e.Output("bundle-path", out); err != nil {
		return err
	}
	return e.Output("attestation-id", "rehearsal-unsigned")
}
