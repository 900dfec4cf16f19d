package profile

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// RuntimeSource is rt/fluid_profile_rt.c: the module-side profile hook
// (fluid_profile_dump) over compiler-rt's buffer writer. Instrumented
// modules link it; see the file's header comment.
//
//go:embed rt/fluid_profile_rt.c
var RuntimeSource []byte

// RuntimeSourceName is the file name RuntimeSource is compiled from; it is
// part of the profile's static-function names, so it never varies.
const RuntimeSourceName = "fluid_profile_rt.c"

// InstrumentFlags are the clang flags that make a module build the
// instrumented build. Everything else is identical to the optimized build.
// Value profiling stays off: its runtime needs calloc and locks, and the
// profile would carry load addresses of indirect-call targets.
func InstrumentFlags() []string {
	return []string{"-fprofile-instr-generate", "-mllvm", "-enable-value-profiling=false"}
}

// UseFlags are the clang flags of the PGO build for one module's indexed
// profile. The three warnings clang 18/19 emit for a profile that does
// not fit the source are errors here:
//
//	-Wprofile-instr-out-of-date  functions whose CFG hash changed since capture
//	-Wprofile-instr-unprofiled   a source file with no profile data at all
//	-Wprofile-instr-missing      functions the profile has no record for
func UseFlags(indexed string) []string {
	return []string{
		"-fprofile-instr-use=" + indexed,
		"-Werror=profile-instr-out-of-date",
		"-Werror=profile-instr-unprofiled",
		"-Werror=profile-instr-missing",
		// Lay basic blocks out by the profile's edge counts (ext-TSP, the
		// layout algorithm made for profiles; off by default in LLVM 18/19).
		// It changes only code layout, not the CFG the profile is matched to.
		"-mllvm", "-enable-ext-tsp-block-placement=1",
		// LLVM 18 peels the first iteration of loops whose profile shows a
		// small trip count. Here that is tail-recursion loops (fib) and
		// short inner loops (sort), and peeling costs more instructions
		// than it saves: with it, fib ran 1.037x and sort 1.065x the
		// baseline's guest instructions under PGO; without it 0.947x and
		// 0.996x (go tool mage bench, LLVM 18.1.8).
		"-mllvm", "-unroll-allow-peeling=false",
	}
}

// RuntimeArchive finds compiler-rt's i386 profile runtime of the given
// clang: libclang_rt.profile-i386.a (old layout, lib/linux/) or
// libclang_rt.profile.a in the per-target runtime directory (new layout).
func RuntimeArchive(ctx context.Context, tc *toolchain.Toolchain) (string, error) {
	const triple = "--target=i386-pc-linux-gnu"
	clang := tc.Path("clang")
	// In container mode the archive lives in the image: trust clang's answer.
	exists := func(p string) bool { return tc.Container != nil || fileExists(p) }
	query := func(arg string) (string, error) {
		cmd, err := tc.Command(ctx, []string{clang, triple, arg}, os.Environ())
		if err != nil {
			return "", err
		}
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	var tried []string
	if p, err := query("--print-file-name=libclang_rt.profile-i386.a"); err == nil {
		if filepath.IsAbs(p) && exists(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if dir, err := query("--print-runtime-dir"); err == nil {
		p := filepath.Join(dir, "libclang_rt.profile.a")
		if exists(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("compiler-rt's i386 profile runtime was not found for %s (looked for %s); install libclang-rt-<N>-dev for this LLVM (go tool mage deps)", clang, strings.Join(tried, ", "))
}

// CompileRuntime compiles RuntimeSource with clang and the module compile
// flags (which must include the instrumentation; relative -I paths are taken
// from root) into dir/fluid_profile_rt.o and returns the object's path. The source is written next to it first,
// so the object's debug/profile names do not depend on where Go runs.
func CompileRuntime(ctx context.Context, tc *toolchain.Toolchain, root string, moduleFlags []string, dir string) (string, error) {
	clang := tc.Path("clang")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("profile runtime: %w", err)
	}
	src := filepath.Join(dir, RuntimeSourceName)
	if old, err := os.ReadFile(src); err != nil || !bytes.Equal(old, RuntimeSource) {
		if err := atomicfile.WriteFile0644(src, RuntimeSource); err != nil {
			return "", fmt.Errorf("profile runtime: %w", err)
		}
	}
	obj := filepath.Join(dir, strings.TrimSuffix(RuntimeSourceName, ".c")+".o")
	args := append(append([]string{}, moduleFlags...), "-ffile-prefix-map="+dir+"/=", "-c", src, "-o", obj+".tmp")
	cmd, err := tc.Command(ctx, append([]string{clang}, args...), append(os.Environ(), "LC_ALL=C"))
	if err != nil {
		return "", fmt.Errorf("compile the module profile runtime: %w", err)
	}
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("compile the module profile runtime (%s): %w\n%s", src, err, stderr.String())
	}
	if err := os.Rename(obj+".tmp", obj); err != nil {
		return "", fmt.Errorf("profile runtime: %w", err)
	}
	return obj, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
