package build

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/manifest"
)

// fakeSource is a ProfileSource whose profiles are fresh or stale.
type fakeSource struct{ stale bool }

func (f fakeSource) ModuleProfiles(modules []string) (map[string]string, error) {
	if f.stale {
		return nil, fmt.Errorf("%w: modules/fib changed", recipe.ErrStaleProfiles)
	}
	out := map[string]string{}
	for _, m := range modules {
		out[m] = "profiles/" + m + ".proftext"
	}
	return out, nil
}

// TestWorkingRecipe: with no marker between stages, the working image keeps
// the recipe its own manifest names (so `mage build` and `mage qemu` after
// `mage pgo` keep the PGO modules), goes back to the baseline with a note
// when the committed profiles went stale, and is the baseline in a fresh
// tree.
func TestWorkingRecipe(t *testing.T) {
	b, _ := testBuilder(t)
	write(t, filepath.Join(b.root, "modules", "fib", "fib.c"), "int x;\n")
	check := func(what string, src ProfileSource, want recipe.Recipe, wantNote bool) {
		t.Helper()
		r, note, err := b.WorkingRecipe(src)
		if err != nil || r != want || (note != "") != wantNote {
			t.Errorf("%s: WorkingRecipe = %s, note %q, %v; want %s (note: %v)", what, r.Name, note, err, want.Name, wantNote)
		}
	}
	check("fresh tree", fakeSource{}, recipe.Baseline, false)
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"pgo", "pgo+light"} {
		m := &manifest.Manifest{Variant: v}
		m.Normalize()
		if err := m.Write(filepath.Join(b.out, recipe.WorkingManifest)); err != nil {
			t.Fatal(err)
		}
		check(v+" image", fakeSource{}, recipe.PGO, false)
		check(v+" image, stale profiles", fakeSource{stale: true}, recipe.Baseline, true)
		check(v+" image, no profile source", nil, recipe.Baseline, false)
	}
	m := &manifest.Manifest{Variant: "baseline"}
	m.Normalize()
	if err := m.Write(filepath.Join(b.out, recipe.WorkingManifest)); err != nil {
		t.Fatal(err)
	}
	check("baseline image", fakeSource{}, recipe.Baseline, false)
	_, note, _ := b.WorkingRecipe(fakeSource{})
	if strings.Contains(note, "baseline") {
		t.Errorf("note %q for a baseline image", note)
	}
}
