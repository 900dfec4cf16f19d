package repro

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"

	"github.com/fluid-os/fluid/internal/layout"
)

// findClang returns the build's toolchain (the locked rootfs), whose clang
// the small real builds below use.
func findClang(t *testing.T) *toolchain.Toolchain {
	t.Helper()
	return toolchaintest.Find(t)
}

// clangBuilder is a small real build: every .c file under mod/ is compiled
// with clang for the kernel's target into build/<name>.o. prefixMap says
// whether -ffile-prefix-map hides the build directory, as the real build
// does; passSDE whether SOURCE_DATE_EPOCH reaches clang (which then uses it
// for __DATE__, __TIME__ and __TIMESTAMP__).
func clangBuilder(tc *toolchain.Toolchain, prefixMap, passSDE bool) Builder {
	return BuilderFunc(func(ctx context.Context, spec Spec, log io.Writer) error {
		srcs, err := filepath.Glob(filepath.Join(spec.Root, "mod", "*.c"))
		if err != nil {
			return err
		}
		sort.Strings(srcs)
		if err := os.MkdirAll(filepath.Join(spec.Root, "build"), 0o755); err != nil {
			return err
		}
		for _, src := range srcs {
			out := filepath.Join(spec.Root, "build", strings.TrimSuffix(filepath.Base(src), ".c")+".o")
			// -gno-record-gcc-switches as in the real build: Debian's clang
			// otherwise records this command line, paths and all.
			args := []string{"--target=x86_64-unknown-none-elf", "-ffreestanding", "-O2", "-g", "-gno-record-gcc-switches", "-Wno-date-time", "-c", src, "-o", out}
			if prefixMap {
				// -ffile-prefix-map alone leaves DW_AT_comp_dir (the
				// working directory, without a trailing slash) in the debug
				// info; -fdebug-compilation-dir=. fixes that.
				args = append(args, "-ffile-prefix-map="+spec.Root+"/=", "-fdebug-compilation-dir=.")
			}
			env := spec.Env
			if !passSDE {
				env = nil
				for _, kv := range spec.Env {
					if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
						env = append(env, kv)
					}
				}
			}
			cmd, err := tc.CommandIn(ctx, spec.Root, append([]string{tc.Path("clang")}, args...), env)
			if err != nil {
				return err
			}
			cmd.Stdout, cmd.Stderr = log, log
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("clang %s: %w", src, err)
			}
		}
		return nil
	})
}

const goodModule = `int add(int a, int b) { return a + b; }
const char *name(void) { return "sum"; }
`

func TestVerifyRealClang(t *testing.T) {
	clang := findClang(t)
	tests := []struct {
		name      string
		files     map[string]string
		prefixMap bool
		passSDE   bool
		wantErr   bool
		wantIn    []string // substrings the error must contain
	}{
		{
			name:      "deterministic build passes",
			files:     map[string]string{"mod/sum.c": goodModule},
			prefixMap: true,
			passSDE:   true,
		},
		{
			name: "__DATE__ __TIME__ are pinned by SOURCE_DATE_EPOCH",
			files: map[string]string{
				"mod/sum.c":   goodModule,
				"mod/stamp.c": "const char *built(void) { return __DATE__ \" \" __TIME__; }\n",
			},
			prefixMap: true,
			passSDE:   true,
		},
		{
			name: "planted __DATE__ __TIME__ in a module, SOURCE_DATE_EPOCH not passed: caught and named",
			files: map[string]string{
				"mod/sum.c":   goodModule,
				"mod/stamp.c": "const char *built(void) { return __DATE__ \" \" __TIME__; }\n",
			},
			prefixMap: true,
			wantErr:   true,
			wantIn:    []string{"build/stamp.o", "ELF section .rodata", "1 of 2 artifacts differ"},
			passSDE:   false,
		},
		{
			name:      "build directory leaking into debug info is caught",
			files:     map[string]string{"mod/sum.c": goodModule},
			prefixMap: false,
			passSDE:   true,
			wantErr:   true,
			wantIn:    []string{"build/sum.o", "ELF section .debug"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := testutil.TempTree(t, tc.files)
			var log bytes.Buffer
			res, err := Verify(context.Background(), Options{
				Source: src, WorkDir: t.TempDir(), Builder: clangBuilder(clang, tc.prefixMap, tc.passSDE),
				SourceDateEpoch: "1700000000", MinGap: 1100 * time.Millisecond, Log: &log,
			})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Verify: %v\nlog:\n%s", err, log.String())
				}
				if len(res.Same) != len(tc.files) {
					t.Errorf("identical artifacts = %d, want %d", len(res.Same), len(tc.files))
				}
				if res.BuildB <= 0 || res.Total < res.BuildA+res.BuildB {
					t.Errorf("timings not recorded: %+v", res)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify passed a nondeterministic build\nlog:\n%s", log.String())
			}
			if !errors.Is(err, ErrNotReproducible) {
				t.Errorf("err = %v, want ErrNotReproducible", err)
			}
			if _, lookErr := exec.LookPath("diffoscope"); lookErr == nil {
				for _, d := range res.Differences {
					if !strings.Contains(d.Diffoscope, "---") {
						t.Errorf("diffoscope is installed but %s has no report: %q", d.Path, d.Diffoscope)
					}
				}
				if !strings.Contains(log.String(), "verify: diffoscope build/") {
					t.Errorf("diffoscope report not logged:\n%s", log.String())
				}
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			t.Logf("verify failed as it should:\n%v", err)
		})
	}
}

// TestVerifyEnvironmentDiffers checks the two builds really differ in
// directory, TZ, LANG, umask and start time, while SOURCE_DATE_EPOCH is shared.
func TestVerifyEnvironmentDiffers(t *testing.T) {
	src := testutil.TempTree(t, map[string]string{"a.txt": "x"})
	var specs []Spec
	var starts []time.Time
	b := BuilderFunc(func(ctx context.Context, spec Spec, log io.Writer) error {
		specs = append(specs, spec)
		starts = append(starts, time.Now())
		if _, err := os.Stat(filepath.Join(spec.Root, "a.txt")); err != nil {
			return fmt.Errorf("source not copied: %w", err)
		}
		return os.WriteFile(filepath.Join(spec.Root, "build.txt"), nil, 0o644)
	})
	// build.txt is outside build/, so there are no artifacts: that is an error.
	_, err := Verify(context.Background(), Options{Source: src, WorkDir: t.TempDir(), Builder: b, SourceDateEpoch: "42", MinGap: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no artifacts") {
		t.Errorf("a build without artifacts: err = %v", err)
	}
	if len(specs) != 2 {
		t.Fatalf("builds = %d", len(specs))
	}
	a, bb := specs[0], specs[1]
	for _, k := range []string{"TZ", "LANG", "LC_ALL", "PWD"} {
		if a.Getenv(k) == bb.Getenv(k) {
			t.Errorf("%s is the same in both builds: %q", k, a.Getenv(k))
		}
	}
	if a.Getenv("SOURCE_DATE_EPOCH") != "42" || bb.Getenv("SOURCE_DATE_EPOCH") != "42" {
		t.Errorf("SOURCE_DATE_EPOCH not shared: %q %q", a.Getenv("SOURCE_DATE_EPOCH"), bb.Getenv("SOURCE_DATE_EPOCH"))
	}
	if a.Umask == bb.Umask || a.Root == bb.Root || len(a.Root) == len(bb.Root) {
		t.Errorf("umask/root not varied: %+v %+v", a, bb)
	}
	if gap := starts[1].Sub(starts[0]); gap < 290*time.Millisecond {
		t.Errorf("builds started %s apart, want >= 300ms", gap)
	}
}

func TestCopyTreeFollowsGit(t *testing.T) {
	testutil.NeedTools(t, "git")
	src := testutil.TempTree(t, map[string]string{
		".gitignore":      "build/\n*.tmp\n",
		"kernel/main.c":   "int x;\n",
		"build/old.o":     "stale",
		"notes.tmp":       "ignored",
		"new/untracked.c": "int y;\n",
	})
	git := func(args ...string) string { return gitIn(t, src, args...) }
	git("init", "-q")
	git("add", ".gitignore", "kernel/main.c")
	git("commit", "-q", "-m", "init")
	dst := filepath.Join(t.TempDir(), "copy")
	if err := CopyTree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"kernel/main.c": true, "new/untracked.c": true, ".git/HEAD": true, "build/old.o": false, "notes.tmp": false} {
		_, err := os.Stat(filepath.Join(dst, name))
		if got := err == nil; got != want {
			t.Errorf("%s copied = %v, want %v", name, got, want)
		}
	}
	// A CI checkout of a tag or pull request: detached, no branch, every ref
	// packed, so .git/refs/ holds only empty directories. The copy must
	// still be a repository at the same commit (found by `mage rehearse`:
	// the rebuild's manifest said commit "unknown").
	head := strings.TrimSpace(git("rev-parse", "HEAD"))
	git("checkout", "-q", "--detach")
	git("tag", "v1.0.0")
	git("branch", "-q", "-D", strings.TrimSpace(git("for-each-ref", "--format=%(refname:short)", "refs/heads")))
	git("pack-refs", "--all")
	detached := filepath.Join(t.TempDir(), "detached")
	if err := CopyTree(context.Background(), src, detached); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", detached, "rev-parse", "HEAD").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != head {
		t.Errorf("copy of a detached checkout with packed refs: git rev-parse HEAD = %q, %v; want %s", out, err, head)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	sde, err := sourceDateEpoch(context.Background(), Options{Source: src})
	if err != nil || sde != gitEpoch {
		t.Errorf("SOURCE_DATE_EPOCH from last commit = %q, %v; want %s", sde, err, gitEpoch)
	}
}

func TestLocateDiskImage(t *testing.T) {
	img := make([]byte, (layout.Part1LBA+8)*layout.SectorSize)
	img[510], img[511] = 0x55, 0xAA
	binary.LittleEndian.PutUint32(img[440:], layout.DiskSignature)
	tests := []struct {
		off  int64
		want string
	}{
		{100, "stage 1"},
		{450, "partition table"},
		{2 * 512, "stage 2 (LBA 2)"},
		{64*512 + 8, "kernel header"},
		{70 * 512, "kernel payload (LBA 70"},
		{layout.Part1LBA*512 + 3, "FAT32 partition 1 (partition offset 0x3)"},
	}
	for _, tc := range tests {
		if got := Locate(img, tc.off); !strings.Contains(got, tc.want) {
			t.Errorf("Locate(%d) = %q, want it to contain %q", tc.off, got, tc.want)
		}
	}
	if got := Locate([]byte("plain text"), 3); got != "" {
		t.Errorf("Locate on text = %q, want empty", got)
	}
}

func TestCompareTreesMissingAndExcluded(t *testing.T) {
	a := testutil.TempTree(t, map[string]string{"build/x.bin": "1", "build/only-a.bin": "a", "build/.lock": "1", "build/serial/boot.log": "t1"})
	b := testutil.TempTree(t, map[string]string{"build/x.bin": "1", "build/only-b.bin": "b", "build/.lock": "2", "build/serial/boot.log": "t2"})
	c, err := CompareTrees(context.Background(), a, b, "build")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range c.Differences {
		got = append(got, d.String())
	}
	want := []string{"build/only-a.bin: only in build A", "build/only-b.bin: only in build B"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("differences = %q, want %q", got, want)
	}
	if len(c.Same) != 1 || c.Same[0].Path != "build/x.bin" {
		t.Errorf("same = %+v", c.Same)
	}
}

func TestCompareManifest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string { return testutil.WriteFile(t, filepath.Join(dir, name), body) }
	a := write("a.json", `{"commit":"abc","outputs":{"build/kernel.elf":{"sha256":"11"},"build/fluid.img":{"sha256":"22"}}}`)
	same := write("same.json", `{"commit":"abc","outputs":{"build/kernel.elf":{"sha256":"11"},"build/fluid.img":{"sha256":"22"}}}`)
	changed := write("b.json", `{"commit":"abc","outputs":{"build/kernel.elf":{"sha256":"99"},"build/fluid.img":{"sha256":"22"}}}`)
	reordered := write("c.json", `{"outputs":{"build/fluid.img":{"sha256":"22"},"build/kernel.elf":{"sha256":"11"}},"commit":"abc"}`)
	if err := CompareManifest(a, same); err != nil {
		t.Errorf("identical manifests: %v", err)
	}
	err := CompareManifest(a, changed)
	if err == nil || !strings.Contains(err.Error(), `.outputs["build/kernel.elf"].sha256: "11" vs "99"`) {
		t.Errorf("changed manifest: %v", err)
	}
	if d, _, err := CompareFiles(a, changed); err != nil || !strings.Contains(d.String(), `in JSON .outputs["build/kernel.elf"].sha256: "11" vs "99"`) {
		t.Errorf("CompareFiles on manifests: %v, %v", d, err)
	}
	err = CompareManifest(a, reordered)
	if err == nil || !strings.Contains(err.Error(), "not canonical") {
		t.Errorf("reordered manifest: %v", err)
	}
}

func TestCompareImage(t *testing.T) {
	dir := t.TempDir()
	img := make([]byte, (layout.Part1LBA+4)*layout.SectorSize)
	img[510], img[511] = 0x55, 0xAA
	binary.LittleEndian.PutUint32(img[440:], layout.DiskSignature)
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	if err := os.WriteFile(a, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CompareImage(a, b); err != nil {
		t.Fatalf("identical images: %v", err)
	}
	img[layout.Part1LBA*layout.SectorSize+0x43] ^= 1 // a FAT volume serial byte
	if err := os.WriteFile(b, img, 0o644); err != nil {
		t.Fatal(err)
	}
	err := CompareImage(a, b)
	if !errors.Is(err, ErrNotReproducible) || !strings.Contains(err.Error(), "FAT32 partition 1 (partition offset 0x43)") {
		t.Errorf("changed image: %v", err)
	}
}
