package build

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/fluid-os/fluid/"

// deps lists the packages of this module that pkg depends on (itself
// included), as `go list -deps` sees them for the host platform.
func deps(t *testing.T, root, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "./"+pkg)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v", pkg, err)
	}
	var own []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, module) {
			own = append(own, strings.TrimPrefix(p, module))
		}
	}
	return own
}

// TestNothingBelowMageImportsProfileToBuildAnImage: images are built from
// the recipe table (internal/build/recipe) by internal/build; profiles
// enter through build.ProfileSource (implemented over profiles/ by
// internal/profile/committed). So the build, the rebuild check, the CLI and
// the release command never depend on the profile pipeline
// (internal/profile: capture, QEMU, frames); the CLI and internal/repro not
// even on internal/build (which does not build for every platform the CLI
// ships to), only on the table; and the table imports nothing of the
// project's.
func TestNothingBelowMageImportsProfileToBuildAnImage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rules := []struct {
		pkg    string
		banned []string
	}{
		{"internal/build", []string{"internal/profile"}},
		{"internal/repro", []string{"internal/profile", "internal/build"}},
		{"cmd/fluid", []string{"internal/profile", "internal/build"}},
		{"cmd/fluid-release", []string{"internal/profile"}},
	}
	for _, r := range rules {
		got := deps(t, root, r.pkg)
		for _, b := range r.banned {
			if slices.Contains(got, b) {
				t.Errorf("%s depends on %s (its dependencies: %s)", r.pkg, b, strings.Join(got, " "))
			}
		}
	}
	if got := deps(t, root, "internal/build/recipe"); !slices.Equal(got, []string{"internal/build/recipe"}) {
		t.Errorf("the recipe table imports packages of the project: %v", got)
	}
}

// TestOneWayToRunTheToolchain: every toolchain binary runs through the
// build's step runner (Builder.command, used by the cached steps and by
// Output): no other non-test file outside internal/toolchain and
// internal/container calls a toolchain's Command, and the pipeline packages
// that used to run llvm-profdata and clang by hand import no os/exec.
func TestOneWayToRunTheToolchain(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	noExec := map[string]bool{"internal/profile": true, "internal/profile/committed": true, "internal/bench": true}
	fset := token.NewFileSet()
	var checked int
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			switch rel {
			case "build", ".git", "tools", "internal/toolchain", "internal/container":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || rel == "internal/build/step.go" {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		for _, im := range f.Imports {
			if im.Path.Value == `"os/exec"` && noExec[filepath.ToSlash(filepath.Dir(rel))] {
				t.Errorf("%s imports os/exec: run toolchain binaries as build steps (Builder.Step, Builder.Output)", rel)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if ok && sel.Sel.Name == "Command" && isToolchain(sel.X) {
				t.Errorf("%s:%d runs a toolchain binary outside the build's step runner (use Builder.Step or Builder.Output)", rel, fset.Position(call.Pos()).Line)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d Go files", checked)
	}
}

// isToolchain recognises the expressions that hold a *toolchain.Toolchain
// in this code base: tc, x.tc, x.Toolchain and x.Toolchain().
func isToolchain(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.Ident:
		return x.Name == "tc"
	case *ast.SelectorExpr:
		return x.Sel.Name == "tc" || x.Sel.Name == "Toolchain"
	case *ast.CallExpr:
		return isToolchain(x.Fun)
	}
	return false
}
