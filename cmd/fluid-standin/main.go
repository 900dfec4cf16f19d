// Command fluid-standin runs the rehearsal's stand-ins for third-party
// actions and runner-only commands (internal/rehearse/standin). `go tool
// mage rehearse` builds it onto the jobs' PATH, also as `sudo` and `gh`:
//
//	fluid-standin checkout|setup-go|cache|cache-post|cache-restore|cache-save|upload-artifact|download-artifact|attest-build-provenance
//	sudo CMD...   gh release download ...
package main

import (
	"os"

	"github.com/fluid-os/fluid/internal/rehearse/standin"
)

func main() { os.Exit(standin.Main(os.Args, os.Stdout, os.Stderr)) }
