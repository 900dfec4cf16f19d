package targets

import "testing"

func TestGDBPort(t *testing.T) {
	for in, want := range map[string]int{"": 0, "1234": 1234} {
		if got, err := gdbPort(in); err != nil || got != want {
			t.Errorf("gdbPort(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "12x", "-1", "70000"} {
		if _, err := gdbPort(bad); err == nil {
			t.Errorf("gdbPort(%q) accepted", bad)
		}
	}
}
