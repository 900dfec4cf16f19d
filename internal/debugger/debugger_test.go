package debugger

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build/buildtest"
)

// TestGDBStopsAtKernelMain runs the real ritual: QEMU halted with its gdb
// stub, gdb in batch mode with kernel.elf's symbols, continue, and gdb must
// report the kernel_main breakpoint with a backtrace into kernel_main.
func TestGDBStopsAtKernelMain(t *testing.T) {
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Fatalf("gdb is not installed (run `go tool mage deps`): %v", err)
	}
	a := buildtest.All(t)
	s := &Session{Kernel: a.Kernel, Image: a.Image, Timeout: 2 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	script, stop, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	out, err := Batch(ctx, gdb, script, "bt 1", "print bi->magic")
	t.Logf("gdb output:\n%s", out)
	if err != nil {
		t.Fatalf("gdb failed: %v", err)
	}
	if !strings.Contains(out, "Breakpoint 1, kernel_main") {
		t.Fatalf("gdb did not stop at kernel_main")
	}
	if !strings.Contains(out, "#0  kernel_main") {
		t.Fatalf("backtrace does not start in kernel_main")
	}
	// BOOTINFO_MAGIC "FLBI" = 0x49424c46 = 1229081670: gdb read the boot
	// info through the kernel's own symbols.
	if !strings.Contains(out, "1229081670") {
		t.Fatalf("bi->magic is not BOOTINFO_MAGIC at kernel_main")
	}
}

func TestScriptSetsRitualBreakpoints(t *testing.T) {
	s := &Session{Kernel: "build/kernel.elf", Port: 1234}
	got := s.Script()
	for _, want := range []string{"file build/kernel.elf", "target remote 127.0.0.1:1234",
		"break kernel_main", "break module_execute", "break profiling_trigger_export", "set breakpoint pending on"} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
}
