package modfmt_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/serial"
)

// bootAttack boots an image holding the modules testdata/<mods> (each
// "sub/name"), next to the seven normal modules if normal is set.
func bootAttack(t *testing.T, tag string, normal bool, timeout time.Duration, mods ...string) (*qemu.Result, []string) {
	t.Helper()
	return bootAttackFiles(t, tag, normal, timeout, nil, mods...)
}

// bootAttackFiles is bootAttack with more files for the image; a File
// whose Src is "testdata:sub/name" gets that module's bytes.
func bootAttackFiles(t *testing.T, tag string, normal bool, timeout time.Duration, files []image.File, mods ...string) (*qemu.Result, []string) {
	t.Helper()
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	spec := build.ImageSpec{Name: "fluid-modfmt-attack-" + tag + ".img"}
	var err error
	if normal {
		var arts *build.Artifacts
		arts, err = b.All(t.Context())
		if err == nil {
			spec.Kernel, spec.Modules = arts.Kernel, arts.Modules
		}
	} else {
		spec.Kernel, err = b.Kernel(t.Context(), build.KernelNormal)
	}
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	for _, m := range mods {
		sub, name, _ := strings.Cut(m, "/")
		spec.Extra = append(spec.Extra, image.File{Path: "/modules/" + name + ".mod", Data: buildTestModule(t, b.Root(), sub, name)})
	}
	for _, f := range files {
		if m, ok := strings.CutPrefix(f.Src, "testdata:"); ok {
			sub, name, _ := strings.Cut(m, "/")
			f.Src, f.Data = "", buildTestModule(t, b.Root(), sub, name)
		}
		spec.Extra = append(spec.Extra, f)
	}
	img, err := b.Image(t.Context(), spec)
	unlock()
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	return qemutest.Boot(t, qemu.Options{Image: img, Timeout: timeout})
}

// TestAttackExplore boots ATTACK=mod,mod,... (testdata/attack or
// sub/name) and logs the run; for a reviewer, skipped without ATTACK.
func TestAttackExplore(t *testing.T) {
	list := os.Getenv("ATTACK")
	if list == "" {
		t.Skip("ATTACK not set")
	}
	var mods []string
	for _, m := range strings.Split(list, ",") {
		if !strings.Contains(m, "/") {
			m = "attack/" + m
		}
		mods = append(mods, m)
	}
	res, lines := bootAttack(t, "explore", os.Getenv("NORMAL") != "", exploreTimeout(), mods...)
	t.Logf("outcome %v exit %d in %v: %s", res.Outcome, res.ExitStatus, res.Duration.Round(time.Millisecond), res.Reason)
	for _, l := range lines {
		if !strings.HasPrefix(l, "@@FLUID-FRAME ") {
			t.Log(l)
		}
	}
}

// TestBootProfileHookStopped boots the normal modules next to two modules
// whose entry passes but whose profile dump hook (called by the kernel's
// export, after every module ran) writes through NULL or never returns.
// The guard stops each hook like an entry: no exception dump, no hang, a
// line naming the module and NAME+0xOFF, its summary frame says crashed or
// timeout and it sends no profraw frame (and no FRAME-ERROR), every frame
// of the other modules is still sent, and the run is a module failure
// (exit 41) naming both.
func TestBootProfileHookStopped(t *testing.T) {
	res, lines := bootAttack(t, "hooks", true, 2*time.Minute, "attack/hookfault", "attack/hookspin")
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Failed || res.ExitStatus != layout.StatusModuleFail {
		t.Fatalf("outcome %v exit %d, want a module failure (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusModuleFail, log)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^module hookfault: profile hook crashed: exception 14 \(#PF page fault\) at hookfault\+0x[0-9a-f]+$`),
		regexp.MustCompile(`(?m)^module hookspin: profile hook timed out after \d+ ms at hookspin\+0x[0-9a-f]+$`),
		regexp.MustCompile(`(?m)^FLUID-END fail module: hookfault, hookspin$`),
	} {
		if !want.MatchString(log) {
			t.Errorf("no line matching %s", want)
		}
	}
	p, err := serial.ReadLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]*serial.ModuleRun{}
	for _, m := range p.FailedModules() {
		failed[m.Name] = m
	}
	for _, name := range []string{"hookfault", "hookspin"} {
		if m := failed[name]; m == nil || len(m.Locs) == 0 {
			t.Errorf("the host does not see %s as failed with a code location to symbolize: %+v", name, m)
		}
	}
	capture, err := p.Capture()
	if err != nil {
		t.Fatalf("frames: %v", err)
	}
	results := map[string]string{}
	for _, s := range capture.Summaries() {
		results[s.Module] = s.Result
	}
	wantResults := map[string]string{"expr": "ok", "fib": "ok", "hash": "ok", "interp": "ok", "llama": "ok", "lz": "ok",
		"matrix": "ok", "sort": "ok", "hookfault": "crashed", "hookspin": "timeout"}
	for m, want := range wantResults {
		if results[m] != want {
			t.Errorf("summary of %s: result %q, want %q", m, results[m], want)
		}
	}
	// One summary frame per module, profile frames from none (baseline).
	if capture.DoneFrames != len(wantResults) || capture.DoneErrors != 0 || len(capture.Errors) != 0 {
		t.Errorf("FRAMES-DONE frames=%d errors=%d (error lines %v), want %d and 0", capture.DoneFrames, capture.DoneErrors, capture.Errors, len(wantResults))
	}
}

// TestBootABIBreakingModules boots the normal modules next to modules that
// return but break the calling convention (RBP cleared, null segments, IF
// and DF left flipped), one that leaves the x87 control word and MXCSR
// changed with one after it that checks them, one that raises int 0x99,
// and a spinning one after flagsret (which returns with interrupts off):
// each returning module passes, the spinner is still stopped by the timer,
// int 0x99 is the module's crash, the crash of a module whose last print
// did not end its line (nonl) is still on a line of its own, and the run
// is a module failure naming exactly nonl, softint and spin.
func TestBootABIBreakingModules(t *testing.T) {
	res, lines := bootAttack(t, "abi", true, 2*time.Minute, "attack/ebpret", "attack/dsret", "attack/flagsret",
		"attack/fpuset", "attack/fpuvictim", "attack/nonl", "attack/softint", "misbehave/spin")
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Failed || res.ExitStatus != layout.StatusModuleFail {
		t.Fatalf("outcome %v exit %d, want a module failure (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusModuleFail, log)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^module ebpret: result ok `),
		regexp.MustCompile(`(?m)^module dsret: result ok `),
		regexp.MustCompile(`(?m)^module flagsret: result ok `),
		regexp.MustCompile(`(?m)^module fpuset: result ok `),
		regexp.MustCompile(`(?m)^module fpuvictim: result ok `),
		regexp.MustCompile(`(?m)^module softint: crashed: exception 153 \(#\? interrupt\) err=0x0 at softint\+0x[0-9a-f]+$`),
		regexp.MustCompile(`(?m)^module spin: timed out after \d+ ms \(at spin\+0x[0-9a-f]+\)$`),
		regexp.MustCompile(`(?m)^module nonl: crashed: exception 6 \(#UD invalid opcode\) err=0x0 at nonl\+0x[0-9a-f]+$`),
		regexp.MustCompile(`(?m)^FLUID-END fail module: nonl, softint, spin$`),
	} {
		if !want.MatchString(log) {
			t.Errorf("no line matching %s", want)
		}
	}
	if res.Duration > 20*time.Second {
		t.Errorf("the run took %v", res.Duration)
	}
}

// TestBootModulesListingOddEntries: an upper-case file name (BADOP.MOD, a
// module whose header says badop), a zero-length .mod file and a .mod
// file whose long name does not fit the kernel's 63-character name buffer.
// None of them is skipped silently: each is run or named with its reason.
func TestBootModulesListingOddEntries(t *testing.T) {
	long := "/modules/" + strings.Repeat("x", 70) + ".mod"
	res, lines := bootAttackFiles(t, "listing", false, 2*time.Minute, []image.File{
		{Path: "/modules/BADOP.MOD", Src: "testdata:misbehave/badop"},
		{Path: "/modules/empty.mod", Data: []byte{}},
		{Path: long, Src: "testdata:misbehave/badop"},
	})
	log := strings.Join(lines, "\n")
	if res.ExitStatus != layout.StatusModuleFail {
		t.Fatalf("outcome %v exit %d, want a module failure (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusModuleFail, log)
	}
	// The long name does not fit: the entry goes by its 8.3 alias, and the
	// header's name then does not match it.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^module badop: loaded \(baseline [0-9a-f]+\) from /modules/BADOP.MOD `),
		regexp.MustCompile(`(?m)^module badop: crashed: exception 6 `),
		regexp.MustCompile(`(?m)^module XXXXXX~1.MOD: refused: the header names module "badop": rename the file to badop.mod$`),
		regexp.MustCompile(`(?m)^module empty.mod: refused: file size 0 is not in 1\.\.\d+$`),
		regexp.MustCompile(`(?m)^FLUID-END fail module: badop, XXXXXX~1.MOD, empty.mod$`),
	} {
		if !want.MatchString(log) {
			t.Errorf("no line matching %s", want)
		}
	}
}

func exploreTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ATTACK_TIMEOUT")); err == nil {
		return d
	}
	return time.Minute
}
