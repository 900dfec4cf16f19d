package profile

import (
	"context"
	"fmt"

	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/serial"
)

// Booter boots a disk image, writes COM1 to serialLog and hands every
// serial line to onLine as it arrives (nil: none). It returns nil only for
// a passing run; otherwise the error says how the run ended (the log is
// still written for the caller to inspect).
type Booter func(ctx context.Context, image, serialLog string, onLine func(string)) error

// QEMUBoot boots image with the project's QEMU harness under TCG with
// -icount shift=0,sleep=off -rtc clock=vm: guest time counts executed
// instructions, so every run of one image executes the same instructions
// in each module and produces the same profile.
func QEMUBoot(ctx context.Context, image, serialLog string, onLine func(string)) error {
	return QEMUBootMemory("")(ctx, image, serialLog, onLine)
}

// QEMUBootMemory is QEMUBoot with memory as QEMU's -m ("" = the harness
// default): an image holding a user's model needs the RAM the build
// computed for it (build.Builder.Memory).
func QEMUBootMemory(memory string) Booter {
	return func(ctx context.Context, image, serialLog string, onLine func(string)) error {
		r, err := qemu.Run(ctx, qemu.Options{Image: image, SerialLog: serialLog, OnLine: onLine, Icount: true, Memory: memory})
		if err != nil {
			return fmt.Errorf("boot %s: %w", image, err)
		}
		return r.Err()
	}
}

// KVMBoot boots image under KVM when ProbeKVM shows KVM works on this
// host (then rdtsc counts real CPU cycles); it returns an error wrapping
// ErrNoKVM otherwise.
func KVMBoot(ctx context.Context, image, serialLog string, onLine func(string)) error {
	return KVMBootMemory("")(ctx, image, serialLog, onLine)
}

// KVMBootMemory is KVMBoot with memory as QEMU's -m ("" = the default).
func KVMBootMemory(memory string) Booter {
	return func(ctx context.Context, image, serialLog string, onLine func(string)) error {
		return kvmBoot(ctx, image, serialLog, onLine, memory)
	}
}

func kvmBoot(ctx context.Context, image, serialLog string, onLine func(string), memory string) error {
	if err := qemu.ProbeKVM(ctx, ""); err != nil {
		return fmt.Errorf("%w: %v", ErrNoKVM, err)
	}
	r, err := qemu.Run(ctx, qemu.Options{Image: image, SerialLog: serialLog, OnLine: onLine, KVM: true, Memory: memory})
	if err != nil {
		return fmt.Errorf("boot %s: %w", image, err)
	}
	if r.Accel != "kvm" {
		return fmt.Errorf("%w: the harness fell back to %s", ErrNoKVM, r.Accel)
	}
	return r.Err()
}

// BootModules boots image with boot, decodes the frames while the guest
// runs, and collects what the given modules sent (as ReadLog does from a
// log on disk). captureErr is about the frames, bootErr about how the run
// ended; the caller decides which matters first.
func BootModules(ctx context.Context, boot Booter, image, serialLog string, modules []string, needProfraw bool) (mods map[string]*Module, captureErr, bootErr error) {
	var p serial.Parser
	bootErr = boot(ctx, image, serialLog, p.Line)
	c, err := p.Capture()
	if err == nil {
		// The loader's lines name why a module sent nothing or did not pass.
		mods, err = collectAll(c, Want{Modules: modules, NeedProfraw: needProfraw, Runs: p.Modules()})
	}
	if err != nil {
		return nil, fmt.Errorf("serial log %s: %w", serialLog, err), bootErr
	}
	return mods, nil, bootErr
}
