//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"github.com/magefile/mage/mg"
	"golang.org/x/term"

	"github.com/fluid-os/fluid/internal/bootbench"
	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/debugger"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/profile"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/serial"
)

// Exit codes of `mage qemu`, one per outcome.
const (
	exitFailed      = 1
	exitCrashed     = 2
	exitTimedOut    = 3
	exitStartFailed = 4
)

// buildDefault builds the working image (what `mage build` does) from the
// recipe build.WorkingRecipe picks: the baseline, or the PGO recipe once
// `mage pgo` built it there (with a note and the baseline when the
// committed profiles went stale).
func buildDefault(ctx context.Context) (*build.Builder, *build.Artifacts, error) {
	b, unlock, err := build.NewLocked(build.OptionsFromEnv())
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	src := (&profile.Pipeline{B: b}).Source()
	r, note, err := b.WorkingRecipe(src)
	if err != nil {
		return nil, nil, err
	}
	if note != "" {
		fmt.Println("modules: " + note)
	}
	a, err := b.Working(ctx, r, src)
	return b, a, err
}

// Qemu builds if needed, boots build/fluid.img under QEMU (TCG; FLUID_KVM=1 to try KVM), streams the serial console and exits with the guest's outcome: 0 passed, 1 failed, 2 crashed, 3 timed out, 4 QEMU could not start. The serial log is kept in build/serial.log.
func Qemu() error {
	if err := needTools("qemu"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, a, err := buildDefault(ctx)
	if err != nil {
		return err
	}
	// The console shows every line but the base64 payload of profile
	// frames; build/serial.log keeps everything.
	opts := qemu.Options{Image: a.Image, OnLine: serial.Console(os.Stdout), SerialLog: filepath.Join(b.Out(), "serial.log")}
	if _, shell, err := opts.Cmdline(); err == nil {
		fmt.Printf("qemu: %s\n", shell)
	}
	r, err := qemu.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Println(r.String())
	switch r.Outcome {
	case qemu.Passed:
		return nil
	case qemu.Failed:
		return mg.Fatal(exitFailed, "guest failed")
	case qemu.Crashed:
		return mg.Fatal(exitCrashed, "guest crashed")
	case qemu.TimedOut:
		return mg.Fatal(exitTimedOut, "guest timed out")
	}
	return mg.Fatal(exitStartFailed, "QEMU could not start")
}

// Debug boots build/fluid.img in QEMU halted at reset with a gdb stub and starts gdb with build/kernel.elf's symbols and breakpoints on kernel_main, module_execute and profiling_trigger_export; without a terminal it prints the gdb command instead and waits for QEMU. FLUID_GDB_PORT picks the port.
func Debug() error {
	if err := needTools("qemu", "gdb"); err != nil {
		return err
	}
	ctx, stopSig := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stopSig()
	b, a, err := buildDefault(ctx)
	if err != nil {
		return err
	}
	port := 0
	if p := os.Getenv("FLUID_GDB_PORT"); p != "" {
		if _, err := fmt.Sscanf(p, "%d", &port); err != nil {
			return fmt.Errorf("FLUID_GDB_PORT=%q is not a port number", p)
		}
	}
	s := &debugger.Session{Kernel: a.Kernel, Image: a.Image, SourceDir: b.Root(), Port: port}
	script, stop, err := s.Start(ctx)
	if err != nil {
		return err
	}
	argv := debugger.Command(b.Toolchain().Path("gdb"), script)
	fmt.Printf("debug: QEMU is halted at reset with a gdb stub on 127.0.0.1:%d; serial goes to %s\n",
		s.Port, filepath.Join(b.Out(), "debug-serial.log"))
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Printf("debug: no terminal; attach with:\n  %s\nQEMU keeps running until the guest exits or you press Ctrl-C.\n", qemu.ShellQuote(argv))
		r := stop()
		fmt.Println(r.String())
		return nil
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signal.Ignore(os.Interrupt) // Ctrl-C belongs to gdb now
	gerr := cmd.Run()
	r := stop()
	fmt.Println(r.String())
	return gerr
}

// needTools checks optional tools a target needs, with the install hint.
func needTools(names ...string) error {
	b, err := build.New(build.OptionsFromEnv())
	if err != nil {
		return err
	}
	return b.Toolchain().Need(names...)
}

// Bootbench prints the boot chain's figures (medians of 5 runs; not pass/fail): clean build time, no-op build time next to `go tool mage -l`, QEMU start-to-exit wall time of fluid.img next to a 512-byte serial-only boot sector, guest instructions from reset to kernel_main under -icount, and kernel/image sizes. Also writes build/bootbench.json.
func Bootbench() error {
	if err := needTools("qemu"); err != nil {
		return err
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	r, err := bootbench.Run(context.Background(), bootbench.Options{Root: root, Log: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Print(r.Table())
	return nil
}
