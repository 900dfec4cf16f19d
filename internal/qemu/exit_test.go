package qemu

import (
	"errors"
	"testing"
)

// TestOutcomeExit pins `mage qemu`'s exit codes (README: 0 passed, 1 failed,
// 2 crashed, 3 timed out, 4 QEMU did not start) and the errors behind them.
func TestOutcomeExit(t *testing.T) {
	if err := Passed.Exit(); err != nil {
		t.Fatalf("Passed.Exit() = %v", err)
	}
	for _, c := range []struct {
		o    Outcome
		code int
		is   error
	}{{Failed, 1, ErrFailed}, {Crashed, 2, ErrCrashed}, {TimedOut, 3, ErrTimedOut}, {StartFailed, 4, ErrStartFailed}} {
		err := c.o.Exit()
		var st interface{ ExitStatus() int }
		if !errors.As(err, &st) || st.ExitStatus() != c.code || !errors.Is(err, c.is) || c.o.ExitCode() != c.code {
			t.Errorf("%v: Exit() = %v (exit status %v), want %d wrapping %v", c.o, err, st, c.code, c.is)
		}
	}
}
