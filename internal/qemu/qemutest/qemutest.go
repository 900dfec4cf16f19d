// Package qemutest boots images under QEMU for tests, the one way: every
// serial line goes to the test log as it arrives, the serial log is kept in
// the test's temporary directory, and a failed test prints the command
// that reruns it alone.
package qemutest

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/testutil"
)

// DefaultTimeout bounds one boot when opts.Timeout is unset: a real image
// under TCG on a slow runner.
const DefaultTimeout = 3 * time.Minute

// Need skips t under -short and when QEMU is not installed.
func Need(t testing.TB) {
	t.Helper()
	testutil.Long(t, "boots QEMU")
	testutil.NeedTools(t, qemu.DefaultBinary)
}

// Boot runs opts (opts.OnLine still sees every line) and returns the result
// and every serial line. QEMU that cannot be run at all fails the test.
func Boot(t testing.TB, opts qemu.Options) (*qemu.Result, []string) {
	t.Helper()
	testutil.RerunOnFailure(t)
	var mu sync.Mutex
	var lines []string
	user := opts.OnLine
	opts.OnLine = func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
		t.Log("serial: " + l)
		if user != nil {
			user(l)
		}
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.SerialLog == "" {
		opts.SerialLog = filepath.Join(t.TempDir(), "serial.log")
	}
	r, err := qemu.Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Logf("%s", r)
	mu.Lock()
	defer mu.Unlock()
	return r, append([]string(nil), lines...)
}
