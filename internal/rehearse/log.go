package rehearse

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// tailLines is how many output lines of a failed step a report shows.
const tailLines = 25

// Failure is one failed step of a rehearsed job.
type Failure struct {
	Workflow string   // file name, e.g. ci.yml
	Event    string   // pull_request, push, ...
	Job      string   // job id
	JobName  string   // the job's name as act shows it
	Step     string   // the step's name (composite inner steps as outer › inner)
	Tail     []string // its last output lines
	Also     []string // steps of the same job that failed after it
	topID    string
}

func (f Failure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): job %s", f.Workflow, f.Event, f.Job)
	if f.JobName != "" && f.JobName != f.Job {
		fmt.Fprintf(&b, " (%s)", f.JobName)
	}
	fmt.Fprintf(&b, ", step %q failed", f.Step)
	if len(f.Also) > 0 {
		fmt.Fprintf(&b, " (later also failed: %s)", strings.Join(f.Also, "; "))
	}
	if len(f.Tail) > 0 {
		fmt.Fprintf(&b, "; its last %d output lines:\n", len(f.Tail))
		for _, l := range f.Tail {
			b.WriteString("    | " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// JobResult is how one job of a rehearsed run ended.
type JobResult struct {
	Job, JobName, Result string // Result: success, failure, skipped
}

// actLog reads act's --json log: one JSON object per line with the job, the
// step, the stage (Pre/Main/Post), the message, and stepResult/jobResult
// at the ends. It prints a readable log to w and keeps, per step, the last
// output lines, so a failure can be reported with them.
type actLog struct {
	workflow, event string
	w               io.Writer
	tails           map[string][]string // job \x00 top-level step id -> last lines
	inner           map[string]string   // job \x00 step id path -> what the composite's inner step runs
	failures        []Failure
	jobs            map[string]*JobResult
	order           []string
	other           []string // lines that were not JSON (act's own errors)
	inPanic         bool     // reading a Go panic trace of act's artifact server
	panic           []string
}

// endPanic prints a panic trace of act's artifact server, unless it is the
// known one: ListArtifacts on a run with no artifact yet, which the
// stand-ins take as an empty list.
func (l *actLog) endPanic() {
	if !l.inPanic {
		return
	}
	l.inPanic = false
	if strings.Contains(strings.Join(l.panic, "\n"), "listArtifacts") {
		fmt.Fprintf(l.w, "[%s] (act's artifact server: no artifact in this run yet; its panic trace is left out)\n", l.workflow)
		return
	}
	for _, t := range l.panic {
		fmt.Fprintf(l.w, "[%s] %s\n", l.workflow, t)
	}
	l.other = append(l.other, l.panic...)
}

type actLine struct {
	Job        string   `json:"job"`
	JobID      string   `json:"jobID"`
	Step       string   `json:"step"`
	StepID     []string `json:"stepID"`
	Stage      string   `json:"stage"`
	Msg        string   `json:"msg"`
	Level      string   `json:"level"`
	Raw        bool     `json:"raw_output"`
	StepResult string   `json:"stepResult"`
	JobResult  string   `json:"jobResult"`
}

func newActLog(workflow, event string, w io.Writer) *actLog {
	return &actLog{workflow: workflow, event: event, w: w, tails: map[string][]string{}, inner: map[string]string{}, jobs: map[string]*JobResult{}}
}

func (l *actLog) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l.line(sc.Text())
	}
	l.endPanic()
	if err := sc.Err(); err != nil {
		// A line too long to parse: say so, and keep draining act's
		// output so that it never blocks on a full pipe.
		l.other = append(l.other, "(act's log: "+err.Error()+"; the rest of it is in the act-*.jsonl file of the work directory)")
		io.Copy(io.Discard, r)
	}
}

func (l *actLog) line(text string) {
	var a actLine
	if !strings.HasPrefix(text, "{") || json.Unmarshal([]byte(text), &a) != nil {
		// act's artifact server panics when a run with no artifact yet is
		// asked for its list (the stand-ins take the dropped connection as
		// an empty list): its trace is noise.
		if strings.Contains(text, "http: panic serving") {
			l.inPanic, l.panic = true, []string{text}
			return
		}
		if l.inPanic {
			l.panic = append(l.panic, text)
			return
		}
		if strings.TrimSpace(text) != "" {
			l.other = append(l.other, text)
			if len(l.other) > tailLines {
				l.other = l.other[1:]
			}
			fmt.Fprintf(l.w, "[%s] %s\n", l.workflow, text)
		}
		return
	}
	l.endPanic()
	msg := strings.TrimRight(a.Msg, "\n")
	jobID := a.JobID
	if jobID == "" {
		jobID = a.Job
	}
	if jobID == "" {
		// act's own messages (no job): errors are kept for the report.
		if a.Level == "error" || a.Level == "fatal" {
			l.other = append(l.other, msg)
		}
		if strings.TrimSpace(msg) != "" {
			fmt.Fprintf(l.w, "[%s] %s\n", l.workflow, strings.TrimSpace(msg))
		}
		return
	}
	if l.jobs[jobID] == nil {
		l.jobs[jobID] = &JobResult{Job: jobID, JobName: strings.TrimPrefix(a.Job, "")}
		l.order = append(l.order, jobID)
	}
	prefix := fmt.Sprintf("[%s/%s]", strings.TrimSuffix(l.workflow, ".yml"), jobID)
	top := a.Step
	if len(a.StepID) > 0 {
		top = a.StepID[0]
	}
	key := jobID + "\x00" + top
	if len(a.StepID) > 1 && strings.HasPrefix(strings.TrimSpace(msg), "⭐ Run ") {
		what := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(msg), "⭐ Run "))
		for _, stage := range []string{"Main ", "Pre ", "Post "} {
			what = strings.TrimPrefix(what, stage)
		}
		if i := strings.IndexByte(what, '\n'); i >= 0 {
			what = what[:i]
		}
		l.inner[jobID+"\x00"+strings.Join(a.StepID, "/")] = what
	}
	switch {
	case a.Raw:
		for _, ln := range strings.Split(msg, "\n") {
			t := append(l.tails[key], ln)
			if len(t) > tailLines {
				t = t[len(t)-tailLines:]
			}
			l.tails[key] = t
			fmt.Fprintf(l.w, "%s   | %s\n", prefix, ln)
		}
		// act copies a step's stdout and stderr on their own goroutines, so
		// the shell's last words (its error) can come after the step's
		// result: a failure already recorded for this step takes them too.
		for i := range l.failures {
			if f := &l.failures[i]; f.Job == jobID && f.topID == top {
				f.Tail = append([]string(nil), l.tails[key]...)
			}
		}
	case a.StepResult != "":
		fmt.Fprintf(l.w, "%s %s\n", prefix, strings.TrimSpace(msg))
		if a.StepResult == "failure" {
			step := a.Step
			if len(a.StepID) > 1 {
				if what := l.inner[jobID+"\x00"+strings.Join(a.StepID, "/")]; what != "" {
					step += " › " + what
				}
			}
			l.failures = append(l.failures, Failure{Workflow: l.workflow, Event: l.event, Job: jobID, JobName: a.Job,
				Step: step, Tail: l.stepTail(jobID, top), topID: top})
		}
	case a.JobResult != "":
		l.jobs[jobID].Result = a.JobResult
		fmt.Fprintf(l.w, "%s %s\n", prefix, strings.TrimSpace(msg))
	case a.Level == "error" || a.Level == "warning":
		// act's own errors (a step that could not start) are output too.
		t := append(l.tails[key], msg)
		if len(t) > tailLines {
			t = t[len(t)-tailLines:]
		}
		l.tails[key] = t
		fmt.Fprintf(l.w, "%s %s: %s\n", prefix, a.Level, msg)
	case a.Level == "info" && msg != "":
		fmt.Fprintf(l.w, "%s %s\n", prefix, strings.TrimSpace(msg))
	}
}

// stepTail is a step's last lines; a composite step's output is logged under
// its inner steps' names, so an outer step without lines of its own gets
// the job's most recent ones.
func (l *actLog) stepTail(job, top string) []string {
	if t := l.tails[job+"\x00"+top]; len(t) > 0 {
		return t
	}
	var all []string
	for k, t := range l.tails {
		if strings.HasPrefix(k, job+"\x00") {
			all = append(all, t...)
		}
	}
	if len(all) > tailLines {
		all = all[len(all)-tailLines:]
	}
	return all
}

// results lists the jobs in the order they started.
func (l *actLog) results() []JobResult {
	var out []JobResult
	for _, j := range l.order {
		out = append(out, *l.jobs[j])
	}
	return out
}

// jobFailures reduces the step failures to one per failed job: the first
// step that failed (for a composite action, its failing inner step, named
// with the outer step that ran it), listing the job's later failed steps.
func (l *actLog) jobFailures() []Failure {
	byJob := map[string][]Failure{}
	for _, f := range l.failures {
		// A failed step of a job that succeeded had continue-on-error (act
		// logs the step's outcome, GitHub counts its conclusion).
		if j := l.jobs[f.Job]; j != nil && j.Result == "success" {
			continue
		}
		byJob[f.Job] = append(byJob[f.Job], f)
	}
	// A job that failed without a failed step (an if: act could not
	// evaluate, a needs: that failed to start) is reported with act's
	// last words about it.
	for _, j := range l.order {
		if l.jobs[j].Result == "failure" && len(byJob[j]) == 0 {
			byJob[j] = []Failure{{Workflow: l.workflow, Event: l.event, Job: j, JobName: l.jobs[j].JobName,
				Step: "(the job, before or between steps)", Tail: append(l.stepTail(j, ""), l.other...)}}
		}
	}
	var out []Failure
	jobs := slices.Sorted(maps.Keys(byJob))
	for _, j := range jobs {
		fs := byJob[j]
		f := fs[0]
		for _, later := range fs[1:] {
			if later.topID != f.topID && !contains(f.Also, later.Step) {
				f.Also = append(f.Also, later.Step)
			}
		}
		out = append(out, f)
	}
	return out
}
