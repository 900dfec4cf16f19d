package profile

import (
	"context"
	"fmt"

	"github.com/fluid-os/fluid/internal/qemu"
)

// Booter boots a disk image and writes COM1 to serialLog. It returns nil
// only for a passing run; otherwise the error says how the run ended (the
// log is still written for the caller to inspect).
type Booter func(ctx context.Context, image, serialLog string) error

// QEMUBoot boots image with the project's QEMU harness under TCG with
// -icount shift=0,sleep=off -rtc clock=vm: guest time counts executed
// instructions, so every run of one image executes the same instructions
// in each module and produces the same profile.
func QEMUBoot(ctx context.Context, image, serialLog string) error {
	r, err := qemu.Run(ctx, qemu.Options{Image: image, SerialLog: serialLog, Icount: true})
	if err != nil {
		return fmt.Errorf("boot %s: %w", image, err)
	}
	return r.Err()
}

// KVMBoot boots image under KVM when ProbeKVM shows KVM works on this
// host (then rdtsc counts real CPU cycles); it returns an error wrapping
// ErrNoKVM otherwise.
func KVMBoot(ctx context.Context, image, serialLog string) error {
	if err := qemu.ProbeKVM(ctx, ""); err != nil {
		return fmt.Errorf("%w: %v", ErrNoKVM, err)
	}
	r, err := qemu.Run(ctx, qemu.Options{Image: image, SerialLog: serialLog, KVM: true})
	if err != nil {
		return fmt.Errorf("boot %s: %w", image, err)
	}
	if r.Accel != "kvm" {
		return fmt.Errorf("%w: the harness fell back to %s", ErrNoKVM, r.Accel)
	}
	return r.Err()
}
