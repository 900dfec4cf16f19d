package debugger

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/testutil"
)

// TestGDBStopsAtKernelMain runs the real ritual: QEMU halted with its gdb
// stub, gdb in batch mode with kernel.elf's symbols, continue, and gdb must
// report the kernel_main breakpoint with a backtrace into kernel_main.
func TestGDBStopsAtKernelMain(t *testing.T) {
	testutil.RequireTools(t, "gdb")
	gdb := "gdb"
	a := buildtest.All(t)
	b := buildtest.Builder(t)
	s := &Session{Kernel: a.Kernel, Image: a.Image, SourceDir: b.Root(), Timeout: 2 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	script, stop, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// At the breakpoint (the function's first instruction) the arguments
	// are in the SysV x86_64 registers: RDI = magic, RSI = boot_info.
	out, err := Batch(ctx, gdb, script, "bt 1",
		"print/x (unsigned int)$rdi",
		"print/x ((const struct boot_info *)$rsi)->magic",
		"list kernel_main")
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
	// BOOTINFO_MAGIC "FLBI" = 0x49424c46 in EDI (passed as magic) and in
	// boot_info, read through the kernel's own type information.
	if strings.Count(out, "= 0x49424c46") != 2 {
		t.Fatalf("gdb did not read BOOTINFO_MAGIC as kernel_main's magic and bi->magic")
	}
	if !strings.Contains(out, "kernel_main(uint32_t magic") {
		t.Fatalf("gdb could not list kernel_main's source (directory not set?)")
	}
}

func TestScriptSetsRitualBreakpoints(t *testing.T) {
	s := &Session{Kernel: "build/kernel.elf", Port: 1234}
	got := s.Script()
	for _, want := range []string{"file build/kernel.elf", "target remote 127.0.0.1:1234",
		"break kernel_main", "break module_execute", "break profiling_trigger_export", "set breakpoint pending on",
		"set architecture i386:x86-64"} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
}

// TestInteractiveWithoutTerminalWaitsForQEMU: without a terminal on stdin,
// Interactive prints the gdb command for a person to run by hand, so QEMU
// (and its stub) must keep running until it ends on its own: stop may
// come only after wait returned (it used to be called at once, killing
// QEMU before anyone could attach).
func TestInteractiveWithoutTerminalWaitsForQEMU(t *testing.T) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var order []string
	release := make(chan struct{})
	wait := func() *qemu.Result {
		<-release
		order = append(order, "wait")
		return &qemu.Result{Outcome: qemu.Passed}
	}
	stop := func() *qemu.Result {
		order = append(order, "stop")
		return &qemu.Result{Outcome: qemu.Passed}
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		close(release)
	}()
	var out strings.Builder
	if err := Interactive([]string{"gdb", "-q", "-x", "debug.gdb"}, stop, wait, stdin, &out); err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "wait" || order[1] != "stop" {
		t.Fatalf("calls %v, want [wait stop]: QEMU was stopped before it ended", order)
	}
	if !strings.Contains(out.String(), "attach with:\n  gdb -q -x debug.gdb\n") {
		t.Errorf("no attach command in:\n%s", out.String())
	}
}
