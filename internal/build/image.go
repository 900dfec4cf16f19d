package build

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/image"
)

// ImageSpec says which kernel and modules go into one disk image.
type ImageSpec struct {
	Name    string       // file name under build/, e.g. "fluid.img"
	Kernel  string       // kernel ELF path
	Modules []Module     // copied to /modules/<name>.mod
	Extra   []image.File // more files for partition 1 (e.g. the manifest)
	Size    int64        // 0 = image.DefaultSize
}

// ModuleImagePath is where a module lives in partition 1; the kernel's
// loader lists this directory.
func ModuleImagePath(name string) string { return "/modules/" + name + ".mod" }

// Image assembles a disk image from already-built parts: stage 1 and 2 from
// Boot, the kernel ELF, the modules and any extra files. An image that holds
// the llama module gets its files too (the Builder's, Options.Llama, unless
// s.Extra has files under /llama/ already), and the size they need. It
// reruns only when one of them changed.
func (b *Builder) Image(ctx context.Context, s ImageSpec) (string, error) {
	boot, err := b.Boot(ctx)
	if err != nil {
		return "", err
	}
	if s.Name == "" || strings.Contains(s.Name, "/") {
		return "", fmt.Errorf("image name %q: want a plain file name such as fluid.img", s.Name)
	}
	out := b.outRel(s.Name)
	if s, err = b.withLlamaFiles(s); err != nil {
		return "", fmt.Errorf("image %s: %w", out, err)
	}
	files := []image.File{{Path: "/KERNEL.ELF", Src: s.Kernel}}
	inputs := []string{boot.Stage1, boot.Stage2, s.Kernel}
	for _, m := range s.Modules {
		files = append(files, image.File{Path: ModuleImagePath(m.Name), Src: m.Path})
		inputs = append(inputs, m.Path)
	}
	inputs = append(inputs, b.goSources("image", "layout")...)
	key := fmt.Sprintf("image size=%d epoch=%d", s.Size, b.opt.SourceDateEpoch)
	for _, f := range s.Extra {
		files = append(files, f)
		if f.Data != nil {
			key += fmt.Sprintf(" %s=%x", f.Path, hashBytes(f.Data))
		} else {
			inputs = append(inputs, f.Src)
		}
	}
	for _, f := range files {
		key += " " + f.Path
	}
	_, err = b.run(ctx, &step{tag: "IMG", name: out, inputs: inputs, outputs: []string{out}, key: key,
		fn: func() error {
			return image.Build(image.Spec{
				Out: b.abs(out), Size: s.Size,
				Stage1: boot.Stage1, Stage2: boot.Stage2, KernelELF: s.Kernel,
				Files:           files,
				SourceDateEpoch: time.Unix(b.opt.SourceDateEpoch, 0).UTC(),
			})
		}})
	if err != nil {
		return "", fmt.Errorf("image %s: %w", out, err)
	}
	return b.abs(out), nil
}

// Artifacts are the outputs of the default build.
type Artifacts struct {
	Boot    BootArtifacts
	Kernel  string
	Modules []Module
	Image   string
	// Manifest is build/manifest.json: inputs, toolchain, outputs.
	Manifest string
	// Summary is a short human description: sizes of kernel and image.
	Summary string
	// Memory is the QEMU -m a boot of Image needs ("" = the harness's
	// default); also in the manifest as qemu_memory.
	Memory string
}

// Rel returns p relative to the repository root (for messages).
func (b *Builder) Rel(p string) string { return b.rel(p) }

// All is `mage build` with no profiles: the baseline recipe in the working
// image (build/fluid.img, build/manifest.json, the manifest inside the
// image as /manifest.json).
func (b *Builder) All(ctx context.Context) (*Artifacts, error) {
	return b.Working(ctx, recipe.Baseline, nil)
}

// compose builds the boot stages and kernel and assembles the image
// build/<imageName> holding mods, with its manifest (variant: the recipe's)
// written to build/<manifestName> and into the image; manifestName ""
// assembles an image without one.
func (b *Builder) compose(ctx context.Context, r recipe.Recipe, imageName, manifestName string, mods []Module) (*Artifacts, error) {
	var a Artifacts
	var err error
	if a.Boot, err = b.Boot(ctx); err != nil {
		return nil, err
	}
	if a.Kernel, err = b.Kernel(ctx, KernelNormal); err != nil {
		return nil, err
	}
	a.Modules = mods
	variant := r.Variant(b.opt.Light)
	var extra []image.File
	a.Memory = b.Memory()
	if manifestName != "" {
		outputs := []string{a.Boot.Stage1, a.Boot.Stage2, a.Kernel}
		var profiles []string
		for _, m := range mods {
			outputs = append(outputs, m.Path)
			profiles = append(profiles, m.Profiles...)
		}
		if a.Manifest, err = b.Manifest(manifestName, variant, outputs, profiles); err != nil {
			return nil, err
		}
		extra = append(extra, image.File{Path: "/manifest.json", Src: a.Manifest})
	}
	if a.Image, err = b.Image(ctx, ImageSpec{Name: imageName, Kernel: a.Kernel, Modules: mods, Extra: extra}); err != nil {
		return nil, err
	}
	a.Summary = fmt.Sprintf("kernel %s, image %s, %d %s modules", sizeOf(a.Kernel), sizeOf(a.Image), len(mods), variant)
	if lf := b.opt.Llama; lf != nil {
		a.Summary += fmt.Sprintf(", llama model %s (%s), boots with -m %s", lf.Model, fileutil.HumanSize(lf.ModelBytes), a.Memory)
	}
	return &a, nil
}

func sizeOf(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fileutil.HumanSize(st.Size())
}
