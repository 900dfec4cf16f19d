// Command fluid-release is the release half of the pipeline behind
// `go tool mage release`, `releaseBuild`, `sign`, `publish`, `releaseKey`
// and `pinPolicy` (internal/release/releasecmd does the work). It is a
// separate program so that the mage binary (rebuilt-checked on every
// `go tool mage` call) does not carry sigstore's and go-github's large
// dependency graph, which kept a no-op `mage build` slow.
//
//	go run ./cmd/fluid-release release|build|sign|publish|release-key|pin-policy|tools
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/fluid-os/fluid/internal/release/releasecmd"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: fluid-release %s (normally run through `go tool mage release|releaseBuild|sign|publish|releaseKey|pinPolicy`)\n", strings.Join(releasecmd.Commands, "|"))
		os.Exit(2)
	}
	if wd := os.Getenv("FLUID_WORKDIR"); wd != "" { // set by the mage targets
		if err := os.Chdir(wd); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := releasecmd.Run(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
