package modfmt

import (
	"sync"

	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"

	"github.com/fluid-os/fluid/internal/toolchain"
)

// repoRoot is the repository root (two levels up from this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	testTCOnce sync.Once
	testTC     *toolchain.Toolchain
)

// tools is the build's toolchain (the locked rootfs), found once per test
// binary.
func tools(t *testing.T) *toolchain.Toolchain {
	t.Helper()
	testTCOnce.Do(func() { testTC = toolchaintest.Find(t) })
	if testTC == nil {
		t.Fatal("toolchain: not found (see the first failure)")
	}
	return testTC
}

// run runs argv in the toolchain's environment: the compilers, and the
// host programs they made (which link against the rootfs's libc).
func run(t *testing.T, argv ...string) {
	t.Helper()
	if _, err := toolchaintest.Run(tools(t), "", argv...); err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
}

// buildELF compiles srcs (plus the module runtime) with CFlags and links
// them with LDFlags and the module linker script, as internal/build does.
func buildELF(t *testing.T, dir string, srcs ...string) string {
	t.Helper()
	tc, root := tools(t), repoRoot(t)
	srcs = append(srcs, filepath.Join(root, RuntimeDir, "runtime.c"))
	var objs []string
	for i, src := range srcs {
		obj := filepath.Join(dir, strconv.Itoa(i)+".o")
		argv := append([]string{tc.Path("clang")}, CFlags()...)
		argv = append(argv, "-I"+filepath.Join(root, IncludeDir), "-c", src, "-o", obj)
		run(t, argv...)
		objs = append(objs, obj)
	}
	elf := filepath.Join(dir, "module.elf")
	argv := append([]string{tc.Path("ld.lld")}, LDFlags()...)
	argv = append(argv, "-T", filepath.Join(root, LinkerScript), "-o", elf)
	run(t, append(argv, objs...)...)
	return elf
}

// packedModules builds and packs the test fixture (as "instrumented") and
// fib (as "baseline").
func packedModules(t *testing.T) (fixture, fib []byte) {
	t.Helper()
	root := repoRoot(t)
	var err error
	elf := buildELF(t, t.TempDir(), filepath.Join(root, "internal/modfmt/testdata/fixture.c"))
	if fixture, err = Pack(elf, "fixture", "instrumented"); err != nil {
		t.Fatalf("pack fixture: %v", err)
	}
	elf = buildELF(t, t.TempDir(), filepath.Join(root, "modules/fib/fib.c"))
	if fib, err = Pack(elf, "fib", "baseline"); err != nil {
		t.Fatalf("pack fib: %v", err)
	}
	return fixture, fib
}

// TestHeaderMatchesC keeps the Go constants equal to fluid_module.h.
func TestHeaderMatchesC(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), IncludeDir, "fluid_module.h"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^#define (FLUID_\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\b`)
	defs := map[string]uint64{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		v, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			t.Fatalf("%s: %v", m[1], err)
		}
		defs[m[1]] = v
	}
	want := map[string]uint64{
		"FLUID_MOD_MAGIC": Magic, "FLUID_MOD_ABI_VERSION": ABIVersion, "FLUID_MOD_HDR_SIZE": HeaderSize,
		"FLUID_MOD_CRC_START": CRCStart, "FLUID_MOD_NAME_MAX": NameMax, "FLUID_MOD_HASH_SIZE": HashSize,
		"FLUID_MOD_MAX_ALIGN": MaxAlign, "FLUID_MOD_NO_OFFSET": NoOffset, "FLUID_MOD_MAX_DEADLINE_MS": MaxDeadline, "FLUID_MOD_MAX_RELOCS": 0,
		"FLUID_R_X86_64_64": RX86_64_64, "FLUID_R_X86_64_RELATIVE": RX86_64Relative, "FLUID_MOD_F_PROFILE": FlagProfile,
		"FLUID_MOD_PAGE_SIZE":    PageSize,
		"FLUID_VARIANT_BASELINE": uint64(VariantBaseline), "FLUID_VARIANT_O3": uint64(VariantO3),
		"FLUID_VARIANT_PGO": uint64(VariantPGO), "FLUID_VARIANT_INSTRUMENTED": uint64(VariantInstrumented),
		"FLUID_VARIANT_COUNT": variantCount,
		"FLUID_MOD_OFF_MAGIC": offMagic, "FLUID_MOD_OFF_ABI_VERSION": offABIVersion, "FLUID_MOD_OFF_HDR_SIZE": offHeaderSize,
		"FLUID_MOD_OFF_CRC32": offCRC32, "FLUID_MOD_OFF_FILE_SIZE": offFileSize, "FLUID_MOD_OFF_NAME": offName,
		"FLUID_MOD_OFF_VARIANT": offVariant, "FLUID_MOD_OFF_FLAGS": offFlags, "FLUID_MOD_OFF_HASH": offHash,
		"FLUID_MOD_OFF_IMAGE_OFFSET": offImageOffset, "FLUID_MOD_OFF_CODE_SIZE": offCodeSize,
		"FLUID_MOD_OFF_DATA_SIZE": offDataSize, "FLUID_MOD_OFF_BSS_SIZE": offBSSSize, "FLUID_MOD_OFF_ALIGN": offAlign,
		"FLUID_MOD_OFF_ENTRY": offEntry, "FLUID_MOD_OFF_RELOC_OFFSET": offRelocOffset,
		"FLUID_MOD_OFF_RELOC_COUNT": offRelocCount, "FLUID_MOD_OFF_PROFILE": offProfile, "FLUID_MOD_OFF_DEADLINE": offDeadline,
		"FLUID_MOD_OFF_SERVICES": offServices, "FLUID_SERVICES_VERSION": ServicesVersion,
	}
	delete(want, "FLUID_MOD_MAX_RELOCS") // an expression in C: (1u << 16)
	for name, v := range want {
		got, ok := defs[name]
		if !ok {
			t.Errorf("%s: not defined in fluid_module.h", name)
		} else if got != v {
			t.Errorf("%s = %d in fluid_module.h, %d in Go", name, got, v)
		}
	}
}

func TestPackFixture(t *testing.T) {
	fixture, fib := packedModules(t)
	m, err := Parse(fixture)
	if err != nil {
		t.Fatalf("parse packed fixture: %v", err)
	}
	if m.Name != "fixture" || m.Variant != VariantInstrumented {
		t.Errorf("name/variant = %q/%v", m.Name, m.Variant)
	}
	if m.Align != 256 {
		t.Errorf("align = %d, want 256 (the aligned table)", m.Align)
	}
	if m.BSSSize < 8192 {
		t.Errorf("bss = %d, want >= 8192", m.BSSSize)
	}
	if m.DataSize == 0 || len(m.Relocs) < 3 {
		t.Errorf("data %d bytes, %d relocs: want the names[] pointers relocated", m.DataSize, len(m.Relocs))
	}
	if m.Flags&FlagProfile == 0 || m.Profile >= m.CodeSize {
		t.Errorf("profile hook flags=%#x offset=%#x", m.Flags, m.Profile)
	}
	if m.CodeSize%PageSize != 0 {
		t.Errorf("code size %#x is not a multiple of %d: code and data share a page", m.CodeSize, PageSize)
	}
	total := uint64(m.CodeSize + m.DataSize + m.BSSSize)
	for _, r := range m.Relocs {
		if r.Type != RX86_64Relative {
			t.Errorf("reloc at %#x has type %s, want R_X86_64_RELATIVE (names[] holds local addresses)", r.Offset, relocTypeName(r.Type))
		}
		if v := binary.LittleEndian.Uint64(m.Image[r.Offset:]); v >= total {
			t.Errorf("reloc at %#x holds %#x, beyond the image (%#x)", r.Offset, v, total)
		}
	}
	// The addends are in place: names[0..2] point at "alpha", "beta",
	// "gamma" in the image (Pack wrote each Elf64_Rela addend into its word).
	var strs []string
	for _, r := range m.Relocs {
		v := binary.LittleEndian.Uint64(m.Image[r.Offset:])
		if e := bytes.IndexByte(m.Image[v:], 0); e > 0 {
			strs = append(strs, string(m.Image[v:v+uint64(e)]))
		}
	}
	if got := strings.Join(strs, ","); got != "alpha,beta,gamma" {
		t.Errorf("relocated words point at %q, want alpha,beta,gamma", got)
	}
	f, err := Parse(fib)
	if err != nil {
		t.Fatalf("parse fib: %v", err)
	}
	if f.Profile != NoOffset || f.Flags != 0 || f.Variant != VariantBaseline {
		t.Errorf("fib: profile %#x flags %#x variant %v", f.Profile, f.Flags, f.Variant)
	}
	if len(f.HashString()) != 2*HashSize {
		t.Errorf("hash string %q", f.HashString())
	}
}

func TestPackDeterministic(t *testing.T) {
	root := repoRoot(t)
	var outs [][]byte
	for i := 0; i < 2; i++ {
		elf := buildELF(t, t.TempDir(), filepath.Join(root, "modules/fib/fib.c"))
		b, err := Pack(elf, "fib", "PGO")
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two packs of the same source differ")
	}
}

func TestPackErrors(t *testing.T) {
	root, tc := repoRoot(t), tools(t)
	dir := t.TempDir()
	elf := buildELF(t, filepath.Join(dir), filepath.Join(root, "modules/fib/fib.c"))
	notELF := filepath.Join(dir, "not.elf")
	os.WriteFile(notELF, []byte("hello"), 0o644)
	// An i686 module ELF, as ABI 2 built them (fluid_module.h itself
	// refuses to compile for i686, so the source is bare).
	i686Src, i686Obj, i686 := filepath.Join(dir, "i686.c"), filepath.Join(dir, "i686.o"), filepath.Join(dir, "i686.elf")
	os.WriteFile(i686Src, []byte("int fluid_main(void *svc) { return svc == 0; }\n"), 0o644)
	run(t, tc.Path("clang"), "--target=i686-unknown-none-elf", "-ffreestanding", "-c", i686Src, "-o", i686Obj)
	run(t, tc.Path("ld.lld"), "-m", "elf_i386", "-pie", "-z", "notext", "--no-dynamic-linker", "-nostdlib", "-e", "fluid_main", "-T", filepath.Join(root, LinkerScript), "-o", i686, i686Obj)
	host := filepath.Join(dir, "host.o")
	run(t, tc.Path("clang"), "-c", "-I"+filepath.Join(root, IncludeDir), filepath.Join(root, "modules/fib/fib.c"), "-o", host)
	// A module with an ifunc: lld leaves an R_X86_64_IRELATIVE, which no
	// loader of ours can apply.
	ifunc := filepath.Join(dir, "ifunc.c")
	os.WriteFile(ifunc, []byte(`#include "fluid_module.h"
static int impl(void) { return 0; }
__attribute__((used)) static int (*resolve(void))(void) { return impl; }
int picked(void) __attribute__((ifunc("resolve")));
int32_t fluid_main(const struct fluid_services *svc) { (void)svc; return picked(); }
`), 0o644)
	ifuncELF := buildELF(t, filepath.Join(dir), ifunc)
	ifuncMoved := filepath.Join(dir, "ifunc.elf")
	if err := os.Rename(ifuncELF, ifuncMoved); err != nil {
		t.Fatal(err)
	}
	// fib linked with a script that puts .data right after the code, on
	// no page boundary: code and data would share a page.
	script, err := os.ReadFile(filepath.Join(root, LinkerScript))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(script, []byte("\t. = ALIGN(4096);\n\t.data")) {
		t.Fatalf("%s: no '. = ALIGN(4096);' before .data to rewrite", LinkerScript)
	}
	sharedLD, shared := filepath.Join(dir, "shared-page.ld"), filepath.Join(dir, "shared.elf")
	os.WriteFile(sharedLD, bytes.Replace(script, []byte("\t. = ALIGN(4096);\n\t.data"), []byte("\t. = ALIGN(64);\n\t.data"), 1), 0o644)
	fixtureObj := filepath.Join(dir, "fixture.o")
	run(t, append(append([]string{tc.Path("clang")}, CFlags()...), "-I"+filepath.Join(root, IncludeDir), "-c", filepath.Join(root, "internal/modfmt/testdata/fixture.c"), "-o", fixtureObj)...)
	run(t, append(append([]string{tc.Path("ld.lld")}, LDFlags()...), "-T", sharedLD, "-o", shared, fixtureObj)...)
	noScript := filepath.Join(dir, "noscript.elf")
	obj := filepath.Join(dir, "fib32.o")
	argv := append([]string{tc.Path("clang")}, CFlags()...)
	run(t, append(argv, "-I"+filepath.Join(root, IncludeDir), "-c", filepath.Join(root, "modules/fib/fib.c"), "-o", obj)...)
	run(t, append(append([]string{tc.Path("ld.lld")}, LDFlags()...), "-o", noScript, obj)...)
	// A module whose only source does not include fluid_module.h (and
	// which links no runtime): it has no services version record.
	bare := filepath.Join(dir, "bare.c")
	os.WriteFile(bare, []byte("int fluid_main(void *svc) { return svc == 0; }\n"), 0o644)
	bareObj, noRecord := filepath.Join(dir, "bare.o"), filepath.Join(dir, "bare.elf")
	run(t, append(argv, "-c", bare, "-o", bareObj)...)
	run(t, append(append([]string{tc.Path("ld.lld")}, LDFlags()...), "-T", filepath.Join(root, LinkerScript), "-o", noRecord, bareObj)...)
	// fib compiled with this tree's header, its runtime with a stale copy.
	staleInc := staleHeader(t, dir, 0)
	staleObj, mixed := filepath.Join(dir, "runtime-stale.o"), filepath.Join(dir, "mixed.elf")
	run(t, append(argv, "-I"+staleInc, "-c", filepath.Join(root, RuntimeDir, "runtime.c"), "-o", staleObj)...)
	run(t, append(append([]string{tc.Path("ld.lld")}, LDFlags()...), "-T", filepath.Join(root, LinkerScript), "-o", mixed, obj, staleObj)...)

	tests := []struct {
		name, elf, mod, variant, want string
	}{
		{"bad variant", elf, "fib", "O4", `unknown module variant "O4"`},
		{"bad name", elf, "Fib!", "baseline", "only a-z, 0-9"},
		{"empty name", elf, "", "baseline", "must be 1..31"},
		{"not an ELF", notELF, "fib", "baseline", "open ELF"},
		{"missing file", filepath.Join(dir, "nope.elf"), "fib", "baseline", "open ELF"},
		{"i686 ELF", i686, "fib", "baseline", "pack module fib from " + i686 + ": not an x86_64 little-endian ELF64 (class ELFCLASS32, machine EM_386)"},
		{"host object", host, "fib", "baseline", "link with -T " + LinkerScript},
		{"unsupported relocation", ifuncMoved, "ifunc", "baseline", "pack module ifunc from " + ifuncMoved + ": .rela.dyn: unsupported relocation R_X86_64_IRELATIVE at 0x"},
		{"code and data share a page", shared, "fixture", "baseline", "the first writable section .data starts at 0x"},
		{"no linker script", noScript, "fib", "baseline", "link with -T " + LinkerScript},
		{"no services record", noRecord, "bare", "baseline", "pack module bare from " + noRecord + `: no services table version record (section .fluid_services_version): compile every source with #include "fluid_module.h" from modules/include`},
		{"mixed services versions", mixed, "fib", "baseline", "objects were compiled against services table versions 2 and 0: rebuild every source with the same modules/include/fluid_module.h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pack(tt.elf, tt.mod, tt.variant)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Pack: err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// staleHeader writes a copy of fluid_module.h whose FLUID_SERVICES_VERSION
// is version into dir/stale-include and returns that directory: what a
// module built against another services table was compiled with.
func staleHeader(t *testing.T, dir string, version int) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), IncludeDir, "fluid_module.h"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^#define FLUID_SERVICES_VERSION\s+\d+u$`)
	if !re.Match(src) {
		t.Fatal("fluid_module.h: no #define FLUID_SERVICES_VERSION line to rewrite")
	}
	src = re.ReplaceAll(src, []byte("#define FLUID_SERVICES_VERSION  "+strconv.Itoa(version)+"u"))
	inc := filepath.Join(dir, "stale-include")
	if err := os.MkdirAll(inc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, "fluid_module.h"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return inc
}

// TestPackStaleServicesVersion compiles fib and the runtime against a
// fluid_module.h with another FLUID_SERVICES_VERSION: Pack records that
// version in the header (the image and its hash are those of the normal
// build), and both Parse and the kernel's modparse (built for the host)
// refuse the module with the message to rebuild it.
func TestPackStaleServicesVersion(t *testing.T) {
	root, tc := repoRoot(t), tools(t)
	dir := t.TempDir()
	inc := staleHeader(t, dir, 7)
	var objs []string
	for i, src := range []string{filepath.Join(root, "modules/fib/fib.c"), filepath.Join(root, RuntimeDir, "runtime.c")} {
		obj := filepath.Join(dir, strconv.Itoa(i)+".o")
		run(t, append(append([]string{tc.Path("clang")}, CFlags()...), "-I"+inc, "-c", src, "-o", obj)...)
		objs = append(objs, obj)
	}
	elf := filepath.Join(dir, "fib.elf")
	run(t, append(append(append([]string{tc.Path("ld.lld")}, LDFlags()...), "-T", filepath.Join(root, LinkerScript), "-o", elf), objs...)...)
	stale, err := Pack(elf, "fib", "baseline")
	if err != nil {
		t.Fatalf("Pack refused a module built against services version 7 (the kernel decides): %v", err)
	}
	if got := binary.LittleEndian.Uint32(stale[offServices:]); got != 7 {
		t.Fatalf("header services_version = %d, want the 7 the stale header declared", got)
	}
	_, fib := packedModules(t)
	if !bytes.Equal(stale[offHash:offHash+HashSize], fib[offHash:offHash+HashSize]) {
		t.Errorf("the version record changed the module hash: %x vs %x", stale[offHash:offHash+HashSize], fib[offHash:offHash+HashSize])
	}
	if m, err := Parse(fib); err != nil || m.ServicesVersion != ServicesVersion {
		t.Fatalf("normal fib: %v, services version %v", err, m)
	}

	want := "refused: built against services table version 7, this kernel has 2; rebuild the module with this tree's modules/include/fluid_module.h"
	_, err = Parse(stale)
	if err == nil || "refused: "+err.Error() != want {
		t.Errorf("Parse: %v\nwant: %s", err, want)
	}
	p := filepath.Join(dir, "fib.mod")
	if err := os.WriteFile(p, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := toolchaintest.Run(tc, "", buildChecker(t, dir), p)
	if err != nil {
		t.Fatalf("modparse_check: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("kernel modparse: %s\nwant:             %s", got, want)
	}
}

func TestPackFileAtomic(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	elf := buildELF(t, dir, filepath.Join(root, "modules/fib/fib.c"))
	out := filepath.Join(dir, "fib.mod")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PackFile(elf, "BAD NAME", "baseline", out); err == nil {
		t.Fatal("PackFile accepted a bad name")
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Error("a failed PackFile changed the output file")
	}
	if err := PackFile(elf, "fib", "baseline", out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if _, err := Parse(b); err != nil {
		t.Errorf("written module does not parse: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// mutation corrupts a module; fix recomputes the CRC afterwards so the
// checks behind the checksum are reached.
type mutation struct {
	name string
	fix  bool
	f    func(b []byte) []byte
	want string // the exact refusal reason (Go and C agree) prefix
}

func put32(off int, v uint32) func(b []byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
}

func mutations(fixture []byte) []mutation {
	le := binary.LittleEndian
	relocOff := int(le.Uint32(fixture[offRelocOffset:]))
	filed := le.Uint32(fixture[offCodeSize:]) + le.Uint32(fixture[offDataSize:])
	return []mutation{
		{"valid", false, func(b []byte) []byte { return b }, ""},
		{"empty", false, func(b []byte) []byte { return b[:0] }, "file too short: 0 bytes"},
		{"header only half", false, func(b []byte) []byte { return b[:50] }, "file too short: 50 bytes"},
		{"magic", false, func(b []byte) []byte { b[0] = 'X'; return b }, "bad magic 0x444f4d58"},
		{"abi version", false, func(b []byte) []byte { b[4] = 9; return b }, "ABI version 9, this kernel reads 3: rebuild the module with this tree's modules/include/fluid_module.h"},
		{"i686 abi version", false, func(b []byte) []byte { b[4] = 2; return b }, "ABI version 2, this kernel reads 3: rebuild"},
		{"old abi version", false, func(b []byte) []byte { b[4] = 1; return b }, "ABI version 1, this kernel reads 3: rebuild"},
		{"services version", true, put32(offServices, ServicesVersion+1), "built against services table version 3, this kernel has 2; rebuild the module with this tree's modules/include/fluid_module.h"},
		{"header size", false, func(b []byte) []byte { b[6] = 105; return b }, "header size 105"},
		{"truncated", false, func(b []byte) []byte { return b[:len(b)-1] }, "file size field"},
		{"padded", false, func(b []byte) []byte { return append(b, 0) }, "file size field"},
		{"flipped image bit", false, func(b []byte) []byte { b[HeaderSize+5] ^= 1; return b }, "checksum mismatch"},
		{"flipped crc", false, func(b []byte) []byte { b[offCRC32] ^= 1; return b }, "checksum mismatch"},
		{"name unterminated", true, func(b []byte) []byte {
			for i := 0; i < NameMax; i++ {
				b[offName+i] = 'a'
			}
			return b
		}, "name is not NUL-terminated"},
		{"name upper case", true, func(b []byte) []byte { b[offName] = 'F'; return b }, "bad name"},
		{"name empty", true, func(b []byte) []byte { b[offName] = 0; return b }, "bad name"},
		{"name padding", true, func(b []byte) []byte { b[offName+NameMax-1] = 'x'; return b }, "name padding is not zero"},
		{"variant", true, put32(offVariant, 4), "unknown variant 4"},
		{"flags", true, put32(offFlags, 0x81), "unknown flags 0x80"},
		{"deadline", true, put32(offDeadline, MaxDeadline+1), "deadline 600001 ms exceeds 600000 ms"},
		{"code size 0", true, put32(offCodeSize, 0), "code size is 0"},
		{"align 0", true, put32(offAlign, 0), "alignment 0"},
		{"align 48", true, put32(offAlign, 48), "alignment 48"},
		{"align 8192", true, put32(offAlign, 8192), "alignment 8192"},
		{"code shares a page with data", true, put32(offCodeSize, le.Uint32(fixture[offCodeSize:])-16), "code size 0x"},
		{"huge bss", true, put32(offBSSSize, 0xFFFFFFF0), "image of"},
		{"image offset past end", true, put32(offImageOffset, 0xFFFFFFF0), "image at offset"},
		{"image offset in header", true, put32(offImageOffset, 8), "image at offset 8"},
		{"code size past file", true, put32(offCodeSize, 0x7FFFF000), "image of"},
		{"entry", true, put32(offEntry, 0x7FFFFF), "entry offset 0x7fffff"},
		{"reloc count huge", true, put32(offRelocCount, 0x10001), "65537 relocations exceed"},
		{"reloc table past end", true, put32(offRelocCount, 0x1000), "relocation table at offset"},
		{"reloc table overlaps image", true, put32(offRelocOffset, HeaderSize), "relocation table at offset"},
		{"reloc type PC32", true, put32(relocOff+4, 2), "relocation 0: unsupported type R_X86_64_PC32 (only R_X86_64_64 and R_X86_64_RELATIVE)"},
		{"reloc type GOTPCREL", true, put32(relocOff+12, 9), "relocation 1: unsupported type R_X86_64_GOTPCREL"},
		{"reloc type IRELATIVE", true, put32(relocOff+4, 37), "relocation 0: unsupported type R_X86_64_IRELATIVE"},
		{"reloc type unknown", true, put32(relocOff+4, 77), "relocation 0: unsupported type 77"},
		{"reloc target past image", true, put32(relocOff, 0xFFFFFFFE), "relocation 0: target 0xfffffffe"},
		{"reloc word straddles the image end", true, put32(relocOff, filed-4), fmt.Sprintf("relocation 0: target %#x is outside the image code+data", filed-4)},
		{"profile hook outside code", true, put32(offProfile, 0xFFFFFF), "profile hook offset 0xffffff"},
		{"profile offset without flag", true, put32(offFlags, 0), "profile hook offset"},
	}
}

// TestParseRejects corrupts a packed module field by field; Go's Parse and
// the kernel's modparse (built for the host) must both refuse it, with the
// same reason.
func TestParseRejects(t *testing.T) {
	fixture, _ := packedModules(t)
	dir := t.TempDir()
	check := buildChecker(t, dir)
	ms := mutations(fixture)
	var files []string
	for i, m := range ms {
		b := m.f(append([]byte(nil), fixture...))
		if m.fix && len(b) >= CRCStart {
			binary.LittleEndian.PutUint32(b[offCRC32:], crc32.ChecksumIEEE(b[CRCStart:]))
		}
		p := filepath.Join(dir, strconv.Itoa(i)+".mod")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	out, err := toolchaintest.Run(tools(t), "", append([]string{check}, files...)...)
	if err != nil {
		t.Fatalf("modparse_check: %v", err)
	}
	cLines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(cLines) != len(ms) {
		t.Fatalf("modparse_check printed %d lines for %d files:\n%s", len(cLines), len(ms), out)
	}
	for i, m := range ms {
		t.Run(m.name, func(t *testing.T) {
			b, _ := os.ReadFile(files[i])
			_, err := Parse(b)
			goLine := "ok"
			if err != nil {
				goLine = "refused: " + err.Error()
			}
			if goLine != cLines[i] {
				t.Errorf("Go and C disagree:\n  Go: %s\n  C:  %s", goLine, cLines[i])
			}
			switch {
			case m.want == "" && err != nil:
				t.Errorf("valid module refused: %v", err)
			case m.want != "" && (err == nil || !strings.HasPrefix(err.Error(), m.want)):
				t.Errorf("Parse: %v, want a refusal starting %q", err, m.want)
			}
		})
	}
}

// buildChecker compiles testdata/modparse_check.c with the kernel's parser
// for the host.
func buildChecker(t *testing.T, dir string) string {
	t.Helper()
	root, tc := repoRoot(t), tools(t)
	out := filepath.Join(dir, "modparse_check")
	run(t, tc.Path("clang"), "-fuse-ld=lld", "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all",
		"-I"+filepath.Join(root, "kernel/include"),
		filepath.Join(root, "internal/modfmt/testdata/modparse_check.c"),
		filepath.Join(root, "kernel/module/modparse.c"), filepath.Join(root, "kernel/lib/crc32.c"), "-o", out)
	return out
}

// TestRelocNamesMatchC: the packer's and the kernel's names of x86_64
// relocation types agree, for every type number up to 63 (the C parser
// names the type in its refusal, the packer in its error).
func TestRelocNamesMatchC(t *testing.T) {
	check := buildChecker(t, t.TempDir())
	out, err := toolchaintest.Run(tools(t), "", check, "--reloc-names")
	if err != nil {
		t.Fatalf("modparse_check --reloc-names: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 64 {
		t.Fatalf("modparse_check printed %d lines, want 64:\n%s", len(lines), out)
	}
	known := 0
	for i, l := range lines {
		goName := relocTypeName(uint32(i))
		if _, ok := relocNames[uint32(i)]; !ok {
			goName = "unknown"
		} else {
			known++
		}
		if want := fmt.Sprintf("%d %s", i, goName); l != want {
			t.Errorf("type %d: C says %q, Go %q", i, l, want)
		}
	}
	if known != len(relocNames) {
		t.Errorf("Go names %d types, %d of them below 64", len(relocNames), known)
	}
}

// TestRelocateAtHighAddresses relocates packed modules with the kernel's
// module_relocate (built for the host) to run at several bases, kernel
// higher-half ones included, and compares every byte with what the format
// says: each relocated 64-bit word gains the base, nothing else changes.
// The base above 4 GiB catches a 32-bit add; lz carries a pointer table.
func TestRelocateAtHighAddresses(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	check := buildChecker(t, dir)
	fixture, _ := packedModules(t)
	lzELF := buildELF(t, t.TempDir(), filepath.Join(root, "modules/lz/lz.c"))
	lz, err := Pack(lzELF, "lz", "baseline")
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range []struct {
		name string
		data []byte
	}{{"fixture", fixture}, {"lz", lz}} {
		m, err := Parse(mod.data)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Relocs) == 0 {
			t.Fatalf("%s: no relocations to apply", mod.name)
		}
		in := filepath.Join(dir, mod.name+".mod")
		if err := os.WriteFile(in, mod.data, 0o644); err != nil {
			t.Fatal(err)
		}
		total := uint64(m.CodeSize) + uint64(m.DataSize) + uint64(m.BSSSize)
		for _, base := range []uint64{0, 0x200000, 0x1_0000_0000, 0xFFFFFFFF80400000, 0xFFFF800000001000} {
			out := filepath.Join(dir, fmt.Sprintf("%s-%x.bin", mod.name, base))
			if _, err := toolchaintest.Run(tools(t), "", check, "--relocate", fmt.Sprintf("%#x", base), in, out); err != nil {
				t.Fatalf("modparse_check --relocate: %v", err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte(nil), m.Image...)
			for _, r := range m.Relocs {
				v := binary.LittleEndian.Uint64(want[r.Offset:])
				binary.LittleEndian.PutUint64(want[r.Offset:], v+base)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s at %#x: module_relocate's image differs from the format's", mod.name, base)
			}
			for _, r := range m.Relocs {
				if v := binary.LittleEndian.Uint64(got[r.Offset:]); v-base >= total {
					t.Errorf("%s at %#x: word at %#x = %#x points outside the loaded image", mod.name, base, r.Offset, v)
				}
			}
		}
	}
}

func TestVariantNames(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Variant
		ok   bool
	}{
		{"baseline", VariantBaseline, true}, {"o3", VariantO3, true}, {"PGO", VariantPGO, true},
		{"Instrumented", VariantInstrumented, true}, {"O2", 0, false}, {"", 0, false},
	} {
		v, err := ParseVariant(tt.in)
		if (err == nil) != tt.ok || (tt.ok && v != tt.want) {
			t.Errorf("ParseVariant(%q) = %v, %v", tt.in, v, err)
		}
	}
	if Variant(9).String() != "variant(9)" {
		t.Errorf("String of unknown variant: %s", Variant(9))
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// stays inside the buffer. Seeds: the committed libFuzzer corpus.
func FuzzParse(f *testing.F) {
	ents, _ := os.ReadDir("testdata/corpus")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("testdata/corpus", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if uint64(m.ImageOffset)+uint64(len(m.Image)) > uint64(len(b)) || m.Entry >= m.CodeSize {
			t.Fatalf("accepted module with out-of-range image/entry")
		}
		if m.ServicesVersion != ServicesVersion {
			t.Fatalf("accepted a module built against services table version %d", m.ServicesVersion)
		}
		if (m.DataSize != 0 || m.BSSSize != 0) && m.CodeSize%PageSize != 0 {
			t.Fatalf("accepted code size %#x sharing a page with data", m.CodeSize)
		}
		for i, r := range m.Relocs {
			if r.Type != RX86_64_64 && r.Type != RX86_64Relative {
				t.Fatalf("accepted relocation %d of type %s", i, relocTypeName(r.Type))
			}
			if uint64(r.Offset)+RelocWordSize > uint64(len(m.Image)) {
				t.Fatalf("accepted relocation %d whose 64-bit word at %#x leaves the image (%d bytes)", i, r.Offset, len(m.Image))
			}
		}
	})
}

// TestFuzzModparse builds the kernel's module parser for the host with
// libFuzzer, AddressSanitizer and UBSan and fuzzes it for a bounded time
// (FLUID_FUZZ_SECONDS, default 20) from the committed corpus in
// testdata/corpus. New inputs go to a temporary directory, so the committed
// corpus only changes when FLUID_FUZZ_REGEN=1 rewrites its seeds.
func TestFuzzModparse(t *testing.T) {
	testutil.Long(t, "fuzzes for FLUID_FUZZ_SECONDS")
	secs := 20
	if s := os.Getenv("FLUID_FUZZ_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FLUID_FUZZ_SECONDS=%q: want a positive number of seconds", s)
		}
		secs = n
	}
	root, tc := repoRoot(t), tools(t)
	corpus := filepath.Join(root, "internal/modfmt/testdata/corpus")
	if os.Getenv("FLUID_FUZZ_REGEN") == "1" {
		writeSeeds(t, corpus)
	}
	if ents, _ := os.ReadDir(corpus); len(ents) == 0 {
		t.Fatalf("empty corpus %s: run with FLUID_FUZZ_REGEN=1 once", corpus)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "modparse_fuzz")
	run(t, tc.Path("clang"), "-fuse-ld=lld", "-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror",
		"-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
		"-I"+filepath.Join(root, "kernel/include"),
		filepath.Join(root, "internal/modfmt/testdata/modparse_fuzz.c"),
		filepath.Join(root, "kernel/module/modparse.c"), filepath.Join(root, "kernel/lib/crc32.c"), "-o", bin)
	work := filepath.Join(dir, "new")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := toolchaintest.Run(tools(t), "", bin, "-max_total_time="+strconv.Itoa(secs), "-timeout=5", "-rss_limit_mb=1024",
		"-max_len=65536", "-print_final_stats=1", "-artifact_prefix="+dir+"/", work, corpus)
	tail := string(out)
	if len(tail) > 4000 {
		tail = tail[len(tail)-4000:]
	}
	if err != nil {
		t.Fatalf("fuzzing kernel/module/modparse.c found a problem (%v); crash input under %s:\n%s", err, dir, tail)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "stat::number_of_executed_units") || strings.Contains(l, "DONE") {
			t.Log(l)
		}
	}
}

// writeSeeds rewrites the committed seed corpus: the packed fixture and fib
// modules and every mutation of TestParseRejects.
func writeSeeds(t *testing.T, corpus string) {
	fixture, fib := packedModules(t)
	if err := os.MkdirAll(corpus, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(corpus, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fixture.mod", fixture)
	write("fib.mod", fib)
	for _, m := range mutations(fixture) {
		b := m.f(append([]byte(nil), fixture...))
		if m.fix && len(b) >= CRCStart {
			binary.LittleEndian.PutUint32(b[offCRC32:], crc32.ChecksumIEEE(b[CRCStart:]))
		}
		write("mut-"+strings.ReplaceAll(m.name, " ", "-")+".mod", b)
	}
}
