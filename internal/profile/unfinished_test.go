package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/testutil"
)

// crashedLog turns a real passing capture's serial log into the log of a
// run in which module crashed (the contract's lines: crashed, backtrace,
// result CRASHED; its summary says crashed, it sends no profraw frame, the
// run ends with a module failure).
func crashedLog(t *testing.T, real []byte, module string) []byte {
	t.Helper()
	p, err := serial.ReadLog(bytes.NewReader(real))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Capture()
	if err != nil {
		t.Fatalf("the real capture is refused: %v", err)
	}
	var b bytes.Buffer
	for _, l := range strings.Split(string(real), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.HasPrefix(l, serial.MarkerFrameBegin) {
			break
		}
		if strings.HasPrefix(l, serial.MarkerModule+module+serial.MarkerModuleResult) {
			fmt.Fprintf(&b, "%s%s%sexception 14 (#PF page fault) err=0x2 at %s+0x1a\n", serial.MarkerModule, module, serial.MarkerModuleCrashed, module)
			fmt.Fprintf(&b, "%s%s%s%s+0x1a\n", serial.MarkerModule, module, serial.MarkerModuleBacktrace, module)
			l = strings.Replace(l, serial.MarkerModuleResult+serial.LineOK, serial.MarkerModuleResult+serial.LineCrashed, 1)
		}
		b.WriteString(l + "\n")
	}
	out := *c
	out.Frames = nil
	for _, f := range c.Frames {
		if f.Module == module && f.Kind == serial.KindProfraw {
			continue
		}
		if f.Module == module && f.Kind == serial.KindSummary {
			s, err := serial.DecodeSummary(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			f.Payload = bytes.Replace(f.Payload, []byte(`"result":"`+s.Result+`"`), []byte(`"result":"`+serial.ResultCrashed+`"`), 1)
		}
		out.Frames = append(out.Frames, f)
	}
	out.DoneFrames = len(out.Frames)
	if err := serial.EncodeCapture(&b, &out); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%s %s: %s\n", serial.MarkerFail, serial.ClassModule, module)
	return b.Bytes()
}

// TestCaptureWithCrashedModule runs `mage profile`'s capture on a real
// instrumented image whose run is rewritten so that sort crashed: profiles/
// gets the other modules' exact profiles (byte-identical to a full
// capture's), summary.json records sort with why, the error names sort,
// and the PGO build's freshness check names it too. The same real log with
// fib's and sort's profraw labels swapped is refused naming both.
func TestCaptureWithCrashedModule(t *testing.T) {
	b := newBuilder(t)
	ctx := context.Background()
	full := filepath.Join(t.TempDir(), "profiles")
	if err := (&Pipeline{B: b, Dir: full, Log: testutil.LogWriter(t)}).Profile(ctx); err != nil {
		t.Fatalf("full capture: %v", err)
	}
	realLog, err := os.ReadFile(filepath.Join(b.Out(), "profile", "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	crashed := crashedLog(t, realLog, "sort")
	boot := func(ctx context.Context, image, serialLog string, onLine func(string)) error {
		if err := os.WriteFile(serialLog, crashed, 0o644); err != nil {
			return err
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(crashed), "\n"), "\n") {
			onLine(l)
		}
		return errors.New("guest failed (module failure, exit 41)")
	}
	dir := filepath.Join(t.TempDir(), "profiles")
	err = (&Pipeline{B: b, Dir: dir, Boot: boot, Log: testutil.LogWriter(t)}).Profile(ctx)
	if !errors.Is(err, ErrUnfinished) || !strings.Contains(err.Error(), "sort (crashed: exception 14 (#PF page fault) err=0x2 at sort+0x1a)") {
		t.Fatalf("capture with a crashed module: %v", err)
	}
	t.Logf("capture error: %v", err)
	got, want := snapshot(t, dir), snapshot(t, full)
	if _, ok := got["/sort"+TextExt]; ok {
		t.Errorf("the crashed module got a profile")
	}
	n := 0
	for name, data := range got {
		if strings.HasSuffix(name, TextExt) {
			n++
			if data != want[name] {
				t.Errorf("%s differs from the full capture's", name)
			}
		}
	}
	names, _ := b.ModuleNames()
	if n != len(names)-1 {
		t.Errorf("%d profiles written, want %d", n, len(names)-1)
	}
	doc, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range doc.Modules {
		if r.Module == "sort" {
			found = r.Result == serial.ResultCrashed && r.Profile == "" && strings.Contains(r.Why, "sort+0x1a")
		}
	}
	if !found {
		t.Errorf("summary.json does not record sort as crashed: %+v", doc.Modules)
	}
	var se *StaleError
	if err := CheckFresh(doc, b.Root(), names); !errors.As(err, &se) || len(se.Modules) != 1 || !strings.Contains(se.Why["sort"], "did not pass its capture run (crashed: exception 14 (#PF page fault) err=0x2 at sort+0x1a)") {
		t.Errorf("CheckFresh: %v", err)
	}

	// Swapped profraw labels in the real log, against the real builds.
	a, err := b.Recipe(ctx, recipe.Instrumented, nil)
	if err != nil {
		t.Fatal(err)
	}
	builds, err := BuildsOf(a.Modules)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(realLog), "\n")
	for i, l := range lines {
		if strings.Contains(l, "kind=profraw module=fib") {
			lines[i] = strings.Replace(l, "module=fib", "module=sort", 1)
		} else if strings.Contains(l, "kind=profraw module=sort") {
			lines[i] = strings.Replace(l, "module=sort", "module=fib", 1)
		}
	}
	swapped := strings.Join(lines, "\n")
	c, err := serial.ParseLog(strings.NewReader(swapped))
	if err != nil {
		t.Fatalf("the swapped log's frames are not intact: %v", err)
	}
	_, err = CollectWant(c, Want{Modules: names, NeedProfraw: true, Builds: builds})
	for _, w := range []string{"labelled fib holds the profile of module sort's build", "labelled sort holds the profile of module fib's build"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("swapped real frames: %v; want %q", err, w)
		}
	}
}
