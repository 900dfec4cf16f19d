// Command fluid-toolchain runs the toolchain targets that need
// go-containerregistry (kept out of the mage binary so every other target
// stays quick to start): `lock` regenerates toolchain/lock.json, `image`
// writes (and with FLUID_TOOLCHAIN_PUSH=1 pushes) the OCI image.
// `go tool mage toolchainLock` and `toolchainImage` run it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/toolchain/publish"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fluid-toolchain lock|image")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := fileutil.FindRoot(".")
	if err == nil {
		switch os.Args[1] {
		case "lock":
			err = publish.UpdateLock(ctx, root, os.Stdout)
		case "image":
			err = publish.WriteImage(ctx, root, os.Getenv("FLUID_BUILD_DIR"), os.Getenv("FLUID_TOOLCHAIN_PUSH") == "1", os.Stdout)
		default:
			err = fmt.Errorf("unknown command %q: use lock or image", os.Args[1])
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fluid-toolchain:", err)
		os.Exit(1)
	}
}
