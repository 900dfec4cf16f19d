//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/rehearse/record"
	"github.com/fluid-os/fluid/internal/repro"
	"github.com/fluid-os/fluid/internal/workflowlint"
)

// Verify proves the build reproducible: it builds the tree twice from clean copies in two different directories (different TZ, LANG, umask, path, start time), compares every artifact under build/ and fails naming each differing artifact, offset and ELF section or disk region (with diffoscope's report when installed). FLUID_VERIFY_KEEP=1 keeps the copies; FLUID_VERIFY_TARGETS overrides the mage targets built (default: build, plus pgo when profiles/ is committed).
func Verify(ctx context.Context) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	res, err := repro.Verify(ctx, repro.Options{
		Source:  root,
		Keep:    os.Getenv("FLUID_VERIFY_KEEP") == "1",
		Builder: repro.MageBuilder{Targets: strings.Fields(os.Getenv("FLUID_VERIFY_TARGETS"))},
		Log:     os.Stdout,
	})
	if res.DirA != "" && os.Getenv("FLUID_VERIFY_KEEP") == "1" {
		fmt.Printf("verify: copies kept in %s and %s\n", res.DirA, res.DirB)
	}
	return err
}

// Lint runs actionlint (a pinned Go tool) over every workflow in .github/workflows and the workflow policy checks (SHA pinning, permissions, timeouts, mage targets that exist), and flags a workflow that has not passed `rehearse` since it (or a composite action it uses) last changed (.github/rehearsal/passed.json; not checked inside a rehearsal, FLUID_REHEARSAL=1, which is how a changed workflow gets its pass).
func Lint() error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	files, err := workflowlint.Workflows(root)
	if err != nil {
		return err
	}
	if out, err := workflowlint.Actionlint(root, files...); err != nil {
		fmt.Print(out)
		return fmt.Errorf("actionlint found problems in .github/workflows (above): %w", err)
	}
	problems, err := workflowlint.CheckRepo(root)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if os.Getenv("FLUID_REHEARSAL") == "1" {
		fmt.Println("lint: inside a rehearsal: not checking .github/rehearsal/passed.json (the rehearsal is what records it)")
	} else {
		stale, err := record.Stale(root)
		if err != nil {
			return err
		}
		for _, s := range stale {
			fmt.Println(s)
		}
		if len(stale) > 0 {
			return fmt.Errorf("lint: %d workflows without a passing rehearsal of their current files (above)", len(stale))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("lint: %d workflow policy problems (above)", len(problems))
	}
	fmt.Printf("lint: %d workflows clean\n", len(files))
	return nil
}

// Rehearse runs the GitHub Actions workflows on this machine before anything is pushed: ci (pull_request and push to main), profiles (its refresh pull request), release (a v* tag: signed with a throwaway local key, published and then verified with fluid and the cosign CLI) and pr-comment (from ci's artifacts, as workflow_run), each with act (pinned in tools/rehearse/go.mod) in host mode: offline, no container engine, against a clean clone of HEAD plus uncommitted changes. Third-party actions, sudo and gh are the stand-ins in .github/rehearsal/ (listed in its README); GitHub's API is an in-process fake. A failed step fails it, naming workflow, job and step with its last output lines. A workflow whose every event passed is recorded in .github/rehearsal/passed.json, which `lint` checks. FLUID_REHEARSE_KEEP=1 keeps the work directory.
func Rehearse() error { return goRunCmd("./cmd/fluid-rehearse") }

// RehearseJob rehearses one job of one workflow, with the jobs it needs, for every event the rehearsal sends that workflow: e.g. `go tool mage rehearseJob ci test`; job "all" runs every job (and records a pass).
func RehearseJob(workflow, job string) error {
	if job == "all" {
		return goRunCmd("./cmd/fluid-rehearse", workflow)
	}
	return goRunCmd("./cmd/fluid-rehearse", workflow, job)
}
