// Package profile turns what the kernel sends over COM1 after a profiling
// run into the committed profiles/ directory. The PGO build reads that
// directory through build.ProfileSource, implemented by the subpackage
// committed (which a build can import without this capture pipeline).
//
// The guest sends frames (format in kernel/include/profiling.h): per module
// a JSON summary and, for instrumented modules, the raw LLVM profile that
// compiler-rt's buffer writer produced inside the module. internal/serial
// decodes them while the guest runs and refuses truncated or garbled ones
// by module name; Collect checks that every expected module sent what it
// should; Write converts raw profiles to text with the toolchain's own
// llvm-profdata (a build step) and replaces profiles/ only when every module succeeded.
package profile

import (
	"errors"

	"github.com/fluid-os/fluid/internal/serial"
)

// ErrRefused is wrapped by every error about a frame or capture the host
// will not use (it is serial.ErrRefused: frame errors wrap it too).
var ErrRefused = serial.ErrRefused

// ErrNoKVM is wrapped by KVMBoot when this host cannot run a KVM guest.
var ErrNoKVM = errors.New("no working KVM")
