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

// TestModuleLinesFromTheRunningModuleAreNotTheKernels: a module prints on
// the serial line too, so a line about another module between the running
// module's loaded and result lines is the module's output, not the
// kernel's: it must not make a module that passed look crashed (nor name
// a code location in it for the symbolizer).
func TestModuleLinesFromTheRunningModuleAreNotTheKernels(t *testing.T) {
	log := "Fluid OS dev (BareFlow-LLVM)\n" +
		"module fib: loaded (baseline 0011223344556677) from /modules/fib.mod at 0x00400000, 900 bytes\n" +
		"module fib: result ok calls=3 cycles total=1 min=1 max=1 checks=1/1\n" +
		"module liar: loaded (baseline 8899aabbccddeeff) from /modules/liar.mod at 0x00401000, 64 bytes\n" +
		"module fib: crashed: exception 14 (#PF page fault) err=0x2 at fib+0x1a\n" +
		"module sort: result FAIL calls=0 cycles total=0 min=0 max=0 checks=0/1: check x failed\n" +
		"module liar: result ok calls=3 cycles total=1 min=1 max=1 checks=0/0\n" +
		"module sort: loaded (baseline 0123456789abcdef) from /modules/sort.mod at 0x00402000, 900 bytes\n" +
		"module sort: result ok calls=3 cycles total=1 min=1 max=1 checks=1/1\n"
	p, err := ReadLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.FailedModules() {
		t.Errorf("module %s counted as failed (%s), but the kernel said it passed", m.Name, m.Why())
	}
	for _, m := range p.Modules() {
		if len(m.Locs) > 0 {
			t.Errorf("module %s has code locations %v from another module's output", m.Name, m.Locs)
		}
	}
}
