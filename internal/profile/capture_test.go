package profile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"

	"github.com/fluid-os/fluid/internal/build"
)

// fibCalls is how often computing fib(n) naively enters fib():
// 2*F(n+1) - 1.
func fibCalls(n int) uint64 {
	a, b := uint64(0), uint64(1) // F(0), F(1)
	for i := 0; i < n+1; i++ {
		a, b = b, a+b
	}
	return 2*a - 1 // a = F(n+1)
}

func TestFibCalls(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want uint64
	}{{0, 1}, {1, 1}, {2, 3}, {18, 8361}, {20, 21891}, {27, 635621}} {
		if got := fibCalls(tt.n); got != tt.want {
			t.Errorf("fibCalls(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// newBuilder makes a LIGHT=1 builder with its own output directory, or
// skips when the toolchain or QEMU is missing.
func newBuilder(t *testing.T) *build.Builder {
	t.Helper()
	qemutest.Need(t)
	tc := toolchaintest.Find(t)
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("FLUID_TEST_BUILD_DIR") // reuse a build dir between runs
	if out == "" {
		out = t.TempDir()
	}
	b := buildtest.New(t, build.Options{Root: root, Out: out, Light: true, Toolchain: tc, Jobs: 2,
		Version: "test", Commit: "test", SourceDateEpoch: 1})
	t.Cleanup(buildtest.Lock(t, b))
	return b
}

// TestCaptureFibExactAndDeterministic boots the instrumented modules twice
// under -icount and checks (1) that the captured fib profile, read back by
// this toolchain's llvm-profdata, holds the closed-form call count and
// (2) that both captures produce byte-identical profiles/.
func TestCaptureFibExactAndDeterministic(t *testing.T) {
	b := newBuilder(t)
	ctx := context.Background()
	dirs := []string{filepath.Join(t.TempDir(), "profiles"), filepath.Join(t.TempDir(), "profiles")}
	for _, d := range dirs {
		p := &Pipeline{B: b, Dir: d, Log: testutil.LogWriter(t)}
		if err := p.Profile(ctx); err != nil {
			t.Fatalf("profile: %v", err)
		}
	}
	doc, err := ReadSummary(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	var calls uint64
	for _, m := range doc.Modules {
		if m.Module == "fib" {
			calls = m.Calls
		}
	}
	if calls == 0 {
		t.Fatalf("no fib module run in %+v", doc.Modules)
	}
	// modules/fib/fib.c computes fib(18) with LIGHT=1, once per call.
	want := calls * fibCalls(18)
	out, err := toolchaintest.Run(toolchaintest.Find(t), "", "llvm-profdata", "show", "--all-functions", "--counts",
		"--function=fib", filepath.Join(dirs[0], "fib"+TextExt))
	if err != nil {
		t.Fatalf("llvm-profdata show: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^  fib:\n(?:.*\n)*?\s+Function count: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no count for fib in:\n%s", out)
	}
	got, _ := strconv.ParseUint(string(m[1]), 10, 64)
	if got != want {
		t.Fatalf("fib entered %d times, want %d calls x 2*F(19)-1 = %d\n%s", got, calls, want, out)
	}
	t.Logf("fib: %d entries = %d x (2*F(19)-1), as llvm-profdata shows", got, calls)

	a, c := snapshot(t, dirs[0]), snapshot(t, dirs[1])
	if !equalMaps(a, c) {
		for k := range a {
			if a[k] != c[k] {
				t.Errorf("%s differs between two captures", k)
			}
		}
		t.Fatal("two captures of the same commit are not byte-identical")
	}
	t.Logf("two captures byte-identical: %d files", len(a))

	// The real serial log, cut inside the fib profraw frame or with one
	// payload byte changed, must be refused naming fib.
	logData, err := os.ReadFile(filepath.Join(b.Out(), "profile", "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	begin := bytes.Index(logData, []byte("kind=profraw module=fib "))
	if begin < 0 {
		t.Fatalf("no fib profraw frame in the serial log")
	}
	payload := begin + bytes.IndexByte(logData[begin:], '\n') + 1
	flipped := bytes.Clone(logData)
	flipped[payload+10] ^= 0x01 // base64 letter -> another letter
	names := make([]string, 0, len(doc.Modules))
	for _, m := range doc.Modules {
		names = append(names, m.Module)
	}
	for name, data := range map[string][]byte{"truncated": logData[:payload+100], "corrupted": flipped} {
		bad := filepath.Join(t.TempDir(), name+".log")
		if err := os.WriteFile(bad, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadLog(bad, names, true)
		if err == nil || !strings.Contains(err.Error(), "module fib profraw") {
			t.Errorf("%s real capture: got %v, want a refusal naming fib's profraw frame", name, err)
		} else {
			t.Logf("%s real capture refused: %v", name, err)
		}
	}
}
