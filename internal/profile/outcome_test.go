package profile

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/testutil"
)

// builds is what the image of goodCapture holds: fib and sort, each with
// its own build hash and profile names.
func builds() map[string]Build {
	return map[string]Build{
		"fib":  {Hash: "0011223344556677", ProfNames: bytes.Repeat([]byte{0xff, 0x81, 3, 0x00, 0x42}, 2)},
		"sort": {Hash: "8899aabbccddeeff", ProfNames: bytes.Repeat([]byte{0xff, 0x81, 4, 0x00, 0x42}, 2)},
	}
}

// hashedCapture is goodCapture with each summary carrying its build's hash.
func hashedCapture() *serial.Capture {
	c := goodCapture()
	for i, f := range c.Frames {
		if f.Kind == serial.KindSummary {
			c.Frames[i].Payload = bytes.Replace(f.Payload, []byte("0011223344556677"), []byte(builds()[f.Module].Hash), 1)
		}
	}
	return c
}

// relabel swaps the module labels of fib's and sort's frames of kind, as a
// mixed-up log would (payloads and CRCs stay valid).
func relabel(c *serial.Capture, kind string) *serial.Capture {
	out := *c
	out.Frames = append([]serial.Frame(nil), c.Frames...)
	for i, f := range out.Frames {
		if f.Kind != kind {
			continue
		}
		switch f.Module {
		case "fib":
			out.Frames[i].Module = "sort"
		case "sort":
			out.Frames[i].Module = "fib"
		}
	}
	return &out
}

func collectLogged(t *testing.T, c *serial.Capture, w Want) (*Collected, error) {
	t.Helper()
	pc, err := serial.ParseLog(strings.NewReader(logOf(t, c)))
	if err != nil {
		t.Fatalf("ParseLog: %v", err)
	}
	return CollectWant(pc, w)
}

// TestSwappedLabelsRefused: frames whose module labels were swapped (valid
// CRCs) are refused at capture, naming both modules.
func TestSwappedLabelsRefused(t *testing.T) {
	w := Want{Modules: []string{"fib", "sort"}, NeedProfraw: true, Builds: builds()}
	if _, err := collectLogged(t, hashedCapture(), w); err != nil {
		t.Fatalf("the right frames were refused: %v", err)
	}
	// The summary JSON names its module too: swap that as well, so only the
	// build hash can tell.
	swappedJSON := relabel(hashedCapture(), serial.KindSummary)
	for i, f := range swappedJSON.Frames {
		if f.Kind == serial.KindSummary {
			other := map[string]string{"fib": "sort", "sort": "fib"}[f.Module]
			swappedJSON.Frames[i].Payload = bytes.Replace(f.Payload, []byte(`"module":"`+other+`"`), []byte(`"module":"`+f.Module+`"`), 1)
		}
	}
	for _, tt := range []struct {
		name string
		c    *serial.Capture
		want []string
	}{
		{"profraw labels swapped", relabel(hashedCapture(), serial.KindProfraw), []string{
			"module fib: the profraw frame labelled fib holds the profile of module sort's build",
			"module sort: the profraw frame labelled sort holds the profile of module fib's build"}},
		{"summary labels and names swapped", swappedJSON, []string{
			"module fib: the summary frame labelled fib carries build hash 8899aabbccddeeff, which is module sort's build",
			"module sort: the summary frame labelled sort carries build hash 0011223344556677, which is module fib's build"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collectLogged(t, tt.c, w)
			testutil.WantErrIs(t, err, ErrRefused, "swapped frames", tt.want...)
		})
	}
	// Frames of a build the image does not hold.
	stale := builds()
	stale["fib"] = Build{Hash: "ffffffffffffffff", ProfNames: []byte("other names")}
	_, err := collectLogged(t, hashedCapture(), Want{Modules: []string{"fib", "sort"}, NeedProfraw: true, Builds: stale})
	if err == nil || !strings.Contains(err.Error(), "was a stale image booted?") || !strings.Contains(err.Error(), "module fib") {
		t.Errorf("frames of another build: %v", err)
	}
}

// withResult rewrites module's summary to say result and drops its
// profraw frame, as the kernel exports a module that crashed or timed out.
func withResult(c *serial.Capture, module, result string, dropProfraw bool) *serial.Capture {
	out := *c
	out.Frames = nil
	for _, f := range c.Frames {
		if f.Module == module && f.Kind == serial.KindProfraw && dropProfraw {
			continue
		}
		if f.Module == module && f.Kind == serial.KindSummary {
			f.Payload = bytes.Replace(f.Payload, []byte(`"result":"ok"`), []byte(`"result":"`+result+`"`), 1)
		}
		out.Frames = append(out.Frames, f)
	}
	out.DoneFrames = len(out.Frames)
	return &out
}

// TestUnfinishedModules: a module whose summary says crashed or timeout
// sends no profraw frame and is Unfinished, with the loader's reason; the
// others are collected. The strict Collect (bench) refuses them by name.
func TestUnfinishedModules(t *testing.T) {
	runs := []*serial.ModuleRun{{Name: "sort", Result: serial.LineCrashed,
		Fault: []string{"module sort: crashed: exception 14 (#PF page fault) err=0x2 at sort+0x1a"}}}
	for _, res := range []string{serial.ResultCrashed, serial.ResultTimeout} {
		c := withResult(goodCapture(), "sort", res, true)
		col, err := collectLogged(t, c, Want{Modules: []string{"fib", "sort"}, NeedProfraw: true, Runs: runs})
		if err != nil {
			t.Fatalf("%s: %v", res, err)
		}
		if len(col.Modules) != 1 || col.Modules["fib"] == nil || len(col.Unfinished) != 1 || col.Unfinished[0].Module != "sort" || col.Unfinished[0].Result != res {
			t.Fatalf("%s: collected %+v", res, col)
		}
		if got := col.Unfinished[0].Why; got != "crashed: exception 14 (#PF page fault) err=0x2 at sort+0x1a" {
			t.Errorf("%s: why %q", res, got)
		}
		pc, _ := serial.ParseLog(strings.NewReader(logOf(t, c)))
		if _, err := Collect(pc, []string{"fib", "sort"}, false); err == nil || !strings.Contains(err.Error(), "module sort: the module's run reported result \""+res+"\"") {
			t.Errorf("%s: strict Collect: %v", res, err)
		}
	}
	// A crashed module's profraw frame would be a kernel bug: refused.
	_, err := collectLogged(t, withResult(goodCapture(), "sort", serial.ResultCrashed, false), Want{Modules: []string{"fib", "sort"}, NeedProfraw: true})
	if err == nil || !strings.Contains(err.Error(), "module sort: sent a profraw frame though its summary says crashed") {
		t.Errorf("profraw of a crashed module: %v", err)
	}
	// A module that failed its checks still sends its profraw, but gets no profile.
	col, err := collectLogged(t, withResult(goodCapture(), "fib", serial.ResultFail, false), Want{Modules: []string{"fib", "sort"}, NeedProfraw: true})
	if err != nil || len(col.Unfinished) != 1 || col.Unfinished[0].Why != "result fail" || col.Modules["fib"] != nil {
		t.Errorf("failed module: %+v, %v", col, err)
	}
	// A module that sent nothing because the loader refused it: the
	// kernel's reason is named.
	_, err = collectLogged(t, goodCapture(), Want{Modules: []string{"fib", "sort", "zip"}, Runs: []*serial.ModuleRun{{Name: "zip", Refused: "wrong services-table version 2, this kernel has 3: rebuild the module"}}})
	if err == nil || !strings.Contains(err.Error(), "module zip: no summary frame in the serial log: the kernel said refused: wrong services-table version") {
		t.Errorf("refused module: %v", err)
	}
}

// TestBootModulesNamesWhy: the benchmark's boot (BootModules) refuses a run
// in which a module crashed, with the kernel's own line about it.
func TestBootModulesNamesWhy(t *testing.T) {
	log := "Fluid OS dev (BareFlow-LLVM)\n" +
		"module sort: crashed: exception 0 (#DE divide error) err=0x0 at sort+0x2c\n" +
		logOf(t, withResult(goodCapture(), "sort", serial.ResultCrashed, true)) +
		"FLUID-END fail module: sort\n"
	boot := func(_ context.Context, _, serialLog string, onLine func(string)) error {
		for _, l := range strings.Split(log, "\n") {
			onLine(l)
		}
		return errors.New("guest failed (module failure)")
	}
	_, err, bootErr := BootModules(context.Background(), boot, "x.img", "x.log", []string{"fib", "sort"}, false)
	if bootErr == nil || err == nil || !strings.Contains(err.Error(), `module sort: the module's run reported result "crashed" (crashed: exception 0 (#DE divide error) err=0x0 at sort+0x2c)`) {
		t.Fatalf("BootModules: %v (boot: %v)", err, bootErr)
	}
}
