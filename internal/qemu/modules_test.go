package qemu

import (
	"slices"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/layout"
)

// scanGuest is the scanner after a guest's serial log: the kernel's banner,
// then lines, each ended by CRLF as the guest sends it.
func scanGuest(lines ...string) *scanner {
	sc := newScanner(nil)
	sc.write([]byte("Fluid OS dev (BareFlow-LLVM)\r\n"))
	for _, l := range lines {
		sc.write([]byte(l + "\r\n"))
	}
	sc.flush()
	return sc
}

// TestResultNamesFailedModules: a run that ends in a module failure (exit
// 41) is Failed, and its summary names each module that did not pass with
// the kernel's reason, while the passing ones are not listed.
func TestResultNamesFailedModules(t *testing.T) {
	sc := scanGuest(
		"module fib: loaded (baseline 0011223344556677) from /modules/fib.mod at 0x00400000, 900 bytes",
		"module fib: result ok calls=10 cycles total=1 min=1 max=1 checks=1/1",
		"module nullwrite: loaded (baseline 8899aabbccddeeff) from /modules/nullwrite.mod at 0x00401000, 64 bytes",
		"module nullwrite: crashed: exception 14 (#PF page fault) err=0x2 at nullwrite+0x1a",
		"module nullwrite: result CRASHED calls=0 cycles total=0 min=0 max=0 checks=0/0",
		"module spin: timed out after 200 ms (at spin+0x2)",
		"module extra: skipped: over the module limit of 32",
		"FLUID-END fail module: nullwrite spin")
	o, reason := classify(layout.StatusModuleFail, sc, "")
	r := &Result{Outcome: o, Reason: reason, ExitStatus: layout.StatusModuleFail, Modules: sc.status.Modules()}
	if o != Failed {
		t.Fatalf("outcome %v (%s)", o, reason)
	}
	var names []string
	for _, m := range r.FailedModules() {
		names = append(names, m.Name)
	}
	if strings.Join(names, " ") != "nullwrite spin extra" {
		t.Errorf("failed modules %v", names)
	}
	s := r.String()
	for _, w := range []string{
		"modules that did not pass:\n  nullwrite: crashed: exception 14 (#PF page fault) err=0x2 at nullwrite+0x1a\n  spin: timed out after 200 ms (at spin+0x2)\n  extra: skipped: over the module limit of 32",
		"FLUID-END fail module: nullwrite spin",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("result %q lacks %q", s, w)
		}
	}
	if strings.Contains(s, "  fib:") {
		t.Errorf("result lists fib, which passed: %q", s)
	}
}

// TestTimeoutNamesRunningModule: a run killed at the host's timeout while
// a module was running (its loaded line, no result line: a module that
// spins with interrupts off, which the kernel's deadline cannot stop)
// names that module; a module that finished is not blamed.
func TestTimeoutNamesRunningModule(t *testing.T) {
	fibPassed := []string{
		"module fib: loaded (baseline 0011223344556677) from /modules/fib.mod at 0x00400000, 900 bytes",
		"module fib: result ok calls=10 cycles total=1 min=1 max=1 checks=1/1",
	}
	for _, tt := range []struct {
		name string
		log  []string
		want string
	}{
		{"running", slices.Concat(fibPassed, []string{
			"module clihang: loaded (baseline 8899aabbccddeeff) from /modules/clihang.mod at 0x00401000, 64 bytes"}),
			"; module clihang was running (loaded, no result line)"},
		{"finished", fibPassed, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := scanGuest(tt.log...)
			got := timeoutReason("still running after the 1s timeout; QEMU was killed", "", sc.status.Modules())
			if tt.want == "" && strings.Contains(got, "was running") {
				t.Errorf("reason %q blames a module that finished", got)
			}
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("reason %q lacks %q", got, tt.want)
			}
		})
	}
}

// TestModuleOutputIsNoExceptionDump: a module prints on the serial line
// too, so a module that prints the exception marker (an interpreter echoing
// its input, or a liar) must not turn a run the guest passed (exit 33 and
// FLUID-END pass) into a crash: only the kernel's exit 39 says a dump is
// real.
func TestModuleOutputIsNoExceptionDump(t *testing.T) {
	sc := scanGuest(
		"module liar: loaded (baseline 0011223344556677) from /modules/liar.mod at 0x00400000, 900 bytes",
		"*** CPU EXCEPTION 14 (page fault) err=0x00000002",
		"module liar: result ok calls=3 cycles total=1 min=1 max=1 checks=0/0",
		"FLUID-END pass")
	if o, reason := classify(layout.StatusPass, sc, ""); o != Passed {
		t.Errorf("outcome %v (%s), want Passed", o, reason)
	}
	if o, reason := classify(layout.StatusModuleFail, sc, ""); o != Failed {
		t.Errorf("exit 41: outcome %v (%s), want Failed", o, reason)
	}
	if o, _ := classify(layout.StatusCPUException, sc, ""); o != Crashed {
		t.Errorf("exit 39: outcome %v, want Crashed", o)
	}
}
