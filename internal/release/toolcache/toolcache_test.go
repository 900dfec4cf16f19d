package toolcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/testutil"
)

func TestName(t *testing.T) {
	for tool, want := range map[Tool]string{Cosign: "cosign", Goreleaser: "goreleaser", Act: "act", "example.com/x/v12": "x"} {
		if got := tool.Name(); got != want {
			t.Errorf("%s.Name() = %q, want %q", tool, got, want)
		}
	}
}

// Two small tools in a tools module of their own, standing in for cosign
// and goreleaser: built by the real `go build`, in a second or two.
const (
	alpha Tool = "example.com/faketools/cmd/alpha"
	beta  Tool = "example.com/faketools/beta/v2"
)

var fakeTools = []Tool{alpha, beta}

// fakeRelease stands in for Release, fakeOther (gamma) for Rehearse: like
// tools/rehearse, it is a module nested in the directory of the first.
const gamma Tool = "example.com/othertools/gamma"

var (
	fakeRelease = Module{Dir: "tools", Tools: fakeTools}
	fakeOther   = Module{Dir: "tools/other", Tools: []Tool{gamma}}
)

// fakeRepo makes a repository root with go.mod, a tools module holding
// alpha and beta and a second one, tools/other, holding gamma; the tools
// print their names.
func fakeRepo(t *testing.T) string {
	t.Helper()
	return testutil.TempTree(t, map[string]string{
		"go.mod":                    "module example.com/repo\n\ngo 1.26\n",
		"tools/go.mod":              "module example.com/faketools\n\ngo 1.26\n",
		"tools/cmd/alpha/main.go":   "package main\n\nfunc main() { println(\"alpha\") }\n",
		"tools/beta/v2/main.go":     "package main\n\nfunc main() { println(\"beta\") }\n",
		"tools/beta/v2/unused.go":   "package main\n\nvar _ = 1\n",
		"tools/cmd/alpha/second.go": "package main\n\nvar _ = 2\n",
		"tools/other/go.mod":        "module example.com/othertools\n\ngo 1.26\n",
		"tools/other/gamma/main.go": "package main\n\nfunc main() { println(\"gamma\") }\n",
	})
}

// countedEnsure runs ensure for want of the release module in root and
// returns the binaries, what it logged and how many go builds it ran,
// failing t on an error.
func countedEnsure(t *testing.T, root string, want Tool) (map[Tool]string, string, int64) {
	t.Helper()
	var log logRecorder
	before := builds.Load()
	bins, err := ensure(context.Background(), root, fakeRelease, want, log.log)
	if err != nil {
		t.Fatal(err)
	}
	return bins, log.String(), builds.Load() - before
}

// pinnedRepo is a fresh cache (useCache) and a fakeRepo whose tools/go.sum
// pins one made-up module version.
func pinnedRepo(t *testing.T) (cache, root string) {
	t.Helper()
	cache, root = useCache(t), fakeRepo(t)
	testutil.WriteFile(t, filepath.Join(root, "tools", "go.sum"), "a v1 h1:x\n")
	return cache, root
}

// useCache points the tool cache at a fresh directory for this test.
func useCache(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Setenv("FLUID_CACHE_DIR", d)
	return d
}

// logRecorder collects the log lines of Ensure.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) log(s string) { r.mu.Lock(); r.lines = append(r.lines, s); r.mu.Unlock() }

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func runTool(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return strings.TrimSpace(string(out))
}

// The cache directory follows the pins: another go.sum, another directory;
// and it lives in the per-user cache, not in the repository.
func TestDirFollowsPins(t *testing.T) {
	cache, root := pinnedRepo(t)
	d1, err := Dir(root, fakeRelease)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(d1) != filepath.Join(cache, "tools") {
		t.Fatalf("Dir = %s, want a directory in %s", d1, filepath.Join(cache, "tools"))
	}
	os.WriteFile(filepath.Join(root, "tools", "go.sum"), []byte("a v2 h1:y\n"), 0o644)
	d2, _ := Dir(root, fakeRelease)
	if d1 == d2 {
		t.Fatal("changing tools/go.sum kept the cache directory")
	}
	os.WriteFile(filepath.Join(root, "tools", "go.mod"), []byte("module example.com/faketools\n\ngo 1.26\n// another pin\n"), 0o644)
	if d3, _ := Dir(root, fakeRelease); d3 == d2 {
		t.Fatal("changing tools/go.mod kept the cache directory")
	}
	if got, err := fileutil.FindRoot(filepath.Join(root, "tools", "cmd")); err != nil || got != root {
		t.Fatalf("RepoRoot = %q, %v", got, err)
	}
	t.Setenv("FLUID_CACHE_DIR", "")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(cache, "xdg"))
	if got, err := CacheRoot(); err != nil || got != filepath.Join(cache, "xdg", "fluid-os") {
		t.Fatalf("without FLUID_CACHE_DIR, CacheRoot = %q, %v; want fluid-os in the user cache dir", got, err)
	}
}

// Each tools module has a cache directory of its own, keyed by its own
// go.mod and go.sum: a change of one module's pins moves only its directory.
func TestDirPerModule(t *testing.T) {
	cache, root := pinnedRepo(t)
	os.WriteFile(filepath.Join(root, "tools", "other", "go.sum"), []byte("b v1 h1:x\n"), 0o644)
	dirs := func() (string, string) {
		t.Helper()
		rel, err := Dir(root, fakeRelease)
		if err != nil {
			t.Fatal(err)
		}
		other, err := Dir(root, fakeOther)
		if err != nil {
			t.Fatal(err)
		}
		return rel, other
	}
	rel, other := dirs()
	if rel == other {
		t.Fatalf("both modules use the cache directory %s", rel)
	}
	for _, d := range []string{rel, other} {
		if filepath.Dir(d) != filepath.Join(cache, "tools") {
			t.Fatalf("cache directory %s is not in %s", d, filepath.Join(cache, "tools"))
		}
	}
	steps := []struct {
		file       string
		data       string
		movesOther bool // else it moves the release directory
	}{
		{"tools/other/go.mod", "module example.com/othertools\n\ngo 1.26\n// another pin\n", true},
		{"tools/other/go.sum", "b v2 h1:y\n", true},
		{"tools/go.mod", "module example.com/faketools\n\ngo 1.26\n// another pin\n", false},
		{"tools/go.sum", "a v2 h1:y\n", false},
	}
	for _, s := range steps {
		os.WriteFile(filepath.Join(root, filepath.FromSlash(s.file)), []byte(s.data), 0o644)
		rel2, other2 := dirs()
		if s.movesOther && (rel2 != rel || other2 == other) || !s.movesOther && (rel2 == rel || other2 != other) {
			t.Fatalf("changing %s: release directory %s -> %s, other %s -> %s; want only the %s one to move",
				s.file, rel, rel2, other, other2, map[bool]string{true: "other", false: "release"}[s.movesOther])
		}
		rel, other = rel2, other2
	}
}

// The key of tools/ is the one from before there were more modules (its
// go.mod, go.sum, Go version, platform, recipe, nothing about the module's
// directory), so that the release tools already cached stay valid.
func TestReleaseKeyUnchanged(t *testing.T) {
	cache, root := pinnedRepo(t)
	got, err := Dir(root, fakeRelease)
	if err != nil {
		t.Fatal(err)
	}
	mod, _ := os.ReadFile(filepath.Join(root, "tools", "go.mod"))
	sum, _ := os.ReadFile(filepath.Join(root, "tools", "go.sum"))
	v, err := goVersion(filepath.Join(root, "tools"), buildEnv())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, part := range []string{string(mod), string(sum), v, runtime.GOOS + "/" + runtime.GOARCH,
		"go build -o DIR/ -ldflags=-s -w CGO_ENABLED=0 GOFLAGS= (1)"} {
		fmt.Fprintf(h, "%d\n%s", len(part), part)
	}
	if want := filepath.Join(cache, "tools", hex.EncodeToString(h.Sum(nil)[:8])); got != want {
		t.Fatalf("Dir(tools) = %s, want %s (the key from before the split)", got, want)
	}
}

// Tools of different modules are built by different `go build`s into
// different directories; ensuring one module's tool neither looks at nor
// builds another module's tools; a module that fails to build does not
// keep EnsureAllModules from the others.
func TestModulesBuildApart(t *testing.T) {
	cache := useCache(t)
	ctx := context.Background()
	root := fakeRepo(t)
	var log logRecorder
	before := builds.Load()
	bins, err := ensureModules(ctx, root, []Module{fakeRelease, fakeOther}, log.log)
	if err != nil {
		t.Fatal(err)
	}
	if n := builds.Load() - before; n != 2 {
		t.Fatalf("two modules took %d go builds, want 2; log:\n%s", n, log.String())
	}
	for _, want := range []string{"building alpha and beta from tools/go.mod", "building gamma from tools/other/go.mod"} {
		if !strings.Contains(log.String(), want) {
			t.Fatalf("log does not say %q:\n%s", want, log.String())
		}
	}
	t.Logf("log:\n%s", log.String())
	for _, tool := range []Tool{alpha, beta, gamma} {
		if got := runTool(t, bins[tool]); got != tool.Name() {
			t.Fatalf("%s printed %q", tool.Name(), got)
		}
	}
	relDir, otherDir := filepath.Dir(bins[alpha]), filepath.Dir(bins[gamma])
	if relDir == otherDir || filepath.Dir(bins[beta]) != relDir {
		t.Fatalf("alpha in %s, beta in %s, gamma in %s: want alpha and beta together, gamma apart", relDir, filepath.Dir(bins[beta]), otherDir)
	}
	if filepath.Dir(otherDir) != filepath.Join(cache, "tools") {
		t.Fatalf("gamma's directory %s is not in %s", otherDir, filepath.Join(cache, "tools"))
	}
	if _, err := os.Stat(filepath.Join(relDir, gamma.file())); err == nil {
		t.Fatalf("gamma was also built into the release tools' directory %s", relDir)
	}
	if m := readManifest(otherDir); len(m.Tools) != 1 || m.Tools["gamma"].Package != string(gamma) {
		t.Fatalf("gamma's manifest lists %v, want gamma alone", m.Tools)
	}

	// With the release tools gone, gamma is still there without a build,
	// and nothing is said about them.
	os.Remove(bins[alpha])
	var log2 logRecorder
	before = builds.Load()
	got, err := ensure(ctx, root, fakeOther, gamma, log2.log)
	if err != nil || got[gamma] != bins[gamma] || builds.Load() != before || log2.String() != "" {
		t.Fatalf("gamma with alpha gone: %v, %s, %d builds, log %q", err, got[gamma], builds.Load()-before, log2.String())
	}
	// Rebuilding alpha builds in tools/ only.
	var log3 logRecorder
	if _, err := ensure(ctx, root, fakeRelease, alpha, log3.log); err != nil {
		t.Fatal(err)
	}
	if n := builds.Load() - before; n != 1 || !strings.Contains(log3.String(), "building alpha from tools/go.mod") || strings.Contains(log3.String(), "gamma") {
		t.Fatalf("rebuilding alpha: %d builds, log:\n%s", n, log3.String())
	}

	// A new, broken pin set of the other module: its build fails, the
	// release tools still come back.
	os.WriteFile(filepath.Join(root, "tools", "other", "go.mod"), []byte("module example.com/othertools\n\ngo 1.26\n// broken\n"), 0o644)
	os.WriteFile(filepath.Join(root, "tools", "other", "gamma", "main.go"), []byte("package main\n\nfunc main() { syntax error }\n"), 0o644)
	bins2, err := ensureModules(ctx, root, []Module{fakeOther, fakeRelease}, nil)
	if err == nil || !strings.Contains(err.Error(), "tools/other") {
		t.Fatalf("broken gamma: err = %v, want a build error in tools/other", err)
	}
	if bins2[alpha] != bins[alpha] || bins2[beta] != bins[beta] || bins2[gamma] != "" {
		t.Fatalf("broken gamma: got %v, want alpha and beta as before and no gamma", bins2)
	}
}

// The tools modules match their go.mod files: each module's `tool`
// directives are its Tools, every tool belongs to one module, and the
// binary names are distinct (`fluid-release tools` prints them by name).
func TestModulesMatchGoMod(t *testing.T) {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	var all []Tool
	for _, m := range Modules {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m.Dir), "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		got := toolDirectives(string(data))
		var want []string
		for _, tool := range m.Tools {
			want = append(want, string(tool))
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s/go.mod pins the tools %v, the module lists %v", m.Dir, got, want)
		}
		all = append(all, m.Tools...)
	}
	if err := checkNames(all); err != nil {
		t.Error(err)
	}
	for tool, dir := range map[Tool]string{Cosign: "tools", Goreleaser: "tools", Act: "tools/rehearse"} {
		if m, err := ModuleOf(tool); err != nil || m.Dir != dir {
			t.Errorf("ModuleOf(%s) = %q, %v; want %s", tool, m.Dir, err, dir)
		}
	}
	if !reflect.DeepEqual(Pinned, Release.Tools) || !reflect.DeepEqual(Modules, []Module{Release, Rehearse}) {
		t.Errorf("Pinned = %v, Modules = %v", Pinned, Modules)
	}
	// Refused before anything is built (in a fake repository and cache, in
	// case it is not).
	useCache(t)
	if _, err := Ensure(context.Background(), fakeRepo(t), "example.com/not/pinned", nil); err == nil || !strings.Contains(err.Error(), "pinned in none") {
		t.Errorf("Ensure of a tool no module pins: %v", err)
	}
}

// toolDirectives returns the tool directives of a go.mod: `tool x` and the
// lines of `tool ( ... )`.
func toolDirectives(gomod string) []string {
	var tools []string
	block := false
	for _, line := range strings.Split(gomod, "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		switch {
		case block && len(f) == 1 && f[0] == ")":
			block = false
		case block && len(f) == 1:
			tools = append(tools, f[0])
		case len(f) == 2 && f[0] == "tool" && f[1] == "(":
			block = true
		case len(f) == 2 && f[0] == "tool":
			tools = append(tools, f[1])
		}
	}
	return tools
}

// The first Ensure builds every tool in one `go build`; later calls, for
// either tool, from this or another clone with the same pins, build nothing.
func TestEnsureBuildsOnceAndReuses(t *testing.T) {
	useCache(t)
	ctx := context.Background()
	root := fakeRepo(t)
	bins, log, n := countedEnsure(t, root, alpha)
	if n != 1 {
		t.Fatalf("first Ensure ran go build %d times, want 1", n)
	}
	if !strings.Contains(log, "building alpha and beta") {
		t.Fatalf("first Ensure did not build both tools in one go build; log:\n%s", log)
	}
	if got := runTool(t, bins[alpha]); got != "alpha" {
		t.Fatalf("alpha printed %q", got)
	}
	t.Logf("first call:\n%s", log)
	before := builds.Load()

	// Again, for each tool and for all; then from a second clone.
	clone := fakeRepo(t)
	for i, c := range []struct {
		root string
		want Tool
	}{{root, alpha}, {root, beta}, {root, ""}, {clone, beta}} {
		var log2 logRecorder
		got, err := ensure(ctx, c.root, fakeRelease, c.want, log2.log)
		if err != nil {
			t.Fatal(err)
		}
		if n := builds.Load() - before; n != 0 {
			t.Fatalf("call %d (%s) ran go build again (%d more builds); log:\n%s", i+2, c.want, n, log2.String())
		}
		if log2.String() != "" {
			t.Fatalf("call %d logged: %s", i+2, log2.String())
		}
		if c.want != "" && got[c.want] != bins[c.want] {
			t.Fatalf("call %d returned %s, want the cached %s", i+2, got[c.want], bins[c.want])
		}
	}
	if got := runTool(t, bins[beta]); got != "beta" {
		t.Fatalf("beta printed %q", got)
	}
}

// A damaged cached binary is noticed before use and rebuilt, with a
// message; so is a missing one and a damaged manifest.
func TestEnsureRebuildsDamagedBinary(t *testing.T) {
	useCache(t)
	ctx := context.Background()
	root := fakeRepo(t)
	bins, err := ensure(ctx, root, fakeRelease, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(bins[alpha])
	// What a builder killed half-way leaves behind goes with the next build.
	killed := filepath.Join(dir, ".build-killed")
	os.MkdirAll(killed, 0o755)
	os.WriteFile(filepath.Join(killed, "alpha"), []byte("half a binary"), 0o755)
	damage := []struct {
		name    string
		do      func()
		wantLog string
	}{
		{"one byte flipped", func() { testutil.FlipMiddleByte(t, bins[alpha]) }, "damaged"},
		{"binary truncated", func() { os.Truncate(bins[alpha], 1000) }, "damaged"},
		{"binary removed", func() { os.Remove(bins[alpha]) }, "building alpha"},
		{"manifest damaged", func() { os.WriteFile(filepath.Join(dir, manifestName), []byte("{"), 0o644) }, "building alpha"},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			d.do()
			got, log, n := countedEnsure(t, root, alpha)
			if n != 1 {
				t.Fatalf("ran go build %d times after the damage, want 1; log:\n%s", n, log)
			}
			if !strings.Contains(log, d.wantLog) {
				t.Fatalf("log does not say %q:\n%s", d.wantLog, log)
			}
			t.Logf("log:\n%s", log)
			if _, err := os.Stat(killed); err == nil {
				t.Errorf("the killed build's directory %s is still there", killed)
			}
			if out := runTool(t, got[alpha]); out != "alpha" {
				t.Fatalf("rebuilt alpha printed %q", out)
			}
			// Repaired: the next call builds nothing.
			before := builds.Load()
			if _, err := ensure(ctx, root, fakeRelease, "", nil); err != nil || builds.Load() != before {
				t.Fatalf("call after the repair: err %v, %d builds", err, builds.Load()-before)
			}
		})
	}
}

// Builders racing on an empty cache build once: the others wait on the lock
// and take the first one's binaries.
func TestEnsureConcurrentBuildsOnce(t *testing.T) {
	useCache(t)
	root := fakeRepo(t)
	before := builds.Load()
	var wg sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []Tool{alpha, beta}[i%2]
			var bins map[Tool]string
			bins, errs[i] = ensure(context.Background(), root, fakeRelease, want, nil)
			paths[i] = bins[want]
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("builder %d: %v", i, err)
		}
	}
	if n := builds.Load() - before; n != 1 {
		t.Fatalf("4 concurrent Ensure calls ran go build %d times, want 1", n)
	}
	if paths[0] != paths[2] || paths[1] != paths[3] {
		t.Fatalf("builders got different binaries: %v", paths)
	}
}

func TestLockWaits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, p); err == nil {
		t.Fatal("took a held lock")
	}
	// A waiter gets the lock as soon as it is released.
	got := make(chan error, 1)
	go func() {
		u, err := lock(context.Background(), p)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the released lock")
	}
	// The lock file left behind (as by a killed holder) is no obstacle.
	if _, err := os.Stat(p); err != nil {
		t.Logf("lock file gone: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	unlock, err = lock(ctx, p)
	if err != nil {
		t.Fatalf("a left-behind lock file blocks: %v", err)
	}
	unlock()
}
