package modfmt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/symbolize"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

// misbehaving are the modules in testdata/misbehave: well-formed files
// whose code spins or faults. want is the kernel's line for each.
var misbehaving = []struct {
	name string
	want *regexp.Regexp
}{
	{"badop", regexp.MustCompile(`^module badop: crashed: exception 6 \(#UD invalid opcode\) err=0x0 at badop\+0x[0-9a-f]+$`)},
	{"divzero", regexp.MustCompile(`^module divzero: crashed: exception 0 \(#DE divide error\) err=0x0 at divzero\+0x[0-9a-f]+$`)},
	{"nullwrite", regexp.MustCompile(`^module nullwrite: crashed: exception 14 \(#PF page fault\) err=0x2 at nullwrite\+0x[0-9a-f]+$`)},
	{"spin", regexp.MustCompile(`^module spin: timed out after \d+ ms \(at spin\+0x[0-9a-f]+\)$`)},
	// W^X: the module's code is read-only after relocation (err 0x3:
	// present, write), its data is not executable (err 0x11: present,
	// instruction fetch).
	{"codewrite", regexp.MustCompile(`^module codewrite: crashed: exception 14 \(#PF page fault\) err=0x3 at codewrite\+0x[0-9a-f]+$`)},
	{"dataexec", regexp.MustCompile(`^module dataexec: crashed: exception 14 \(#PF page fault\) err=0x11 at dataexec\+0x[0-9a-f]+$`)},
}

// buildMisbehaving compiles testdata/misbehave/<name>.c as a module (with
// frame pointers, so the kernel's backtrace can walk the module's frames)
// and packs it as a baseline module.
func buildMisbehaving(t *testing.T, root, name string) []byte {
	t.Helper()
	return buildTestModule(t, root, "misbehave", name)
}

// buildTestModule compiles internal/modfmt/testdata/<sub>/<name>.c as
// buildMisbehaving describes.
func buildTestModule(t *testing.T, root, sub, name string) []byte {
	t.Helper()
	data, _ := buildModuleELF(t, root, name, filepath.Join(root, "internal/modfmt/testdata", sub, name+".c"), filepath.Join(root, modfmt.IncludeDir))
	return data
}

// buildModuleWith compiles src and the module runtime against the
// fluid_module.h in include and packs the result as baseline module name.
func buildModuleWith(t *testing.T, root, name, src, include string) []byte {
	t.Helper()
	data, _ := buildModuleELF(t, root, name, src, include)
	return data
}

// buildModuleELF is buildModuleWith that also returns the linked ELF (with
// DWARF, as the build's modules have) it packed.
func buildModuleELF(t *testing.T, root, name, src, include string) (data []byte, elfPath string) {
	t.Helper()
	tc := toolchaintest.Find(t)
	dir := t.TempDir()
	flags := append(modfmt.CFlags(), "-fno-omit-frame-pointer", "-g", "-I"+include)
	var objs []string
	for i, src := range []string{src, filepath.Join(root, modfmt.RuntimeDir, "runtime.c")} {
		obj := filepath.Join(dir, fmt.Sprintf("%d.o", i))
		argv := append(append([]string{tc.Path("clang")}, flags...), "-c", src, "-o", obj)
		if _, err := toolchaintest.Run(tc, "", argv...); err != nil {
			t.Fatalf("clang %s: %v", src, err)
		}
		objs = append(objs, obj)
	}
	elf := filepath.Join(dir, name+".elf")
	argv := append(append([]string{tc.Path("ld.lld")}, modfmt.LDFlags()...), "-T", filepath.Join(root, modfmt.LinkerScript), "-o", elf)
	if _, err := toolchaintest.Run(tc, "", append(argv, objs...)...); err != nil {
		t.Fatalf("ld.lld %s: %v", name, err)
	}
	data, err := modfmt.Pack(elf, name, "baseline")
	if err != nil {
		t.Fatalf("pack %s: %v", name, err)
	}
	return data, elf
}

// TestBootStaleServicesModule boots the seven normal modules next to one
// compiled against a fluid_module.h whose FLUID_SERVICES_VERSION is 0 (an
// old copy of the header): the loader refuses it by name, with the versions
// and what to do, before any of it runs; every normal module still passes,
// and the run is a module failure that names it.
func TestBootStaleServicesModule(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	arts, err := b.All(t.Context())
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	hdr, err := os.ReadFile(filepath.Join(b.Root(), modfmt.IncludeDir, "fluid_module.h"))
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^#define FLUID_SERVICES_VERSION\s+\d+u$`)
	if !re.Match(hdr) {
		unlock()
		t.Fatal("fluid_module.h: no #define FLUID_SERVICES_VERSION line to rewrite")
	}
	inc := t.TempDir()
	if err := os.WriteFile(filepath.Join(inc, "fluid_module.h"), re.ReplaceAll(hdr, []byte("#define FLUID_SERVICES_VERSION  0u")), 0o644); err != nil {
		unlock()
		t.Fatal(err)
	}
	data := buildModuleWith(t, b.Root(), "stale", filepath.Join(b.Root(), "modules/fib/fib.c"), inc)
	img, err := b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-stale.img", Kernel: arts.Kernel, Modules: arts.Modules,
		Extra: []image.File{{Path: "/modules/stale.mod", Data: data}}})
	unlock()
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, Timeout: 2 * time.Minute})
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Failed || res.ExitStatus != layout.StatusModuleFail {
		t.Fatalf("outcome %v exit %d, want a module failure (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusModuleFail, log)
	}
	want := regexp.MustCompile(`(?m)^module stale(\.mod)?: refused: built against services table version 0, this kernel has 2; rebuild the module with this tree's modules/include/fluid_module\.h$`)
	if !want.MatchString(log) {
		t.Errorf("no line matching %s:\n%s", want, grepLines(lines, "stale"))
	}
	if strings.Contains(log, "check fib:") || strings.Contains(log, "module stale: result") {
		t.Errorf("the refused module ran:\n%s", grepLines(lines, "stale"))
	}
	if !strings.Contains(res.EndLine, "stale") {
		t.Errorf("end line %q does not name stale", res.EndLine)
	}
	wantNormalModulesOK(t, lines, len(arts.Modules), "beside the stale one")
}

// TestBootMisbehavingModules boots an image holding a spinning module, one
// that writes through a NULL pointer, one that executes an invalid opcode
// and one that divides by zero, next to the seven normal modules: each bad
// module is stopped and named with its reason and NAME+0xOFF, every normal
// module still passes, every module's summary frame is exported, and the
// run ends in seconds with the module-failure exit code (41).
func TestBootMisbehavingModules(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	arts, err := b.All(t.Context())
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	var extra []image.File
	var nullwriteELF string
	for _, m := range misbehaving {
		data, elf := buildModuleELF(t, b.Root(), m.name, filepath.Join(b.Root(), "internal/modfmt/testdata/misbehave", m.name+".c"), filepath.Join(b.Root(), modfmt.IncludeDir))
		if m.name == "nullwrite" {
			nullwriteELF = elf
		}
		if m.name == "spin" {
			pm, err := modfmt.Parse(data)
			if err != nil {
				unlock()
				t.Fatalf("spin: %v", err)
			}
			if pm.DeadlineMS != 250 {
				unlock()
				t.Fatalf("spin: header deadline %d ms, want the 250 ms its FLUID_DEADLINE_MS declares", pm.DeadlineMS)
			}
		}
		extra = append(extra, image.File{Path: "/modules/" + m.name + ".mod", Data: data})
	}
	img, err := b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-misbehaving.img", Kernel: arts.Kernel, Modules: arts.Modules, Extra: extra})
	unlock()
	if err != nil {
		t.Fatalf("image: %v", err)
	}

	// Without -icount: deadlines are wall-clock time (the PIT follows the
	// host clock), and the issue asks for a run that ends in seconds.
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, Timeout: 2 * time.Minute})
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Failed || res.ExitStatus != layout.StatusModuleFail {
		t.Fatalf("outcome %v exit %d, want a module failure (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusModuleFail, log)
	}
	if res.Duration > 20*time.Second {
		t.Errorf("the run took %v; a stopped module must not hold it up", res.Duration)
	}
	t.Logf("run: %v, %s", res.Duration.Round(time.Millisecond), res.EndLine)
	for _, m := range misbehaving {
		if !strings.Contains(res.EndLine, m.name) {
			t.Errorf("end line %q does not name %s", res.EndLine, m.name)
		}
		found := false
		for _, l := range lines {
			if m.want.MatchString(l) {
				t.Log(l)
				found = true
			}
		}
		if !found {
			t.Errorf("no line matching %s", m.want)
		}
		word := "CRASHED"
		if m.name == "spin" {
			word = "TIMEOUT"
		}
		if !strings.Contains(log, "module "+m.name+": result "+word+" ") {
			t.Errorf("no \"result %s\" line for %s", word, m.name)
		}
	}
	if !regexp.MustCompile(`(?m)^module nullwrite: page fault at 0x10: page not present, write access$`).MatchString(log) {
		t.Errorf("no page-fault detail line for nullwrite")
	}
	// The W^X faults name an address inside the module (its load address
	// from the "loaded" line plus the offset) and why.
	for _, c := range []struct{ name, why string }{
		{"codewrite", "protection violation, write access"},
		{"dataexec", "protection violation, instruction fetch access"},
	} {
		base, fault, ok := uint64(0), uint64(0), false
		for _, l := range lines {
			if m := regexp.MustCompile(`^module ` + c.name + `: loaded \(.*\) from \S+ at 0x([0-9a-f]+), \d+ bytes`).FindStringSubmatch(l); m != nil {
				base, _ = strconv.ParseUint(m[1], 16, 64)
			}
			if m := regexp.MustCompile(`^module ` + c.name + `: page fault at 0x([0-9a-f]+): ` + c.why + `$`).FindStringSubmatch(l); m != nil {
				fault, _ = strconv.ParseUint(m[1], 16, 64)
				ok = true
			}
		}
		if !ok {
			t.Errorf("no \"module %s: page fault at 0x...: %s\" line:\n%s", c.name, c.why, grepLines(lines, c.name))
		} else if base == 0 || fault < base || fault-base >= 1<<22 {
			t.Errorf("%s: the fault address %#x is not inside the module loaded at %#x", c.name, fault, base)
		}
	}
	// bump() faults; its caller fluid_main is in the module too, then the
	// kernel (module_call's return into the loader).
	if !regexp.MustCompile(`(?m)^module nullwrite: backtrace: nullwrite\+0x[0-9a-f]+ nullwrite\+0x[0-9a-f]+ 0x[0-9a-f]+$`).MatchString(log) {
		t.Errorf("nullwrite's backtrace does not walk its own frame into the kernel:\n%s", grepLines(lines, "backtrace"))
	}
	wantNormalModulesOK(t, lines, len(arts.Modules), "beside the misbehaving ones")

	capture, err := serial.ParseLog(strings.NewReader(log))
	if err != nil {
		t.Fatalf("frames: %v", err)
	}
	results := map[string]string{}
	for _, s := range capture.Summaries() {
		results[s.Module] = s.Result
	}
	for _, m := range arts.Modules {
		if results[m.Name] != "ok" {
			t.Errorf("summary of %s: result %q, want ok", m.Name, results[m.Name])
		}
	}
	for _, m := range misbehaving {
		want := "crashed"
		if m.name == "spin" {
			want = "timeout"
		}
		if results[m.name] != want {
			t.Errorf("summary of %s: result %q, want %q", m.name, results[m.name], want)
		}
	}
	if n := len(arts.Modules) + len(misbehaving); capture.DoneFrames != n || capture.DoneErrors != 0 {
		t.Errorf("FRAMES-DONE frames=%d errors=%d, want %d and 0", capture.DoneFrames, capture.DoneErrors, n)
	}
	symbolizeNullwrite(t, b, nullwriteELF, lines)
}

// symbolizeNullwrite resolves the NAME+0xOFF locations the kernel printed
// for nullwrite (where it faulted, then its backtrace) with the symbolizer
// `mage qemu` uses, against the ELF that was packed: the fault is the write
// in bump(), the return address the call in fluid_main.
func symbolizeNullwrite(t *testing.T, b *build.Builder, elf string, lines []string) {
	t.Helper()
	var locs []serial.Loc
	var ret []bool
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "module nullwrite: crashed:"):
			locs = append(serial.ParseLocs(l)[:1], locs...)
			ret = append([]bool{false}, ret...)
		case strings.HasPrefix(l, "module nullwrite: backtrace:"):
			bt := serial.ParseLocs(l)
			if len(bt) > 1 {
				locs, ret = append(locs, bt[1]), append(ret, true)
			}
		}
	}
	if len(locs) != 2 {
		t.Fatalf("nullwrite: %d locations to symbolize, want the fault and one return address: %v", len(locs), locs)
	}
	// The symbolizer runs in the toolchain's sandbox, which sees the output
	// directory: the ELF goes there.
	data, err := os.ReadFile(elf)
	if err != nil {
		t.Fatal(err)
	}
	elf = filepath.Join(b.Out(), "modules", "misbehave", "nullwrite.elf")
	if err := os.MkdirAll(filepath.Dir(elf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(elf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := (&symbolize.Symbolizer{B: b}).Lookup(t.Context(), elf, locs, ret)
	if err != nil {
		t.Fatalf("symbolize: %v", err)
	}
	want := []struct {
		fn   string
		line int
	}{{"bump", 12}, {"fluid_main", 19}}
	for i, w := range want {
		t.Log(got[i])
		if got[i].Err != "" || !strings.HasSuffix(got[i].File, "misbehave/nullwrite.c") || got[i].Line != w.line || got[i].Function != w.fn {
			t.Errorf("%s resolved to %s, want nullwrite.c:%d (%s)", locs[i], got[i], w.line, w.fn)
		}
	}
}

func grepLines(lines []string, sub string) string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBootKernelFaultInService boots a module that hands the print service
// a bad pointer: the fault is in the kernel, not in the module, so the run
// still ends with the exception dump (exit 39), whose backtrace names the
// module's frame.
func TestBootKernelFaultInService(t *testing.T) {
	res, lines := bootAttack(t, "badsvc", false, 2*time.Minute, "misbehave/badsvc")
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Crashed || res.ExitStatus != layout.StatusCPUException {
		t.Fatalf("outcome %v exit %d, want the exception dump (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusCPUException, log)
	}
	if strings.Contains(log, "module badsvc: crashed") {
		t.Errorf("a fault in the kernel was blamed on the module:\n%s", log)
	}
	if !regexp.MustCompile(`(?m)^\s+#\d+\s+0x(?:[0-9a-f]{8}|[0-9a-f]{16}) \(module badsvc\+0x[0-9a-f]+\)$`).MatchString(log) {
		t.Errorf("the dump's backtrace does not name the module's frame:\n%s", grepLines(lines, "#"))
	}
}

// TestBootMisbehavingProfilesExact boots the instrumented modules twice,
// alone and next to the misbehaving ones: every normal module's raw
// profile must say exactly the same in both runs (compared as
// llvm-profdata's text form, which has no load addresses), the stopped
// modules must send no profraw frame and no frame error, and FRAMES-DONE
// must count every frame sent.
func TestBootMisbehavingProfilesExact(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	kernel, err := b.Kernel(t.Context(), build.KernelNormal)
	var mods []build.Module
	if err == nil {
		mods, err = b.RecipeModules(t.Context(), recipe.Instrumented, nil)
	}
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	var extra []image.File
	for _, m := range misbehaving {
		extra = append(extra, image.File{Path: "/modules/" + m.name + ".mod", Data: buildMisbehaving(t, b.Root(), m.name)})
	}
	clean, err := b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-instr-clean.img", Kernel: kernel, Modules: mods})
	var mixed string
	if err == nil {
		mixed, err = b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-instr-mixed.img", Kernel: kernel, Modules: mods, Extra: extra})
	}
	unlock()
	if err != nil {
		t.Fatalf("image: %v", err)
	}

	capture := func(img string) *serial.Capture {
		t.Helper()
		_, lines := qemutest.Boot(t, qemu.Options{Image: img, Timeout: 3 * time.Minute})
		c, err := serial.ParseLog(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatalf("%s: frames: %v", filepath.Base(img), err)
		}
		return c
	}
	profraw := func(c *serial.Capture) map[string][]byte {
		out := map[string][]byte{}
		for _, f := range c.Frames {
			if f.Kind == serial.KindProfraw {
				out[f.Module] = f.Payload
			}
		}
		return out
	}
	cleanCap, mixedCap := capture(clean), capture(mixed)
	want, got := profraw(cleanCap), profraw(mixedCap)
	if n := 2*len(mods) + len(misbehaving); mixedCap.DoneFrames != n || mixedCap.DoneErrors != 0 || len(mixedCap.Errors) != 0 {
		t.Errorf("FRAMES-DONE frames=%d errors=%d (error lines %v), want %d frames (a summary for every module, a profraw for each normal one) and no errors", mixedCap.DoneFrames, mixedCap.DoneErrors, mixedCap.Errors, n)
	}
	for _, m := range misbehaving {
		if _, ok := got[m.name]; ok {
			t.Errorf("%s was stopped but sent a profraw frame", m.name)
		}
	}
	tc := toolchaintest.Find(t)
	dir := t.TempDir()
	text := func(name, tag string, raw []byte) string {
		t.Helper()
		in, out := filepath.Join(dir, name+"-"+tag+".profraw"), filepath.Join(dir, name+"-"+tag+".proftext")
		if err := os.WriteFile(in, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := toolchaintest.Run(tc, "", tc.Path("llvm-profdata"), "merge", "--text", "-o", out, in); err != nil {
			t.Fatalf("llvm-profdata %s (%s run): %v", name, tag, err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for _, m := range mods {
		if want[m.Name] == nil || got[m.Name] == nil {
			t.Errorf("%s: profraw in the clean run %v, next to the misbehaving modules %v", m.Name, want[m.Name] != nil, got[m.Name] != nil)
			continue
		}
		if a, b := text(m.Name, "clean", want[m.Name]), text(m.Name, "mixed", got[m.Name]); a != b {
			t.Errorf("%s: the profile captured next to the misbehaving modules differs from the clean run's", m.Name)
		}
	}
}
