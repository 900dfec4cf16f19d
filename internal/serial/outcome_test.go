package serial

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

// TestParseLogMoreFramesThanAnnounced: a log with more frames than its
// FRAMES-DONE line counts is refused with what is extra, not as "lost".
func TestParseLogMoreFramesThanAnnounced(t *testing.T) {
	good := goodLog(t)
	i := strings.Index(good, "@@FLUID-FRAME-BEGIN v=1 kind=profraw module=fib")
	end := "@@FLUID-FRAME-END kind=profraw module=fib\r\n"
	j := strings.Index(good, end) + len(end)
	fibRaw := good[i:j]
	for _, tt := range []struct {
		name string
		log  string
		want []string
	}{
		{"a frame sent twice", good[:j] + fibRaw + good[j:],
			[]string{"announced 4 frames and 0 error lines, the log holds 5 and 0", "1 extra frames", "sent more than once: fib profraw"}},
		{"two runs joined", good + good,
			[]string{"announced 4 frames", "the log holds 8", "4 extra frames", "after the @@FLUID-FRAMES-DONE line: fib summary frame (serial line"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLog(strings.NewReader(tt.log))
			testutil.WantErrIs(t, err, ErrRefused, "a log with more frames than announced", tt.want...)
			if strings.Contains(err.Error(), "lost") {
				t.Errorf("error %q says frames were lost; none were", err)
			}
		})
	}
}

// faultLog is the loader's lines of a run with a spinning, a faulting and
// a skipped module next to a passing one (the contract's line shapes).
const faultLog = `Fluid OS dev (BareFlow-LLVM)
module fib: loaded (baseline 0011223344556677) from /modules/fib.mod at 0x00400000, 900 bytes
module fib: result ok calls=10 cycles total=1 min=1 max=1 checks=1/1
module nullwrite: loaded (baseline 8899aabbccddeeff) from /modules/nullwrite.mod at 0x00401000, 64 bytes
module nullwrite: crashed: exception 14 (#PF page fault) err=0x2 at nullwrite+0x1a
module nullwrite: page fault at 0x10: page not present, write access
module nullwrite: backtrace: nullwrite+0x1a nullwrite+0x3 0xc0101234
module nullwrite: result CRASHED calls=0 cycles total=0 min=0 max=0 checks=0/0
module spin: loaded (baseline 0102030405060708) from /modules/spin.mod at 0x00402000, 16 bytes
module spin: timed out after 200 ms (at spin+0x2)
module spin: backtrace: spin+0x2
module spin: result TIMEOUT calls=0 cycles total=0 min=0 max=0 checks=0/0
module sort: loaded (baseline 1111111111111111) from /modules/sort.mod at 0x00403000, 900 bytes
module sort: result FAIL calls=3 cycles total=1 min=1 max=1 checks=2/3: checksum 0x1 != 0x2
module notes.txt: skipped: not a .mod file
module bad: refused: bad magic 0x0 (want "FMOD")
workload: 5 module(s)
FLUID-END fail module: nullwrite spin`

func TestParserModules(t *testing.T) {
	p, err := ReadLog(strings.NewReader(faultLog))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range p.Modules() {
		names = append(names, m.Name)
	}
	if want := []string{"fib", "nullwrite", "spin", "sort", "notes.txt", "bad"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("modules %v, want %v", names, want)
	}
	byName := map[string]*ModuleRun{}
	for _, m := range p.Modules() {
		byName[m.Name] = m
	}
	nw := byName["nullwrite"]
	if nw.Variant != "baseline" || nw.Hash != "8899aabbccddeeff" || nw.Result != LineCrashed || len(nw.Fault) != 3 {
		t.Errorf("nullwrite: %+v", nw)
	}
	if want := []Loc{{"nullwrite", 0x1a}, {"nullwrite", 0x1a}, {"nullwrite", 0x3}}; !reflect.DeepEqual(nw.Locs, want) {
		t.Errorf("nullwrite locations %v, want %v", nw.Locs, want)
	}
	if got := nw.Why(); got != "crashed: exception 14 (#PF page fault) err=0x2 at nullwrite+0x1a" {
		t.Errorf("nullwrite why %q", got)
	}
	if s := byName["spin"]; s.Result != LineTimeout || s.Why() != "timed out after 200 ms (at spin+0x2)" || len(s.Locs) != 2 {
		t.Errorf("spin: %+v, why %q", s, s.Why())
	}
	var failed []string
	for _, m := range p.FailedModules() {
		failed = append(failed, m.Name+": "+m.Why())
	}
	want := []string{
		"nullwrite: crashed: exception 14 (#PF page fault) err=0x2 at nullwrite+0x1a",
		"spin: timed out after 200 ms (at spin+0x2)",
		"sort: result FAIL: checksum 0x1 != 0x2",
		"notes.txt: skipped: not a .mod file",
		`bad: refused: bad magic 0x0 (want "FMOD")`,
	}
	if !reflect.DeepEqual(failed, want) {
		t.Errorf("failed modules:\n%s\nwant:\n%s", strings.Join(failed, "\n"), strings.Join(want, "\n"))
	}
	if byName["fib"].Failed() {
		t.Errorf("fib counted as failed: %+v", byName["fib"])
	}
}

func TestParseLocs(t *testing.T) {
	got := ParseLocs("backtrace: nullwrite+0x1a lz.v2+0x0 0xc0101234 x+0xZZ +0x5 big+0x123456789")
	want := []Loc{{"nullwrite", 0x1a}, {"lz.v2", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLocs = %v, want %v", got, want)
	}
	if s := (Loc{"spin", 0x2a}).String(); s != "spin+0x2a" {
		t.Errorf("Loc.String = %q", s)
	}
}

// TestFrameOnlyInKernelForm: the decoder accepts a frame only in the exact
// text the kernel writes, so one payload has one text (FuzzParser found a
// BEGIN line with two spaces accepted; these are its relatives).
func TestFrameOnlyInKernelForm(t *testing.T) {
	var b strings.Builder
	payload := []byte("hello, profile! 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFG") // 61 bytes: 2 lines, "==" padding
	if err := EncodeFrame(&b, KindProfraw, "fib", payload); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	done := MarkerFramesDone + "frames=1 errors=0\n"
	if _, err := ParseLog(strings.NewReader(good + done)); err != nil {
		t.Fatalf("the kernel's form is refused: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	join := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" + done }
	for name, log := range map[string]string{
		"two spaces in BEGIN":      strings.Replace(good, "BEGIN v=1", "BEGIN  v=1", 1),
		"upper-case crc32":         strings.Replace(good, "crc32=ea4abd4d", "crc32=EA4ABD4D", 1),
		"len with a plus sign":     strings.Replace(good, "len=61", "len=+61", 1),
		"len with a leading zero":  strings.Replace(good, "len=61", "len=061", 1),
		"an extra field in BEGIN":  strings.Replace(good, " len=61", " x=1 len=61", 1),
		"trailing text after END":  strings.Replace(good, "kind=profraw module=fib\n", "kind=profraw module=fib x\n", 1),
		"padding bits not zero":    join(lines[0], lines[1], strings.Replace(lines[2], "Rw==", "Rx==", 1), lines[3]),
		"a short line then more":   join(lines[0], lines[1][:40], lines[1][40:]+lines[2], lines[3]),
		"an empty line in a frame": join(lines[0], lines[1], "", lines[2], lines[3]),
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.HasSuffix(log, done) {
				log += done
			}
			_, err := ParseLog(strings.NewReader(log))
			if err == nil || !strings.Contains(err.Error(), "module fib profraw frame") {
				t.Fatalf("accepted a frame not in the kernel's form (or did not name it): %v\n%s", err, log)
			}
			t.Logf("refused: %v", err)
		})
	}
}
