package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// QEMU settings that make a run repeatable: guest time counts executed
// instructions (so rdtsc reads instructions), the guest never sleeps, and
// the RTC follows that clock from a fixed date.
var deterministicQEMU = []string{
	"-icount", "shift=0,sleep=off",
	"-rtc", "clock=vm,base=2000-01-01T00:00:00",
}

// ExitPass is QEMU's exit status when the kernel wrote EXIT_PASS.
const ExitPass = 33

// Booter boots a disk image and writes COM1 to serialLog. It returns nil
// only for a passing run (QEMU exit ExitPass); otherwise the error says how
// the run ended (the log is still written for the caller to inspect).
type Booter func(ctx context.Context, image, serialLog string) error

// QEMUArgs is the qemu-system-i386 command line of QEMUBoot (for messages
// and to paste into a shell).
func QEMUArgs(image, serialLog string) []string {
	args := []string{
		"-drive", "file=" + image + ",format=raw,if=ide,index=0",
		"-snapshot", // never write the image
		"-m", "128",
		"-display", "none",
		"-monitor", "none",
		"-serial", "file:" + serialLog,
		"-no-reboot",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	}
	return append(args, deterministicQEMU...)
}

// QEMUBoot boots image under TCG with the deterministic settings. The
// timeout is FLUID_QEMU_TIMEOUT seconds (default 300).
func QEMUBoot(ctx context.Context, image, serialLog string) error {
	timeout := 300 * time.Second
	if s := os.Getenv("FLUID_QEMU_TIMEOUT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("FLUID_QEMU_TIMEOUT=%q: want a positive number of seconds", s)
		}
		timeout = time.Duration(n) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bin, err := exec.LookPath("qemu-system-i386")
	if err != nil {
		return fmt.Errorf("boot %s: qemu-system-i386 not found (install qemu-system-x86, or run go tool mage deps): %w", image, err)
	}
	if err := os.Remove(serialLog); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("boot %s: %w", image, err)
	}
	cmd := exec.CommandContext(ctx, bin, QEMUArgs(image, serialLog)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("boot %s: no result after %s (the guest hangs? serial log: %s)", image, timeout, serialLog)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		return fmt.Errorf("boot %s: %w", image, err)
	}
	if code != ExitPass {
		return fmt.Errorf("boot %s: QEMU exited %d, not %d (pass); see %s (exit codes: docs/CONTRACTS.md) %s", image, code, ExitPass, serialLog, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
