// Package standin is the local half of `go tool mage rehearse`: the programs
// that stand in, on this machine, for the third-party actions the workflows
// use and for the few commands that only exist on GitHub's runners.
//
// act runs the project's real workflow files on the host. Every `uses:` of a
// third-party action is mapped (act --local-repository) to a directory under
// .github/rehearsal/actions/ whose action.yml declares the real action's
// inputs and outputs and whose script runs `fluid-standin <name>`; sudo and
// gh are the same binary under those names, first on the job's PATH. Each
// stand-in does the job's real local equivalent (Names lists them all, with
// what they do); none of them reaches the network.
//
// Inputs arrive as act passes them to any action, in INPUT_<NAME>
// variables; outputs, state and environment go to the files GitHub's runner
// protocol names ($GITHUB_OUTPUT, $GITHUB_STATE, $GITHUB_ENV).
//
// The rehearsal passes its own facts in FLUID_REHEARSAL_* variables:
// ORIGIN (the bare repository that plays GitHub's copy of the repository),
// CACHE (the actions-cache directory) and ATTESTATIONS (the attestation
// store). It also sets GITHUB_WORKFLOW_REF, which act leaves unset.
package standin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// StandIn is one stand-in: for a third-party action (Action is its
// owner/repo[/path]) or for a runner-only command (Command).
type StandIn struct {
	Name    string // the fluid-standin subcommand
	Action  string // owner/repo[/subpath] of the action it replaces, or ""
	Command string // the runner command it replaces, or ""
	Does    string // what it does locally
	run     func(e *Env) error
}

// Names is the one list of stand-ins: every action a workflow may use and
// every runner-only command the rehearsal replaces. The rehearsal refuses a
// workflow that uses an action missing here (and in .github/rehearsal/).
var Names = []StandIn{
	{Name: "checkout", Action: "actions/checkout", run: inWorkspace(checkout),
		Does: "git init + fetch of the event's ref from the rehearsal's bare origin (fetch-depth honoured: 0 = all branches and tags; fetch-tags: true fetches the fetched commits' tags), checked out like actions/checkout (branch, tag detached, pull request merge ref detached), origin reset to the GitHub URL, the token written to the git config only with persist-credentials: true; a directory already holding the repository is reused (git clean -ffdx and reset only with clean: true), any other emptied; filter, ref, submodules, lfs, sparse-checkout refused"},
	{Name: "setup-go", Action: "actions/setup-go", run: inWorkspace(setupGo),
		Does: "uses the host's Go: fails when it is older than go-version(-file) asks, and when a cache-dependency-path file does not exist (as setup-go does)"},
	{Name: "cache", Action: "actions/cache", run: cacheRestore,
		Does: "restore on main and save on post (post-if: success(), not after an exact hit, under the key the main step computed) through a local cache directory, keyed exactly as the workflow keys it (key, then restore-keys by prefix, newest first; the path patterns as written part of the version, as in actions/cache; ** a globstar); cache-hit unset on a miss; a failed restore is a warning and a miss; never restores through a symlink or outside the workspace and the cached absolute paths"},
	{Name: "cache-post", run: cachePost, Does: "the post step of actions/cache"},
	{Name: "cache-restore", Action: "actions/cache/restore", run: cacheRestoreOnly, Does: "as actions/cache, without the save; the keys are the outputs cache-primary-key and cache-matched-key"},
	{Name: "cache-save", Action: "actions/cache/save", run: cacheSave, Does: "saves into the local cache directory unless the key exists"},
	{Name: "upload-artifact", Action: "actions/upload-artifact", run: uploadArtifact,
		Does: "zips the matched files (globs, ! exclusions, symlinks followed, hidden files and hidden search paths left out, least common root; a file name with \" : < > | * ? \\r \\n refused) under $RUNNER_TEMP and uploads them to act's artifact server with the v4 protocol (CreateArtifact, block upload, FinalizeArtifact); a duplicate name fails unless overwrite"},
	{Name: "download-artifact", Action: "actions/download-artifact", run: downloadArtifact,
		Does: "lists this run's artifacts on act's artifact server and unzips the named (or all, or pattern-matched) ones, each streamed to a temporary file in the destination first; a name no job uploaded fails as download-artifact does"},
	{Name: "attest-build-provenance", Action: "actions/attest-build-provenance", run: inWorkspace(attest),
		Does: "writes the in-toto SLSA v1 provenance statement for the subject files (their SHA-256; the workflow's repository and path from GITHUB_WORKFLOW_REF, which the rehearsal sets) to $RUNNER_TEMP and to the rehearsal's attestation store (one directory per subject digest, GitHub's attestations API locally); it is not signed: that needs GitHub's OIDC token and Sigstore"},
	{Name: "sudo", Command: "sudo", run: sudo,
		Does: "never elevates: checks that apt-get install's packages are installed (apt-get update is skipped), that a sysctl already has the value asked, and skips the runner-only udev and subuid setup; any other command fails, naming it"},
	{Name: "gh", Command: "gh", run: ghCLI,
		Does: "`gh release download` through the project's GitHub client against GITHUB_API_URL (the rehearsal's fake GitHub); `gh attestation verify FILE --repo|--owner [--signer-workflow] [--predicate-type]` against the rehearsal's attestation store: passes only for a statement whose subject has FILE's SHA-256, with the predicate type asked (SLSA provenance v1 by default), made in that repository (or owner) by that workflow file; any other gh command fails, naming it"},
}

// Main runs the stand-in named by args[0]'s base name (sudo, gh) or by
// args[1], and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	name := filepath.Base(args[0])
	rest := args[1:]
	if name == "fluid-standin" || strings.HasPrefix(name, "fluid-standin") {
		if len(rest) == 0 {
			fmt.Fprintln(stderr, "usage: fluid-standin NAME [ARGS] (run by the rehearsal's stand-in actions; names: "+strings.Join(names(), ", ")+")")
			return 2
		}
		name, rest = rest[0], rest[1:]
	}
	for _, s := range Names {
		if s.Name == name {
			e := &Env{Args: rest, Stdout: stdout, Stderr: stderr, getenv: os.Getenv}
			if err := s.run(e); err != nil {
				var ee exitError
				if errors.As(err, &ee) {
					return int(ee)
				}
				// ::error:: makes act (and GitHub) show it as the step's annotation.
				fmt.Fprintf(stdout, "::error title=%s (rehearsal stand-in)::%s\n", name, oneLine(err.Error()))
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "fluid-standin: no stand-in %q (have: %s)\n", name, strings.Join(names(), ", "))
	return 2
}

// exitError passes a child's exit status through unchanged.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func names() []string {
	var n []string
	for _, s := range Names {
		n = append(n, s.Name)
	}
	sort.Strings(n)
	return n
}

func oneLine(s string) string {
	// Workflow commands end at a newline; GitHub's escaping keeps the rest.
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

// Env is what a stand-in sees: its arguments, the runner's variables and
// the files of the runner protocol.
type Env struct {
	Args           []string
	Stdout, Stderr io.Writer
	getenv         func(string) string
}

// Getenv reads a variable of the step's environment.
func (e *Env) Getenv(k string) string { return e.getenv(k) }

// Input is the action input name as the runner passes it (INPUT_ + the name
// upper-cased, spaces as underscores), trimmed, or def when empty.
func (e *Env) Input(name, def string) string {
	v := strings.TrimSpace(e.getenv("INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_"))))
	if v == "" {
		return def
	}
	return v
}

// Lines is a multi-line input, one entry per non-empty line.
func (e *Env) Lines(name string) []string {
	var out []string
	for _, l := range strings.Split(e.Input(name, ""), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Bool is a boolean input (YAML 1.2 core schema, as the toolkit's getBooleanInput).
func (e *Env) Bool(name string, def bool) (bool, error) {
	switch v := e.Input(name, ""); v {
	case "":
		return def, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	default:
		return false, fmt.Errorf("input %s: %q is not a boolean (true or false)", name, v)
	}
}

// inWorkspace adapts a stand-in that works in $GITHUB_WORKSPACE: run gets
// the workspace, or the stand-in fails saying that it is not set.
func inWorkspace(run func(e *Env, ws string) error) func(*Env) error {
	return func(e *Env) error {
		ws, err := e.Workspace()
		if err != nil {
			return err
		}
		return run(e, ws)
	}
}

// Workspace is $GITHUB_WORKSPACE (required).
func (e *Env) Workspace() (string, error) {
	ws := e.getenv("GITHUB_WORKSPACE")
	if ws == "" {
		return "", errors.New("GITHUB_WORKSPACE is not set: run through `go tool mage rehearse`")
	}
	return ws, nil
}

// Rehearsal reads a FLUID_REHEARSAL_<k> variable the rehearsal sets.
func (e *Env) Rehearsal(k string) (string, error) {
	v := e.getenv("FLUID_REHEARSAL_" + k)
	if v == "" {
		return "", fmt.Errorf("FLUID_REHEARSAL_%s is not set: the stand-ins only run inside `go tool mage rehearse`", k)
	}
	return v, nil
}

// Output sets a step output ($GITHUB_OUTPUT, heredoc form for multi-line values).
func (e *Env) Output(name, value string) error { return e.appendKV("GITHUB_OUTPUT", name, value) }

// SaveState keeps a value for the post step ($GITHUB_STATE → STATE_<name>).
func (e *Env) SaveState(name, value string) error { return e.appendKV("GITHUB_STATE", name, value) }

// State reads a value the main step saved.
func (e *Env) State(name string) string { return e.getenv("STATE_" + name) }

// ExportEnv sets a variable for the job's later steps ($GITHUB_ENV).
func (e *Env) ExportEnv(name, value string) error { return e.appendKV("GITHUB_ENV", name, value) }

func (e *Env) appendKV(fileVar, name, value string) error {
	p := e.getenv(fileVar)
	if p == "" {
		return fmt.Errorf("%s is not set: run through `go tool mage rehearse`", fileVar)
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	line := name + "=" + value + "\n"
	if strings.ContainsAny(value, "\r\n") {
		line = fmt.Sprintf("%s<<fluid_standin_EOF\n%s\nfluid_standin_EOF\n", name, value)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Logf prints one line of the step's log.
func (e *Env) Logf(format string, a ...any) { fmt.Fprintf(e.Stdout, format+"\n", a...) }

// Warnf prints a ::warning:: annotation.
func (e *Env) Warnf(format string, a ...any) {
	fmt.Fprintf(e.Stdout, "::warning::%s\n", oneLine(fmt.Sprintf(format, a...)))
}
