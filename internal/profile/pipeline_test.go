package profile

import (
	"errors"
	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckFresh(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"modules/fib/fib.c":              "int fib;\n",
		"modules/sort/sort.c":            "int sort;\n",
		"modules/lib/runtime.c":          "int rt;\n",
		"modules/include/fluid_module.h": "#define X 1\n",
	})
	cur, err := SourceHashes(root, []string{"fib", "sort"})
	if err != nil {
		t.Fatal(err)
	}
	doc := &SummaryDoc{Modules: []ModuleRecord{
		{Module: "fib", SourceSHA256: cur["fib"]},
		{Module: "sort", SourceSHA256: cur["sort"]},
	}}
	if err := CheckFresh(doc, root, []string{"fib", "sort"}); err != nil {
		t.Fatalf("fresh profiles reported stale: %v", err)
	}
	tests := []struct {
		name    string
		edit    map[string]string
		modules []string
		stale   []string
	}{
		{"module source edited", map[string]string{"modules/sort/sort.c": "int sort2;\n"}, []string{"fib", "sort"}, []string{"sort"}},
		{"shared runtime edited", map[string]string{"modules/lib/runtime.c": "int rt2;\n"}, []string{"fib", "sort"}, []string{"fib", "sort"}},
		{"ABI header edited", map[string]string{"modules/include/fluid_module.h": "#define X 2\n"}, []string{"fib", "sort"}, []string{"fib", "sort"}},
		{"new module without profile", map[string]string{"modules/zip/zip.c": "int zip;\n"}, []string{"fib", "sort", "zip"}, []string{"zip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := t.TempDir()
			if err := os.CopyFS(r, os.DirFS(root)); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, r, tt.edit)
			err := CheckFresh(doc, r, tt.modules)
			var se *StaleError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a StaleError", err)
			}
			if strings.Join(se.Modules, ",") != strings.Join(tt.stale, ",") {
				t.Errorf("stale modules %v, want %v", se.Modules, tt.stale)
			}
			if !strings.Contains(err.Error(), RefreshCommand) {
				t.Errorf("error lacks the refresh command: %v", err)
			}
		})
	}
}

// TestUseFlagsRejectOutOfDateProfile compiles a function with the PGO flags
// against a text profile recorded for a different version of it: clang
// must fail, naming the out-of-date profile, rather than silently ignore it.
func TestUseFlagsRejectOutOfDateProfile(t *testing.T) {
	tc := toolchaintest.Find(t)
	clang, profdataBin := tc.Path("clang"), tc.Path("llvm-profdata")
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	writeFiles(t, dir, map[string]string{
		"m.c": "int f(int x) { if (x > 3) return x * 2; return x; }\n",
		// Recorded for a one-counter f (no branch): the hash cannot match.
		"m.proftext": "f\n# Func Hash:\n24\n# Num Counters:\n1\n# Counter Values:\n100\n\n",
	})
	indexed := filepath.Join(dir, "m.profdata")
	if out, err := toolchaintest.Run(tc, dir, profdataBin, "merge", "-o", indexed, filepath.Join(dir, "m.proftext")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	compile := func(profile string) ([]byte, error) {
		args := append([]string{"--target=x86_64-unknown-none-elf", "-ffreestanding", "-O2", "-c", src, "-o", filepath.Join(dir, "m.o")}, build.UseFlags(profile)...)
		return toolchaintest.Run(tc, dir, append([]string{clang}, args...)...)
	}
	out, err := compile(indexed)
	if err == nil {
		t.Fatalf("clang accepted an out-of-date profile:\n%s", out)
	}
	if !strings.Contains(string(out), "profile-instr-out-of-date") {
		t.Fatalf("clang failed, but not for the out-of-date profile:\n%s", out)
	}

	// The matching profile (recorded from the same source) compiles.
	writeFiles(t, dir, map[string]string{"m.proftext": ""})
	if out, err := toolchaintest.Run(tc, dir, clang, "--target=x86_64-unknown-none-elf", "-ffreestanding", "-O2", "-fprofile-instr-generate", "-Xclang", "-disable-llvm-passes",
		"-S", "-emit-llvm", src, "-o", filepath.Join(dir, "m.ll")); err != nil {
		t.Fatalf("instrumented compile: %v\n%s", err, out)
	}
	ll, err := os.ReadFile(filepath.Join(dir, "m.ll"))
	if err != nil {
		t.Fatal(err)
	}
	hash := funcHash(t, string(ll))
	writeFiles(t, dir, map[string]string{"m.proftext": "f\n# Func Hash:\n" + hash + "\n# Num Counters:\n2\n# Counter Values:\n100\n90\n\n"})
	if out, err := toolchaintest.Run(tc, dir, profdataBin, "merge", "-o", indexed, filepath.Join(dir, "m.proftext")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := compile(indexed); err != nil {
		t.Fatalf("clang refused the matching profile: %v\n%s", err, out)
	}
}

// funcHash finds f's CFG hash in instrumented IR: the i64 argument of its
// llvm.instrprof.increment call.
func funcHash(t *testing.T, ll string) string {
	t.Helper()
	for _, line := range strings.Split(ll, "\n") {
		if strings.Contains(line, "@llvm.instrprof.increment(ptr @__profn_f, i64 ") {
			rest := line[strings.Index(line, "i64 ")+4:]
			return rest[:strings.IndexAny(rest, ",)")]
		}
	}
	t.Fatalf("no instrprof.increment for f in:\n%s", ll)
	return ""
}

// TestCheckFreshNamesUnfinished: a module that did not pass its capture
// run is recorded without a profile; the PGO build's check names it with
// the kernel's reason.
func TestCheckFreshNamesUnfinished(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"modules/fib/fib.c": "int fib;\n", "modules/spin/spin.c": "int spin;\n"})
	cur, err := SourceHashes(root, []string{"fib", "spin"})
	if err != nil {
		t.Fatal(err)
	}
	doc := &SummaryDoc{Modules: []ModuleRecord{
		{Module: "fib", Result: "ok", SourceSHA256: cur["fib"], Profile: "fib" + TextExt},
		{Module: "spin", Result: "timeout", Why: "timed out after 200 ms (at spin+0x2)", SourceSHA256: cur["spin"]},
	}}
	err = CheckFresh(doc, root, []string{"fib", "spin"})
	var se *StaleError
	if !errors.As(err, &se) || strings.Join(se.Modules, ",") != "spin" ||
		!strings.Contains(se.Why["spin"], "did not pass its capture run (timed out after 200 ms (at spin+0x2))") {
		t.Fatalf("CheckFresh: %v", err)
	}
}
