package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/testutil"
)

func TestKernelPayload(t *testing.T) {
	dir := t.TempDir()
	text := bytes.Repeat([]byte{0xAB}, 0x30)
	data := []byte("data")
	p := writeELF(t, dir, elfSpec{entry: 0x100000, segs: []seg{
		{paddr: 0x101000, data: data, memsz: 0x200}, // out of order on purpose
		{paddr: 0x100000, data: text},
	}})
	hdr, payload, info, err := KernelPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr) != layout.SectorSize {
		t.Fatalf("header is %d bytes", len(hdr))
	}
	want := make([]byte, 0x1004)
	copy(want, text)
	copy(want[0x1000:], data)
	if !bytes.Equal(payload, want) {
		t.Fatalf("payload differs from text + zero gap + data")
	}
	wantInfo := KernelInfo{LoadAddr: 0x100000, Entry: 0x100000, PayloadSize: 0x1004, MemSize: 0x1200,
		PayloadCRC: crc32.ChecksumIEEE(want), HdrCRC: crc32.ChecksumIEEE(hdr[:32]), Sectors: 9}
	if info != wantInfo {
		t.Errorf("info = %+v, want %+v", info, wantInfo)
	}
	le := binary.LittleEndian
	fields := map[int]uint32{0: 0x44554C46, 4: 1, 8: 512, 12: 0x100000, 16: 0x100000, 20: 0x1004, 24: 0x1200,
		28: crc32.ChecksumIEEE(payload), 32: crc32.ChecksumIEEE(hdr[:32])}
	for off, v := range fields {
		if got := le.Uint32(hdr[off:]); got != v {
			t.Errorf("header field at %d = %#x, want %#x", off, got, v)
		}
	}
	if string(hdr[:4]) != "FLUD" || !bytes.Equal(hdr[36:], make([]byte, 512-36)) {
		t.Error("header magic or zero tail wrong")
	}
	parsed, err := ParseKernelHeader(hdr)
	if err != nil || parsed != info {
		t.Errorf("ParseKernelHeader = %+v, %v; want %+v", parsed, err, info)
	}
	hdr[13] ^= 1
	if _, err := ParseKernelHeader(hdr); !errors.Is(err, ErrBadKernelHeader) {
		t.Errorf("corrupted header accepted: %v", err)
	}
}

func TestKernelPayloadErrors(t *testing.T) {
	code := []byte("code")
	tests := []struct {
		name string
		spec *elfSpec // nil: not an ELF at all
		want string
	}{
		{"not ELF", nil, "not a readable ELF"},
		{"i386", &elfSpec{machine: 3, entry: 0x100000, segs: []seg{{paddr: 0x100000, data: code}}}, "want a 64-bit little-endian x86_64"},
		{"relocatable", &elfSpec{etype: 1, entry: 0x100000, segs: []seg{{paddr: 0x100000, data: code}}}, "want ET_EXEC"},
		{"no PT_LOAD", &elfSpec{notLoad: true, entry: 0x100000, segs: []seg{{paddr: 0x100000, data: code}}}, "no PT_LOAD"},
		{"below 1 MiB", &elfSpec{entry: 0x7C00, segs: []seg{{paddr: 0x7C00, data: code}}}, "below KERNEL_LOAD_MIN"},
		{"entry outside", &elfSpec{entry: 0x200000, segs: []seg{{paddr: 0x100000, data: code}}}, "(physical 0x200000) is outside"},
		{"entry not _start", &elfSpec{entry: 0x100002, segs: []seg{{paddr: 0x100000, data: code}}}, "(physical 0x100002) is not the first byte of an executable segment"},
		{"past 1 GiB", &elfSpec{entry: 0x100000, segs: []seg{{paddr: 0x100000, data: code, memsz: 1<<30 - 0x100000 + 1}}}, "past 1 GiB"},
		{"entry in bss", &elfSpec{entry: 0x100010, segs: []seg{{paddr: 0x100000, data: code, memsz: 0x100}}}, "is outside"},
		{"not higher half", &elfSpec{entry: 0x100000, segs: []seg{{paddr: 0x100000, vaddr: 0x100000, data: code}}}, "want paddr + KERNEL_VMA"},
		{"overlap", &elfSpec{entry: 0x100000, segs: []seg{{paddr: 0x100000, data: code, memsz: 0x100}, {paddr: 0x100010, data: code}}}, "overlap"},
		{"too big", &elfSpec{entry: 0x100000, segs: []seg{{paddr: 0x100000, data: code}, {paddr: 0x100000 + layout.KernelMaxSectors*512, data: code}}}, "more than KERNEL_MAX_SECTORS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "kernel.elf")
			if tt.spec == nil {
				if err := os.WriteFile(p, []byte("#!/bin/sh\necho not a kernel\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				p = writeELF(t, dir, *tt.spec)
			}
			_, _, _, err := KernelPayload(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want one naming %s and containing %q", err, p, tt.want)
			}
		})
	}
}

// partOffset is partition 1's byte offset in an image.
const partOffset = layout.Part1LBA * layout.SectorSize

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	spec := fixtures(t, dir)
	spec.SourceDateEpoch = time.Date(2024, 5, 17, 10, 20, 30, 0, time.UTC)
	if err := Build(spec); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(spec.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(img) != DefaultSize {
		t.Fatalf("image is %d bytes, want %d", len(img), DefaultSize)
	}
	stage1, _ := os.ReadFile(spec.Stage1)
	stage2, _ := os.ReadFile(spec.Stage2)
	le := binary.LittleEndian

	t.Run("MBR", func(t *testing.T) {
		if !bytes.Equal(img[:440], stage1) {
			t.Error("stage 1 not intact in bytes 0..439")
		}
		if got := le.Uint32(img[440:]); got != layout.DiskSignature {
			t.Errorf("disk signature %#x", got)
		}
		if img[510] != 0x55 || img[511] != 0xAA {
			t.Error("no 55AA")
		}
		pe := img[446:462]
		start, size := le.Uint32(pe[8:]), le.Uint32(pe[12:])
		if pe[0] != 0x80 || pe[4] != 0x0C || start != layout.Part1LBA {
			t.Errorf("partition entry %x: want bootable, type 0C, start %d", pe, layout.Part1LBA)
		}
		if end := int64(start+size) * 512; end > int64(len(img)) || end < int64(len(img))-64*512 {
			t.Errorf("partition 1 ends at byte %d, image is %d", end, len(img))
		}
		if !bytes.Equal(img[462:510], make([]byte, 48)) {
			t.Error("partition entries 2..4 not empty")
		}
	})
	t.Run("stage 2 and kernel", func(t *testing.T) {
		if !bytes.Equal(img[512:512+len(stage2)], stage2) {
			t.Error("stage 2 not at LBA 1")
		}
		hdr := img[64*512 : 65*512]
		info, err := ParseKernelHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		payload := img[65*512 : 65*512+int(info.PayloadSize)]
		if crc32.ChecksumIEEE(payload) != info.PayloadCRC {
			t.Error("payload CRC does not match the header")
		}
		wantHdr, wantPayload, _, err := KernelPayload(spec.KernelELF)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hdr, wantHdr) || !bytes.Equal(payload, wantPayload) {
			t.Error("kernel on disk differs from KernelPayload")
		}
	})
	t.Run("fsck", func(t *testing.T) { fsckPartition(t, img) })
	t.Run("mtools", func(t *testing.T) {
		testutil.NeedTools(t, "mdir")
		at := fmt.Sprintf("%s@@%d", spec.Out, partOffset)
		out, err := exec.Command("mdir", "-i", at, "-/", "::").CombinedOutput()
		if err != nil {
			t.Fatalf("mdir: %v\n%s", err, out)
		}
		for _, want := range []string{"KERNEL", "MANIFEST", "fib.mod", "sum.mod", "2024-05-17", "Volume in drive : is FLUIDOS", "3144-4C46"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("mdir output lacks %q:\n%s", want, out)
			}
		}
		for _, f := range spec.Files {
			want := f.Data
			if want == nil {
				want, _ = os.ReadFile(f.Src)
			}
			got, err := exec.Command("mtype", "-i", at, "::"+f.Path).Output()
			if err != nil {
				t.Fatalf("mtype %s: %v", f.Path, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s reads back %d bytes that differ from the %d written", f.Path, len(got), len(want))
			}
		}
	})
	t.Run("no temporary files left", func(t *testing.T) {
		ents, _ := os.ReadDir(filepath.Dir(spec.Out))
		if len(ents) != 1 {
			t.Errorf("output dir holds %v", ents)
		}
	})
}

// fsckPartition copies partition 1 out of img and runs `fsck.fat -n` on it.
func fsckPartition(t *testing.T, img []byte) {
	t.Helper()
	testutil.NeedTools(t, "fsck.fat")
	size := le32(img[446+12:])
	p := filepath.Join(t.TempDir(), "part1.img")
	if err := os.WriteFile(p, img[partOffset:partOffset+int(size)*512], 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("fsck.fat", "-n", "-v", p).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.fat -n on partition 1 failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "will be") || strings.Contains(string(out), "wrong") {
		t.Errorf("fsck.fat found problems:\n%s", out)
	}
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func TestBuildDeterministic(t *testing.T) {
	dir := t.TempDir()
	spec := fixtures(t, dir)
	spec.SourceDateEpoch = time.Unix(1700000000, 0)
	if err := Build(spec); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(spec.Out)
	// FAT timestamps have 2-second steps: wait past one so a clock leaking
	// into the image would show.
	time.Sleep(2100 * time.Millisecond)
	// Same files in another order: the image must not care.
	spec.Files[0], spec.Files[3] = spec.Files[3], spec.Files[0]
	spec.Out = filepath.Join(dir, "second.img")
	if err := Build(spec); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(spec.Out)
	if !bytes.Equal(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("two builds from the same inputs differ, first at byte %d (sector %d)", i, i/512)
			}
		}
	}
	// And a changed input must change the image.
	spec.Files[1].Data = []byte("fib module bytes, v2")
	spec.Out = filepath.Join(dir, "third.img")
	if err := Build(spec); err != nil {
		t.Fatal(err)
	}
	c, _ := os.ReadFile(spec.Out)
	if bytes.Equal(a, c) {
		t.Error("a changed file did not change the image")
	}
}

func TestFAT32LayoutWorkaround(t *testing.T) {
	// go-diskfs issue #418: a 64 MiB FAT32 filesystem gets a FAT two entries
	// short; 63 and 65 MiB are fine.
	for mib, wantOK := range map[uint32]bool{63: true, 64: false, 65: true} {
		if _, ok := fat32Layout(mib << 11); ok != wantOK {
			t.Errorf("fat32Layout(%d MiB) ok = %v, want %v", mib, ok, wantOK)
		}
	}
	// An 80 MiB image has a 64 MiB partition 1: Build must shrink it and
	// produce a filesystem fsck.fat accepts.
	dir := t.TempDir()
	spec := fixtures(t, dir)
	spec.Size = 80 << 20
	if err := Build(spec); err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(spec.Out)
	if size := le32(img[446+12:]); size >= 64<<11 {
		t.Errorf("partition 1 has %d sectors; want fewer than %d", size, 64<<11)
	}
	fsckPartition(t, img)
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(t *testing.T, s *Spec)
		want   string
	}{
		{"stage 1 too long", func(t *testing.T, s *Spec) { appendTo(t, s.Stage1, []byte{0}) }, "want exactly 440"},
		{"stage 1 missing", func(t *testing.T, s *Spec) { s.Stage1 = filepath.Join(t.TempDir(), "none.bin") }, "none.bin"},
		{"stage 2 too big", func(t *testing.T, s *Spec) { appendTo(t, s.Stage2, make([]byte, 62*512)) }, "STAGE2_MAX_SECTORS"},
		{"stage 2 no magic", func(t *testing.T, s *Spec) { os.WriteFile(s.Stage2, make([]byte, 512), 0o644) }, "FLS2"},
		{"kernel not ELF", func(t *testing.T, s *Spec) { s.KernelELF = s.Stage1 }, "not a readable ELF"},
		{"relative file path", func(t *testing.T, s *Spec) { s.Files[0].Path = "modules/x.mod" }, "want an absolute clean path"},
		{"case clash", func(t *testing.T, s *Spec) { s.Files[0].Path = "/kernel.elf" }, "case-insensitive"},
		{"file as dir", func(t *testing.T, s *Spec) { s.Files[0].Path = "/KERNEL.ELF/x" }, "cannot be a directory"},
		{"file src missing", func(t *testing.T, s *Spec) { s.Files[1].Src = "/nonexistent/k.elf" }, "/nonexistent/k.elf"},
		{"too small", func(t *testing.T, s *Spec) { s.Size = 40 << 20 }, "use at least 50 MiB"},
		{"odd size", func(t *testing.T, s *Spec) { s.Size = 64<<20 + 100 }, "not a multiple of 512"},
		{"bad label", func(t *testing.T, s *Spec) { s.Label = "fluid os rocks" }, "volume label"},
		{"files overflow", func(t *testing.T, s *Spec) {
			s.Files = append(s.Files, File{Path: "/BIG.BIN", Data: make([]byte, 60<<20)})
		}, "BIG.BIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := fixtures(t, dir)
			// An older image is in place: a failed build must leave it alone.
			if err := os.MkdirAll(filepath.Dir(spec.Out), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(spec.Out, []byte("old image"), 0o644); err != nil {
				t.Fatal(err)
			}
			tt.modify(t, &spec)
			err := Build(spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
			if got, _ := os.ReadFile(spec.Out); string(got) != "old image" {
				t.Error("failed build changed the existing image")
			}
			ents, _ := os.ReadDir(filepath.Dir(spec.Out))
			if len(ents) != 1 {
				t.Errorf("failed build left files behind: %v", ents)
			}
		})
	}
}

func appendTo(t *testing.T, p string, b []byte) {
	t.Helper()
	old, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(old, b...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkBuild measures building a default-size image from the fixtures.
func BenchmarkBuild(b *testing.B) {
	dir := b.TempDir()
	spec := fixtures(b, dir)
	for i := 0; b.Loop(); i++ {
		spec.Out = filepath.Join(dir, fmt.Sprintf("bench%d.img", i%2))
		if err := Build(spec); err != nil {
			b.Fatal(err)
		}
	}
}
