//go:build mage

package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/magefile/mage/sh"

	"github.com/fluid-os/fluid/internal/targets"
)

// Test runs everything that proves the tree works: gofmt and go vet, then the Go test suite — unit tests, the in-kernel tests booted under QEMU, boot/crash/timeout tests of real images, gdb, fsck.fat, the module fuzz target, the release and workflow checks. Extra `go test` flags come from FLUID_TEST_FLAGS (e.g. "-run Boot -v").
func Test() error {
	if err := targets.NeedTools("qemu", "fsck.fat", "mdir", "gdb"); err != nil {
		return err
	}
	if out, err := sh.Output("gofmt", "-l", "."); err != nil {
		return fmt.Errorf("gofmt: %w", err)
	} else if out != "" {
		return fmt.Errorf("gofmt would change these files (run `gofmt -w .`):\n%s", out)
	}
	fmt.Println("test: go vet ./...")
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return fmt.Errorf("go vet found problems (above): %w", err)
	}
	args := append(append([]string{"test", "-count=1", "-timeout", "80m"}, strings.Fields(os.Getenv("FLUID_TEST_FLAGS"))...), "./...")
	fmt.Printf("test: go %s\n", strings.Join(args, " "))
	return sh.RunV("go", args...)
}
