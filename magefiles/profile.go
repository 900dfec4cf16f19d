//go:build mage

package main

import (
	"context"
	"os"

	"github.com/fluid-os/fluid/internal/targets"
)

// Profile builds instrumented modules, boots them under QEMU with -icount (deterministic), decodes the profile frames from COM1 and replaces profiles/ (text profiles, summary.json, toolchain.json) only if every module's frames arrived intact and came from the build that was booted; a module that crashed, timed out or failed gets no profile (summary.json says why) and the target fails naming it.
func Profile(ctx context.Context) error { return targets.Profile(ctx) }

// PGO rebuilds the modules with -fprofile-instr-use from the committed profiles/ (stale or mismatched profiles are errors naming the module) and writes them into build/fluid.img; the kernel is not rebuilt.
func PGO(ctx context.Context) error { return targets.PGO(ctx, os.Stdout) }

// Bench builds the baseline (-O2), -O3 and PGO modules, boots each under QEMU -icount and prints guest instructions per module (plus KVM cycles when KVM works), the ratios to baseline and their geometric mean; writes build/bench.json and build/bench.svg.
func Bench(ctx context.Context) error { return targets.Bench(ctx, os.Stdout) }
