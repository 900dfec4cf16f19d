// Command fluid-ci is what the GitHub Actions workflows run besides mage:
//
//	fluid-ci summary -build build -step test=success ... [-outcome FILE]
//	    Markdown for $GITHUB_STEP_SUMMARY: step outcomes, each serial log's
//	    FLUID-END line and module results, the bench table; -outcome also
//	    writes the same facts as JSON for the pull-request comment.
//	fluid-ci comment -repo o/r -run-id N -head-sha SHA ...
//	    Creates or updates the bot comment on the pull request of a completed
//	    ci run, from that run's artifacts only (pr-comment.yml).
//	fluid-ci profiles-pr -repo o/r -base main -head-sha SHA -branch B -dir profiles ...
//	    Commits profiles/ through the API and opens or updates the pull
//	    request (profiles.yml).
//
// The token comes from GITHUB_TOKEN, the API from GITHUB_API_URL (default
// https://api.github.com). The calls go through internal/github's client:
// 5xx answers and network errors are retried, rate limits waited out (one
// line on stderr per retry).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/fluid-os/fluid/internal/bench"
	"github.com/fluid-os/fluid/internal/cireport"
	"github.com/fluid-os/fluid/internal/github"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "fluid-ci:", err)
		os.Exit(1)
	}
}

const usage = "usage: fluid-ci summary|comment|profiles-pr [flags] (fluid-ci CMD -h for flags)"

type steps []cireport.Step

func (s *steps) String() string { return fmt.Sprint(*s) }

func (s *steps) Set(v string) error {
	name, outcome, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("-step %q: want name=outcome", v)
	}
	if outcome == "" {
		outcome = "skipped"
	}
	*s = append(*s, cireport.Step{Name: name, Outcome: outcome})
	return nil
}

func run(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("fluid-ci "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "summary":
		buildDir := fs.String("build", "build", "build directory to read serial logs and bench.json from")
		outcomeFile := fs.String("outcome", "", "also write the outcome as JSON to this file")
		var st steps
		fs.Var(&st, "step", "name=outcome of a workflow step (repeatable)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o, err := cireport.Collect(*buildDir, st)
		if err != nil {
			return err
		}
		if *outcomeFile != "" {
			data, err := json.MarshalIndent(o, "", "  ")
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(*outcomeFile), 0o755); err != nil {
				return err
			}
			if err := atomicfile.WriteFile0644(*outcomeFile, append(data, '\n')); err != nil {
				return err
			}
		}
		o.Markdown(stdout, nil)
		return nil

	case "comment":
		repo := fs.String("repo", "", "owner/name")
		var o cireport.CommentOptions
		fs.Int64Var(&o.RunID, "run-id", 0, "id of the completed ci run")
		fs.StringVar(&o.HeadSHA, "head-sha", "", "head SHA the run built (from the workflow_run event)")
		fs.StringVar(&o.Conclusion, "conclusion", "", "the run's conclusion")
		fs.StringVar(&o.RunURL, "run-url", "", "the run's page")
		fs.StringVar(&o.Workflow, "workflow", "cireport.yml", "workflow file whose main-branch runs hold the bench to compare with")
		fs.StringVar(&o.Base, "base", "main", "branch to compare the bench against")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if o.RunID == 0 || o.HeadSHA == "" {
			return errors.New("comment: -run-id and -head-sha are required")
		}
		g, err := client(*repo, getenv)
		if err != nil {
			return err
		}
		url, err := cireport.Comment(ctx, g, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "comment: %s\n", url)
		return nil

	case "profiles-pr":
		repo := fs.String("repo", "", "owner/name")
		before := fs.String("before", "", "bench.json with the committed profiles")
		after := fs.String("after", "", "bench.json with the fresh profiles")
		var o cireport.ProfilesPROptions
		fs.StringVar(&o.Base, "base", "main", "branch the pull request targets")
		fs.StringVar(&o.HeadSHA, "head-sha", "", "commit the profiles were captured on")
		fs.StringVar(&o.Branch, "branch", "profiles/refresh", "the bot's branch (force-updated)")
		fs.StringVar(&o.Root, "root", ".", "working tree")
		fs.StringVar(&o.Dir, "dir", "profiles", "directory to commit")
		fs.StringVar(&o.RunURL, "run-url", "", "the run's page")
		fs.StringVar(&o.NoBefore, "no-before", "", "why there is no -before bench (e.g. the committed profiles were stale)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if o.HeadSHA == "" {
			return errors.New("profiles-pr: -head-sha is required")
		}
		if *before != "" && o.NoBefore != "" {
			return errors.New("profiles-pr: give -before or -no-before, not both")
		}
		var err error
		if o.Before, err = optionalBench(*before); err != nil {
			return err
		}
		if o.After, err = optionalBench(*after); err != nil {
			return err
		}
		g, err := client(*repo, getenv)
		if err != nil {
			return err
		}
		res, err := cireport.ProfilesPR(ctx, g, o)
		if err != nil {
			return err
		}
		switch {
		case !res.Changed:
			fmt.Fprintf(stdout, "profiles-pr: %s is unchanged from %s; no pull request\n", o.Dir, o.HeadSHA)
		case res.Created:
			fmt.Fprintf(stdout, "profiles-pr: opened %s (commit %s)\n", res.URL, res.Commit)
		default:
			fmt.Fprintf(stdout, "profiles-pr: updated %s (commit %s)\n", res.URL, res.Commit)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}

func client(repo string, getenv func(string) string) (*github.Client, error) {
	if repo == "" {
		repo = getenv("GITHUB_REPOSITORY")
	}
	token := getenv("GITHUB_TOKEN")
	if token == "" {
		return nil, errors.New("GITHUB_TOKEN is not set; the workflow passes github.token")
	}
	return github.New(repo, github.Options{Token: token, APIURL: getenv("GITHUB_API_URL"), Log: os.Stderr})
}

func optionalBench(path string) (*bench.Report, error) {
	if path == "" {
		return nil, nil
	}
	return cireport.ReadBench(path)
}
