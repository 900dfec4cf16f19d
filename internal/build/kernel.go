package build

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/fluid-os/fluid/internal/layout"
)

// BootArtifacts are the assembled boot stages.
type BootArtifacts struct {
	Stage1 string // 440 bytes: the MBR boot code area
	Stage2 string // flat binary loaded at 0x8000
	Floor  string // 512-byte benchmark floor boot sector
}

// KernelVariant selects one kernel build. Each variant has its own object
// directory, so switching variants never recompiles the others.
type KernelVariant struct {
	Name    string   // output is build/<Name>.elf; objects in build/obj/<Name>/
	Test    bool     // in-kernel test build: -DFLUID_KTEST=1 plus kernel/tests/
	Defines []string // extra -D definitions, e.g. "FLUID_FAULT=2"
}

// Predefined kernel variants.
var (
	KernelNormal = KernelVariant{Name: "kernel"}
	KernelTest   = KernelVariant{Name: "kernel-test", Test: true}
)

// BootInfoInc generates build/gen/bootinfo.inc from boot/bootinfo.h.
func (b *Builder) BootInfoInc(ctx context.Context) (string, error) {
	out := b.outRel("gen", "bootinfo.inc")
	s := &step{
		tag: "GEN", name: out, inputs: []string{"boot/bootinfo.h"}, outputs: []string{out},
		key: "bootinfo.inc v1",
		fn: func() error {
			data, err := layout.GenerateNASMInclude(b.abs("boot/bootinfo.h"))
			if err != nil {
				return fmt.Errorf("generate %s: %w", out, err)
			}
			return atomicfile.WriteFile(b.abs(out), data, 0o644)
		},
	}
	_, err := b.run(ctx, s)
	return b.abs(out), err
}

// Boot assembles stage 1, stage 2 and the benchmark floor.
func (b *Builder) Boot(ctx context.Context) (BootArtifacts, error) {
	if _, err := b.BootInfoInc(ctx); err != nil {
		return BootArtifacts{}, err
	}
	gen := b.outRel("gen") + "/"
	incs := b.nasmIncludes(bootIncludeDirs...)
	var steps []*step
	var outs []string
	for _, name := range []string{"stage1", "stage2", "floor"} {
		src := "boot/" + name + ".asm"
		out := b.outRel("boot", name+".bin")
		dep := out + ".d"
		steps = append(steps, &step{
			tag: "NASM", name: src,
			argv:    []string{b.tc.Path("nasm"), "-f", "bin", "-I", gen, "-I", "boot/", "-MD", dep, "-o", out, src},
			inputs:  append([]string{src}, incs...),
			outputs: []string{out}, depfile: dep,
		})
		outs = append(outs, b.abs(out))
	}
	if _, err := b.runAll(ctx, steps); err != nil {
		return BootArtifacts{}, err
	}
	return BootArtifacts{Stage1: outs[0], Stage2: outs[1], Floor: outs[2]}, nil
}

// KernelCFlags are the flags every kernel C file is compiled with (besides
// -D definitions and the depfile). docs/CONTRACTS.md documents them.
func (b *Builder) KernelCFlags() []string {
	return []string{
		"--target=x86_64-unknown-none-elf", "-std=c11", "-ffreestanding",
		"-mno-red-zone", "-mcmodel=kernel",
		"-fno-pic", "-fno-pie", "-fno-stack-protector", "-fno-omit-frame-pointer",
		"-mgeneral-regs-only", "-O2", "-g",
		// Debian's clang records its whole command line in DW_AT_producer
		// by default; the flags are in the manifest already, and a host
		// path among them (FLUID_TOOLCHAIN=host) would leak into the ELF.
		"-gno-record-gcc-switches",
		"-Wall", "-Wextra", "-Werror",
		"-Ikernel/include", "-Iboot", "-Imodules/include",
		"-ffile-prefix-map=" + b.root + "=.",
	}
}

// KernelNASMFlags are the flags every kernel assembly file is assembled
// with (besides the numeric -D definitions and the depfile).
// docs/CONTRACTS.md documents them.
func (b *Builder) KernelNASMFlags() []string {
	return []string{"-f", "elf64", "-I", b.outRel("gen") + "/", "-I", "kernel/include/", "-I", "boot/"}
}

// kernelDefines are the -D flags shared by every kernel variant.
func (b *Builder) kernelDefines(v KernelVariant) []string {
	d := []string{fmt.Sprintf(`-DFLUID_VERSION="%s"`, b.opt.Version)}
	if b.opt.Light {
		d = append(d, "-DFLUID_LIGHT=1")
	}
	if v.Test {
		d = append(d, "-DFLUID_KTEST=1")
	}
	for _, x := range v.Defines {
		d = append(d, "-D"+x)
	}
	return d
}

// kernelSources lists kernel/**/*.c and *.asm, sorted; kernel/tests/ only
// for test variants.
func (b *Builder) kernelSources(test bool) (cs, asms []string, err error) {
	err = filepath.WalkDir(b.abs("kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r := b.rel(p)
		if d.IsDir() {
			if r == "kernel/tests" && !test {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".c":
			cs = append(cs, r)
		case ".asm":
			asms = append(asms, r)
		}
		return nil
	})
	sort.Strings(cs)
	sort.Strings(asms)
	return cs, asms, err
}

// Kernel compiles and links one kernel variant and returns the ELF path.
func (b *Builder) Kernel(ctx context.Context, v KernelVariant) (string, error) {
	if v.Name == "" {
		return "", fmt.Errorf("kernel variant without a name")
	}
	if _, err := b.BootInfoInc(ctx); err != nil {
		return "", err
	}
	cs, asms, err := b.kernelSources(v.Test)
	if err != nil {
		return "", fmt.Errorf("list kernel sources: %w", err)
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("no C sources under %s/kernel", b.root)
	}
	objDir := b.outRel("obj", v.Name)
	cflags := append(b.KernelCFlags(), b.kernelDefines(v)...)
	var steps []*step
	var objs []string
	for _, src := range cs {
		obj := objDir + "/" + strings.TrimSuffix(src, ".c") + ".o"
		dep := obj + ".d"
		argv := append([]string{b.tc.Path("clang")}, cflags...)
		argv = append(argv, "-MD", "-MF", dep, "-c", src, "-o", obj)
		steps = append(steps, &step{tag: "CC", name: src, argv: argv, inputs: []string{src}, outputs: []string{obj}, depfile: dep})
		objs = append(objs, obj)
	}
	incs := b.nasmIncludes("boot", "kernel/include")
	for _, src := range asms {
		obj := objDir + "/" + strings.TrimSuffix(src, ".asm") + ".o"
		dep := obj + ".d"
		// No -g: NASM 2.16 writes the absolute working directory into
		// DW_AT_comp_dir and has no prefix map, which would make kernel.elf
		// depend on where the tree is checked out. gdb still has symbols
		// for the assembly (the ELF symbol table) and full DWARF for C.
		argv := append([]string{b.tc.Path("nasm")}, b.KernelNASMFlags()...)
		for _, d := range b.kernelDefines(v) {
			if !strings.Contains(d, `"`) { // NASM gets the numeric switches only
				argv = append(argv, d)
			}
		}
		argv = append(argv, "-MD", dep, "-o", obj, src)
		steps = append(steps, &step{tag: "NASM", name: src, argv: argv, inputs: append([]string{src}, incs...), outputs: []string{obj}, depfile: dep})
		objs = append(objs, obj)
	}
	if _, err := b.runAll(ctx, steps); err != nil {
		return "", err
	}
	elf := b.outRel(v.Name + ".elf")
	ld := append([]string{b.tc.Path("ld.lld"), "-m", "elf_x86_64", "-T", "kernel/kernel.ld", "-nostdlib",
		"--build-id=none", "-z", "noexecstack", "-o", elf}, objs...)
	if _, err := b.run(ctx, &step{tag: "LD", name: elf, argv: ld, inputs: append([]string{"kernel/kernel.ld"}, objs...), outputs: []string{elf}}); err != nil {
		return "", err
	}
	return b.abs(elf), nil
}

// bootIncludeDirs hold the .inc files the boot stages include: the shared
// ones in boot/ and stage 2's parts in boot/stage2/ (stage2.asm includes
// them as "stage2/<job>.inc" through -I boot/). A new folder of includes
// must be added here, or an edit to it would not rebuild stage 2
// (TestBootIncludesAreInputs checks it).
var bootIncludeDirs = []string{"boot", "boot/stage2"}

// nasmIncludes lists every .inc a NASM source could include: the generated
// bootinfo.inc and the .inc files of the given directories. They are explicit
// step inputs because NASM 2.16.01's -MD leaves included files out of the
// depfile (fixed in 2.16.02), so the depfile alone would miss an edit.
func (b *Builder) nasmIncludes(dirs ...string) []string {
	incs := []string{b.outRel("gen", "bootinfo.inc")}
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(b.abs(d), "*.inc"))
		sort.Strings(m)
		for _, f := range m {
			incs = append(incs, b.rel(f))
		}
	}
	return incs
}
