//go:build mage

package main

import (
	"context"
	"os"

	"github.com/fluid-os/fluid/internal/targets"
)

// ToolchainLock resolves toolchain/definition.json against the Debian archive into toolchain/lock.json (every package's exact version, the rootfs tarball's SHA-256, the OCI image digest) and prints what changed: this is how the toolchain moves. Two mmdebstrap runs, a few minutes.
func ToolchainLock() error { return goRunCmd("./cmd/fluid-toolchain", "lock") }

// ToolchainImage writes the locked rootfs as an OCI image (one uncompressed layer: the tarball itself) to build/toolchain-oci/ (an OCI layout) and build/fluid-toolchain.tar (for `docker load` / `podman load`), and checks that its digest is the lock's. FLUID_TOOLCHAIN_PUSH=1 also pushes it by digest to the lock's repository (credentials: GITHUB_ACTOR/GITHUB_TOKEN or the docker config).
func ToolchainImage() error { return goRunCmd("./cmd/fluid-toolchain", "image") }

// ToolchainBench prints the toolchain's figures: the cold creation of the locked rootfs in an empty cache (mmdebstrap, tarball check, unpack, file record; needs the Debian archive), the cache's size, and the check every build makes before its first step. The clean-build comparison with host LLVM and the no-op build are in `bootbench`.
func ToolchainBench(ctx context.Context) error { return targets.ToolchainBench(ctx, os.Stdout) }
