package rehearse

import (
	"strings"
	"testing"
)

// TestCommandUsage checks cmd/fluid-rehearse's argument handling, which
// exits 2 before anything is rehearsed.
func TestCommandUsage(t *testing.T) {
	for _, args := range [][]string{{"-v"}, {"ci", "test", "extra"}, {"no-such-workflow"}} {
		var out, errs strings.Builder
		if code := Command(t.Context(), args, &out, &errs); code != 2 || errs.Len() == 0 {
			t.Errorf("Command(%q) = %d, stderr %q; want 2 and a message", args, code, errs.String())
		}
	}
}
