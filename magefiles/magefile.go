//go:build mage

// Fluid OS build targets. Run `go tool mage -l` for the list, and
// `go tool mage -h <target>` for one target's help. Environment knobs:
// LIGHT=1 (small workloads), FLUID_LLVM=19|DIR (which LLVM),
// SOURCE_DATE_EPOCH (the only time in artifacts), FLUID_KVM=1 (use KVM
// when a probe shows it works), FLUID_QEMU_TIMEOUT (seconds).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// Deps installs the host prerequisites with apt when run as root (mmdebstrap, bubblewrap, qemu-system-x86, dosfstools, mtools, gdb; no LLVM), or prints the apt-get command otherwise, then creates the locked LLVM 18 rootfs from toolchain/lock.json in the user cache (once per lock) and checks it. FLUID_TOOLCHAIN=host installs a host LLVM instead.
func Deps() error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	return toolchain.Deps(context.Background(), root, os.Stdout)
}

// Build compiles the boot stages, the kernel and the modules and assembles build/fluid.img with build/manifest.json (incremental: an unchanged tree compiles nothing). The modules are the baseline ones, or the PGO ones after `mage pgo`. LIGHT=1 shrinks the workloads.
func Build(ctx context.Context) error {
	b, a, err := buildDefault(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("build: %s (%s)\n", b.Rel(a.Image), a.Summary)
	return nil
}

// Clean removes build/ (profiles/ is kept: it is committed source).
func Clean() error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	dir := os.Getenv("FLUID_BUILD_DIR")
	if dir == "" {
		dir = root + "/build"
	}
	fmt.Printf("clean: removing %s\n", dir)
	return os.RemoveAll(dir)
}
