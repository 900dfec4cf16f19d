// Command fluid-rehearse runs the project's GitHub Actions workflows on this
// machine with act, offline and without a container engine
// (internal/rehearse). `go tool mage rehearse` runs it with no arguments:
//
//	fluid-rehearse [WORKFLOW [JOB]]
//
// WORKFLOW is a file in .github/workflows (ci.yml or ci), JOB one of its
// job ids (with the jobs it needs). With no JOB, a workflow whose every
// event passed is recorded in .github/rehearsal/passed.json. Exit status 0:
// every job passed; 1: a step or a check failed (each named above the
// summary); 2: usage.
//
// FLUID_REHEARSE_EVENTS=pull_request,push limits the events rehearsed (a
// pass is then not recorded). FLUID_REHEARSE_KEEP=1 keeps the work directory (the clone, act's
// workspaces, the artifacts, the event payloads) and prints its path.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/rehearse"
	"github.com/fluid-os/fluid/internal/release/toolcache"
)

func main() {
	if wd := os.Getenv("FLUID_WORKDIR"); wd != "" { // set by the mage target
		if err := os.Chdir(wd); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if len(args) > 2 || (len(args) > 0 && strings.HasPrefix(args[0], "-")) {
		fmt.Fprintln(os.Stderr, "usage: fluid-rehearse [WORKFLOW [JOB]]   (go tool mage rehearse runs every workflow)")
		return 2
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 2
	}
	o := rehearse.Options{Root: root, Log: os.Stdout, Record: true, Keep: os.Getenv("FLUID_REHEARSE_KEEP") == "1"}
	if len(args) > 0 {
		wf := args[0]
		if !strings.HasSuffix(wf, ".yml") {
			wf += ".yml"
		}
		if _, err := os.Stat(filepath.Join(root, ".github", "workflows", wf)); err != nil {
			fmt.Fprintf(os.Stderr, "Error: no workflow %s in .github/workflows\n", wf)
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
	logf := func(s string) { fmt.Println("rehearse:", s) }
	if o.Act, err = toolcache.Ensure(ctx, root, toolcache.Act, logf); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	if len(o.Workflows) == 0 || o.Workflows[0] == "release.yml" {
		if o.Cosign, err = toolcache.Ensure(ctx, root, toolcache.Cosign, logf); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			return 1
		}
	}
	start := time.Now()
	res, err := rehearse.Run(ctx, o)
	if res != nil {
		fmt.Printf("\nrehearsal of %s (%s):\n", shortSHA(res.Commit), time.Since(start).Round(time.Second))
		for _, r := range res.Runs {
			status := "passed"
			if len(r.Failures) > 0 {
				status = "FAILED"
			}
			var jobs []string
			for _, j := range r.Jobs {
				jobs = append(jobs, j.Job+"="+j.Result)
			}
			fmt.Printf("  %-15s %-18s %-7s %6s  %s\n", r.Workflow, r.Event, status, r.Duration.Round(time.Second), strings.Join(jobs, " "))
		}
		for _, wf := range res.Recorded {
			fmt.Printf("  recorded %s in .github/rehearsal/passed.json (commit it with the workflow)\n", wf)
		}
		if o.Keep {
			fmt.Printf("  work directory kept: %s\n", res.Dir)
		}
	}
	if err != nil {
		var re *rehearse.Error
		if errors.As(err, &re) {
			fmt.Fprintln(os.Stderr)
			fmt.Fprintln(os.Stderr, re.Error())
			return 1
		}
		fmt.Fprintln(os.Stderr, "Error:", err)
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
