//go:build mage

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Test runs everything that proves the tree works: gofmt and go vet, then the Go test suite — unit tests, the in-kernel tests booted under QEMU, boot/crash/timeout tests of real images, gdb, fsck.fat, the module fuzz target, the release and workflow checks. Extra `go test` flags come from FLUID_TEST_FLAGS (e.g. "-run Boot -v").
func Test() error {
	if err := needTools("qemu", "fsck.fat", "mdir", "gdb"); err != nil {
		return err
	}
	if out, err := exec.Command("gofmt", "-l", ".").Output(); err != nil {
		return fmt.Errorf("gofmt: %w", err)
	} else if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("gofmt would change these files (run `gofmt -w .`):\n%s", s)
	}
	if err := run("go", "vet", "./..."); err != nil {
		return fmt.Errorf("go vet found problems (above): %w", err)
	}
	args := []string{"test", "-count=1", "-timeout", "80m"}
	args = append(args, strings.Fields(os.Getenv("FLUID_TEST_FLAGS"))...)
	args = append(args, "./...")
	return run("go", args...)
}

func run(name string, args ...string) error {
	fmt.Printf("test: %s %s\n", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
