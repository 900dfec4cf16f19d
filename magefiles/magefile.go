//go:build mage

// Fluid OS build targets. Run `go tool mage -l` for the list, and
// `go tool mage -h <target>` for one target's help. Environment knobs:
// LIGHT=1 (small workloads), FLUID_LLVM=19|DIR (which LLVM),
// SOURCE_DATE_EPOCH (the only time in artifacts), FLUID_KVM=1 (use KVM
// when a probe shows it works), FLUID_QEMU_TIMEOUT (seconds).
package main

import (
	"fmt"
	"os"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// Deps installs the build and test prerequisites (clang/lld/llvm, the i386 profile runtime, nasm, qemu-system-x86, dosfstools, mtools, gdb) with apt when run as root, or prints the exact apt-get command to run otherwise.
func Deps() error {
	plan, err := toolchain.PlanDeps()
	if err != nil {
		return err
	}
	if err := toolchain.InstallDeps(plan, os.Stdout); err != nil {
		return err
	}
	tc, err := toolchain.Find()
	if err != nil {
		return err
	}
	fmt.Printf("deps: toolchain %s\n", tc.Summary())
	return nil
}

// Build compiles the boot stages, the kernel and the modules and assembles build/fluid.img with build/manifest.json (incremental: an unchanged tree compiles nothing). The modules are the baseline ones, or the PGO ones after `mage pgo`. LIGHT=1 shrinks the workloads.
func Build() error {
	b, a, err := buildDefault()
	if err != nil {
		return err
	}
	fmt.Printf("build: %s (%s)\n", b.Rel(a.Image), a.Summary)
	return nil
}

// Clean removes build/ (profiles/ is kept: it is committed source).
func Clean() error {
	root, err := build.FindRoot()
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
