package toolchain

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fluid-os/fluid/internal/toolchain/oci"
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
func UpdateLock(ctx context.Context, root string, out io.Writer) error {
	old, new, err := GenerateLock(ctx, root, out)
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

// WriteImage writes the locked rootfs as an OCI layout and a docker-load
// tarball under outDir (default root/build) and, with push, pushes it by
// digest. The digest must be the one in the lock.
func WriteImage(ctx context.Context, root, outDir string, push bool, out io.Writer) error {
	lt, err := ReadLock(root)
	if err != nil {
		return err
	}
	rf, err := EnsureRootfs(ctx, lt, out)
	if err != nil {
		return err
	}
	tarball := filepath.Join(rf.Dir, "rootfs.tar")
	layer := oci.Layer{SHA256: lt.Lock.Rootfs.SHA256, Size: lt.Lock.Rootfs.Size}
	img, err := oci.Image(tarball, layer, ImageConfig(lt.Definition))
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if d.String() != lt.Lock.OCI.Digest {
		return fmt.Errorf("the toolchain image's digest is %s but %s records %s: the lock is stale; run `go tool mage toolchainLock`", d, LockFile, lt.Lock.OCI.Digest)
	}
	if outDir == "" {
		outDir = filepath.Join(root, "build")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	ref := lt.Lock.OCI.Repository + ":" + lt.Lock.LLVMVersion + "-" + lt.LockSHA256[:12]
	layout := filepath.Join(outDir, "toolchain-oci")
	if err := oci.WriteLayout(layout, img, ref); err != nil {
		return err
	}
	dtar := filepath.Join(outDir, "fluid-toolchain.tar")
	if err := oci.WriteDockerTar(dtar, img, ref); err != nil {
		return err
	}
	fmt.Fprintf(out, "toolchainImage: %s@%s\n  OCI layout: %s\n  docker load -i %s   (then FLUID_TOOLCHAIN=container uses it by digest)\n", lt.Lock.OCI.Repository, d, layout, dtar)
	if push {
		pushed, err := oci.Push(ctx, img, lt.Lock.OCI.Repository, oci.BasicAuth(os.Getenv("GITHUB_ACTOR"), os.Getenv("GITHUB_TOKEN")))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "toolchainImage: pushed %s\n", pushed)
	}
	return nil
}
