// Package record keeps .github/rehearsal/passed.json: which workflows
// passed `go tool mage rehearse` with exactly their current files. It is a
// leaf package (no GitHub client, no act) so that `go tool mage lint`, whose
// binary must stay small, can check it.
package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
)

// RecordFile is the committed record of the last passing rehearsal of each
// workflow: the hash of what GitHub would run (the workflow file and the
// project's composite actions it uses). `mage lint` flags a workflow whose
// files no longer hash to it (Stale).
const RecordFile = ".github/rehearsal/passed.json"

type record struct {
	Note      string                 `json:"note"`
	Workflows map[string]recordEntry `json:"workflows"`
}

type recordEntry struct {
	SHA256 string   `json:"sha256"`
	Events []string `json:"events"`
}

var (
	localUses      = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*["']?\./([^\s"'#]+)`)
	thirdPartyUses = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*["']?([A-Za-z0-9_.-]+/[^\s"'#@]+)@`)
)

// WorkflowHash hashes a workflow file, the local composite actions it uses
// (./.github/actions/X/action.yml, and theirs) and the rehearsal stand-ins
// of the third-party actions they use (.github/rehearsal/actions/O/R/), as
// found under root.
func WorkflowHash(root, workflow string) (string, error) {
	h := sha256.New()
	seen := map[string]bool{}
	var add func(rel string) error
	var addDir func(dir string) error
	add = func(rel string) error {
		if seen[rel] {
			return nil
		}
		seen[rel] = true
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
		// The stand-in of every third-party action it uses: a rehearsal
		// passed with those stand-ins, not others.
		for _, m := range thirdPartyUses.FindAllStringSubmatch(string(b), -1) {
			parts := strings.Split(m[1], "/")
			if len(parts) < 2 {
				continue
			}
			dir := ".github/rehearsal/actions/" + parts[0] + "/" + parts[1]
			if err := addDir(dir); err != nil {
				return err
			}
		}
		for _, m := range localUses.FindAllStringSubmatch(string(b), -1) {
			dir := strings.TrimSuffix(m[1], "/")
			found := false
			for _, n := range []string{"action.yml", "action.yaml"} {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir), n)); err == nil {
					if err := add(dir + "/" + n); err != nil {
						return err
					}
					found = true
					break
				}
			}
			if !found {
				return fmt.Errorf("%s uses ./%s, which has no action.yml", rel, dir)
			}
		}
		return nil
	}
	addDir = func(dir string) error {
		if seen[dir+"/"] {
			return nil
		}
		seen[dir+"/"] = true
		var files []string
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(dir)), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				r, _ := filepath.Rel(root, p)
				files = append(files, filepath.ToSlash(r))
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "%s\x00missing\x00", dir)
			return nil
		}
		if err != nil {
			return err
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
			h.Write(b)
		}
		return nil
	}
	if err := add(".github/workflows/" + workflow); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readRecord(root string) (record, error) {
	r := record{Workflows: map[string]recordEntry{}}
	b, err := os.ReadFile(filepath.Join(root, RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", RecordFile, err)
	}
	if r.Workflows == nil {
		r.Workflows = map[string]recordEntry{}
	}
	return r, nil
}

// Record writes, for each workflow, the hash of its files as rehearsed (in
// tree) into root's RecordFile.
func Record(root, tree string, workflows []string) error {
	r, err := readRecord(root)
	if err != nil {
		return err
	}
	r.Note = "Written by `go tool mage rehearse` when every event of a workflow passed; `go tool mage lint` fails for a workflow whose files (the workflow and the composite actions it uses) no longer hash to its entry. Commit it with the workflow change."
	for _, wf := range workflows {
		sum, err := WorkflowHash(tree, wf)
		if err != nil {
			return err
		}
		r.Workflows[wf] = recordEntry{SHA256: sum, Events: Events[wf]}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(root, RecordFile), append(b, '\n'), 0o644)
}

// Events is, per workflow file, the events the rehearsal sends it
// (rehearse.Plan must agree; its test checks). A workflow's pass is
// recorded only when all of them passed, every job.
var Events = map[string][]string{
	"ci.yml":         {"pull_request", "push"},
	"profiles.yml":   {"workflow_dispatch"},
	"release.yml":    {"push"},
	"pr-comment.yml": {"workflow_run"},
	"toolchain.yml":  {"pull_request", "push"},
}

// Exempt lists, per workflow, the events it is triggered by that the
// rehearsal does not send, each with the reason it needs no rehearsal of
// its own (workflowlint.CheckTriggers requires one or the other).
var Exempt = map[string]map[string]string{
	"profiles.yml": {"schedule": "the scheduled run is the workflow_dispatch job on main, which is rehearsed"},
}

// Rehearsed lists the workflow files the plan rehearses.
func Rehearsed() []string {
	var out []string
	for wf := range Events {
		out = append(out, wf)
	}
	sort.Strings(out)
	return out
}

// Stale returns one message per workflow under root that has no passing
// rehearsal of its current files: a workflow in the plan whose hash is not
// the recorded one, and a workflow file the plan does not rehearse at all.
func Stale(root string) ([]string, error) {
	r, err := readRecord(root)
	if err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	yaml, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yaml"))
	files = append(files, yaml...)
	var out []string
	inPlan := map[string]bool{}
	for _, wf := range Rehearsed() {
		inPlan[wf] = true
	}
	for _, f := range files {
		wf := filepath.Base(f)
		if !inPlan[wf] {
			out = append(out, fmt.Sprintf(".github/workflows/%s: not rehearsed: add its events to rehearse.Plan (internal/rehearse/plan.go) and record.Events and run `go tool mage rehearse`", wf))
			continue
		}
		sum, err := WorkflowHash(root, wf)
		if err != nil {
			return nil, err
		}
		got, ok := r.Workflows[wf]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf(".github/workflows/%s: has never passed a rehearsal: run `go tool mage rehearse` (it records the pass in %s; commit that)", wf, RecordFile))
		case got.SHA256 != sum:
			out = append(out, fmt.Sprintf(".github/workflows/%s: changed (it, a composite action it uses, or the rehearsal stand-in of an action it uses) since its last passing rehearsal: run `go tool mage rehearse` and commit the updated %s", wf, RecordFile))
		}
	}
	return out, nil
}
