package boottest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
