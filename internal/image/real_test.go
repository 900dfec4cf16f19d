package image_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/testutil"
)

// TestRealImage builds an image from the real boot/stage1.asm,
// boot/stage2.asm and kernel (built by internal/build) and checks the disk
// layout, the FAT32 partition (fsck.fat, mtools) and reproducibility.
func TestRealImage(t *testing.T) {
	testutil.Long(t, "builds the real boot stages and kernel")
	testutil.NeedTools(t, "fsck.fat", "mdir")
	a := buildtest.All(t)
	dir := t.TempDir()
	spec := image.Spec{
		Out:    filepath.Join(dir, "real.img"),
		Stage1: a.Boot.Stage1, Stage2: a.Boot.Stage2, KernelELF: a.Kernel,
		Files:           []image.File{{Path: "/KERNEL.ELF", Src: a.Kernel}, {Path: "/MANIFEST.JSON", Data: []byte("{}\n")}},
		SourceDateEpoch: time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	}
	for _, m := range a.Modules {
		spec.Files = append(spec.Files, image.File{Path: "/modules/" + m.Name + ".mod", Src: m.Path})
	}
	if err := image.Build(spec); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(spec.Out)
	if err != nil {
		t.Fatal(err)
	}
	stage1, _ := os.ReadFile(a.Boot.Stage1)
	stage2, _ := os.ReadFile(a.Boot.Stage2)
	le := binary.LittleEndian
	if !bytes.Equal(img[:440], stage1) || le.Uint32(img[440:]) != layout.DiskSignature || img[510] != 0x55 || img[511] != 0xAA {
		t.Error("MBR does not hold stage 1, the disk signature and 55AA together")
	}
	if img[446] != 0x80 || img[450] != 0x0C || le.Uint32(img[454:]) != layout.Part1LBA {
		t.Errorf("partition entry %x", img[446:462])
	}
	if !bytes.Equal(img[512:512+len(stage2)], stage2) {
		t.Error("stage 2 not at LBA 1")
	}
	if le.Uint32(img[512+layout.Stage2MagicOffset:]) != layout.Stage2Magic {
		t.Error("stage 2 magic missing")
	}
	hdr := img[layout.KernelHdrLBA*512 : layout.KernelHdrLBA*512+512]
	info, err := image.ParseKernelHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	payload := img[(layout.KernelHdrLBA+1)*512:][:info.PayloadSize]
	if crc32.ChecksumIEEE(payload) != info.PayloadCRC || crc32.ChecksumIEEE(hdr[:32]) != info.HdrCRC {
		t.Error("kernel CRCs do not match")
	}
	if info.LoadAddr < layout.KernelLoadMin || info.Entry < info.LoadAddr || info.Entry >= info.LoadAddr+info.PayloadSize || info.MemSize < info.PayloadSize {
		t.Errorf("implausible kernel header %+v", info)
	}
	t.Logf("kernel: load %#x entry %#x payload %d bytes (%d sectors) mem %d bytes", info.LoadAddr, info.Entry, info.PayloadSize, info.Sectors, info.MemSize)

	// fsck.fat on partition 1.
	size := le.Uint32(img[458:])
	part := filepath.Join(dir, "part1.img")
	if err := os.WriteFile(part, img[layout.Part1LBA*512:][:int(size)*512], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	// mtools sees every file with the right contents.
	at := fmt.Sprintf("%s@@%d", spec.Out, layout.Part1LBA*512)
	out, err := exec.Command("mdir", "-i", at, "-/", "-a", "::").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Volume in drive : is "+image.DefaultLabel) || !strings.Contains(string(out), "modules") {
		t.Errorf("mdir listing lacks the label or /modules:\n%s", out)
	}
	for _, f := range spec.Files {
		want := f.Data
		if want == nil {
			want, _ = os.ReadFile(f.Src)
		}
		got, err := exec.Command("mtype", "-i", at, "::"+f.Path).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("mtype %s: %v, %d bytes read back, %d written", f.Path, err, len(got), len(want))
		}
	}

	// Reproducible.
	spec.Out = filepath.Join(dir, "again.img")
	if err := image.Build(spec); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(spec.Out)
	if !bytes.Equal(img, again) {
		t.Error("building the real image twice gave different bytes")
	}
}
