//go:build mage

// Fluid OS build targets. Run `go tool mage -l` for the list, and
// `go tool mage -h <target>` for one target's help. Environment knobs:
// LIGHT=1 (small workloads), FLUID_LLVM=19|DIR (which LLVM),
// SOURCE_DATE_EPOCH (the only time in artifacts), FLUID_KVM=1 (use KVM
// when a probe shows it works), FLUID_QEMU_TIMEOUT (seconds).
package main

import (
	"context"
	"os"

	"github.com/fluid-os/fluid/internal/targets"
)

// A target only reads its arguments and calls one function: internal/targets
// for the build-and-boot targets, a command of cmd/ (through goRunCmd) for
// those whose code would make the mage binary big.

// Deps installs the host prerequisites with apt when run as root (mmdebstrap, bubblewrap, qemu-system-x86, dosfstools, mtools, gdb; no LLVM), or prints the apt-get command otherwise, then creates the locked LLVM 18 rootfs from toolchain/lock.json in the user cache (once per lock) and checks it. FLUID_TOOLCHAIN=host installs a host LLVM instead.
func Deps(ctx context.Context) error { return targets.Deps(ctx, os.Stdout) }

// Build compiles the boot stages, the kernel and the modules and assembles build/fluid.img with build/manifest.json (incremental: an unchanged tree compiles nothing). The modules are the baseline ones, or the PGO ones after `mage pgo`. LIGHT=1 shrinks the workloads.
func Build(ctx context.Context) error { return targets.Build(ctx, os.Stdout) }

// Clean removes build/ (profiles/ is kept: it is committed source).
func Clean() error { return targets.Clean(os.Stdout) }
