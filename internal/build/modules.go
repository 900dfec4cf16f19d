package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/modfmt"
)

// ModuleVariant selects how the workload modules are compiled. Every variant
// uses modfmt.CFlags/LDFlags; a variant only adds what makes it that variant,
// so an instrumented build and the optimized build it feeds differ in the
// instrumentation alone.
type ModuleVariant struct {
	Name       string   // output directory build/modules/<Name>/ (e.g. "baseline", "o3", "pgo", "instrumented")
	Tag        string   // modfmt variant tag stored in the header: "baseline", "O3", "PGO", "instrumented"
	OptLevel   string   // replaces -O2 when set (e.g. "-O3")
	CFlags     []string // added after modfmt.CFlags (e.g. -fprofile-instr-generate)
	LinkInputs []string // extra objects/archives linked into every module (e.g. the profile runtime)
	// PerModuleCFlags adds flags for one module (e.g. -fprofile-instr-use=<that module's profile>).
	PerModuleCFlags func(module string) []string
	// Inputs are extra files whose contents invalidate the variant (e.g. profiles).
	Inputs func(module string) []string
}

// Module is one built module.
type Module struct {
	Name string // e.g. "fib"
	ELF  string // linked ELF (absolute path)
	Path string // packed .mod file (absolute path)
	Tag  string // variant tag in its header ("baseline", "O3", "PGO", "instrumented")
	// Profiles are the repo-relative extra inputs (PGO profiles) it was built from.
	Profiles []string
}

// ModuleNames lists modules/<name>/ folders that hold C sources (not
// include/ or lib/), sorted.
func (b *Builder) ModuleNames() ([]string, error) {
	ents, err := os.ReadDir(b.abs("modules"))
	if err != nil {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || e.Name() == "include" || e.Name() == "lib" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		srcs, _ := filepath.Glob(filepath.Join(b.abs("modules"), e.Name(), "*.c"))
		if len(srcs) > 0 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// ModuleCFlags returns the full compile flags of a variant for one module.
func (b *Builder) ModuleCFlags(v ModuleVariant, module string) []string {
	flags := modfmt.CFlags()
	if v.OptLevel != "" {
		for i, f := range flags {
			if f == "-O2" {
				flags[i] = v.OptLevel
			}
		}
	}
	// -g: line tables and names for `mage qemu`'s symbolizer (NAME+0xOFF to
	// file:line); debug sections are not allocated, so the packed module is
	// the same bytes as without.
	flags = append(flags, "-g", "-gno-record-gcc-switches", "-I"+modfmt.IncludeDir, "-ffile-prefix-map="+b.root+"=.")
	if b.opt.Light {
		flags = append(flags, "-DFLUID_LIGHT=1")
	}
	flags = append(flags, v.CFlags...)
	flags = append(flags, b.llamaCFlags(module)...)
	if v.PerModuleCFlags != nil {
		flags = append(flags, v.PerModuleCFlags(module)...)
	}
	return flags
}

// Modules builds every module (or only the named ones) in variant v.
func (b *Builder) Modules(ctx context.Context, v ModuleVariant, only ...string) ([]Module, error) {
	names, err := b.ModuleNames()
	if err != nil {
		return nil, err
	}
	if len(only) > 0 {
		want := map[string]bool{}
		for _, n := range only {
			want[n] = true
		}
		var keep []string
		for _, n := range names {
			if want[n] {
				keep = append(keep, n)
				delete(want, n)
			}
		}
		for n := range want {
			return nil, fmt.Errorf("no module %q (modules/%s/*.c); modules are: %s", n, n, strings.Join(names, ", "))
		}
		names = keep
	}
	rtSrcs, _ := filepath.Glob(filepath.Join(b.abs(modfmt.RuntimeDir), "*.c"))
	sort.Strings(rtSrcs)
	dir := b.outRel("modules", v.Name)
	var mods []Module
	for _, name := range names {
		srcs, _ := filepath.Glob(filepath.Join(b.abs("modules"), name, "*.c"))
		sort.Strings(srcs)
		all := append(append([]string{}, srcs...), rtSrcs...)
		flags := b.ModuleCFlags(v, name)
		var extra []string
		if v.Inputs != nil {
			extra = v.Inputs(name)
		}
		var steps []*step
		var objs []string
		for _, src := range all {
			src = b.rel(src)
			base := strings.TrimSuffix(filepath.Base(src), ".c")
			if strings.HasPrefix(src, modfmt.RuntimeDir+"/") {
				base = "rt_" + base
			}
			obj := fmt.Sprintf("%s/obj/%s/%s.o", dir, name, base)
			dep := obj + ".d"
			argv := append([]string{b.tc.Path("clang")}, flags...)
			argv = append(argv, "-MD", "-MF", dep, "-c", src, "-o", obj)
			steps = append(steps, &step{tag: "CC", name: fmt.Sprintf("%s [%s]", src, v.Name), argv: argv,
				inputs: append([]string{src}, extra...), outputs: []string{obj}, depfile: dep})
			objs = append(objs, obj)
		}
		if _, err := b.runAll(ctx, steps); err != nil {
			return nil, fmt.Errorf("module %s (%s): %w", name, v.Name, err)
		}
		elf := fmt.Sprintf("%s/%s.elf", dir, name)
		ld := append([]string{b.tc.Path("ld.lld")}, modfmt.LDFlags()...)
		ld = append(ld, "-T", modfmt.LinkerScript, "-o", elf)
		ld = append(ld, objs...)
		ld = append(ld, v.LinkInputs...)
		inputs := append(append([]string{modfmt.LinkerScript}, objs...), v.LinkInputs...)
		if _, err := b.run(ctx, &step{tag: "LD", name: elf, argv: ld, inputs: inputs, outputs: []string{elf}}); err != nil {
			return nil, fmt.Errorf("module %s (%s): %w", name, v.Name, err)
		}
		mod := fmt.Sprintf("%s/%s.mod", dir, name)
		tag := v.Tag
		if tag == "" {
			tag = "baseline"
		}
		if _, err := b.run(ctx, &step{tag: "PACK", name: mod, inputs: append([]string{elf}, b.goSources("modfmt")...), outputs: []string{mod}, key: "pack " + name + " " + tag,
			fn: func() error { return modfmt.PackFile(b.abs(elf), name, tag, b.abs(mod)) }}); err != nil {
			return nil, err
		}
		var profiles []string
		for _, p := range extra {
			profiles = append(profiles, b.rel(p))
		}
		mods = append(mods, Module{Name: name, ELF: b.abs(elf), Path: b.abs(mod), Tag: tag, Profiles: profiles})
	}
	return mods, nil
}
