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
	"path/filepath"

	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/publish"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fluid-toolchain lock|image")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := findRoot()
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

// findRoot walks up to the tree holding the toolchain definition.
func findRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, toolchain.DefinitionFile)); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Fluid OS tree (with %s) above %s", toolchain.DefinitionFile, wd)
		}
	}
}
