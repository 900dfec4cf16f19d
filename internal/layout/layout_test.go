package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
)

// headerPath finds boot/bootinfo.h from the package directory.
func headerPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "boot", "bootinfo.h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("boot/bootinfo.h not found at %s: %v", p, err)
	}
	return p
}

// mirror lists every Go constant that mirrors a header #define. A header
// number missing here fails the test, so a new #define cannot be forgotten.
var mirror = map[string]uint64{
	"SECTOR_SIZE":           SectorSize,
	"STAGE2_LBA":            Stage2LBA,
	"STAGE2_MAX_SECTORS":    Stage2MaxSectors,
	"STAGE2_LOAD_SEG":       Stage2LoadSeg,
	"STAGE2_LOAD_ADDR":      Stage2LoadAddr,
	"KERNEL_HDR_LBA":        KernelHdrLBA,
	"PART1_LBA":             Part1LBA,
	"KERNEL_MAX_SECTORS":    KernelMaxSectors,
	"DISK_SIGNATURE":        DiskSignature,
	"STAGE2_MAGIC":          Stage2Magic,
	"STAGE2_MAGIC_OFFSET":   Stage2MagicOffset,
	"KHDR_MAGIC":            KHdrMagic,
	"KHDR_VERSION":          KHdrVersion,
	"KHDR_OFF_MAGIC":        KHdrOffMagic,
	"KHDR_OFF_VERSION":      KHdrOffVersion,
	"KHDR_OFF_HDR_SIZE":     KHdrOffHdrSize,
	"KHDR_OFF_LOAD_ADDR":    KHdrOffLoadAddr,
	"KHDR_OFF_ENTRY":        KHdrOffEntry,
	"KHDR_OFF_PAYLOAD_SIZE": KHdrOffPayloadSz,
	"KHDR_OFF_MEM_SIZE":     KHdrOffMemSize,
	"KHDR_OFF_PAYLOAD_CRC":  KHdrOffPayloadCRC,
	"KHDR_OFF_HDR_CRC":      KHdrOffHdrCRC,
	"KHDR_SIZE":             KHdrSize,
	"KERNEL_LOAD_MIN":       KernelLoadMin,
	"KERNEL_VMA":            KernelVMA,
	"BOOTINFO_MAGIC":        BootInfoMagic,
	"BOOTINFO_VERSION":      BootInfoVersion,
	"BOOTINFO_ADDR":         BootInfoAddr,
	"BOOTINFO_E820_MAX":     BootInfoE820Max,
	"E820_ENTRY_SIZE":       E820EntrySize,
	"BI_OFF_MAGIC":          BIOffMagic,
	"BI_OFF_VERSION":        BIOffVersion,
	"BI_OFF_BOOT_DRIVE":     BIOffBootDrive,
	"BI_OFF_STAGE2_LBA":     BIOffStage2LBA,
	"BI_OFF_STAGE2_SECTORS": BIOffStage2Sects,
	"BI_OFF_KERNEL_LBA":     BIOffKernelLBA,
	"BI_OFF_KERNEL_SECTORS": BIOffKernelSects,
	"BI_OFF_KERNEL_LOAD":    BIOffKernelLoad,
	"BI_OFF_KERNEL_SIZE":    BIOffKernelSize,
	"BI_OFF_KERNEL_MEM":     BIOffKernelMem,
	"BI_OFF_KERNEL_ENTRY":   BIOffKernelEntry,
	"BI_OFF_PART1_LBA":      BIOffPart1LBA,
	"BI_OFF_PART1_SECTORS":  BIOffPart1Sects,
	"BI_OFF_A20_METHOD":     BIOffA20Method,
	"BI_OFF_E820_COUNT":     BIOffE820Count,
	"BI_OFF_E820":           BIOffE820,
	"BOOTINFO_SIZE":         BootInfoSize,
	"A20_ALREADY_ON":        A20AlreadyOn,
	"A20_BIOS":              A20BIOS,
	"A20_KBC":               A20KBC,
	"A20_FAST":              A20Fast,
	"E820_USABLE":           E820Usable,
	"E820_RESERVED":         E820Reserved,
	"E820_ACPI_RECLAIM":     E820ACPIReclaim,
	"E820_ACPI_NVS":         E820ACPINVS,
	"E820_BAD":              E820Bad,
	"DEBUG_EXIT_PORT":       DebugExitPort,
	"EXIT_PASS":             ExitPass,
	"EXIT_TEST_FAIL":        ExitTestFail,
	"EXIT_PANIC":            ExitPanic,
	"EXIT_CPU_EXCEPTION":    ExitCPUException,
	"EXIT_MODULE_FAIL":      ExitModuleFail,
	"EXIT_BOOT_ERROR":       ExitBootError,
}

func TestConstantsMatchHeader(t *testing.T) {
	hdr, err := ParseDefines(headerPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range hdr {
		goV, ok := mirror[name]
		if !ok {
			t.Errorf("boot/bootinfo.h defines %s = %#x but internal/layout has no constant for it: add one and list it in the mirror table", name, v)
			continue
		}
		if goV != v {
			t.Errorf("%s drifted: boot/bootinfo.h says %#x, internal/layout says %#x; change both together (docs/CONTRACTS.md)", name, v, goV)
		}
	}
	for name := range mirror {
		if _, ok := hdr[name]; !ok {
			t.Errorf("internal/layout mirrors %s but boot/bootinfo.h no longer defines it", name)
		}
	}
}

func TestDerivedValues(t *testing.T) {
	if KernelMaxSectors != Part1LBA-KernelHdrLBA-1 {
		t.Errorf("KERNEL_MAX_SECTORS %d != PART1_LBA - KERNEL_HDR_LBA - 1 = %d", KernelMaxSectors, Part1LBA-KernelHdrLBA-1)
	}
	if BootInfoSize != BIOffE820+BootInfoE820Max*E820EntrySize {
		t.Errorf("BOOTINFO_SIZE %d != 64 + E820 table", BootInfoSize)
	}
	want := map[int]int{StatusPass: 33, StatusTestFail: 35, StatusPanic: 37, StatusCPUException: 39, StatusModuleFail: 41, StatusBootError: 43}
	for got, w := range want {
		if got != w {
			t.Errorf("status %d, want %d", got, w)
		}
	}
	if QEMUStatus(ExitPass) != 33 || StatusName(33) != "pass" || StatusName(0) != "reset" || StatusName(1) != "" {
		t.Error("QEMUStatus/StatusName wrong")
	}
}

func TestParseDefines(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []Define
		wantErr string
	}{
		{
			name: "values comments guards and function macros",
			src: "#ifndef G_H\n#define G_H\n/* #define HIDDEN 9\n   still comment */\n" +
				"#define A 1 /* one */\n#  define B 0x8000 // hex\n#define F(x) ((x)+1)\n" +
				"#define C 7u\n",
			want: []Define{
				{Name: "A", Text: "1", Value: 1, Line: 5},
				{Name: "B", Text: "0x8000", Value: 0x8000, Line: 6},
				{Name: "C", Text: "7u", Value: 7, Line: 8},
			},
		},
		{name: "expression refused", src: "#define A 1\n#define B (A + 1)\n", wantErr: "x.h:2: #define B (A + 1): value is not a plain integer literal"},
		{name: "duplicate refused", src: "#define A 1\n#define A 2\n", wantErr: "x.h:2: #define A repeats the definition at line 1"},
		{name: "empty file", src: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDefines("x.h", []byte(tt.src))
			if testutil.WantErr(t, err, tt.wantErr) {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("define %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseDefinesMissingFile(t *testing.T) {
	_, err := ParseDefines(filepath.Join(t.TempDir(), "nope.h"))
	if err == nil || !strings.Contains(err.Error(), "nope.h") {
		t.Fatalf("err = %v, want one naming nope.h", err)
	}
}

func TestGenerateNASMInclude(t *testing.T) {
	hdr := headerPath(t)
	inc, err := GenerateNASMInclude(hdr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(inc), "\n"), "\n")
	if lines[0] != "; generated from boot/bootinfo.h by internal/layout, do not edit" {
		t.Errorf("first line %q", lines[0])
	}
	defs, err := Defines(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(defs)+1 {
		t.Fatalf("%d lines for %d defines", len(lines), len(defs))
	}
	for i, d := range defs {
		if want := "%define " + d.Name + " " + d.Text; lines[i+1] != want {
			t.Errorf("line %d = %q, want %q", i+2, lines[i+1], want)
		}
	}

	// NASM must accept the include and see the same numbers.
	testutil.NeedTools(t, "nasm")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootinfo.inc"), inc, 0o644); err != nil {
		t.Fatal(err)
	}
	src := "%include \"bootinfo.inc\"\n" +
		"%if STAGE2_LOAD_ADDR != 0x8000 || PART1_LBA != 32768 || KHDR_MAGIC != 0x44554C46\n%error wrong values\n%endif\n" +
		"dd KHDR_MAGIC, EXIT_BOOT_ERROR\n"
	if err := os.WriteFile(filepath.Join(dir, "t.asm"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nasm", "-f", "bin", "-I", dir+"/", "-o", filepath.Join(dir, "t.bin"), filepath.Join(dir, "t.asm"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nasm rejected the generated include: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "t.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if string(bin) != "FLUD\x15\x00\x00\x00" {
		t.Errorf("assembled %x, want FLUD + 0x15", bin)
	}
}
