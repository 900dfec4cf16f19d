package boottest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
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

// timedLines records when each serial line arrived (host wall time).
type timedLines struct {
	mu    sync.Mutex
	lines []string
	at    []time.Time
}

func (l *timedLines) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
}

// when is the arrival time of the first line starting with prefix.
func (l *timedLines) when(t *testing.T, prefix string) (string, time.Time) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			return s, l.at[i]
		}
	}
	t.Fatalf("no serial line starts with %q", prefix)
	return "", time.Time{}
}

// TestModulesDirectoryLoop corrupts the /modules directory of the normal
// image so that its cluster chain loops back to its first cluster and no
// entry ends the listing (every free entry is marked deleted): only the
// chain can end the walk, and it never does. The kernel must refuse the
// directory, name the loop, and end the run as a module failure, quickly:
// the bound is the FAT specification's 2 MiB directory limit, not the
// volume's cluster count (which took about 11 s under TCG).
func TestModulesDirectoryLoop(t *testing.T) {
	qemutest.Need(t)
	a := buildtest.All(t)
	f := openFATImage(t, a.Image)
	first := f.dirCluster(t, "MODULES    ")
	chain := f.chain(t, first)
	for _, c := range chain {
		d := f.cluster(c)
		for off := 0; off < len(d); off += 32 {
			if d[off] == 0x00 {
				d[off] = 0xE5
			}
		}
	}
	f.setNext(chain[len(chain)-1], first)
	img := f.write(t, "modules-loop.img")
	var tl timedLines
	r, _ := boot(t, qemu.Options{Image: img, Timeout: time.Minute, OnLine: tl.add})
	if r.Outcome != qemu.Failed || r.ExitStatus != layout.StatusModuleFail {
		t.Fatalf("outcome %v exit %d, want Failed exit %d:\n%s", r.Outcome, r.ExitStatus, layout.StatusModuleFail, r)
	}
	_, start := tl.when(t, "workload: ATA primary master")
	line, end := tl.when(t, "workload: listing /modules: ")
	t.Logf("looping /modules (%d cluster(s) of %d bytes) refused %v after the ATA line: %s",
		len(chain), f.clusterBytes(), end.Sub(start).Round(time.Millisecond), line)
	if !strings.Contains(line, "loops") {
		t.Errorf("the refusal does not say the chain loops: %q", line)
	}
	if d := end.Sub(start); d > 2*time.Second {
		t.Errorf("the looping directory took %v to refuse; want well under 2 s", d)
	}
}

// TestModulesNoSilentSkips boots the normal modules plus entries that must
// not be loaded: a README, a directory named like a module, and copies of
// fib.mod named zz00.mod, zz01.mod, ... so that the image holds 33 .mod
// files for a limit of 32 (26 copies next to 7 modules, 25 next to 8).
// Every entry that is not loaded is named with its reason, the module left
// out is the last in name order (zz24.mod with 8 modules) whatever the directory order
// (the image's sorted order, then reversed), and the run is a module
// failure (exit 41) rather than a pass with a module fewer.
func TestModulesNoSilentSkips(t *testing.T) {
	qemutest.Need(t)
	a := buildtest.All(t)
	b := buildtest.Builder(t)
	var fib string
	for _, m := range a.Modules {
		if m.Name == "fib" {
			fib = m.Path
		}
	}
	extra := []image.File{
		{Path: "/modules/README.txt", Data: []byte("modules are /modules/NAME.mod\n")},
		{Path: "/modules/zdir.mod/inner.mod", Src: fib},
	}
	copies := 33 - len(a.Modules)
	last := fmt.Sprintf("zz%02d.mod", copies-1)
	for i := 0; i < copies; i++ {
		extra = append(extra, image.File{Path: fmt.Sprintf("/modules/zz%02d.mod", i), Src: fib})
	}
	sorted := buildtest.Image(t, b, build.ImageSpec{Name: "boottest-modules-skips.img", Kernel: a.Kernel, Modules: a.Modules, Extra: extra})
	f := openFATImage(t, sorted)
	f.reverseDir(t, f.dirCluster(t, "MODULES    "))
	reversed := f.write(t, "modules-skips-reversed.img")
	for _, tt := range []struct{ name, img string }{{"sorted", sorted}, {"reversed", reversed}} {
		t.Run(tt.name, func(t *testing.T) {
			r, lines := boot(t, qemu.Options{Image: tt.img, Timeout: 2 * time.Minute})
			if r.Outcome != qemu.Failed || r.ExitStatus != layout.StatusModuleFail {
				t.Fatalf("outcome %v exit %d, want Failed exit %d:\n%s", r.Outcome, r.ExitStatus, layout.StatusModuleFail, r)
			}
			var skipped []string
			ok := map[string]bool{}
			for _, l := range lines {
				if strings.Contains(l, ": skipped: ") {
					skipped = append(skipped, l)
				}
				if name, rest, found := strings.Cut(strings.TrimPrefix(l, "module "), ": result ok "); found && rest != "" {
					ok[name] = true
				}
			}
			want := []string{
				"module README.txt: skipped: not a .mod file (only /modules/*.mod files are loaded)",
				"module zdir.mod: skipped: a directory, not a module file (a module must be a file /modules/NAME.mod)",
				"module " + last + ": skipped: over the limit of 32 modules (the first 32 .mod files in name order are loaded): remove modules from /modules",
			}
			for _, w := range want {
				found := false
				for _, l := range skipped {
					found = found || strings.EqualFold(l, w)
				}
				if !found {
					t.Errorf("no line %q; skipped lines:\n%s", w, strings.Join(skipped, "\n"))
				}
			}
			if len(skipped) != len(want) {
				t.Errorf("%d skipped lines, want %d:\n%s", len(skipped), len(want), strings.Join(skipped, "\n"))
			}
			for _, m := range a.Modules {
				if !ok[m.Name] {
					t.Errorf("module %s did not report result ok", m.Name)
				}
			}
			if !hasLine(lines, "workload: 1 .mod file(s) in /modules over the limit of 32 were not run") {
				t.Errorf("no workload line counting the module over the limit")
			}
			// The end line names what failed the run: the refused copies
			// all but the last (their headers say fib), as many names as
			// fit and a count of the rest, then the two counts, which are
			// never cut off.
			end := regexp.MustCompile(`(?i)^` + regexp.QuoteMeta(serial.MarkerFail) +
				` module: ((?:zz\d\d\.mod, )+)and (\d+) more modules, 1 module file over the limit of 32, 1 directory named \*\.mod$`)
			m := end.FindStringSubmatch(r.EndLine)
			if m == nil {
				t.Fatalf("end line %q does not match %s", r.EndLine, end)
			}
			named := strings.Count(m[1], ",")
			more, _ := strconv.Atoi(m[2])
			if named+more != copies-1 || !strings.HasPrefix(strings.ToLower(m[1]), "zz00.mod, zz01.mod, ") {
				t.Errorf("end line %q: %d names + %d more, want the %d refused copies from zz00.mod on", r.EndLine, named, more, copies-1)
			}
		})
	}
}

// TestModulesSkipOutcome separates the two kinds of skipped entry: a file
// that is not a module (a README) is reported and the run still passes; a
// directory named like a module is reported and fails the run (exit 41),
// as a module the image meant to hold was not run.
func TestModulesSkipOutcome(t *testing.T) {
	qemutest.Need(t)
	a := buildtest.All(t)
	b := buildtest.Builder(t)
	for _, tt := range []struct {
		name   string
		extra  image.File
		line   string
		status int
		end    string // the FLUID-END line
	}{
		{"readme", image.File{Path: "/modules/README.txt", Data: []byte("modules are /modules/NAME.mod\n")},
			"module README.txt: skipped: not a .mod file", layout.StatusPass, serial.MarkerPass},
		{"directory", image.File{Path: "/modules/extra.mod/inner.txt", Data: []byte("x")},
			"module extra.mod: skipped: a directory, not a module file", layout.StatusModuleFail,
			serial.MarkerFail + " module: 1 directory named *.mod"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := buildtest.Image(t, b, build.ImageSpec{Name: "boottest-skip-" + tt.name + ".img", Kernel: a.Kernel,
				Modules: a.Modules, Extra: []image.File{tt.extra}})
			r, lines := boot(t, qemu.Options{Image: img, Timeout: 2 * time.Minute})
			if r.ExitStatus != tt.status {
				t.Fatalf("exit %d, want %d:\n%s", r.ExitStatus, tt.status, r)
			}
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(strings.ToLower(l), strings.ToLower(tt.line))
			}
			if !found {
				t.Errorf("no line starting %q", tt.line)
			}
			if r.EndLine != tt.end {
				t.Errorf("end line %q, want %q", r.EndLine, tt.end)
			}
		})
	}
}
