package profile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

func summaryJSON(module string) []byte {
	return []byte(`{"module":"` + module + `","variant":"instrumented","hash":"0011223344556677","calls":3,` +
		`"cycles_total":300,"cycles_min":90,"cycles_max":110,"result":"ok"}`)
}

// goodCapture is what two instrumented modules, fib and sort, send.
func goodCapture() *serial.Capture {
	c := &serial.Capture{Done: true}
	for _, m := range []string{"fib", "sort"} {
		raw := bytes.Repeat([]byte{0xff, 0x81, byte(len(m)), 0x00, 0x42}, 40) // 200 bytes
		c.Frames = append(c.Frames,
			serial.Frame{Kind: serial.KindSummary, Module: m, Payload: summaryJSON(m)},
			serial.Frame{Kind: serial.KindProfraw, Module: m, Payload: raw})
	}
	c.DoneFrames = len(c.Frames)
	return c
}

// without drops module's frame of the given kind (and counts one frame
// less, as a guest that never sent it would).
func without(c *serial.Capture, module, kind string) *serial.Capture {
	out := *c
	out.Frames = nil
	for _, f := range c.Frames {
		if f.Module != module || f.Kind != kind {
			out.Frames = append(out.Frames, f)
		}
	}
	out.DoneFrames = len(out.Frames)
	return &out
}

// logOf is c as a serial log, after a line of boot noise.
func logOf(t *testing.T, c *serial.Capture) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("Fluid OS dev (BareFlow-LLVM)\n")
	if err := serial.EncodeCapture(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCollectGood(t *testing.T) {
	c, err := serial.ParseLog(strings.NewReader(logOf(t, goodCapture())))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := Collect(c, []string{"fib", "sort"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if mods["fib"].Summary.Calls != 3 || len(mods["sort"].Profraw) != 200 || mods["sort"].Profraw[2] != 4 {
		t.Fatalf("decoded wrong: %+v", mods["sort"])
	}
}

func TestCollectRefuses(t *testing.T) {
	guestError := without(goodCapture(), "fib", serial.KindProfraw)
	guestError.Errors = []serial.GuestError{{Kind: serial.KindProfraw, Module: "fib", Reason: "out of kernel heap"}}
	guestError.DoneErrors = 1
	tests := []struct {
		name        string
		capture     *serial.Capture
		want        []string
		needProfraw bool
		errText     string
	}{
		{"module sent nothing", goodCapture(), []string{"fib", "sort", "zip"}, true, "module zip: no summary frame"},
		{"profraw missing but required", without(goodCapture(), "fib", serial.KindProfraw), []string{"fib", "sort"}, true, "module fib: no profraw frame"},
		{"guest reported an error", guestError, []string{"fib", "sort"}, true, "module fib: the guest could not produce its profraw: out of kernel heap"},
		{"unexpected module", goodCapture(), []string{"fib"}, true, "module sort: sent a summary frame but is not one of the modules built"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := serial.ParseLog(strings.NewReader(logOf(t, tt.capture)))
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
	b, err := build.New(build.Options{Root: root, Out: filepath.Join(root, "build"), Toolchain: tc, Version: "test", Commit: "test", SourceDateEpoch: 1, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	run := func(log string) error {
		c, err := serial.ParseLog(strings.NewReader(log))
		if err != nil {
			return err
		}
		mods, err := Collect(c, []string{"fib", "sort"}, true)
		if err != nil {
			return err
		}
		return Write(context.Background(), Output{Dir: dir, B: b}, mods)
	}
	good := logOf(t, goodCapture())
	cases := map[string]string{
		"truncated":     good[:len(good)/2],
		"crc corrupted": corruptCRC(good),
		"missing frame": logOf(t, without(goodCapture(), "sort", serial.KindProfraw)),
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
	other := "0"
	if s[i] == '0' {
		other = "1"
	}
	return s[:i] + other + s[i+1:]
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
