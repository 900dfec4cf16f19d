// Command fluid-sbom writes a CycloneDX JSON SBOM for a Go binary. goreleaser
// runs it from its sboms step (see .goreleaser.yaml):
//
//	fluid-sbom -o DOCUMENT BINARY
//
// SOURCE_DATE_EPOCH, when set, becomes the document's timestamp.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/release"
)

func main() {
	out := flag.String("o", "", "write the SBOM to this `file` (default: stdout)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: fluid-sbom [-o FILE] BINARY")
		os.Exit(2)
	}
	var epoch int64
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fluid-sbom: SOURCE_DATE_EPOCH=%q is not a number of seconds\n", s)
			os.Exit(2)
		}
		epoch = v
	}
	doc, err := release.GenerateSBOM(flag.Arg(0), epoch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fluid-sbom:", err)
		os.Exit(1)
	}
	if *out == "" {
		os.Stdout.Write(doc)
		return
	}
	if err := atomicfile.WriteFile0644(*out, doc); err != nil {
		fmt.Fprintln(os.Stderr, "fluid-sbom:", err)
		os.Exit(1)
	}
}
