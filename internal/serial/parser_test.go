package serial

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

func summaryJSON(module string) []byte {
	b, _ := json.Marshal(Summary{Module: module, Variant: "instrumented", Hash: "0011223344556677", Calls: 3,
		CyclesTotal: 300, CyclesMin: 90, CyclesMax: 110, Result: "ok"})
	return b
}

// goodLog is a serial log with boot noise, two modules' frames and the
// DONE line.
func goodLog(t testing.TB) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("Fluid OS dev (BareFlow-LLVM)\r\nmodule fib: loaded\r\n")
	for _, m := range []string{"fib", "sort"} {
		if err := EncodeFrame(&b, KindSummary, m, summaryJSON(m)); err != nil {
			t.Fatal(err)
		}
		raw := bytes.Repeat([]byte{0xff, 0x81, byte(len(m)), 0x00, 0x42}, 40) // 200 bytes, 4 lines
		if err := EncodeFrame(&b, KindProfraw, m, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := EncodeDone(&b, 4, 0); err != nil {
		t.Fatal(err)
	}
	b.WriteString("FLUID-END pass\r\n")
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}

func TestEncodeFrameMatchesKernelVector(t *testing.T) {
	// The same vector kernel/tests/test_prof.c checks prof_frame_write against.
	var b bytes.Buffer
	if err := EncodeFrame(&b, KindProfraw, "fib", []byte("hello, profile! 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFG")); err != nil {
		t.Fatal(err)
	}
	want := "@@FLUID-FRAME-BEGIN v=1 kind=profraw module=fib len=61 crc32=ea4abd4d\n" +
		"aGVsbG8sIHByb2ZpbGUhIDAxMjM0NTY3ODkgYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXogQUJD\n" +
		"REVGRw==\n" +
		"@@FLUID-FRAME-END kind=profraw module=fib\n"
	if b.String() != want {
		t.Fatalf("EncodeFrame:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestParseLogGood(t *testing.T) {
	c, err := ParseLog(strings.NewReader(goodLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Frames) != 4 || !c.Done {
		t.Fatalf("got %d frames, done=%v", len(c.Frames), c.Done)
	}
	sort := c.Frames[3]
	if sort.Kind != KindProfraw || sort.Module != "sort" || len(sort.Payload) != 200 || sort.Payload[2] != 4 {
		t.Fatalf("decoded wrong: %+v", sort)
	}
	if s := c.Summaries(); len(s) != 2 || s[0].Module != "fib" || s[0].Calls != 3 {
		t.Fatalf("summaries: %+v", s)
	}
	if s, err := DecodeSummary(c.Frames[0].Payload); err != nil || s.CyclesMax != 110 {
		t.Fatalf("DecodeSummary: %+v, %v", s, err)
	}
	if _, err := DecodeSummary([]byte(`{"module":"fib","extra":1}`)); err == nil {
		t.Fatal("DecodeSummary accepted an unknown field")
	}
}

func TestParseLogRefuses(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(string) string
		want   []string // substrings of the error
		module string   // the module the error must name
	}{
		{
			name: "truncated mid-frame",
			edit: func(s string) string {
				i := strings.Index(s, "@@FLUID-FRAME-BEGIN v=1 kind=profraw module=sort")
				return s[:i+200]
			},
			want:   []string{"truncated", "ends inside the frame", "no @@FLUID-FRAMES-DONE"},
			module: "sort",
		},
		{
			name: "CRC mismatch (one payload character flipped)",
			edit: func(s string) string {
				i := strings.Index(s, "module=fib len=200")
				j := i + strings.Index(s[i:], "\r\n") + 2 // first payload line
				b := []byte(s)
				if b[j] == 'A' {
					b[j] = 'B'
				} else {
					b[j] = 'A'
				}
				return string(b)
			},
			want:   []string{"CRC-32 mismatch", "corrupted"},
			module: "fib",
		},
		{
			name: "payload line lost",
			edit: func(s string) string {
				i := strings.Index(s, "module=fib len=200")
				j := i + strings.Index(s[i:], "\r\n") + 2
				k := j + strings.Index(s[j:], "\r\n") + 2
				return s[:j] + s[k:]
			},
			want:   []string{"truncated", "announced 200"},
			module: "fib",
		},
		{
			name: "garbage inside a frame",
			edit: func(s string) string {
				i := strings.Index(s, "module=sort len=")
				j := i + strings.Index(s[i:], "\r\n") + 2 // after the BEGIN line
				return s[:j] + "!!noise!!\r\n" + s[j:]
			},
			want:   []string{"garbled", "not base64"},
			module: "sort",
		},
		{
			name: "END marker missing",
			edit: func(s string) string {
				return strings.Replace(s, "@@FLUID-FRAME-END kind=summary module=sort\r\n", "", 1)
			},
			want:   []string{"truncated", "new frame began"},
			module: "sort",
		},
		{
			name:   "whole frame missing",
			edit:   func(s string) string { return cutFrame(s, "kind=profraw module=sort") },
			want:   []string{"announced 4 frames", "the log holds 3", "lost"},
			module: "",
		},
		{
			name:   "no DONE line",
			edit:   func(s string) string { return s[:strings.Index(s, "@@FLUID-FRAMES-DONE")] },
			want:   []string{"no @@FLUID-FRAMES-DONE"},
			module: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLog(strings.NewReader(tt.edit(goodLog(t))))
			testutil.WantErrIs(t, err, ErrRefused, "a bad log", tt.want...)
			if tt.module != "" && !strings.Contains(err.Error(), "module "+tt.module) {
				t.Errorf("error %q does not name module %s", err, tt.module)
			}
		})
	}
}

func cutFrame(s, marker string) string {
	i := strings.Index(s, "@@FLUID-FRAME-BEGIN v=1 "+marker)
	end := "@@FLUID-FRAME-END " + marker + "\r\n"
	j := strings.Index(s, end) + len(end)
	return s[:i] + s[j:]
}

// TestParserStreams feeds a log line by line, as the QEMU runner's hook
// does: each frame is decoded as soon as its END line arrives.
func TestParserStreams(t *testing.T) {
	var p Parser
	decoded := 0
	for _, l := range strings.SplitAfter(goodLog(t), "\n") {
		p.Line(strings.TrimSuffix(l, "\n"))
		c, _ := p.Capture()
		if len(c.Frames) < decoded {
			t.Fatalf("frames went from %d to %d", decoded, len(c.Frames))
		}
		if strings.HasPrefix(l, MarkerFrameEnd) && len(c.Frames) != decoded+1 {
			t.Fatalf("END line %q did not complete a frame", l)
		}
		decoded = len(c.Frames)
	}
	if _, err := p.Capture(); err != nil || decoded != 4 {
		t.Fatalf("after the log: %d frames, %v", decoded, err)
	}
	if !p.Guest() || !p.Passed() || p.EndLine() != MarkerPass || p.FailLine() != "" {
		t.Errorf("status: guest %v passed %v end %q fail %q", p.Guest(), p.Passed(), p.EndLine(), p.FailLine())
	}
}

func TestParserStatus(t *testing.T) {
	feed := func(lines ...string) *Parser {
		p := &Parser{}
		for _, l := range lines {
			p.Line(l)
		}
		return p
	}
	p := feed("SeaBIOS", "stage2: A20 on", "\x1b[0mboot: kernel_main reached at tsc=12345\r", "*** PANIC: oom", "boot: run ended at tsc=67890", "FLUID-END fail panic: oom  ")
	if tsc, ok := p.TSC(); !ok || tsc != 12345 {
		t.Errorf("TSC = %d, %v", tsc, ok)
	}
	if tsc, ok := p.EndTSC(); !ok || tsc != 67890 {
		t.Errorf("EndTSC = %d, %v", tsc, ok)
	}
	if _, ok := feed("boot: kernel_main reached at tsc=1").EndTSC(); ok {
		t.Error("EndTSC found in a log without the end line")
	}
	if !p.Guest() || p.Passed() || p.EndLine() != "FLUID-END fail panic: oom" || p.FailLine() != p.EndLine() || p.Lines() != 6 {
		t.Errorf("guest %v passed %v end %q fail %q lines %d", p.Guest(), p.Passed(), p.EndLine(), p.FailLine(), p.Lines())
	}
	p = feed("noise stage2: FATAL: bad kernel CRC", "*** PANIC: later")
	if p.FailLine() != "stage2: FATAL: bad kernel CRC" || p.Guest() {
		t.Errorf("fail %q guest %v", p.FailLine(), p.Guest())
	}
	lines := []string{"x *** CPU EXCEPTION 14 (page fault) err=0x2"}
	for range 50 {
		lines = append(lines, "  eax=0")
	}
	p = feed(append(lines, "FLUID-END fail exception: page fault", "after")...)
	if d := p.Dump(); len(d) != MaxDumpLines || d[0] != "*** CPU EXCEPTION 14 (page fault) err=0x2" {
		t.Errorf("dump %d lines, first %q", len(d), d[0])
	}
	if p.FailLine() != "FLUID-END fail exception: page fault" {
		t.Errorf("fail %q", p.FailLine())
	}
	if _, ok := feed("build.log", "CC kernel/main.c").TSC(); ok {
		t.Error("TSC found in a build log")
	}
}
