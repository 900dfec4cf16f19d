//go:build mage

package main

import (
	"context"
	"os"

	"github.com/fluid-os/fluid/internal/targets"
)

// Qemu builds if needed, boots build/fluid.img under QEMU (TCG; FLUID_KVM=1 to try KVM), streams the serial console and exits with the guest's outcome: 0 passed, 1 failed, 2 crashed, 3 timed out, 4 QEMU could not start. It names every module that did not pass and turns each NAME+0xOFF of a crashed or timed-out module into file:line from its ELF. The serial log is kept in build/serial.log.
func Qemu() error { return targets.Qemu(os.Stdout) }

// Debug boots build/fluid.img in QEMU halted at reset with a gdb stub and starts gdb with build/kernel.elf's symbols and breakpoints on kernel_main, module_execute and profiling_trigger_export; without a terminal it prints the gdb command instead and waits for QEMU. FLUID_GDB_PORT picks the port.
func Debug() error { return targets.Debug(os.Getenv("FLUID_GDB_PORT"), os.Stdout) }

// Bootbench prints the boot chain's figures (medians of 5 runs; not pass/fail): clean build time, no-op build time next to `go tool mage -l`, QEMU start-to-exit wall time of fluid.img next to a 512-byte serial-only boot sector, guest instructions from reset to kernel_main under -icount, the file load rate (MB/s of a 32 MiB file through read_file, and whether the kernel read it by DMA or PIO), and kernel/image sizes. Also writes build/bootbench.json.
func Bootbench() error { return targets.Bootbench(context.Background(), os.Stdout) }
