package rehearse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/release/toolcache"
)

// Command is cmd/fluid-rehearse (`go tool mage rehearse`, `rehearseJob`):
// args are [WORKFLOW [JOB]]; it reports on stdout and stderr and returns
// the exit status (0 every job passed, 1 a step or check failed, 2 usage).
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 2 || (len(args) > 0 && strings.HasPrefix(args[0], "-")) {
		fmt.Fprintln(stderr, "usage: fluid-rehearse [WORKFLOW [JOB]]   (go tool mage rehearse runs every workflow)")
		return 2
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 2
	}
	o := Options{Root: root, Log: stdout, Record: true, Keep: os.Getenv("FLUID_REHEARSE_KEEP") == "1"}
	if len(args) > 0 {
		wf := args[0]
		if !strings.HasSuffix(wf, ".yml") {
			wf += ".yml"
		}
		if _, err := os.Stat(filepath.Join(root, ".github", "workflows", wf)); err != nil {
			fmt.Fprintf(stderr, "Error: no workflow %s in .github/workflows\n", wf)
			return 2
		}
		o.Workflows = []string{wf}
	}
	if len(args) > 1 {
		o.Jobs = []string{args[1]}
	}
	if ev := os.Getenv("FLUID_REHEARSE_EVENTS"); ev != "" {
		o.Events = strings.Split(ev, ",")
	}
	logf := func(s string) { fmt.Fprintln(stdout, "rehearse:", s) }
	if o.Act, err = toolcache.Ensure(ctx, root, toolcache.Act, logf); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	if len(o.Workflows) == 0 || o.Workflows[0] == "release.yml" {
		if o.Cosign, err = toolcache.Ensure(ctx, root, toolcache.Cosign, logf); err != nil {
			fmt.Fprintln(stderr, "Error:", err)
			return 1
		}
	}
	start := time.Now()
	res, err := Run(ctx, o)
	if res != nil {
		fmt.Fprintf(stdout, "\nrehearsal of %s (%s):\n", shortSHA(res.Commit), time.Since(start).Round(time.Second))
		for _, r := range res.Runs {
			status := "passed"
			if len(r.Failures) > 0 {
				status = "FAILED"
			}
			var jobs []string
			for _, j := range r.Jobs {
				jobs = append(jobs, j.Job+"="+j.Result)
			}
			fmt.Fprintf(stdout, "  %-15s %-18s %-7s %6s  %s\n", r.Workflow, r.Event, status, r.Duration.Round(time.Second), strings.Join(jobs, " "))
		}
		for _, wf := range res.Recorded {
			fmt.Fprintf(stdout, "  recorded %s in .github/rehearsal/passed.json (commit it with the workflow)\n", wf)
		}
		if o.Keep {
			fmt.Fprintf(stdout, "  work directory kept: %s\n", res.Dir)
		}
	}
	if err != nil {
		var re *Error
		if errors.As(err, &re) {
			fmt.Fprintln(stderr)
			fmt.Fprintln(stderr, re.Error())
			return 1
		}
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
