// Package recipe is the one table of Fluid OS's disk-image recipes: which
// modules go into which image, where it is written and which profiles feed
// it. internal/build builds an image from a recipe; the mage targets, the
// release command, `mage verify` and `fluid verify --rebuild`
// (internal/repro) read the same table.
//
// It imports nothing of the project's, so the fluid CLI reads it without
// the build machinery (which does not build for every platform the CLI
// ships to).
package recipe

import (
	"errors"
	"fmt"
	"strings"
)

// Profiles says which profiles feed a recipe's modules.
type Profiles int

const (
	// NoProfiles: built from the sources alone.
	NoProfiles Profiles = iota
	// Committed: each module compiled with -fprofile-instr-use from its
	// committed profile (profiles/, through build.ProfileSource); a profile
	// that no longer fits the module's sources is an error naming it.
	Committed
	// Records: instrumented modules that record a profile when they run
	// (they link the module profile runtime); `mage profile` boots them.
	Records
)

// Recipe is one named image.
type Recipe struct {
	Name string // "baseline", "o3", "pgo", "instrumented"
	// Image is the disk image under build/ a recipe build writes;
	// Manifest its manifest under build/ ("" for an image that carries
	// none: those are booted by the pipeline, never shipped).
	Image, Manifest string
	// The module flavour: modules go to build/modules/<Name>/, their
	// header carries Tag; OptLevel replaces -O2 when set.
	Tag, OptLevel string
	Profiles      Profiles
	// Target is the mage target that builds the recipe into the working
	// image (WorkingImage, WorkingManifest); "" when none does.
	Target string
	// Release: the release ships this image.
	Release bool
}

// Working image: what `go tool mage build` and `go tool mage pgo` write and
// `go tool mage qemu` boots, relative to build/.
const (
	WorkingImage    = "fluid.img"
	WorkingManifest = "manifest.json"
)

// RefreshCommand recaptures profiles/.
const RefreshCommand = "go tool mage profile"

// ErrStaleProfiles is wrapped by a build.ProfileSource's error when a
// committed profile does not fit its module's current sources.
var ErrStaleProfiles = errors.New("stale profiles")

// The table.
var (
	Baseline     = Recipe{Name: "baseline", Image: "fluid-baseline.img", Manifest: "manifest-baseline.json", Tag: "baseline", Target: "build", Release: true}
	O3           = Recipe{Name: "o3", Image: "fluid-o3.img", Tag: "O3", OptLevel: "-O3"}
	PGO          = Recipe{Name: "pgo", Image: "fluid-pgo.img", Manifest: "manifest-pgo.json", Tag: "PGO", Profiles: Committed, Target: "pgo", Release: true}
	Instrumented = Recipe{Name: "instrumented", Image: "fluid-instrumented.img", Tag: "instrumented", Profiles: Records}
)

// All lists the table in order.
func All() []Recipe { return []Recipe{Baseline, O3, PGO, Instrumented} }

// Variant is the manifest variant of the recipe's image ("baseline",
// "pgo"), "+light" added for a LIGHT=1 build.
func (r Recipe) Variant(light bool) string {
	v := strings.ToLower(r.Tag)
	if light {
		v += "+light"
	}
	return v
}

// ByName finds a recipe.
func ByName(name string) (Recipe, bool) {
	for _, r := range All() {
		if r.Name == name {
			return r, true
		}
	}
	return Recipe{}, false
}

// ByVariant finds the recipe of a manifest variant (e.g. "pgo+light") and
// says whether it was a LIGHT=1 build. Only recipes with a manifest have a
// variant a manifest can name.
func ByVariant(variant string) (r Recipe, light bool, err error) {
	base, light := strings.CutSuffix(variant, "+light")
	var names []string
	for _, r := range All() {
		if r.Manifest == "" {
			continue
		}
		if r.Variant(false) == base {
			return r, light, nil
		}
		names = append(names, fmt.Sprintf("%q", r.Variant(false)))
	}
	return Recipe{}, false, fmt.Errorf("no image recipe has the manifest variant %q (they are %s)", variant, strings.Join(names, ", "))
}

// Shipped lists the recipes a release ships, in table order.
func Shipped() []Recipe {
	var out []Recipe
	for _, r := range All() {
		if r.Release {
			out = append(out, r)
		}
	}
	return out
}

// WorkingTargets returns the mage targets that build every recipe that has
// one into the working image, in table order, leaving out the recipes fed
// by committed profiles when haveProfiles is false.
func WorkingTargets(haveProfiles bool) []string {
	var out []string
	for _, r := range All() {
		if r.Target != "" && (r.Profiles != Committed || haveProfiles) {
			out = append(out, r.Target)
		}
	}
	return out
}
