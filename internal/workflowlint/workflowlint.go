// Package workflowlint holds the policy checks over the GitHub Actions workflows
// in .github/workflows, run by the test suite and by `go tool mage lint`:
//
//   - actionlint (pinned as a Go tool in go.mod) is clean;
//   - every `uses:` is pinned by a full 40-hex commit SHA with a `# vX.Y.Z`
//     comment, except the SLSA generator's reusable workflow, which must be
//     referenced by tag (its provenance names the tag) and carry a comment
//     saying so;
//   - the workflow-level permissions grant nothing beyond read;
//   - a job with id-token: write builds nothing (no build mage target, no
//     toolchain action) and has no contents: write: it signs what another
//     job built;
//   - a job with packages: write that uses the toolchain action sets
//     `create: "true"`: it pushes only a rootfs it created, never one it
//     restored or pulled;
//   - in a release workflow (triggered by pushed tags) no job restores a
//     cache (actions/setup-go with `cache: false`, the toolchain action with
//     `cache: "false"` or `create: "true"`, no actions/cache), and one job
//     at most has contents: write, one that builds nothing;
//   - every job has timeout-minutes, every workflow a concurrency group;
//   - nothing is triggered by pull_request_target;
//   - every `go tool mage <target>` a workflow runs names a target that
//     `go tool mage -l` lists;
//   - every job that runs a build-related mage target (BuildTargets) makes
//     the locked toolchain ready first, with the composite action
//     ToolchainAction (or `go tool mage deps`);
//   - no workflow or composite action sets FLUID_TOOLCHAIN to anything but
//     the default (rootfs): never host (the runner's LLVM, which releases
//     refuse), never container (CI builds use no container engine);
//   - toolchain/definition.json and toolchain/lock.json agree
//     (toolchain.ReadLock).
package workflowlint

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/rehearse/record"
	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/rhysd/actionlint"
)

// Problem is one policy violation, located in a workflow file.
type Problem struct {
	File string
	Line int
	Msg  string
}

// String formats the problem as file:line: message.
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// SLSAGeneratorPrefix is the reusable workflow that must be referenced by
// tag: slsa-verifier checks the builder's identity by the tag it was called
// at, so a SHA reference produces provenance nobody can verify
// (https://github.com/slsa-framework/slsa-github-generator#referencing-slsa-builders-and-generators).
const SLSAGeneratorPrefix = "slsa-framework/slsa-github-generator/.github/workflows/"

// ToolchainAction is the composite action that installs the host packages,
// prepares the runner and makes the locked toolchain (toolchain/lock.json)
// ready with `go tool mage deps`.
const ToolchainAction = "./.github/actions/toolchain"

// BuildTargets are the mage targets (lower case) whose steps run in the
// locked toolchain: a job must use ToolchainAction before running them.
var BuildTargets = map[string]bool{
	"build": true, "qemu": true, "test": true, "bench": true, "bootbench": true,
	"verify": true, "profile": true, "pgo": true, "release": true, "releasebuild": true, "debug": true,
	"toolchainimage": true, "toolchainlock": true,
}

// EnvToolchainMode is the variable that picks where build steps run
// (FLUID_TOOLCHAIN); workflows leave it unset.
const EnvToolchainMode = toolchain.EnvMode

var (
	shaPinned   = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]+)?@[0-9a-f]{40}$`)
	versionNote = regexp.MustCompile(`#\s*v\d+\.\d+\.\d+\b`)
	tagRef      = regexp.MustCompile(`@v\d+\.\d+\.\d+$`)
	dockerByDig = regexp.MustCompile(`^docker://[^@]+@sha256:[0-9a-f]{64}$`)
	mageCall    = regexp.MustCompile(`\bgo[ \t]+tool[ \t]+mage\b`)
	mageList    = regexp.MustCompile(`^\s{2}([A-Za-z0-9_:]+)\*?(\s|$)`)
	// modeAssign finds FLUID_TOOLCHAIN=<value> in a shell script (an
	// assignment, an export, a line for $GITHUB_ENV) or a YAML env entry
	// (FLUID_TOOLCHAIN: <value>), but not FLUID_TOOLCHAIN_PUSH or a
	// reference to $FLUID_TOOLCHAIN.
	modeAssign = regexp.MustCompile(`(?:^|[^A-Za-z0-9_$])` + regexp.QuoteMeta(EnvToolchainMode) + `["']?(?:=|:[ \t]+)("[^"\n]*"|'[^'\n]*'|[^\s;&|)}#]*)`)
)

// modeProblem says what is wrong with setting FLUID_TOOLCHAIN to value in
// a workflow, or "" when nothing is (unset, empty or rootfs).
func modeProblem(value string) string {
	v := strings.Trim(strings.TrimSpace(value), `"'`)
	e := EnvToolchainMode
	switch v {
	case "", toolchain.ModeRootfs:
		return ""
	case toolchain.ModeHost:
		return fmt.Sprintf("sets %s=%s: that builds with the runner's own LLVM, not the locked toolchain (and `mage release` refuses it); leave %s unset", e, v, e)
	case toolchain.ModeContainer:
		return fmt.Sprintf("sets %s=%s: CI builds in the locked rootfs through bubblewrap, with no container engine; leave %s unset", e, v, e)
	default:
		return fmt.Sprintf("sets %s=%s: workflows build only in the locked rootfs (the default); leave %s unset", e, v, e)
	}
}

// ModeAssignments returns the FLUID_TOOLCHAIN values a shell script or
// YAML text sets, in order; comment lines are skipped.
func ModeAssignments(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range modeAssign.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// CheckWorkflow checks one workflow file's content. targets holds the mage
// target names (lower case) that exist; nil skips the target check.
func CheckWorkflow(file string, src []byte, targets map[string]bool) []Problem {
	var out []Problem
	add := func(line int, format string, args ...any) {
		out = append(out, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	wf, errs := actionlint.Parse(src)
	if wf == nil {
		for _, e := range errs {
			add(e.Line, "parse: %s", e.Message)
		}
		return out
	}
	lines := strings.Split(string(src), "\n")
	lineText := func(n int) string {
		if n >= 1 && n <= len(lines) {
			return lines[n-1]
		}
		return ""
	}

	// Triggers.
	for _, ev := range wf.On {
		if we, ok := ev.(*actionlint.WebhookEvent); ok && we.Hook != nil && we.Hook.Value == "pull_request_target" {
			add(we.Hook.Pos.Line, "pull_request_target runs with write access and secrets next to untrusted code; use pull_request plus a workflow_run job that reads artifacts only")
		}
	}

	// Workflow-level permissions: read at most.
	if wf.Permissions == nil {
		add(1, "no top-level permissions: set `permissions: contents: read` and widen per job")
	} else {
		p := wf.Permissions
		if p.All != nil && p.All.Value != "read-all" && p.All.Value != "" {
			add(p.All.Pos.Line, "top-level permissions %q grant write; use `contents: read` and widen per job", p.All.Value)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Scopes)) {
			s := p.Scopes[name]
			if s.Value != nil && s.Value.Value == "write" {
				add(s.Value.Pos.Line, "top-level permission %s: write; grant it only in the job that needs it", name)
			}
		}
	}
	callOnly := len(wf.On) > 0
	for _, ev := range wf.On {
		if _, ok := ev.(*actionlint.WorkflowCallEvent); !ok {
			callOnly = false
		}
	}
	// A reusable workflow runs inside its caller's concurrency group; one of
	// its own with the same key would deadlock against the caller.
	if wf.Concurrency == nil && !callOnly {
		add(1, "no concurrency group: add `concurrency:` so superseded runs are cancelled or queued")
	}

	checkUses := func(s *actionlint.String, what string) {
		if s == nil {
			return
		}
		ref := s.Value
		comment := lineText(s.Pos.Line)
		switch {
		case strings.HasPrefix(ref, "./"):
			return // an action or workflow in this repository
		case strings.HasPrefix(ref, "docker://"):
			if !dockerByDig.MatchString(ref) {
				add(s.Pos.Line, "%s %s: pin the image by digest (docker://name@sha256:...)", what, ref)
			}
		case strings.HasPrefix(ref, SLSAGeneratorPrefix):
			if !tagRef.MatchString(ref) {
				add(s.Pos.Line, "%s %s: the SLSA generator must be referenced by a vX.Y.Z tag (its verifier checks the tag)", what, ref)
			}
			if !strings.Contains(strings.ToLower(comment), "slsa") || !strings.Contains(comment, "#") {
				add(s.Pos.Line, "%s %s: say in a comment on this line why the SLSA generator is referenced by tag", what, ref)
			}
		case !shaPinned.MatchString(ref):
			add(s.Pos.Line, "%s %s is not pinned by a full 40-hex commit SHA (a tag or branch can be moved under us)", what, ref)
		case !versionNote.MatchString(comment):
			add(s.Pos.Line, "%s %s: add a `# vX.Y.Z` comment naming the release the SHA is", what, ref)
		}
	}

	// FLUID_TOOLCHAIN in an env: mapping (workflow, job or step).
	checkEnv := func(env *actionlint.Env, where string) {
		if env == nil {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(env.Vars)) {
			v := env.Vars[k]
			if v.Name == nil || !strings.EqualFold(v.Name.Value, EnvToolchainMode) {
				continue
			}
			val, line := "", v.Name.Pos.Line
			if v.Value != nil {
				val = v.Value.Value
			}
			if msg := modeProblem(val); msg != "" {
				add(line, "%s %s", where, msg)
			}
		}
	}
	checkEnv(wf.Env, "the workflow env")

	release := false // triggered by pushed tags: a release workflow
	for _, ev := range wf.On {
		if we, ok := ev.(*actionlint.WebhookEvent); ok && we.Hook != nil && we.Hook.Value == "push" && !we.Tags.IsEmpty() {
			release = true
		}
	}
	contentsWriters := 0

	for _, id := range slices.Sorted(maps.Keys(wf.Jobs)) {
		job := wf.Jobs[id]
		grants := func(scope string) *actionlint.String { // the job's write grant of scope, or nil
			if job.Permissions == nil {
				return nil
			}
			if a := job.Permissions.All; a != nil && a.Value == "write-all" {
				return a
			}
			if sc := job.Permissions.Scopes[scope]; sc != nil && sc.Value != nil && sc.Value.Value == "write" {
				return sc.Value
			}
			return nil
		}
		idToken, contents, packages := grants("id-token"), grants("contents"), grants("packages")
		if job.WorkflowCall != nil && job.WorkflowCall.Uses != nil && strings.HasPrefix(job.WorkflowCall.Uses.Value, SLSAGeneratorPrefix) {
			// The documented exception: the SLSA generator's reusable
			// workflow needs both and builds nothing itself.
			idToken, contents = nil, nil
		}
		if idToken != nil && contents != nil {
			add(idToken.Pos.Line, "job %s holds both id-token: write and contents: write; sign in one job, publish in another", id)
		}
		if release && contents != nil {
			contentsWriters++
			if contentsWriters == 2 {
				add(contents.Pos.Line, "job %s is a second job of a release workflow with contents: write; only the job that publishes gets it", id)
			}
		}
		// builds is the line of the job's first build step (a build mage
		// target or the toolchain action), 0 for none.
		builds := 0
		for _, st := range job.Steps {
			switch ex := st.Exec.(type) {
			case *actionlint.ExecAction:
				if ex.Uses == nil {
					continue
				}
				uses := strings.TrimSuffix(ex.Uses.Value, "/")
				if uses == ToolchainAction && builds == 0 {
					builds = ex.Uses.Pos.Line
				}
				input := func(name string) string {
					if in := ex.Inputs[name]; in != nil && in.Value != nil {
						return in.Value.Value
					}
					return ""
				}
				if uses == ToolchainAction && packages != nil && input("create") != "true" {
					add(ex.Uses.Pos.Line, "job %s holds packages: write and takes the toolchain rootfs from the cache or the registry it pushes to; set `create: \"true\"` so it pushes only what it created", id)
				}
				if !release {
					continue
				}
				action, _, _ := strings.Cut(uses, "@")
				switch {
				case action == "actions/setup-go" && input("cache") != "false":
					add(ex.Uses.Pos.Line, "job %s of a release workflow: actions/setup-go without `cache: false` restores Go caches other runs saved (their keys match); set `cache: false`", id)
				case uses == ToolchainAction && input("cache") != "false" && input("create") != "true":
					add(ex.Uses.Pos.Line, "job %s of a release workflow: the toolchain action restores and saves the actions cache; set `cache: \"false\"`", id)
				case action == "actions/cache" || strings.HasPrefix(action, "actions/cache/"):
					add(ex.Uses.Pos.Line, "job %s of a release workflow uses %s; a release restores no cache", id, action)
				}
			case *actionlint.ExecRun:
				if ex.Run == nil || builds != 0 {
					continue
				}
				for _, t := range MageTargetsIn(ex.Run.Value) {
					if BuildTargets[strings.ToLower(t)] {
						builds = ex.Run.Pos.Line
						break
					}
				}
			}
		}
		if idToken != nil && builds != 0 {
			add(builds, "job %s holds id-token: write and builds (a build mage target or the toolchain action); sign only what a job without it built and handed over with its digest", id)
		}
		if release && contents != nil && builds != 0 {
			add(builds, "job %s of a release workflow holds contents: write and builds; publish only what a job without it built", id)
		}
	}

	for _, id := range slices.Sorted(maps.Keys(wf.Jobs)) {
		job := wf.Jobs[id]
		if job.WorkflowCall != nil {
			// Reusable-workflow jobs cannot set timeout-minutes; the called
			// workflow's own jobs carry theirs.
			checkUses(job.WorkflowCall.Uses, "job "+id+" uses")
		} else if job.TimeoutMinutes == nil {
			add(job.Pos.Line, "job %s has no timeout-minutes (the default is 6 hours)", id)
		}
		checkEnv(job.Env, "job "+id)
		ready := false // the toolchain action (or `mage deps`) ran earlier in the job
		for _, st := range job.Steps {
			checkEnv(st.Env, "a step of job "+id)
			switch ex := st.Exec.(type) {
			case *actionlint.ExecAction:
				checkUses(ex.Uses, "step uses")
				if ex.Uses != nil && strings.TrimSuffix(ex.Uses.Value, "/") == ToolchainAction {
					ready = true
				}
			case *actionlint.ExecRun:
				if ex.Run == nil {
					continue
				}
				for _, v := range ModeAssignments(ex.Run.Value) {
					if msg := modeProblem(v); msg != "" {
						add(ex.Run.Pos.Line, "job %s %s", id, msg)
					}
				}
				reported := false
				for _, t := range MageTargetsIn(ex.Run.Value) {
					lt := strings.ToLower(t)
					if targets != nil && !targets[lt] {
						add(ex.Run.Pos.Line, "job %s runs `go tool mage %s`, but `go tool mage -l` has no target %q", id, t, t)
					}
					switch {
					case lt == "deps":
						ready = true
					case BuildTargets[lt] && !ready && !reported:
						reported = true
						add(ex.Run.Pos.Line, "job %s runs `go tool mage %s` before the locked toolchain is ready: add a step `uses: %s` (after checkout and setup-go) before it", id, t, ToolchainAction)
					}
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

var usesLine = regexp.MustCompile(`^\s*(?:-\s*)?uses:\s*['"]?([^'"\s#]+)['"]?\s*(#.*)?$`)

// CheckActionFile checks the `uses:` lines of a composite action's
// action.yml with the same pinning rule as workflows, and that it sets
// FLUID_TOOLCHAIN to nothing but the default.
func CheckActionFile(file string, src []byte) []Problem {
	var out []Problem
	for i, line := range strings.Split(string(src), "\n") {
		m := usesLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "./"):
		case dockerByDig.MatchString(ref):
		case !shaPinned.MatchString(ref):
			out = append(out, Problem{File: file, Line: i + 1, Msg: fmt.Sprintf("uses %s is not pinned by a full 40-hex commit SHA", ref)})
		case !versionNote.MatchString(m[2]):
			out = append(out, Problem{File: file, Line: i + 1, Msg: fmt.Sprintf("uses %s: add a `# vX.Y.Z` comment naming the release the SHA is", ref)})
		}
	}
	for i, line := range strings.Split(string(src), "\n") {
		for _, v := range ModeAssignments(line) {
			if msg := modeProblem(v); msg != "" {
				out = append(out, Problem{File: file, Line: i + 1, Msg: "the action " + msg})
			}
		}
	}
	return out
}

// MageTargetsIn returns the targets of every `go tool mage ...` call in a
// shell script, in order. Flags are skipped; a token with shell syntax or an
// expansion ends the list.
func MageTargetsIn(script string) []string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var out []string
	for _, m := range mageCall.FindAllStringIndex(script, -1) {
		rest, _, _ := strings.Cut(script[m[1]:], "\n")
		toks := strings.Fields(rest)
	scan:
		for i := 0; i < len(toks); i++ {
			t := toks[i]
			switch {
			case t == "-t" || t == "-d" || t == "-w" || t == "-gocmd":
				i++ // flag with a value
			case strings.HasPrefix(t, "-"):
			case strings.ContainsAny(t, "$`'\"|&;<>(){}#="):
				// End of the mage arguments, but a target glued to ';' or
				// '&&' still counts.
				if j := strings.IndexAny(t, ";&|)"); j > 0 && !strings.ContainsAny(t[:j], "$`'\"<>(){}#=") {
					out = append(out, t[:j])
				}
				break scan
			default:
				out = append(out, t)
			}
		}
	}
	return out
}

// MageTargets runs `go tool mage -l` in root and returns the target names
// in lower case (mage matches targets case-insensitively).
func MageTargets(root string) (map[string]bool, error) {
	cmd := exec.Command("go", "tool", "mage", "-l")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool mage -l in %s: %w\n%s", root, err, stderr.String())
	}
	return ParseMageList(string(out)), nil
}

// ParseMageList extracts target names from `mage -l` output.
func ParseMageList(out string) map[string]bool {
	targets := map[string]bool{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Targets:") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if m := mageList.FindStringSubmatch(line); m != nil {
			targets[strings.ToLower(m[1])] = true
		}
	}
	return targets
}

// Workflows returns the workflow files under root/.github/workflows.
func Workflows(root string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, ".github", "workflows", pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no workflows in %s", filepath.Join(root, ".github", "workflows"))
	}
	return files, nil
}

// CheckRepo runs every policy check (not actionlint) over the tree at root.
func CheckRepo(root string) ([]Problem, error) {
	files, err := Workflows(root)
	if err != nil {
		return nil, err
	}
	targets, err := MageTargets(root)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read workflow: %w", err)
		}
		rel, _ := filepath.Rel(root, f)
		out = append(out, CheckWorkflow(rel, src, targets)...)
	}
	tp, err := CheckTriggers(root, files)
	if err != nil {
		return nil, err
	}
	out = append(out, tp...)
	actions, err := filepath.Glob(filepath.Join(root, ".github", "actions", "*", "action.y*ml"))
	if err != nil {
		return nil, err
	}
	for _, f := range actions {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read action: %w", err)
		}
		rel, _ := filepath.Rel(root, f)
		out = append(out, CheckActionFile(rel, src)...)
	}
	if _, err := toolchain.ReadLock(root); err != nil {
		out = append(out, Problem{File: toolchain.LockFile, Msg: err.Error()})
	}
	return out, nil
}

// CheckTriggers checks what act cannot: every event a workflow is
// triggered by is one `go tool mage rehearse` sends it (record.Events), or
// is exempt with a reason (record.Exempt); and every workflow a
// workflow_run trigger names is the name: of a workflow in the repository
// (GitHub matches by name: a renamed workflow silently stops triggering it).
func CheckTriggers(root string, files []string) ([]Problem, error) {
	type parsed struct {
		rel string
		wf  *actionlint.Workflow
	}
	var all []parsed
	names := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		wf, errs := actionlint.Parse(src)
		if wf == nil || len(errs) > 0 {
			continue // CheckWorkflow reports it
		}
		rel, _ := filepath.Rel(root, f)
		all = append(all, parsed{filepath.ToSlash(rel), wf})
		if wf.Name != nil {
			names[wf.Name.Value] = true
		}
	}
	var out []Problem
	for _, p := range all {
		base := filepath.Base(p.rel)
		for _, ev := range p.wf.On {
			name := ev.EventName()
			if !slices.Contains(record.Events[base], name) {
				if why := record.Exempt[base][name]; why == "" {
					out = append(out, Problem{File: p.rel, Msg: fmt.Sprintf("triggered by %s, which `go tool mage rehearse` does not send it: add the event to rehearse.Plan and record.Events, or to record.Exempt with the reason it needs no rehearsal of its own", name)})
				}
			}
			if we, ok := ev.(*actionlint.WebhookEvent); ok && name == "workflow_run" {
				for _, w := range we.Workflows {
					if !names[w.Value] {
						out = append(out, Problem{File: p.rel, Line: w.Pos.Line, Msg: fmt.Sprintf("workflow_run names workflow %q, which no workflow in .github/workflows is called (name:): it would never run", w.Value)})
					}
				}
			}
		}
	}
	return out, nil
}

// Actionlint runs the pinned actionlint over files (from root) and returns
// its report; err is non-nil when it found problems or could not run.
// shellcheck and pyflakes integration is off so the result does not depend
// on what else the machine has installed (GitHub's runners have shellcheck,
// this machine may not).
func Actionlint(root string, files ...string) (string, error) {
	args := append([]string{"tool", "actionlint", "-no-color", "-oneline", "-shellcheck=", "-pyflakes="}, files...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("actionlint: %w", err)
	}
	return string(out), nil
}
