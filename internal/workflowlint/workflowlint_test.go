package workflowlint

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// TestActionlint runs the pinned actionlint over every workflow, and over a
// broken copy to show that it can fail.
func TestActionlint(t *testing.T) {
	root := testutil.Root(t)
	files, err := Workflows(root)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := Actionlint(root, files...); err != nil {
		t.Fatalf("actionlint is not clean:\n%s", out)
	}

	src, err := os.ReadFile(filepath.Join(root, ".github/workflows/ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), "    name: verify (reproducible build)\n", "    name: verify (reproducible build)\n    needs: no-such-job\n", 1)
	if broken == string(src) {
		t.Fatal("ci.yml no longer has the verify job this test breaks; update the test")
	}
	bad := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Actionlint(root, bad)
	if err == nil || !strings.Contains(out, "no-such-job") {
		t.Errorf("actionlint passed a workflow needing a job that does not exist:\n%s", out)
	}
}

// TestRepoPolicy is the policy over the real workflows and composite
// actions: SHA pins, read-only top-level permissions, timeouts, concurrency,
// mage targets that exist, the toolchain action before every build, no
// FLUID_TOOLCHAIN override, a toolchain lock that agrees with its definition.
func TestRepoPolicy(t *testing.T) {
	problems, err := CheckRepo(testutil.Root(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestPolicyViolations mutates a real workflow once per rule and checks that
// the rule catches it: every check can fail.
func TestPolicyViolations(t *testing.T) {
	root := testutil.Root(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, ".github/workflows", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ci, release, tc := read("ci.yml"), read("release.yml"), read("toolchain.yml")
	targets := map[string]bool{"build": true, "qemu": true, "test": true, "bench": true, "lint": true, "verify": true,
		"pgo": true, "release": true, "releasebuild": true, "sign": true, "publish": true, "deps": true}
	const toolchainStep = "      - name: Toolchain (locked rootfs, cached by toolchain/lock.json)\n        uses: ./.github/actions/toolchain\n"
	const checkout = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
	tests := []struct {
		name, src, old, new, want string
	}{
		{"tag instead of SHA", ci, checkout, "actions/checkout@v4", "actions/checkout@v4 is not pinned by a full 40-hex commit SHA"},
		{"short SHA", ci, checkout, "actions/checkout@11bd719 # v4.2.2", "is not pinned by a full 40-hex commit SHA"},
		{"SHA without version comment", ci, checkout, "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "add a `# vX.Y.Z` comment"},
		{"branch ref", ci, checkout, "actions/checkout@main # v4.2.2", "is not pinned"},
		{"top-level write", ci, "permissions:\n  contents: read\n\nconcurrency", "permissions:\n  contents: write\n\nconcurrency", "top-level permission contents: write"},
		{"top-level write-all", ci, "permissions:\n  contents: read\n\nconcurrency", "permissions: write-all\n\nconcurrency", `top-level permissions "write-all" grant write`},
		{"top-level id-token", release, "permissions:\n  contents: read\n\nconcurrency", "permissions:\n  contents: read\n  id-token: write\n\nconcurrency", "top-level permission id-token: write"},
		{"no top-level permissions", ci, "permissions:\n  contents: read\n\nconcurrency", "concurrency", "no top-level permissions"},
		{"job without timeout", ci, "    timeout-minutes: 10\n", "", "job lint has no timeout-minutes"},
		{"no concurrency", ci, "concurrency:\n  group: ci-${{ github.event.pull_request.number || github.ref }}\n  cancel-in-progress: ${{ github.event_name == 'pull_request' }}\n", "", "no concurrency group"},
		{"pull_request_target", ci, "on:\n  pull_request:\n", "on:\n  pull_request_target:\n", "pull_request_target runs with write access"},
		{"unknown mage target", ci, "go tool mage bench", "go tool mage benchmark", `has no target "benchmark"`},
		{"unknown target after a known one", ci, "go tool mage build", "go tool mage build qemuu", `has no target "qemuu"`},
		{"SLSA generator by SHA", release, "  check:\n", "  slsa:\n    needs: check\n    permissions:\n      id-token: write\n      contents: write\n      actions: read\n    uses: slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@f7dd8c54c2067bafc12ca7a55595d5ee9b75204a # v2.1.0\n    with:\n      base64-subjects: abc\n\n  check:\n", "must be referenced by a vX.Y.Z tag"},
		{"SLSA generator without comment", release, "  check:\n", "  slsa:\n    needs: check\n    permissions:\n      id-token: write\n      contents: write\n      actions: read\n    uses: slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@v2.1.0\n    with:\n      base64-subjects: abc\n\n  check:\n", "say in a comment on this line why"},
		{"docker image by tag", ci, "      - run: go tool mage lint\n", "      - uses: docker://alpine:3\n      - run: go tool mage lint\n", "pin the image by digest"},
		{"build without the toolchain action", ci, toolchainStep, "", "job test runs `go tool mage build` before the locked toolchain is ready"},
		{"toolchain action after the build", release, "      - name: Toolchain (locked rootfs, checked against toolchain/lock.json; no cache)\n        uses: ./.github/actions/toolchain\n        with:\n          cache: \"false\"\n      - name: Build\n        run: go tool mage build\n",
			"      - name: Build\n        run: go tool mage build\n      - name: Toolchain (locked rootfs, checked against toolchain/lock.json; no cache)\n        uses: ./.github/actions/toolchain\n        with:\n          cache: \"false\"\n",
			"job check runs `go tool mage build` before the locked toolchain is ready"},
		{"FLUID_TOOLCHAIN=host in the workflow env", ci, "env:\n  GOFLAGS: -mod=readonly\n", "env:\n  GOFLAGS: -mod=readonly\n  FLUID_TOOLCHAIN: host\n", "the workflow env sets FLUID_TOOLCHAIN=host"},
		{"FLUID_TOOLCHAIN=host in a job env", release, "    environment: release\n", "    environment: release\n    env:\n      FLUID_TOOLCHAIN: host\n", "job sign sets FLUID_TOOLCHAIN=host"},
		// Least privilege in the release workflow (issue 10 item 9).
		{"setup-go cache in a release job", release, "          go-version-file: go.mod\n          cache: false\n", "          go-version-file: go.mod\n", "actions/setup-go without `cache: false`"},
		{"setup-go cache: true in a release job", release, "          go-version-file: go.mod\n          cache: false\n", "          go-version-file: go.mod\n          cache: true\n", "actions/setup-go without `cache: false`"},
		{"toolchain action cache in a release job", release, "        with:\n          cache: \"false\"\n", "", "the toolchain action restores and saves the actions cache"},
		{"actions/cache in a release job", release, "      - name: Build\n        run: go tool mage build\n", "      - uses: actions/cache@5a3ec84eff668545956fd18022155c47e93e2684 # v4.2.3\n        with:\n          path: x\n          key: y\n      - name: Build\n        run: go tool mage build\n", "a release restores no cache"},
		{"the signing job builds", release, "          go tool mage sign\n", "          go tool mage build sign\n", "job sign holds id-token: write and builds"},
		{"the signing job uses the toolchain action", release, "          go tool mage sign\n", "          go tool mage sign\n      - uses: ./.github/actions/toolchain\n", "job sign holds id-token: write and builds"},
		{"the signing job publishes", release, "      contents: read\n      id-token: write", "      contents: write\n      id-token: write", "job sign holds both id-token: write and contents: write"},
		{"a second contents writer", release, "    permissions:\n      contents: read\n    outputs:", "    permissions:\n      contents: write\n    outputs:", "is a second job of a release workflow with contents: write"},
		{"the publishing job builds", release, "        run: go tool mage publish", "        run: go tool mage build publish", "job publish of a release workflow holds contents: write and builds"},
		{"the image publisher pulls what it pushes", tc, "        with:\n          create: \"true\"\n", "", "job publish holds packages: write and takes the toolchain rootfs"},
		{"the image publisher uses the cache", tc, "          create: \"true\"\n", "          cache: \"true\"\n", "job publish holds packages: write and takes the toolchain rootfs"},
		{"FLUID_TOOLCHAIN=host on a command", ci, "run: go tool mage verify", "run: FLUID_TOOLCHAIN=host go tool mage verify", "job verify sets FLUID_TOOLCHAIN=host"},
		{"FLUID_TOOLCHAIN=host through GITHUB_ENV", ci, "run: go tool mage verify", "run: |\n          echo \"FLUID_TOOLCHAIN=host\" >> \"$GITHUB_ENV\"\n          go tool mage verify", "job verify sets FLUID_TOOLCHAIN=host"},
		{"FLUID_TOOLCHAIN=container in a step env", ci, "      - name: Bench\n        id: bench\n", "      - name: Bench\n        id: bench\n        env:\n          FLUID_TOOLCHAIN: container\n", "sets FLUID_TOOLCHAIN=container"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.src, tc.old) {
				t.Fatalf("workflow no longer contains %q; update the test", tc.old)
			}
			mutated := strings.Replace(tc.src, tc.old, tc.new, 1)
			problems := CheckWorkflow("mutated.yml", []byte(mutated), targets)
			var msgs []string
			for _, p := range problems {
				msgs = append(msgs, p.String())
			}
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.want) }) {
				t.Errorf("no problem containing %q; got:\n%s", tc.want, strings.Join(msgs, "\n"))
			}
		})
	}

	// The documented exception passes: the SLSA generator by tag with a comment.
	ok := strings.Replace(release, "  check:\n", "  slsa:\n    needs: check\n    permissions:\n      id-token: write\n      contents: write\n      actions: read\n    # SLSA generator: referenced by tag, not SHA, because slsa-verifier checks the tag.\n    uses: slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@v2.1.0 # SLSA exception: by tag\n    with:\n      base64-subjects: abc\n\n  check:\n", 1)
	for _, p := range CheckWorkflow("ok.yml", []byte(ok), targets) {
		t.Errorf("documented SLSA exception flagged: %s", p)
	}
}

func TestCheckActionFile(t *testing.T) {
	src := `runs:
  using: composite
  steps:
    - uses: actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0
    - uses: actions/cache@v4
    - uses: ./.github/actions/other
    - uses: "actions/setup-go@d35c59abb061a4a6fb18e82ac0862c26744d6ab5"
`
	var got []string
	for _, p := range CheckActionFile("a.yml", []byte(src)) {
		got = append(got, p.String())
	}
	want := []string{
		"a.yml:5: uses actions/cache@v4 is not pinned by a full 40-hex commit SHA",
		"a.yml:7: uses actions/setup-go@d35c59abb061a4a6fb18e82ac0862c26744d6ab5: add a `# vX.Y.Z` comment naming the release the SHA is",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}

	// An action may not switch the toolchain either.
	src = `runs:
  using: composite
  steps:
    # FLUID_TOOLCHAIN=host in a comment is fine
    - shell: bash
      env:
        FLUID_TOOLCHAIN: host
      run: echo "FLUID_TOOLCHAIN=container" >> "$GITHUB_ENV"
`
	got = nil
	for _, p := range CheckActionFile("a.yml", []byte(src)) {
		got = append(got, p.String())
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "a.yml:7: the action sets FLUID_TOOLCHAIN=host") ||
		!strings.HasPrefix(got[1], "a.yml:8: the action sets FLUID_TOOLCHAIN=container") {
		t.Errorf("got %q", got)
	}
}

func TestMageTargetsIn(t *testing.T) {
	tests := []struct {
		script string
		want   []string
	}{
		{"go tool mage build", []string{"build"}},
		{"go tool mage -v deps qemu", []string{"deps", "qemu"}},
		{"go tool mage -t 10m build test && echo done", []string{"build", "test"}},
		{"go tool mage bench; cp build/bench.json x", []string{"bench"}},
		{"go tool mage build\ngo tool mage \\\n  verify", []string{"build", "verify"}},
		{"LIGHT=1 go tool mage test 2>&1 | tee log", []string{"test"}},
		{"go tool mage ${{ matrix.target }}", nil},
		{"echo go tool mages", nil},
		{"go tool mage pgo&& go tool mage qemu", []string{"pgo", "qemu"}},
	}
	for _, tc := range tests {
		if got := MageTargetsIn(tc.script); !slices.Equal(got, tc.want) {
			t.Errorf("MageTargetsIn(%q) = %q, want %q", tc.script, got, tc.want)
		}
	}
}

func TestParseMageList(t *testing.T) {
	out := `Fluid OS build targets. Targets: not here.

Targets:
  build     compiles everything.
  qemu*     boots (default).
  ci:lint   namespaced.
  verify    proves the build reproducible.
`
	got := ParseMageList(out)
	for _, want := range []string{"build", "qemu", "ci:lint", "verify"} {
		if !got[want] {
			t.Errorf("target %q missing from %v", want, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("targets = %v", got)
	}
}

// TestToolchainPolicy runs the toolchain rules over small workflow snippets:
// a job that builds before the toolchain action and one that sets
// FLUID_TOOLCHAIN=host fail; the same jobs done right pass.
func TestToolchainPolicy(t *testing.T) {
	const header = `name: snippet
on: push
permissions:
  contents: read
concurrency:
  group: snippet
jobs:
`
	const checkout = "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
	targets := map[string]bool{"build": true, "test": true, "deps": true, "lint": true, "toolchainimage": true}
	tests := []struct {
		name, jobs string
		want       []string // substrings, one problem each; none means clean
	}{
		{"build before the action", `  bad:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
` + checkout + `      - run: go tool mage build
      - uses: ./.github/actions/toolchain
      - run: go tool mage test
`, []string{"job bad runs `go tool mage build` before the locked toolchain is ready: add a step `uses: ./.github/actions/toolchain`"}},
		{"host toolchain", `  host:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    env:
      FLUID_TOOLCHAIN: host
    steps:
` + checkout + `      - uses: ./.github/actions/toolchain
      - run: go tool mage build
`, []string{"job host sets FLUID_TOOLCHAIN=host"}},
		{"a second target without the action is named once per step", `  two:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
` + checkout + `      - run: go tool mage build test
`, []string{"job two runs `go tool mage build` before"}},
		{"the action, then builds", `  good:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
` + checkout + `      - uses: ./.github/actions/toolchain
      - run: go tool mage build test toolchainImage
`, nil},
		{"mage deps is the equivalent", `  deps:
    runs-on: self-hosted
    timeout-minutes: 5
    env:
      FLUID_TOOLCHAIN: rootfs
    steps:
` + checkout + `      - run: go tool mage deps && go tool mage build
`, nil},
		{"targets that do not build need nothing", `  lint:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
` + checkout + `      - run: go tool mage lint
      - run: FLUID_TOOLCHAIN_PUSH=1 echo "$FLUID_TOOLCHAIN"
`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []string
			for _, p := range CheckWorkflow("snippet.yml", []byte(header+tc.jobs), targets) {
				msgs = append(msgs, p.String())
			}
			if len(msgs) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(msgs), len(tc.want), strings.Join(msgs, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(msgs[i], w) {
					t.Errorf("problem %q does not contain %q", msgs[i], w)
				}
			}
		})
	}
}

func TestModeAssignments(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"FLUID_TOOLCHAIN=host go tool mage build", []string{"host"}},
		{"export FLUID_TOOLCHAIN=container", []string{"container"}},
		{`echo "FLUID_TOOLCHAIN=host" >> "$GITHUB_ENV"`, []string{`host"`}},
		{"FLUID_TOOLCHAIN='host' go tool mage test", []string{"'host'"}},
		{"env FLUID_TOOLCHAIN= go tool mage build", []string{""}},
		{"      FLUID_TOOLCHAIN: host", []string{"host"}},
		{"FLUID_TOOLCHAIN_PUSH=1 go tool mage toolchainImage", nil},
		{`[ -z "$FLUID_TOOLCHAIN" ] && echo ${FLUID_TOOLCHAIN:-rootfs}`, nil},
		{"# never FLUID_TOOLCHAIN=host here\ngo tool mage build", nil},
	}
	for _, tc := range tests {
		if got := ModeAssignments(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("ModeAssignments(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	for v, bad := range map[string]bool{"": false, "rootfs": false, `"rootfs"`: false, "host": true, `host"`: true, "'container'": true, "${{ inputs.mode }}": true} {
		if got := modeProblem(v) != ""; got != bad {
			t.Errorf("modeProblem(%q) flagged = %v, want %v", v, got, bad)
		}
	}
}

// The packages the toolchain action installs with sudo apt-get must be
// ones `go tool mage deps` installs too: the rehearsal's sudo stand-in
// installs nothing and fails on a package the machine lacks.
func TestToolchainActionPackagesAreHostPackages(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.Root(t), ToolchainAction, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)apt-get install [^\n]*--no-install-recommends \\\n\s*([^\n]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no `apt-get install ... --no-install-recommends \\` line in the toolchain action; update this test")
	}
	host, action := toolchain.HostPackages(), strings.Fields(string(m[1]))
	for _, p := range action {
		if !slices.Contains(host, p) {
			t.Errorf("the toolchain action installs %s, which toolchain.HostPackages (what `mage deps` installs) lacks", p)
		}
	}
	for _, p := range host {
		if !slices.Contains(action, p) {
			t.Errorf("toolchain.HostPackages has %s, which the toolchain action does not install: `mage deps` would fail on the runner", p)
		}
	}
}

func TestCheckTriggers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string { return testutil.WriteFile(t, filepath.Join(dir, name), src) }
	files := []string{
		write("ci.yml", "name: ci\non:\n  pull_request:\n  push:\n  merge_group:\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: true\n"),
		write("pr-comment.yml", "name: pr-comment\non:\n  workflow_run:\n    workflows: [CI]\n    types: [completed]\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: true\n"),
		write("profiles.yml", "name: profiles\non:\n  workflow_dispatch:\n  schedule:\n    - cron: '0 0 * * 1'\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: true\n"),
	}
	probs, err := CheckTriggers(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range probs {
		msgs = append(msgs, p.String())
	}
	all := strings.Join(msgs, "\n")
	if len(probs) != 2 || !strings.Contains(all, "ci.yml: triggered by merge_group") || !strings.Contains(all, `workflow_run names workflow "CI"`) {
		t.Fatalf("problems:\n%s\nwant merge_group unrehearsed and the misnamed workflow_run (schedule is exempt)", all)
	}
}
