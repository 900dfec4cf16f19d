package bootbench

import (
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/serial"
)

// TestLoadRate builds the load-rate image and boots it once: the module
// finds the 32 MiB file with the content loadRateBlob wrote (its own
// check), the kernel reports a rate, and on QEMU's pc machine it reads by
// bus-master DMA.
func TestLoadRate(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	kernel, err := b.Kernel(t.Context(), build.KernelNormal)
	var img string
	if err == nil {
		img, err = loadRateImage(t.Context(), b, kernel)
	}
	unlock()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	rate, path, err := loadRate(t.Context(), img, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 || !strings.HasPrefix(path, serial.MarkerDiskPath+"bus-master DMA") {
		t.Errorf("rate %.2f MB/s by %q; want a rate and bus-master DMA", rate, path)
	}
	t.Logf("%d MiB through read_file: %.2f MB/s (%s)", loadRateBytes>>20, rate, path)
}

// The table names the load rate and the disk path without the kernel's
// line prefix.
func TestTableFileLoad(t *testing.T) {
	r := &Report{Runs: 5, FileLoad: 120.02, FileLoadPath: serial.MarkerDiskPath + "bus-master DMA (PCI 00:01.1 8086:7010, registers at 0xc040)"}
	want := "32 MiB file through read_file                   120.02 MB/s   TCG, no icount; kernel reads by bus-master DMA (PCI 00:01.1 8086:7010, registers at 0xc040)\n"
	if tab := r.Table(); !strings.Contains(tab, want) {
		t.Errorf("table lacks %q:\n%s", want, tab)
	}
}
