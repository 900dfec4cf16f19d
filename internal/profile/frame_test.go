package profile

import (
	"bytes"
	"context"
	"errors"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func summaryJSON(module string) []byte {
	return []byte(`{"module":"` + module + `","variant":"instrumented","hash":"0011223344556677","calls":3,` +
		`"cycles_total":300,"cycles_min":90,"cycles_max":110,"result":"ok"}`)
}

// goodLog is a serial log with boot noise, two modules' frames and the
// DONE line.
func goodLog(t *testing.T) string {
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
	mods, err := Collect(c, []string{"fib", "sort"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if mods["fib"].Summary.Calls != 3 || len(mods["sort"].Profraw) != 200 || mods["sort"].Profraw[2] != 4 {
		t.Fatalf("decoded wrong: %+v", mods["sort"])
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
			want:   []string{"frames were lost"},
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
			if err == nil {
				t.Fatal("accepted a bad log")
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("error does not wrap ErrRefused: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
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

func TestCollectRefuses(t *testing.T) {
	tests := []struct {
		name        string
		log         func(string) string
		want        []string
		needProfraw bool
		errText     string
	}{
		{"module sent nothing", func(s string) string { return s }, []string{"fib", "sort", "zip"}, true, "module zip: no summary frame"},
		{"profraw missing but required", func(s string) string {
			s = cutFrame(s, "kind=profraw module=fib")
			return strings.Replace(s, "frames=4", "frames=3", 1)
		}, []string{"fib", "sort"}, true, "module fib: no profraw frame"},
		{"guest reported an error", func(s string) string {
			s = cutFrame(s, "kind=profraw module=fib")
			s = strings.Replace(s, "frames=4 errors=0", "frames=3 errors=1", 1)
			return strings.Replace(s, "@@FLUID-FRAMES-DONE", "@@FLUID-FRAME-ERROR kind=profraw module=fib reason=out of kernel heap\r\n@@FLUID-FRAMES-DONE", 1)
		}, []string{"fib", "sort"}, true, "module fib: the guest could not produce its profraw: out of kernel heap"},
		{"unexpected module", func(s string) string { return s }, []string{"fib"}, true, "module sort: sent a summary frame but is not one of the modules built"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseLog(strings.NewReader(tt.log(goodLog(t))))
			if err != nil {
				t.Fatalf("ParseLog: %v", err)
			}
			_, err = Collect(c, tt.want, tt.needProfraw)
			if err == nil || !strings.Contains(err.Error(), tt.errText) || !errors.Is(err, ErrRefused) {
				t.Fatalf("Collect error %v, want one containing %q", err, tt.errText)
			}
		})
	}
}

// snapshot reads every file under dir (name -> content).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, dir)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusedCaptureLeavesProfilesUnchanged runs the whole host path
// (ParseLog, Collect, Write) on bad captures: profiles/ must stay as it was,
// and no temporary directory may be left next to it.
func TestRefusedCaptureLeavesProfilesUnchanged(t *testing.T) {
	tc := toolchaintest.Find(t)
	profdataBin := tc.Path("llvm-profdata")
	root := t.TempDir()
	dir := filepath.Join(root, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"fib.proftext": "# old fib\n", "summary.json": "{}\n", "toolchain.json": "{}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, dir)
	run := func(log string) error {
		c, err := ParseLog(strings.NewReader(log))
		if err != nil {
			return err
		}
		mods, err := Collect(c, []string{"fib", "sort"}, true)
		if err != nil {
			return err
		}
		return Write(context.Background(), Output{Dir: dir, Profdata: profdataBin, Runner: tc}, mods)
	}
	good := goodLog(t)
	cases := map[string]string{
		"truncated":     good[:len(good)/2],
		"crc corrupted": corruptCRC(good),
		"missing frame": strings.Replace(cutFrame(good, "kind=profraw module=sort"), "frames=4", "frames=3", 1),
	}
	if _, err := os.Stat(profdataBin); err == nil {
		// Frames are fine but the payload is not a raw profile: llvm-profdata
		// refuses it inside Write, after fib's text may already be written.
		cases["llvm-profdata refuses the payload"] = good
	} else {
		t.Logf("%s not found: skipping the llvm-profdata refusal case", profdataBin)
	}
	for name, log := range cases {
		t.Run(name, func(t *testing.T) {
			err := run(log)
			if err == nil {
				t.Fatal("bad capture accepted")
			}
			t.Logf("refused: %v", err)
			if after := snapshot(t, dir); !equalMaps(before, after) {
				t.Fatalf("profiles/ changed:\nbefore %v\nafter  %v", before, after)
			}
			ents, _ := os.ReadDir(root)
			if len(ents) != 1 {
				t.Fatalf("left temporary files next to profiles/: %v", ents)
			}
		})
	}
}

func corruptCRC(s string) string {
	i := strings.Index(s, "crc32=") + len("crc32=")
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
