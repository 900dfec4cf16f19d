package serial

import (
	"bytes"
	"strings"
	"testing"
)

// TestCaptureRefusesFramesAfterDone: the guest sends FRAMES-DONE once,
// after its last frame. A log in which a frame or a second FRAMES-DONE
// follows it is two runs joined or a forgery (a module can print anything
// on the serial line): refused, even when the counts agree.
func TestCaptureRefusesFramesAfterDone(t *testing.T) {
	sum := func(name string) []byte {
		return []byte(`{"module":"` + name + `","variant":"baseline","hash":"00","calls":1,"cycles_total":1,"cycles_min":1,"cycles_max":1,"result":"ok"}`)
	}
	frame := func(w *bytes.Buffer, name string) {
		if err := EncodeFrame(w, KindSummary, name, sum(name)); err != nil {
			t.Fatal(err)
		}
	}
	done := func(w *bytes.Buffer, n int) {
		if err := EncodeDone(w, n, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		log  func(w *bytes.Buffer)
		want string
	}{
		{"frame then a second done", func(w *bytes.Buffer) { frame(w, "fib"); done(w, 1); frame(w, "sort"); done(w, 2) },
			"a second @@FLUID-FRAMES-DONE line (serial line"},
		{"counts agree", func(w *bytes.Buffer) { frame(w, "fib"); done(w, 2); frame(w, "sort") },
			"the log holds sort summary frame (serial line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			log.WriteString("Fluid OS test\n")
			tt.log(&log)
			c, err := ParseLog(bytes.NewReader(log.Bytes()))
			if err == nil {
				t.Fatalf("a frame after FRAMES-DONE was accepted: %d frames", len(c.Frames))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}
