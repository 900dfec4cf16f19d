//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fluid-os/fluid/internal/bench"
	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/profile"
)

// Profile builds instrumented modules, boots them under QEMU with -icount (deterministic), decodes the profile frames from COM1 and replaces profiles/ (text profiles, summary.json, toolchain.json) only if every module's frames arrived intact.
func Profile(ctx context.Context) error {
	b, unlock, err := build.NewLocked(build.OptionsFromEnv())
	if err != nil {
		return err
	}
	defer unlock()
	return (&profile.Pipeline{B: b}).Profile(ctx)
}

// PGO rebuilds the modules with -fprofile-instr-use from the committed profiles/ (stale or mismatched profiles are errors naming the module) and writes them into build/fluid.img; the kernel is not rebuilt.
func PGO(ctx context.Context) error {
	b, unlock, err := build.NewLocked(build.OptionsFromEnv())
	if err != nil {
		return err
	}
	defer unlock()
	a, err := b.Working(ctx, recipe.PGO, (&profile.Pipeline{B: b}).Source())
	if err != nil {
		return err
	}
	fmt.Printf("pgo: %s now holds the PGO modules (%s); boot it with `go tool mage qemu`\n", b.Rel(a.Image), a.Summary)
	return nil
}

// Bench builds the baseline (-O2), -O3 and PGO modules, boots each under QEMU -icount and prints guest instructions per module (plus KVM cycles when KVM works), the ratios to baseline and their geometric mean; writes build/bench.json and build/bench.svg.
func Bench(ctx context.Context) error {
	b, unlock, err := build.NewLocked(build.OptionsFromEnv())
	if err != nil {
		return err
	}
	defer unlock()
	rep, err := bench.Run(ctx, bench.Options{B: b, KVMBoot: profile.KVMBoot})
	if err != nil {
		return err
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	for _, line := range rep.Verdict() {
		fmt.Println("bench:", line)
	}
	if err := rep.WriteFiles(b.Out()); err != nil {
		return err
	}
	fmt.Printf("bench: wrote %s and %s\n", b.Rel(b.Out()+"/"+bench.JSONFile), b.Rel(b.Out()+"/"+bench.SVGFile))
	return nil
}
