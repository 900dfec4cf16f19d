//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/cicheck"
	"github.com/fluid-os/fluid/internal/repro"
)

// Verify proves the build reproducible: it builds the tree twice from clean copies in two different directories (different TZ, LANG, umask, path, start time), compares every artifact under build/ and fails naming each differing artifact, offset and ELF section or disk region (with diffoscope's report when installed). FLUID_VERIFY_KEEP=1 keeps the copies; FLUID_VERIFY_TARGETS overrides the mage targets built (default: build, plus pgo when profiles/ is committed).
func Verify(ctx context.Context) error {
	root, err := build.FindRoot()
	if err != nil {
		return err
	}
	res, err := repro.Verify(ctx, repro.Options{
		Source:  root,
		Keep:    os.Getenv("FLUID_VERIFY_KEEP") == "1",
		Builder: repro.MageBuilder{Targets: strings.Fields(os.Getenv("FLUID_VERIFY_TARGETS"))},
		Log:     os.Stdout,
	})
	if res.DirA != "" && os.Getenv("FLUID_VERIFY_KEEP") == "1" {
		fmt.Printf("verify: copies kept in %s and %s\n", res.DirA, res.DirB)
	}
	return err
}

// Lint runs actionlint (a pinned Go tool) over every workflow in .github/workflows and the workflow policy checks (SHA pinning, permissions, timeouts, mage targets that exist).
func Lint() error {
	root, err := build.FindRoot()
	if err != nil {
		return err
	}
	files, err := cicheck.Workflows(root)
	if err != nil {
		return err
	}
	if out, err := cicheck.Actionlint(root, files...); err != nil {
		fmt.Print(out)
		return fmt.Errorf("actionlint found problems in .github/workflows (above): %w", err)
	}
	problems, err := cicheck.CheckRepo(root)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("lint: %d workflow policy problems (above)", len(problems))
	}
	fmt.Printf("lint: %d workflows clean\n", len(files))
	return nil
}
