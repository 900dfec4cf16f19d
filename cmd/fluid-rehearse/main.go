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
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fluid-os/fluid/internal/rehearse"
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
	os.Exit(rehearse.Command(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
