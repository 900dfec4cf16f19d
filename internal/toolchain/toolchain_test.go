package toolchain

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLLVM makes a directory with shell-script "tools" that print the given
// clang version, so the version checks run against real executables.
func fakeLLVM(t *testing.T, clangVersion string) string {
	t.Helper()
	t.Setenv("FLUID_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	for _, r := range Requirements {
		if !r.InLLVM {
			continue
		}
		v := "LLVM version 0.0.0"
		if r.Name == "clang" {
			v = clangVersion
		}
		script := "#!/bin/sh\necho '" + v + "'\n"
		if err := os.WriteFile(filepath.Join(dir, r.Binary), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// nasm is looked up on PATH; the host need not have it (the locked
	// rootfs does), so the fake directory provides one.
	if err := os.WriteFile(filepath.Join(dir, "nasm"), []byte("#!/bin/sh\necho 'NASM version 2.16.03'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestFindAcceptsPinAndNewer(t *testing.T) {
	for _, tc := range []struct {
		version string
		major   int
		ok      bool
	}{
		{"Ubuntu clang version 18.1.3 (1ubuntu1)", 18, true},
		{"Debian clang version 19.1.7 (3~deb12u1)", 19, true},
		{"clang version 21.0.0", 21, true},
		{"Debian clang version 14.0.6", 14, false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			t.Setenv(EnvLLVM, fakeLLVM(t, tc.version))
			got, err := Find()
			if !tc.ok {
				if err == nil || !errors.Is(err, ErrMissing) {
					t.Fatalf("LLVM %d accepted, want a refusal; err=%v", tc.major, err)
				}
				msg := err.Error()
				for _, want := range []string{"LLVM 14", "LLVM 18 or newer", "mage deps"} {
					if !strings.Contains(msg, want) {
						t.Errorf("refusal does not say %q: %s", want, msg)
					}
				}
				return
			}
			if err != nil {
				if errors.Is(err, ErrMissing) && strings.Contains(err.Error(), "nasm") {
					t.Skipf("nasm not installed here: %v", err)
				}
				t.Fatal(err)
			}
			if got.LLVMMajor != tc.major {
				t.Fatalf("major = %d, want %d", got.LLVMMajor, tc.major)
			}
		})
	}
}

func TestOverrideErrorsNameTheProblem(t *testing.T) {
	t.Setenv(EnvLLVM, t.TempDir())
	_, err := Find()
	if err == nil || !strings.Contains(err.Error(), "is not a directory holding clang") {
		t.Fatalf("empty FLUID_LLVM dir: err = %v", err)
	}
	t.Setenv(EnvLLVM, "97")
	_, err = Find()
	if err == nil || !strings.Contains(err.Error(), "/usr/lib/llvm-97/bin/clang does not exist") || !strings.Contains(err.Error(), "clang-97") {
		t.Fatalf("FLUID_LLVM=97: err = %v", err)
	}
}

func TestMissingLLVMToolIsNamed(t *testing.T) {
	dir := fakeLLVM(t, "clang version 19.1.7")
	os.Remove(filepath.Join(dir, "llvm-profdata"))
	t.Setenv(EnvLLVM, dir)
	_, err := Find()
	if err == nil || !strings.Contains(err.Error(), "llvm-profdata is missing from "+dir) {
		t.Fatalf("err = %v", err)
	}
}

func TestPackagesFollowTheMajor(t *testing.T) {
	got := strings.Join(Packages(18), " ")
	for _, want := range []string{"clang-18", "lld-18", "llvm-18", "libclang-rt-18-dev", "nasm", "qemu-system-x86", "dosfstools", "mtools", "gdb"} {
		if !strings.Contains(got, want) {
			t.Errorf("Packages(18) = %s, lacks %s", got, want)
		}
	}
	p := DepsPlan{Missing: []string{"nasm", "gdb"}}
	if c := p.Command(); c != "sudo apt-get update && sudo apt-get install -y --no-install-recommends nasm gdb" {
		t.Errorf("non-root command = %q", c)
	}
}

func TestIdentityHasNoPaths(t *testing.T) {
	dir := fakeLLVM(t, "clang version 19.1.7")
	t.Setenv(EnvLLVM, dir)
	tc, err := Find()
	if err != nil {
		t.Skipf("needs nasm: %v", err)
	}
	id, err := tc.Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range id.Tools {
		if len(tool.SHA256) != 64 {
			t.Errorf("%s: sha256 %q", tool.Name, tool.SHA256)
		}
		if strings.Contains(tool.Version, dir) {
			t.Errorf("%s: identity leaks the path %s", tool.Name, dir)
		}
	}
}

func TestReleasePin(t *testing.T) {
	lt := &LockedTree{LockSHA256: strings.Repeat("a", 64)}
	clang := map[string]*Tool{"clang": {Version: "Debian clang version 18.1.8"}}
	for _, tc := range []struct {
		tc *Toolchain
		ok bool
	}{
		{&Toolchain{Mode: ModeRootfs, Lock: lt, LLVMMajor: 18, Tools: clang}, true},
		{&Toolchain{Mode: ModeContainer, Lock: lt, LLVMMajor: 18, Tools: clang}, true},
		{&Toolchain{Mode: ModeHost, LLVMMajor: 18, Tools: clang}, false},
		{&Toolchain{Mode: ModeRootfs, LLVMMajor: 18, Tools: clang}, false},
		{&Toolchain{Mode: ModeRootfs, Lock: lt, LLVMMajor: 19, Tools: clang}, false},
	} {
		err := tc.tc.CheckReleasePin()
		if (err == nil) != tc.ok {
			t.Errorf("mode %s lock %v major %d: err = %v, want ok=%v", tc.tc.Mode, tc.tc.Lock != nil, tc.tc.LLVMMajor, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "Unset "+EnvMode) {
			t.Errorf("refusal does not say what to do: %v", err)
		}
	}
}

// TestProbeCache: a second Find does not run an unchanged tool again, and a
// replaced binary (other size or mtime) is asked again.
func TestProbeCache(t *testing.T) {
	dir := fakeLLVM(t, "clang version 19.1.7")
	runs := filepath.Join(t.TempDir(), "runs")
	clang := filepath.Join(dir, "clang")
	script := "#!/bin/sh\necho x >> " + runs + "\necho 'clang version 19.1.7'\n"
	if err := os.WriteFile(clang, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvLLVM, dir)
	count := func() int { b, _ := os.ReadFile(runs); return strings.Count(string(b), "x") }
	if _, err := Find(); err != nil {
		t.Skipf("needs nasm: %v", err)
	}
	if _, err := Find(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("clang --version ran %d times for two Finds, want 1 (cached)", n)
	}
	if err := os.WriteFile(clang, []byte(script+"# new build\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tc, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("a changed clang was not probed again (%d runs)", n)
	}
	if tc.LLVMMajor != 19 {
		t.Fatalf("major %d", tc.LLVMMajor)
	}
}
