package modfmt_test

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/llama/llamarun"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

// bootOutput boots img under QEMU (TCG) and returns the result and every
// serial line.
func bootOutput(t *testing.T, img string) (*qemu.Result, []string) {
	t.Helper()
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("image: %v", err)
	}
	// -icount: guest time independent of host load (timer tests).
	return qemutest.Boot(t, qemu.Options{Image: img, Icount: true, Timeout: 2 * time.Minute})
}

// newLightBuilder builds with LIGHT=1 into its own output directory, so the
// light objects do not replace the default ones in build/.
func newLightBuilder(t *testing.T) *build.Builder {
	t.Helper()
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return buildtest.New(t, build.Options{Light: true, Out: filepath.Join(root, "build", "modfmt-light")})
}

// wantNormalModulesOK checks that exactly n modules report `result ok` in
// lines (the normal modules of an image that also holds bad ones: where).
func wantNormalModulesOK(t *testing.T, lines []string, n int, where string) {
	t.Helper()
	ok := 0
	for _, l := range lines {
		if m := resultRE.FindStringSubmatch(l); m != nil && m[2] == "ok" {
			ok++
		}
	}
	if ok != n {
		t.Errorf("%d modules report result ok %s, want %d:\n%s", ok, where, n, strings.Join(lines, "\n"))
	}
}

var resultRE = regexp.MustCompile(`^module (\S+): result (ok|FAIL) calls=(\d+) cycles total=(\d+) min=(\d+) max=(\d+)`)

// corrupt returns a copy of mod changed by f, with the checksum recomputed
// when fixCRC is set (so the loader's later checks are the ones that fire).
func corrupt(mod []byte, fixCRC bool, f func(b []byte)) []byte {
	b := append([]byte(nil), mod...)
	f(b)
	if fixCRC {
		binary.LittleEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[modfmt.CRCStart:]))
	}
	return b
}

// TestBootModules builds the kernel and the baseline modules, boots the
// image, and checks every module was loaded from FAT32, ran and passed; a
// second image carries corrupted modules next to the good ones, which the
// loader must refuse with one line each while the rest still run.
func TestBootModules(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	arts, err := b.All(t.Context())
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	good, err := os.ReadFile(arts.Modules[0].Path)
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	var relocMod []byte
	for _, m := range arts.Modules {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			unlock()
			t.Fatal(err)
		}
		if pm, err := modfmt.Parse(data); err == nil && len(pm.Relocs) > 0 {
			relocMod = data
			break
		}
	}
	if relocMod == nil {
		unlock()
		t.Fatal("no built module has relocations to corrupt")
	}
	le := binary.LittleEndian
	bad := []struct {
		file, want string
		data       []byte
	}{
		{"bad-magic.mod", "refused: bad magic", corrupt(good, true, func(b []byte) { b[0] = 'X' })},
		{"bad-crc.mod", "refused: checksum mismatch", corrupt(good, false, func(b []byte) { b[len(b)/2] ^= 0x40 })},
		{"bad-reloc.mod", "refused: relocation 0: unsupported type R_X86_64_PC32", corrupt(relocMod, true, func(b []byte) {
			off := le.Uint32(b[88:])
			le.PutUint32(b[off+4:], 2)
		})},
		{"bad-entry.mod", "refused: entry offset", corrupt(good, true, func(b []byte) { le.PutUint32(b[84:], 0xFFFFFF) })},
		{"truncated.mod", "refused: file size field", good[:len(good)-7]},
		{"renamed.mod", "refused: the header names module", good},
	}
	var extra []image.File
	for _, c := range bad {
		extra = append(extra, image.File{Path: "/modules/" + c.file, Data: c.data})
	}
	badImg, err := b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-corrupt.img", Kernel: arts.Kernel, Modules: arts.Modules, Extra: extra})
	unlock()
	if err != nil {
		t.Fatalf("corrupt image: %v", err)
	}

	t.Run("all ok", func(t *testing.T) {
		res, lines := bootOutput(t, arts.Image)
		if res.Outcome != qemu.Passed {
			t.Fatalf("boot did not pass: %s\n%s", res, strings.Join(res.Tail, "\n"))
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if m := resultRE.FindStringSubmatch(l); m != nil {
				t.Log(l)
				if m[2] != "ok" {
					t.Errorf("module %s failed: %s", m[1], l)
				}
				seen[m[1]] = true
			}
		}
		for _, m := range arts.Modules {
			if !seen[m.Name] {
				t.Errorf("no result line for module %s", m.Name)
			}
		}
	})

	t.Run("corrupted refused, others run", func(t *testing.T) {
		res, lines := bootOutput(t, badImg)
		if res.Outcome != qemu.Failed || !strings.HasPrefix(res.EndLine, "FLUID-END fail module") {
			t.Errorf("want a module failure, got %s (end line %q)", res.Outcome, res.EndLine)
		}
		log := strings.Join(lines, "\n")
		for _, c := range bad {
			if !strings.Contains(log, "module "+c.file+": "+c.want) {
				t.Errorf("no %q line for %s", c.want, c.file)
			}
			if strings.Contains(log, "module "+c.file+": loaded") {
				t.Errorf("%s was loaded", c.file)
			}
		}
		wantNormalModulesOK(t, lines, len(arts.Modules), "next to the corrupted ones")
	})
}

// TestInKernelLoaderTests boots the test kernel and checks that the
// in-kernel tests of the JIT allocator, the FAT32 reader, the ATA driver and
// the module loader (kernel/tests/test_{jit,fat32,module}.c) ran and passed.
func TestInKernelLoaderTests(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	kernel, err := b.Kernel(t.Context(), build.KernelTest)
	if err == nil {
		var img string
		img, err = b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-ktest.img", Kernel: kernel})
		unlock()
		if err != nil {
			t.Fatalf("image: %v", err)
		}
		_, lines := bootOutput(t, img)
		want := []string{
			"jit_align_fresh_pool", "jit_align_fragmented_pool", "jit_free_coalesces_to_one_block",
			"jit_exhaustion_is_an_error", "jit_bad_arguments_refused",
			"module_loads_relocates_and_runs", "module_failing_status_is_reported",
			"module_corrupted_is_refused", "module_name_must_match_file", "modparse_reloc_names",
			"guard_spinning_module_times_out", "guard_faulting_modules_are_crashed",
			"guard_stopped_module_heap_is_freed", "guard_overdue_module_in_services_times_out",
			"guard_deadline_scales_with_calls",
			"fat32_ram_volume_names_and_reads", "fat32_damaged_chains_are_errors", "fat32_bad_bpb_refused",
			"fat32_read_joins_contiguous_clusters",
			"ata_reads_partition1_kernel_elf", "fat32_partition1_over_ata", "ata_dma_and_pio_agree",
			"filecache_reads_once_and_keeps",
		}
		log := strings.Join(lines, "\n")
		for _, name := range want {
			switch {
			case strings.Contains(log, "[ktest] PASS "+name):
			case strings.Contains(log, "[ktest] FAIL "+name):
				for _, l := range lines {
					if strings.Contains(l, "[ktest] FAIL "+name) {
						t.Errorf("%s", l)
					}
				}
			default:
				t.Errorf("in-kernel test %s did not run\n%s", name, log)
			}
		}
		return
	}
	unlock()
	t.Fatalf("build test kernel: %v", err)
}

// TestBootModulesLight boots a LIGHT=1 build: every module still checks its
// (smaller) known answers, and each runs once.
func TestBootModulesLight(t *testing.T) {
	qemutest.Need(t)
	b := newLightBuilder(t)
	unlock := buildtest.Lock(t, b)
	arts, err := b.All(t.Context())
	unlock()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	res, lines := bootOutput(t, arts.Image)
	if res.Outcome != qemu.Passed {
		t.Fatalf("LIGHT boot did not pass: %s\n%s", res, strings.Join(res.Tail, "\n"))
	}
	n := 0
	for _, l := range lines {
		if m := resultRE.FindStringSubmatch(l); m != nil {
			t.Log(l)
			n++
			if m[2] != "ok" || m[3] != "1" {
				t.Errorf("LIGHT: want result ok calls=1: %s", l)
			}
		}
	}
	if n != len(arts.Modules) {
		t.Errorf("%d result lines for %d modules", n, len(arts.Modules))
	}
}

// TestPackInstrumented packs a module built the way the profile pipeline
// builds it (-fprofile-instr-generate, internal/build's profile runtime and
// compiler-rt's x86_64 profile archive): the __llvm_prf_* sections, the
// profile hook and compiler-rt's relocations must all be accepted.
func TestPackInstrumented(t *testing.T) {
	b := buildtest.Builder(t)
	tc, root := toolchaintest.Find(t), b.Root()
	archive, err := b.ProfileRuntimeArchive(t.Context())
	if err != nil {
		t.Fatalf("no x86_64 profile runtime (go tool mage deps installs it): %v", err)
	}
	dir := t.TempDir()
	flags := append(modfmt.CFlags(), build.InstrumentFlags()...)
	flags = append(flags, "-I"+filepath.Join(root, modfmt.IncludeDir))
	rt := filepath.Join(dir, build.ProfileRuntimeSourceName)
	if err := os.WriteFile(rt, build.ProfileRuntimeSource, 0o644); err != nil {
		t.Fatal(err)
	}
	var objs []string
	for i, src := range []string{filepath.Join(root, "modules/interp/interp.c"), filepath.Join(root, modfmt.RuntimeDir, "runtime.c"), rt} {
		obj := filepath.Join(dir, fmt.Sprintf("%d.o", i))
		argv := append(append([]string{}, flags...), "-c", src, "-o", obj)
		if _, err := toolchaintest.Run(tc, "", append([]string{tc.Path("clang")}, argv...)...); err != nil {
			t.Fatalf("clang %s: %v", src, err)
		}
		objs = append(objs, obj)
	}
	elf := filepath.Join(dir, "interp.elf")
	argv := append(modfmt.LDFlags(), "-T", filepath.Join(root, modfmt.LinkerScript), "-o", elf)
	argv = append(append(argv, objs...), archive)
	if _, err := toolchaintest.Run(tc, "", append([]string{tc.Path("ld.lld")}, argv...)...); err != nil {
		t.Fatalf("ld.lld: %v", err)
	}
	data, err := modfmt.Pack(elf, "interp", "instrumented")
	if err != nil {
		t.Fatalf("pack instrumented module: %v", err)
	}
	m, err := modfmt.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Variant != modfmt.VariantInstrumented || m.Flags&modfmt.FlagProfile == 0 || m.Profile >= m.CodeSize {
		t.Errorf("variant %v flags %#x profile %#x: want the instrumented variant with its hook", m.Variant, m.Flags, m.Profile)
	}
	t.Logf("instrumented interp: code %d data %d bss %d, %d relocations", m.CodeSize, m.DataSize, m.BSSSize, len(m.Relocs))
}

// TestRecipeModulesX86_64 builds every module under modules/ the way `mage
// build`, `mage bench` and `mage profile` do (recipes baseline, o3 and
// instrumented, through internal/build) and checks each packed module: an
// x86_64 ELF64 went in, the .mod parses, every relocation is one of the two
// types the loader applies and matches the ELF's .rela.dyn entry for entry,
// code and data never share a page, and the instrumented build carries its
// profile hook. It logs the relocation types seen per recipe.
func TestRecipeModulesX86_64(t *testing.T) {
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	defer unlock()
	names, err := b.ModuleNames()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"expr", "fib", "hash", "interp", "llama", "lz", "matrix", "sort"}; !slices.Equal(names, want) {
		t.Errorf("modules/ has the modules %v, want the %d workloads %v", names, len(want), want)
	}
	for _, r := range []recipe.Recipe{recipe.Baseline, recipe.O3, recipe.Instrumented} {
		mods, err := b.RecipeModules(t.Context(), r, nil)
		if err != nil {
			t.Fatalf("%s modules: %v", r.Name, err)
		}
		if len(mods) != len(names) {
			t.Fatalf("%s: %d modules built, want %d", r.Name, len(mods), len(names))
		}
		seen := map[string]int{}
		for _, m := range mods {
			f, err := elf.Open(m.ELF)
			if err != nil {
				t.Fatal(err)
			}
			class, machine := f.Class, f.Machine
			var elfRelocs []uint64 // r_offset<<8 | type, from .rela.dyn
			if s := f.Section(".rela.dyn"); s != nil {
				d, err := s.Data()
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+24 <= len(d); i += 24 {
					elfRelocs = append(elfRelocs, binary.LittleEndian.Uint64(d[i:])<<8|binary.LittleEndian.Uint64(d[i+8:])&0xff)
				}
			}
			f.Close()
			if class != elf.ELFCLASS64 || machine != elf.EM_X86_64 {
				t.Errorf("%s/%s: ELF is %v %v, want ELFCLASS64 EM_X86_64", r.Name, m.Name, class, machine)
			}
			data, err := os.ReadFile(m.Path)
			if err != nil {
				t.Fatal(err)
			}
			pm, err := modfmt.Parse(data)
			if err != nil {
				t.Errorf("%s/%s: packed module refused: %v", r.Name, m.Name, err)
				continue
			}
			if pm.Name != m.Name || pm.Variant.String() != r.Tag {
				t.Errorf("%s/%s: header says %s %v", r.Name, m.Name, pm.Name, pm.Variant)
			}
			if (pm.DataSize != 0 || pm.BSSSize != 0) && pm.CodeSize%modfmt.PageSize != 0 {
				t.Errorf("%s/%s: code size %#x shares a page with the data", r.Name, m.Name, pm.CodeSize)
			}
			if got := pm.Flags&modfmt.FlagProfile != 0; got != (r.Profiles == recipe.Records) {
				t.Errorf("%s/%s: profile hook flag %v", r.Name, m.Name, got)
			}
			var modRelocs []uint64
			for _, rl := range pm.Relocs {
				seen[relocName(rl.Type)]++
				if rl.Type != modfmt.RX86_64Relative && rl.Type != modfmt.RX86_64_64 {
					t.Errorf("%s/%s: relocation type %d", r.Name, m.Name, rl.Type)
				}
				modRelocs = append(modRelocs, uint64(rl.Offset)<<8|uint64(rl.Type))
			}
			sort.Slice(elfRelocs, func(i, j int) bool { return elfRelocs[i] < elfRelocs[j] })
			if fmt.Sprint(elfRelocs) != fmt.Sprint(modRelocs) {
				t.Errorf("%s/%s: module relocations %x differ from the ELF's .rela.dyn %x", r.Name, m.Name, modRelocs, elfRelocs)
			}
			t.Logf("%s/%s: code %#x data %#x bss %#x, %d relocations", r.Name, m.Name, pm.CodeSize, pm.DataSize, pm.BSSSize, len(pm.Relocs))
		}
		t.Logf("%s: relocation types over %d modules: %v", r.Name, len(mods), seen)
	}
}

func relocName(t uint32) string {
	switch t {
	case modfmt.RX86_64Relative:
		return "R_X86_64_RELATIVE"
	case modfmt.RX86_64_64:
		return "R_X86_64_64"
	}
	return fmt.Sprint(t)
}

// TestModulesRunOnHost runs every module of the baseline, o3 and
// instrumented recipes on the x86_64 host through testdata/modrun_host.c:
// the kernel's parser and relocation step, a page-aligned mapping with the
// code made read+exec and the data read+write (W^X), and host stand-ins for
// the services. Every call must return FLUID_OK with every check passing,
// at the default size and with LIGHT: the modules' known answers hold for
// the x86_64 builds, whatever the kernel does.
func TestModulesRunOnHost(t *testing.T) {
	b := buildtest.Builder(t)
	tc := toolchaintest.Find(t)
	dir := t.TempDir()
	bin := buildModrunHost(t, b.Root())
	unlock := buildtest.Lock(t, b)
	var files []string
	for _, r := range []recipe.Recipe{recipe.Baseline, recipe.O3, recipe.Instrumented} {
		mods, err := b.RecipeModules(t.Context(), r, nil)
		if err != nil {
			unlock()
			t.Fatalf("%s modules: %v", r.Name, err)
		}
		for _, m := range mods {
			// Copies: another test may rebuild build/modules once the lock is released.
			data, err := os.ReadFile(m.Path)
			if err != nil {
				unlock()
				t.Fatal(err)
			}
			p := filepath.Join(dir, r.Name+"-"+m.Name+".mod")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				unlock()
				t.Fatal(err)
			}
			files = append(files, p)
		}
	}
	unlock()
	// The llama module reads /llama/model.gguf and /llama/run.txt through
	// read_file: the host runner serves them from --root, the same default
	// files every image carries.
	model, run, err := llamarun.Default()
	if err != nil {
		t.Fatal(err)
	}
	runText, err := run.Text()
	if err != nil {
		t.Fatal(err)
	}
	fsRoot := filepath.Join(dir, "root")
	testutil.WriteFiles(t, fsRoot, map[string]string{
		strings.TrimPrefix(llamarun.ModelPath, "/"): string(model),
		strings.TrimPrefix(llamarun.RunPath, "/"):   string(runText),
	})
	for _, light := range []bool{false, true} {
		argv := []string{bin, "--root", fsRoot}
		if light {
			argv = append(argv, "--light")
		}
		out, err := toolchaintest.Run(tc, "", append(argv, files...)...)
		var oks int
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "ok ") {
				oks++
			} else if strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "check ") {
				t.Errorf("light=%v: %s", light, l)
			}
		}
		if err != nil || oks != len(files) {
			t.Errorf("light=%v: %d of %d modules passed (%v):\n%s", light, oks, len(files), err, out)
		}
		t.Logf("light=%v: %d modules ran on the host and passed every check", light, oks)
	}
}

// buildModrunHost compiles testdata/modrun_host.c with the kernel's module
// parser into a temporary directory and returns the binary's path.
func buildModrunHost(t *testing.T, root string) string {
	t.Helper()
	tc := toolchaintest.Find(t)
	bin := filepath.Join(t.TempDir(), "modrun_host")
	if out, err := toolchaintest.Run(tc, "", tc.Path("clang"), "-fuse-ld=lld", "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
		"-I"+filepath.Join(root, "kernel/include"),
		filepath.Join(root, "internal/modfmt/testdata/modrun_host.c"),
		filepath.Join(root, "kernel/module/modparse.c"), filepath.Join(root, "kernel/lib/crc32.c"), "-o", bin); err != nil {
		t.Fatalf("build modrun_host: %v\n%s", err, out)
	}
	return bin
}
