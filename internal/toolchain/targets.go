package toolchain

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Deps installs the missing host packages (or says which command to run)
// and then makes sure the toolchain of the tree at root is ready: in rootfs
// mode the locked rootfs, created and checked; in host mode the host LLVM.
func Deps(ctx context.Context, root string, out io.Writer) error {
	plan, err := PlanDeps()
	if err != nil {
		return err
	}
	if err := InstallDeps(plan, out); err != nil {
		return err
	}
	start := time.Now()
	tc, err := FindIn(root)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "deps: toolchain %s (checked in %s)\n", tc.Summary(), time.Since(start).Round(time.Millisecond))
	return nil
}

// UpdateLock regenerates the lock of the tree at root and prints the diff.
func UpdateLock(ctx context.Context, root string, out io.Writer, imageDigest ImageDigestFunc) error {
	old, new, err := GenerateLock(ctx, root, out, imageDigest)
	if err != nil {
		return err
	}
	diff := DiffLocks(old, new)
	if len(diff) == 0 {
		fmt.Fprintf(out, "toolchainLock: %s unchanged (rootfs %s, %s)\n", LockFile, short(new.Rootfs.SHA256), new.OCI.Ref())
		return nil
	}
	fmt.Fprintf(out, "toolchainLock: %s changed (%d lines):\n", LockFile, len(diff))
	for _, l := range diff {
		fmt.Fprintf(out, "  %s\n", l)
	}
	fmt.Fprintf(out, "toolchainLock: commit %s, then re-capture profiles/ (go tool mage profile) with the new toolchain\n", LockFile)
	return nil
}
