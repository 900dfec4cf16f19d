package build

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/manifest"
)

// ProfileSource is how profiles enter a build: a recipe fed by committed
// profiles (recipe.Committed) asks it for each module's profile.
// internal/profile implements it over profiles/; the build never reads
// profiles/ itself.
type ProfileSource interface {
	// ModuleProfiles returns, per module, the path of the text profile
	// (llvm-profdata's text format) its PGO build uses. When a profile is
	// missing or no longer fits its module's sources the error wraps
	// recipe.ErrStaleProfiles and names every such module.
	ModuleProfiles(modules []string) (map[string]string, error)
}

// RecipeModules builds every module in the flavour of recipe r. src feeds
// the recipes that use committed profiles (it may be nil for the others).
func (b *Builder) RecipeModules(ctx context.Context, r recipe.Recipe, src ProfileSource) ([]Module, error) {
	v := ModuleVariant{Name: r.Name, Tag: r.Tag, OptLevel: r.OptLevel}
	switch r.Profiles {
	case recipe.Records:
		archive, err := b.ProfileRuntimeArchive(ctx)
		if err != nil {
			return nil, err
		}
		v.CFlags = InstrumentFlags()
		obj, err := b.profileRuntime(ctx, b.ModuleCFlags(v, ""))
		if err != nil {
			return nil, err
		}
		v.LinkInputs = []string{obj, archive}
	case recipe.Committed:
		if src == nil {
			return nil, fmt.Errorf("%s modules: built from profiles, but no profile source was given", r.Name)
		}
		indexed, err := b.indexProfiles(ctx, src)
		if err != nil {
			return nil, err
		}
		v.PerModuleCFlags = func(m string) []string { return UseFlags(indexed[m]) }
		v.Inputs = func(m string) []string { return []string{indexed[m]} }
	}
	mods, err := b.Modules(ctx, v)
	if err != nil && r.Profiles == recipe.Committed &&
		(strings.Contains(err.Error(), "profile-instr-") || strings.Contains(err.Error(), "profile data")) {
		return nil, fmt.Errorf("%w\nthe committed profile no longer matches the module's code: refresh it with `%s`", err, recipe.RefreshCommand)
	}
	return mods, err
}

// Recipe builds recipe r into its own image (r.Image) and manifest
// (r.Manifest, none when empty): the kernel, boot stages and r's modules.
func (b *Builder) Recipe(ctx context.Context, r recipe.Recipe, src ProfileSource) (*Artifacts, error) {
	return b.recipeInto(ctx, r, src, r.Image, r.Manifest)
}

// Release builds every recipe the release ships (recipe.Shipped) into its
// own image and manifest, by recipe name. A stale profile is an error
// naming the module: a release never ships a PGO image from profiles of
// other code.
func (b *Builder) Release(ctx context.Context, src ProfileSource) (map[string]*Artifacts, error) {
	if lf := b.opt.Llama; lf != nil {
		return nil, fmt.Errorf("release images: the llama module's model is %s, not the generated test model: a release ships the test model and its reference run (unset %s)", lf.Model, EnvLlamaModel)
	}
	out := map[string]*Artifacts{}
	for _, r := range recipe.Shipped() {
		a, err := b.Recipe(ctx, r, src)
		if err != nil {
			return nil, err
		}
		out[r.Name] = a
	}
	return out, nil
}

// RecipeImage builds recipe r into build/<imageName> without a manifest:
// an image a test boots, holding the Builder's llama files (Options.Llama).
func (b *Builder) RecipeImage(ctx context.Context, r recipe.Recipe, src ProfileSource, imageName string) (*Artifacts, error) {
	return b.recipeInto(ctx, r, src, imageName, "")
}

// Working builds recipe r into the working image (recipe.WorkingImage and
// recipe.WorkingManifest), what `mage build` and `mage pgo` do.
func (b *Builder) Working(ctx context.Context, r recipe.Recipe, src ProfileSource) (*Artifacts, error) {
	return b.recipeInto(ctx, r, src, recipe.WorkingImage, recipe.WorkingManifest)
}

func (b *Builder) recipeInto(ctx context.Context, r recipe.Recipe, src ProfileSource, img, man string) (*Artifacts, error) {
	mods, err := b.RecipeModules(ctx, r, src)
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", r.Name, err)
	}
	a, err := b.compose(ctx, r, img, man, mods)
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", r.Name, err)
	}
	return a, nil
}

// WorkingRecipe decides what the working image holds when the default
// build (`mage build`, `mage qemu`, `mage debug`) runs: the recipe it was
// last built with (the variant its own build/manifest.json records), so
// the PGO modules `mage pgo` put there stay, else the baseline. A PGO
// image whose committed profiles no longer fit the sources goes back to
// the baseline, with the reason as a note (so editing a module never
// blocks booting it). There is no marker between stages: the table maps
// the manifest's variant to its recipe and src judges the profiles.
func (b *Builder) WorkingRecipe(src ProfileSource) (r recipe.Recipe, note string, err error) {
	m, err := manifest.Read(filepath.Join(b.out, recipe.WorkingManifest))
	if err != nil {
		return recipe.Baseline, "", nil
	}
	r, _, err = recipe.ByVariant(m.Variant)
	if err != nil || r.Profiles != recipe.Committed {
		return recipe.Baseline, "", nil
	}
	if src == nil {
		return recipe.Baseline, "", nil
	}
	names, err := b.ModuleNames()
	if err != nil {
		return r, "", err
	}
	if _, err := src.ModuleProfiles(names); err != nil {
		if errors.Is(err, recipe.ErrStaleProfiles) {
			return recipe.Baseline, fmt.Sprintf("using the baseline modules, not %s: %v", r.Name, err), nil
		}
		return r, "", err
	}
	return r, "", nil
}

// indexProfiles converts each module's text profile into an indexed one
// under build/profile/indexed (a cached step: a no-op build does not
// re-index).
func (b *Builder) indexProfiles(ctx context.Context, src ProfileSource) (map[string]string, error) {
	names, err := b.ModuleNames()
	if err != nil {
		return nil, err
	}
	texts, err := src.ModuleProfiles(names)
	if err != nil {
		return nil, err
	}
	indexed := map[string]string{}
	for _, m := range names {
		text := texts[m]
		out := filepath.Join(b.out, "profile", "indexed", m+".profdata")
		argv := []string{b.tc.Path("llvm-profdata"), "merge", "-o", out, text}
		if _, err := b.Step(ctx, "PROF", b.rel(out), argv, []string{text}, []string{out}); err != nil {
			return nil, fmt.Errorf("module %s: llvm-profdata cannot index %s: %v (recapture with `%s`)", m, text, err, recipe.RefreshCommand)
		}
		indexed[m] = out
	}
	return indexed, nil
}

// ProfileRuntimeSource is rt/fluid_profile_rt.c: the module-side profile
// hook (fluid_profile_dump) over compiler-rt's buffer writer. Instrumented
// modules link it; see the file's header comment.
//
//go:embed rt/fluid_profile_rt.c
var ProfileRuntimeSource []byte

// ProfileRuntimeSourceName is the file name ProfileRuntimeSource is
// compiled from; it is part of the profile's static-function names, so it
// never varies.
const ProfileRuntimeSourceName = "fluid_profile_rt.c"

// profileRuntime compiles ProfileRuntimeSource with the module compile
// flags (which include the instrumentation) into
// build/profile/rt/fluid_profile_rt.o, a cached step. The source is written
// next to it first, so the object's debug/profile names do not depend on
// where Go runs.
func (b *Builder) profileRuntime(ctx context.Context, moduleFlags []string) (string, error) {
	dir := filepath.Join(b.out, "profile", "rt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("profile runtime: %w", err)
	}
	src := filepath.Join(dir, ProfileRuntimeSourceName)
	if old, err := os.ReadFile(src); err != nil || !bytes.Equal(old, ProfileRuntimeSource) {
		if err := atomicfile.WriteFile0644(src, ProfileRuntimeSource); err != nil {
			return "", fmt.Errorf("profile runtime: %w", err)
		}
	}
	obj := filepath.Join(dir, strings.TrimSuffix(ProfileRuntimeSourceName, ".c")+".o")
	// The depfile makes the headers it includes (fluid_module.h) inputs:
	// without it a services-table change left an object of the old table
	// in the cache, and the packer refused the instrumented modules.
	dep := b.rel(obj) + ".d"
	argv := append([]string{b.tc.Path("clang")}, moduleFlags...)
	argv = append(argv, "-ffile-prefix-map="+dir+"/=", "-ffile-prefix-map="+b.rel(dir)+"/=", "-MD", "-MF", dep, "-c", b.rel(src), "-o", b.rel(obj))
	if _, err := b.run(ctx, &step{tag: "CC", name: b.rel(src), argv: argv, inputs: []string{b.rel(src)},
		outputs: []string{b.rel(obj)}, depfile: dep}); err != nil {
		return "", fmt.Errorf("compile the module profile runtime: %w", err)
	}
	return obj, nil
}

// ProfileRuntimeArchive finds compiler-rt's x86_64 profile runtime of the
// toolchain's clang: libclang_rt.profile-x86_64.a (old layout, lib/linux/)
// or libclang_rt.profile.a in the per-target runtime directory (new
// layout). Modules are x86_64 (modfmt.CFlags); the archive is built for
// Linux, which rt/fluid_profile_rt.c makes up for.
func (b *Builder) ProfileRuntimeArchive(ctx context.Context) (string, error) {
	const triple = "--target=x86_64-pc-linux-gnu"
	clang := b.tc.Path("clang")
	// In container mode the archive lives in the image: trust clang's answer.
	exists := func(p string) bool {
		if b.tc.Container != nil {
			return true
		}
		st, err := os.Stat(p)
		return err == nil && !st.IsDir()
	}
	var tried []string
	if p, err := b.Output(ctx, clang, triple, "--print-file-name=libclang_rt.profile-x86_64.a"); err == nil {
		if filepath.IsAbs(p) && exists(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if dir, err := b.Output(ctx, clang, triple, "--print-runtime-dir"); err == nil {
		p := filepath.Join(dir, "libclang_rt.profile.a")
		if exists(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("compiler-rt's x86_64 profile runtime was not found for %s (looked for %s); install libclang-rt-<N>-dev for this LLVM (go tool mage deps)", clang, strings.Join(tried, ", "))
}
