package committed

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
)

var _ build.ProfileSource = Dir{}

// Dir hands the build each module's text profile while summary.json fits
// the sources, and a stale-profiles error (recipe.ErrStaleProfiles, the one
// the default build falls back to the baseline on) once a module changed.
func TestDirModuleProfiles(t *testing.T) {
	root := t.TempDir()
	for p, data := range map[string]string{"modules/fib/fib.c": "int fib;\n", "modules/include/fluid_module.h": "#define X 1\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := Dir{Root: root}
	if Present(root) {
		t.Fatal("Present without profiles/summary.json")
	}
	if _, err := d.ModuleProfiles([]string{"fib"}); err == nil || errors.Is(err, recipe.ErrStaleProfiles) {
		t.Fatalf("no profiles/: got %v, want an error that is not a stale profile", err)
	}
	cur, err := SourceHashes(root, []string{"fib"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(SummaryDoc{Modules: []ModuleRecord{{Module: "fib", SourceSHA256: cur["fib"]}}})
	if err := os.MkdirAll(filepath.Join(root, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "profiles", SummaryFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if !Present(root) {
		t.Fatal("profiles/summary.json not Present")
	}
	got, err := d.ModuleProfiles([]string{"fib"})
	if want := filepath.Join(root, "profiles", "fib"+TextExt); err != nil || got["fib"] != want {
		t.Fatalf("fresh: got %v, %v; want fib at %s", got, err, want)
	}
	if err := os.WriteFile(filepath.Join(root, "modules/fib/fib.c"), []byte("int fib2;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ModuleProfiles([]string{"fib"}); !errors.Is(err, recipe.ErrStaleProfiles) {
		t.Fatalf("edited module: got %v, want recipe.ErrStaleProfiles", err)
	}
}
