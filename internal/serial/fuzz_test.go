package serial

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// FuzzParser feeds arbitrary serial output to the streaming parser (and the
// console filter). It must never panic, and every frame it accepts must
// re-encode (EncodeFrame) to text that parses back to the same frame; a
// capture it accepts whole must re-encode (EncodeCapture) to the same
// capture. An accepted frame's text is exactly the kernel's form of it
// (EncodeFrame's output): anything else is refused. Seeds: real frames (the kernel's test vector and a good log),
// each refused variant of TestParseLogRefuses, and a crashed run's lines.
func FuzzParser(f *testing.F) {
	good := goodLog(f)
	f.Add([]byte(good))
	f.Add([]byte(strings.ReplaceAll(good, "\r\n", "\n")))
	f.Add([]byte(good + good))
	f.Add([]byte(faultLog))
	var v bytes.Buffer
	_ = EncodeFrame(&v, KindProfraw, "fib", []byte("hello, profile! 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFG"))
	_ = EncodeError(&v, KindProfraw, "sort", "buffer too small")
	_ = EncodeDone(&v, 1, 1)
	f.Add(v.Bytes())
	f.Add([]byte("@@FLUID-FRAME-BEGIN v=1 kind=summary module=x len=0 crc32=00000000\n@@FLUID-FRAME-END kind=summary module=x\n@@FLUID-FRAMES-DONE frames=1 errors=0\n"))
	for _, edit := range []string{"@@FLUID-FRAME-END kind=summary module=sort\r\n", "@@FLUID-FRAMES-DONE frames=4 errors=0\r\n"} {
		f.Add([]byte(strings.Replace(good, edit, "", 1)))
	}
	f.Add([]byte(good[:len(good)/2]))
	f.Add([]byte(strings.Join(EncodeLlamaLines(llamaCall("a\"b\x00")), "\n") + "\nfile /llama/run.txt: read 1 bytes in 2 us (0.50 MB/s)\nllama: refused: no\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadLog(bytes.NewReader(data))
		if err != nil {
			return // a line longer than the scanner's buffer
		}
		c, cerr := p.Capture()
		_ = p.FailedModules()
		_, _ = p.TSC()
		_ = p.FailLine()
		_, _, _ = p.Llama(), p.Files(), p.LineErrors()
		console := Console(&bytes.Buffer{})
		for _, l := range strings.Split(string(data), "\n") {
			console(l)
		}
		lines := logLines(data)
		for _, fr := range c.Frames {
			var b bytes.Buffer
			if err := EncodeFrame(&b, fr.Kind, fr.Module, fr.Payload); err != nil {
				t.Fatal(err)
			}
			// The accepted text is exactly the kernel's form of the frame.
			var sent []string
			for _, l := range lines[fr.Line-1:] {
				sent = append(sent, l)
				if strings.HasPrefix(l, MarkerFrameEnd) {
					break
				}
			}
			if got := strings.Join(sent, "\n") + "\n"; got != b.String() {
				t.Fatalf("accepted frame %q %q (line %d) is not in the kernel's form:\n%q\nre-encoded:\n%q", fr.Module, fr.Kind, fr.Line, got, b.String())
			}
			b.WriteString(MarkerFramesDone + "frames=1 errors=0\n")
			back, err := ParseLog(&b)
			if err != nil {
				t.Fatalf("frame %s %s (line %d) was accepted but its re-encoding is refused: %v\n%s", fr.Module, fr.Kind, fr.Line, err, b.String())
			}
			if len(back.Frames) != 1 || back.Frames[0].Kind != fr.Kind || back.Frames[0].Module != fr.Module || !bytes.Equal(back.Frames[0].Payload, fr.Payload) {
				t.Fatalf("frame %q %q re-encoded to %+v", fr.Module, fr.Kind, back.Frames)
			}
		}
		if cerr != nil {
			return
		}
		var b bytes.Buffer
		if err := EncodeCapture(&b, c); err != nil {
			t.Fatal(err)
		}
		back, err := ParseLog(&b)
		if err != nil {
			t.Fatalf("accepted capture re-encodes to a refused one: %v\n%s", err, b.String())
		}
		strip := func(c *Capture) *Capture {
			d := *c
			d.Frames = append([]Frame(nil), c.Frames...)
			for i := range d.Frames {
				d.Frames[i].Line = 0
			}
			d.Errors = append([]GuestError(nil), c.Errors...)
			for i := range d.Errors {
				d.Errors[i].Line = 0
			}
			return &d
		}
		if !reflect.DeepEqual(strip(back), strip(c)) {
			t.Fatalf("capture re-encoded differently:\n%+v\nwant\n%+v", back, c)
		}
	})
}

// logLines splits a log as ReadLog does (bufio.ScanLines), with the
// trailing carriage returns Parser.Line drops.
func logLines(data []byte) []string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var out []string
	for sc.Scan() {
		out = append(out, strings.TrimRight(sc.Text(), "\r"))
	}
	return out
}
