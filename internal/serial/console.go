package serial

import (
	"fmt"
	"io"
)

// Console returns a line handler for a person watching the serial
// console: every line is written to w as it arrives, except the base64
// payload of frames, which a frame's BEGIN line replaces with one short
// note (the full frames stay in the serial log for the host).
func Console(w io.Writer) func(line string) {
	inFrame := false
	return func(line string) {
		marker, f := frameLine(line)
		switch {
		case marker == MarkerFrameBegin:
			inFrame = true
			b := beginOf(f)
			fmt.Fprintf(w, "[frame %s for %s: %s bytes, in the serial log]\n", b.Kind, b.Module, b.Len)
		case marker == MarkerFrameEnd:
			inFrame = false
		case inFrame:
		default:
			fmt.Fprintln(w, line)
		}
	}
}
