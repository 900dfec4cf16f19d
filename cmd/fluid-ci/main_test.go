package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/cireport"
)

func TestSummaryCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "serial"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "serial", "boot.log"), []byte("Fluid OS dev\nFLUID-END pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outcome := filepath.Join(dir, "ci", "outcome.json")
	var out strings.Builder
	err := run(context.Background(), []string{"summary", "-build", dir, "-step", "test=success", "-step", "bench=", "-outcome", outcome}, &out, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"✅ passed", "| test | ✅ success |", "| bench | ➖ skipped |", "FLUID-END pass"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	var o cireport.Outcome
	data, err := os.ReadFile(outcome)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &o); err != nil || len(o.Boots) != 1 || !o.Boots[0].Passed {
		t.Errorf("outcome.json = %s (%v)", data, err)
	}
}

func TestUsageErrors(t *testing.T) {
	noenv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"deploy"}, `unknown command "deploy"`},
		{[]string{"summary", "-step", "nonsense"}, "want name=outcome"},
		{[]string{"comment", "-repo", "o/r"}, "-run-id and -head-sha are required"},
		{[]string{"comment", "-repo", "o/r", "-run-id", "1", "-head-sha", "abc"}, "GITHUB_TOKEN is not set"},
		{[]string{"profiles-pr", "-repo", "o/r"}, "-head-sha is required"},
	} {
		err := run(context.Background(), tc.args, &strings.Builder{}, noenv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
}
