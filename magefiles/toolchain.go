//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// ToolchainLock resolves toolchain/definition.json against the Debian archive into toolchain/lock.json (every package's exact version, the rootfs tarball's SHA-256, the OCI image digest) and prints what changed: this is how the toolchain moves. Two mmdebstrap runs, about two minutes.
func ToolchainLock(ctx context.Context) error {
	root, err := build.FindRoot()
	if err != nil {
		return err
	}
	return toolchain.UpdateLock(ctx, root, os.Stdout)
}

// ToolchainImage writes the locked rootfs as an OCI image (one uncompressed layer: the tarball itself) to build/toolchain-oci/ (an OCI layout) and build/fluid-toolchain.tar (for `docker load` / `podman load`), and checks that its digest is the lock's. FLUID_TOOLCHAIN_PUSH=1 also pushes it by digest to the lock's repository (credentials: GITHUB_ACTOR/GITHUB_TOKEN or the docker config).
func ToolchainImage(ctx context.Context) error {
	root, err := build.FindRoot()
	if err != nil {
		return err
	}
	return toolchain.WriteImage(ctx, root, os.Getenv("FLUID_BUILD_DIR"), os.Getenv("FLUID_TOOLCHAIN_PUSH") == "1", os.Stdout)
}

// ToolchainBench prints the toolchain's figures: the cold creation of the locked rootfs in an empty cache (mmdebstrap, tarball check, unpack, file record; needs the Debian archive), the cache's size, and the check every build makes before its first step. The clean-build comparison with host LLVM and the no-op build are in `bootbench`.
func ToolchainBench(ctx context.Context) error {
	root, err := build.FindRoot()
	if err != nil {
		return err
	}
	r, err := toolchain.Bench(ctx, root, 5, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Print(r.Table())
	return nil
}
