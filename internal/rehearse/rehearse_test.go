package rehearse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/rehearse/record"
	"github.com/fluid-os/fluid/internal/release/toolcache"
	"github.com/fluid-os/fluid/internal/testutil"
)

func TestPlanMatchesRecordEvents(t *testing.T) {
	got := map[string][]string{}
	for _, p := range Plan {
		got[p.Workflow] = append(got[p.Workflow], p.Event)
	}
	for wf, evs := range record.Events {
		if strings.Join(got[wf], ",") != strings.Join(evs, ",") {
			t.Errorf("%s: plan rehearses %v, record.Events says %v", wf, got[wf], evs)
		}
	}
	for wf := range got {
		if _, ok := record.Events[wf]; !ok {
			t.Errorf("%s is in the plan but not in record.Events", wf)
		}
	}
	// Every workflow in the tree is rehearsed.
	files, _ := filepath.Glob(filepath.Join(testutil.Root(t), ".github", "workflows", "*.yml"))
	for _, f := range files {
		if _, ok := got[filepath.Base(f)]; !ok {
			t.Errorf("%s has no rehearsal in Plan", filepath.Base(f))
		}
	}
}

func TestLogNamesCompositeInnerStep(t *testing.T) {
	l := newActLog("ci.yml", "pull_request", &strings.Builder{})
	for _, line := range []string{
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"⭐ Run Main Toolchain","step":"Toolchain","stepID":["2"]}`,
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"⭐ Run Main sudo apt-get install -y gdb","step":"Toolchain","stepID":["2","0"]}`,
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"missing gdb\n","raw_output":true,"step":"Toolchain","stepID":["2","0"]}`,
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"  ❌  Failure - Main sudo apt-get","step":"Toolchain","stepID":["2","0"],"stepResult":"failure"}`,
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"  ❌  Failure - Main Toolchain","step":"Toolchain","stepID":["2"],"stepResult":"failure"}`,
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"uploading\n","raw_output":true,"step":"Upload","stepID":["9"]}`,
		`{"job":"ci/build, test","jobID":"test","level":"info","msg":"  ❌  Failure - Main Upload","step":"Upload","stepID":["9"],"stepResult":"failure"}`,
		`{"job":"ci/build, test","jobID":"test","jobResult":"failure","level":"info","msg":"🏁  Job failed"}`,
	} {
		l.line(line)
	}
	fs := l.jobFailures()
	if len(fs) != 1 {
		t.Fatalf("failures %v, want one for job test", fs)
	}
	f := fs[0]
	if f.Step != "Toolchain › sudo apt-get install -y gdb" || f.Job != "test" || strings.Join(f.Tail, "|") != "missing gdb" || strings.Join(f.Also, "|") != "Upload" {
		t.Fatalf("failure %+v", f)
	}
	if r := l.results(); len(r) != 1 || r[0].Result != "failure" {
		t.Fatalf("results %+v", r)
	}
}

// act copies a step's stdout and stderr separately: the shell's error can
// arrive after the step's result, and the failure's tail must still show it.
func TestLogTailTakesLateOutput(t *testing.T) {
	l := newActLog("ci.yml", "pull_request", &strings.Builder{})
	for _, line := range []string{
		`{"job":"ci/lint","jobID":"lint","level":"info","msg":"⭐ Run Main go tool mage lint && x","step":"lint","stepID":["3"]}`,
		`{"job":"ci/lint","jobID":"lint","level":"info","msg":"lint: 5 workflows clean\n","raw_output":true,"step":"lint","stepID":["3"]}`,
		`{"job":"ci/lint","jobID":"lint","level":"info","msg":"  ❌  Failure - Main lint","step":"lint","stepID":["3"],"stepResult":"failure"}`,
		`{"job":"ci/lint","jobID":"lint","level":"info","msg":"bash: line 1: fluid-no-such-command: command not found\n","raw_output":true,"step":"lint","stepID":["3"]}`,
		`{"job":"ci/lint","jobID":"lint","jobResult":"failure","level":"info","msg":"🏁  Job failed"}`,
	} {
		l.line(line)
	}
	fs := l.jobFailures()
	if len(fs) != 1 || !strings.Contains(strings.Join(fs[0].Tail, "|"), "fluid-no-such-command: command not found") {
		t.Fatalf("failures %+v: the late line is not in the tail", fs)
	}
}

// rehearsal runs o for a test: skipped inside a rehearsal (the test job of
// ci.yml runs this suite) and with -short; prints the command that reruns
// it by hand.
func rehearsal(t *testing.T, o Options, rerun string) (*Result, error) {
	t.Helper()
	if os.Getenv("FLUID_REHEARSAL") == "1" {
		t.Skip("inside a rehearsal: the rehearsal does not rehearse itself")
	}
	if testing.Short() {
		t.Skip("-short: the rehearsal runs act")
	}
	root := testutil.Root(t)
	ctx := context.Background()
	act, err := toolcache.Ensure(ctx, root, toolcache.Act, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	o.Root, o.Act, o.Log = root, act, testWriter{t}
	t.Logf("rerun by hand: %s", rerun)
	return Run(ctx, o)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestRehearsePullRequest is the PR path as GitHub runs it: ci.yml's lint
// and test jobs (build, boot, the whole suite, bench, artifacts) on a
// pull_request event, through act on this machine.
func TestRehearsePullRequest(t *testing.T) {
	res, err := rehearsal(t, Options{Workflows: []string{"ci.yml"}, Events: []string{"pull_request"}, Jobs: []string{"lint", "test"}},
		"FLUID_REHEARSE_EVENTS=pull_request go run ./cmd/fluid-rehearse ci test")
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, r := range res.Runs {
		for _, j := range r.Jobs {
			jobs = append(jobs, j.Job+"="+j.Result)
		}
	}
	if strings.Join(jobs, " ") != "lint=success test=success" {
		t.Fatalf("jobs %v, want lint and test to succeed", jobs)
	}
}

func ciWorkflow(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(testutil.Root(t), ".github", "workflows", "ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantFailure(t *testing.T, err error, job, step string) Failure {
	t.Helper()
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("rehearsal error %v, want a failed step", err)
	}
	for _, f := range re.Failures {
		if f.Workflow == "ci.yml" && f.Job == job && strings.Contains(f.Step, step) {
			if !strings.Contains(re.Error(), "ci.yml") || !strings.Contains(re.Error(), job) {
				t.Fatalf("report does not name the workflow and job:\n%s", re.Error())
			}
			return f
		}
	}
	t.Fatalf("no failure of ci.yml job %s step %q in:\n%s", job, step, re.Error())
	return Failure{}
}

// rehearseCICopy rehearses job of wf, a changed copy of ci.yml, for a pull
// request.
func rehearseCICopy(t *testing.T, wf, job string) error {
	t.Helper()
	_, err := rehearsal(t, Options{Workflows: []string{"ci.yml"}, Events: []string{"pull_request"}, Jobs: []string{job},
		WorkflowOverride: map[string][]byte{"ci.yml": []byte(wf)}}, "(a test copy of ci.yml)")
	return err
}

// wantInTail fails t unless the last lines f shows of its step hold text;
// what the lines should do is said in the failure ("show the shell's error").
func wantInTail(t *testing.T, f Failure, text, should string) {
	t.Helper()
	if !strings.Contains(strings.Join(f.Tail, "\n"), text) {
		t.Fatalf("the failure's last lines do not %s: %q", should, f.Tail)
	}
}

func TestRehearsalNamesBrokenRunLine(t *testing.T) {
	wf := strings.Replace(ciWorkflow(t), "      - run: go tool mage lint\n", "      - run: go tool mage lint && fluid-no-such-command --now\n", 1)
	if !strings.Contains(wf, "fluid-no-such-command") {
		t.Fatal("ci.yml's lint step changed; update this test")
	}
	err := rehearseCICopy(t, wf, "lint")
	f := wantFailure(t, err, "lint", "go tool mage lint && fluid-no-such-command")
	wantInTail(t, f, "fluid-no-such-command", "show the shell's error")
}

func TestRehearsalNamesMissingArtifact(t *testing.T) {
	job := `
  collect:
    name: collect the results
    needs: lint
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - name: Fetch what lint uploaded
        uses: actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0
        with:
          name: lint-results
`
	wf := regexp.MustCompile(`(?m)^jobs:\n`).ReplaceAllString(ciWorkflow(t), "jobs:"+job)
	err := rehearseCICopy(t, wf, "collect")
	f := wantFailure(t, err, "collect", "Fetch what lint uploaded")
	wantInTail(t, f, "Artifact not found for name: lint-results", "say which artifact")
}

// A job whose if: is false for the event does not run; act says nothing
// about it, and the rehearsal must not count it as a pass.
func TestRehearsalFailsASkippedJob(t *testing.T) {
	wf := strings.Replace(ciWorkflow(t), "  lint:\n    name: lint (actionlint, workflow policy)\n", "  lint:\n    name: lint (actionlint, workflow policy)\n    if: github.event_name == 'merge_group'\n", 1)
	if !strings.Contains(wf, "merge_group") {
		t.Fatal("ci.yml's lint job header changed; update this test")
	}
	err := rehearseCICopy(t, wf, "lint")
	var re *Error
	if !errors.As(err, &re) || !strings.Contains(re.Error(), "job lint did not run") {
		t.Fatalf("a skipped job: %v", err)
	}
}
