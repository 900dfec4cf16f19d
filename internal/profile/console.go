package profile

import (
	"fmt"
	"io"
	"strings"
)

// ConsoleLines returns a line handler for a person watching the serial
// console: every line is written to w as it arrives, except the base64
// payload of profile frames, which a frame's BEGIN line replaces with one
// short note (the full frames stay in the serial log for the host).
func ConsoleLines(w io.Writer) func(line string) {
	inFrame := false
	return func(line string) {
		switch {
		case strings.HasPrefix(line, markBegin):
			inFrame = true
			fields := strings.Fields(strings.TrimPrefix(line, markBegin))
			var kind, module, size string
			for _, f := range fields {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "kind":
					kind = v
				case "module":
					module = v
				case "len":
					size = v
				}
			}
			fmt.Fprintf(w, "[frame %s for %s: %s bytes, in the serial log]\n", kind, module, size)
		case strings.HasPrefix(line, markEnd):
			inFrame = false
		case inFrame:
		default:
			fmt.Fprintln(w, line)
		}
	}
}
