package boottest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
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
