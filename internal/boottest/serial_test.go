package boottest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/debugger"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

// TestSerialDriverModels builds kernel/drivers/serial.c for the host
// (FLUID_SERIAL_HOST: its port I/O goes to testdata/uart_model.c) and
// drives it against UARTs QEMU does not emulate: COM1 must be found
// without a loopback echo and without a scratch register, a UART whose
// THRE never sets must cost one transmit timeout (TX_SPIN_MAX polls) and
// then be written without polling, and no UART must mean no port traffic
// at all. Every UART that is found ends with MCR in normal mode (loopback
// off) and gets every byte of the message, '\n' as "\r\n".
func TestSerialDriverModels(t *testing.T) {
	tc := toolchaintest.Find(t)
	root := toolchaintest.Root(t)
	bin := filepath.Join(t.TempDir(), "uart_model")
	if out, err := toolchaintest.Run(tc, "", "clang", "-fuse-ld=lld", "-std=c11", "-O1", "-g",
		"-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
		"-DFLUID_SERIAL_HOST=1", "-I"+filepath.Join(root, "kernel/include"),
		filepath.Join(root, "internal/boottest/testdata/uart_model.c"),
		filepath.Join(root, "kernel/drivers/serial.c"), "-o", bin); err != nil {
		t.Fatalf("build the host UART test: %v\n%s", err, out)
	}
	const (
		normal  = "present (loopback echo ok)"
		noLoop  = "present (no loopback echo: transmitting anyway)"
		stuck   = "unresponsive (transmit timed out: writing without waiting)"
		txSpin  = 200000 // TX_SPIN_MAX in serial.c
		msgWire = 101    // 99 characters and '\n' sent as "\r\n"
		any     = -1
	)
	tests := []struct {
		model    string
		present  int
		status   string
		timeouts int
		wire     int
		polls    int // LSR reads while writing the message
		mcr      int
	}{
		{"16550", 1, normal, 0, msgWire, msgWire, 0x0b},
		{"no-loopback", 1, noLoop, 0, msgWire, msgWire, 0x0b},
		{"8250", 1, noLoop, 0, msgWire, msgWire, 0x0b},
		{"thre-stuck", 1, stuck, 1, msgWire, txSpin, 0x0b},
		{"slow", 1, normal, 0, msgWire, any, 0x0b},
		{"absent", 0, "absent", 0, 0, 0, 0},
	}
	var names []string
	for _, tt := range tests {
		names = append(names, tt.model)
	}
	out, err := toolchaintest.Run(tc, "", append([]string{bin}, names...)...)
	if err != nil {
		t.Fatalf("uart_model: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("uart_model printed %d lines for %d models:\n%s", len(lines), len(tests), out)
	}
	for i, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			var name, status string
			var present, timeouts, wire, polls, mcr int
			// status is quoted and holds spaces: split around it.
			head, rest, _ := strings.Cut(lines[i], ` status="`)
			status, rest, _ = strings.Cut(rest, `" `)
			if _, err := fmt.Sscanf(head, "%s present=%d", &name, &present); err != nil {
				t.Fatalf("line %q: %v", lines[i], err)
			}
			if _, err := fmt.Sscanf(rest, "timeouts=%d wire=%d lsr_polls=%d mcr=0x%x", &timeouts, &wire, &polls, &mcr); err != nil {
				t.Fatalf("line %q: %v", lines[i], err)
			}
			if name != tt.model || present != tt.present || status != tt.status || timeouts != tt.timeouts ||
				wire != tt.wire || (tt.polls != any && polls != tt.polls) || mcr != tt.mcr {
				t.Errorf("got  %s\nwant %s present=%d status=%q timeouts=%d wire=%d lsr_polls=%d mcr=0x%02x",
					lines[i], tt.model, tt.present, tt.status, tt.timeouts, tt.wire, tt.polls, tt.mcr)
			}
		})
	}
}

// TestNoSerialPort boots the normal image with no UART at all (QEMU
// -serial none): the kernel must find COM1 absent, not wait on it, and
// still carry the run on the VGA console and the exit code. Nothing
// arrives on serial, so gdb stops the guest in qemu_exit to read the
// screen (the last thing before QEMU exits), then lets it exit: the exit
// status must be 33 and the screen must show the modules' results and
// FLUID-END pass.
func TestNoSerialPort(t *testing.T) {
	qemutest.Need(t)
	testutil.RequireTools(t, "gdb")
	a := buildtest.All(t)
	port, err := debugger.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vga := filepath.Join(dir, "vga.bin")
	script := filepath.Join(dir, "noserial.gdb")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("set pagination off\nset confirm off\nset architecture %s\nfile %s\ntarget remote 127.0.0.1:%d\nbreak qemu_exit\n",
		debugger.GDBArchitecture, a.Kernel, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	done := make(chan *qemu.Result, 1)
	go func() {
		r, err := qemu.Run(ctx, qemu.Options{Image: a.Image, NoSerial: true, GDB: port, Timeout: 2 * time.Minute})
		if err != nil {
			r = &qemu.Result{Outcome: qemu.StartFailed, ExitStatus: -1, Reason: err.Error()}
		}
		done <- r
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU's gdb stub on port %d did not come up", port)
		}
	}
	start := time.Now()
	out, err := debugger.Batch(ctx, "gdb", script, "print code",
		fmt.Sprintf("dump binary memory %s 0x%x 0x%x", vga, qemu.VGATextAddr, qemu.VGATextAddr+qemu.VGAColumns*qemu.VGARows*2),
		"delete", "detach")
	toExit := time.Since(start)
	t.Logf("gdb:\n%s", out)
	r := <-done
	t.Logf("%s", r)
	if err != nil {
		t.Fatalf("gdb: %v", err)
	}
	if !regexp.MustCompile(`Breakpoint 1(\.\d+)?, qemu_exit \(code=16\)`).MatchString(out) || !strings.Contains(out, "$1 = 16") {
		t.Errorf("gdb did not stop in qemu_exit(EXIT_PASS = 16)")
	}
	if r.ExitStatus != layout.StatusPass {
		t.Fatalf("exit status %d without a UART, want %d (pass)", r.ExitStatus, layout.StatusPass)
	}
	mem, err := os.ReadFile(vga)
	if err != nil {
		t.Fatal(err)
	}
	screen := qemu.DecodeVGAText(mem)
	t.Logf("screen at qemu_exit:\n%s", strings.Join(screen, "\n"))
	has := func(s string) bool {
		for _, row := range screen {
			if strings.Contains(row, s) {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"Fluid OS ", "FLUID-END pass", fmt.Sprintf("workload: %d module(s), 0 failed", len(a.Modules))} {
		if !has(want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	// With a UART the whole boot takes about a second under TCG; a kernel
	// that waited on the missing port would take minutes.
	t.Logf("boot without COM1: %v from gdb's continue to qemu_exit", toExit.Round(time.Millisecond))
	if toExit > 30*time.Second {
		t.Errorf("the boot without COM1 took %v", toExit)
	}
}
