package serial

import (
	"strings"
	"testing"
)

func TestConsoleCollapsesFrames(t *testing.T) {
	var b strings.Builder
	on := Console(&b)
	for _, l := range []string{
		"module fib: result ok",
		"@@FLUID-FRAME-BEGIN v=1 kind=summary module=fib len=155 crc32=b2ff6bff",
		"eyJtb2R1bGUiOiJmaWIiLCJ2YXJpYW50IjoiYmFzZWxpbmUiLCJoYXNoIjoiN2YxMTk1NjZhYTE4",
		"@@FLUID-FRAME-END kind=summary module=fib",
		"FLUID-END pass",
	} {
		on(l)
	}
	want := "module fib: result ok\n[frame summary for fib: 155 bytes, in the serial log]\nFLUID-END pass\n"
	if b.String() != want {
		t.Fatalf("console:\n%s\nwant:\n%s", b.String(), want)
	}
}
