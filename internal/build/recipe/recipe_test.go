package recipe

import (
	"slices"
	"testing"

	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/release"
)

// The table is consistent: one name, one image and one manifest per recipe,
// none of them the working image's; every tag is a module variant the
// kernel knows; what a release ships has a manifest and a mage target that
// builds it into the working image, and its manifest variant leads back to
// it.
func TestTable(t *testing.T) {
	seen := map[string]string{}
	claim := func(what, v, by string) {
		if v == "" {
			return
		}
		if other, ok := seen[what+" "+v]; ok {
			t.Errorf("recipes %s and %s share the %s %q", other, by, what, v)
		}
		seen[what+" "+v] = by
	}
	for _, r := range All() {
		claim("name", r.Name, r.Name)
		claim("file", r.Image, r.Name)
		claim("file", r.Manifest, r.Name)
		claim("target", r.Target, r.Name)
		if r.Image == "" || r.Image == WorkingImage || r.Manifest == WorkingManifest {
			t.Errorf("recipe %s: image %q, manifest %q: each recipe has its own files", r.Name, r.Image, r.Manifest)
		}
		if _, err := modfmt.ParseVariant(r.Tag); err != nil {
			t.Errorf("recipe %s: %v", r.Name, err)
		}
		if got, ok := ByName(r.Name); !ok || got != r {
			t.Errorf("ByName(%q) = %v, %v", r.Name, got, ok)
		}
		if r.Manifest == "" {
			if _, _, err := ByVariant(r.Variant(false)); err == nil {
				t.Errorf("recipe %s has no manifest, but its variant %q is accepted", r.Name, r.Variant(false))
			}
			continue
		}
		for _, light := range []bool{false, true} {
			if got, l, err := ByVariant(r.Variant(light)); err != nil || got != r || l != light {
				t.Errorf("ByVariant(%q) = %v, %v, %v", r.Variant(light), got.Name, l, err)
			}
		}
	}
	if len(Shipped()) != 2 || Shipped()[0] != Baseline || Shipped()[1] != PGO {
		t.Errorf("a release ships %v, want the baseline and PGO recipes", Shipped())
	}
	for _, r := range Shipped() {
		if r.Manifest == "" || r.Target == "" {
			t.Errorf("shipped recipe %s: manifest %q, target %q: a release image carries a manifest and is rebuilt by a mage target", r.Name, r.Manifest, r.Target)
		}
	}
	// The release's asset names are the shipped recipes' images.
	if release.BaselineImageAsset != Baseline.Image || release.PGOImageAsset != PGO.Image {
		t.Errorf("release assets %s, %s; the recipes' images are %s, %s", release.BaselineImageAsset, release.PGOImageAsset, Baseline.Image, PGO.Image)
	}
	if got := WorkingTargets(true); !slices.Equal(got, []string{"build", "pgo"}) {
		t.Errorf("WorkingTargets(true) = %v", got)
	}
	if got := WorkingTargets(false); !slices.Equal(got, []string{"build"}) {
		t.Errorf("WorkingTargets(false) = %v", got)
	}
}
