// Package toolcache builds the tools pinned as Go tools in the repository's
// tools modules once per machine and reuses them: the release tools of
// tools/go.mod (goreleaser, cosign) and act, the GitHub Actions runner, of
// tools/rehearse/go.mod. act has a module of its own so that its pin does
// not move the dependencies it shares with the release tools.
//
// Each module's binaries live in a per-user cache directory of their own,
// $FLUID_CACHE_DIR/tools/<key>/ or <os.UserCacheDir()>/fluid-os/tools/<key>/,
// where key hashes that module's go.mod and go.sum, the Go version that
// builds them, GOOS/GOARCH and the build recipe. Every clone, test package
// and `mage release` on the machine shares them: a change of a module's pins
// or of Go builds that module's tools afresh, nothing else does (a new act
// pin leaves goreleaser and cosign where they are, and the other way round).
//
// All missing tools of a module are built by one `go build -o dir/ pkg...`
// in its directory (the shared dependencies compile once, in parallel), into
// a temporary directory, then renamed into place; a file lock per cache
// directory makes a concurrent second builder wait and then reuse the first
// one's binaries. A manifest records each binary's SHA-256, checked before a
// cached binary is handed out; a damaged binary is rebuilt, with a message.
package toolcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/fileutil"
)

// Tool is the main package of a tool pinned in one of the tools modules.
type Tool string

// The pinned tools.
const (
	Cosign     Tool = "github.com/sigstore/cosign/v2/cmd/cosign" // tools/go.mod
	Goreleaser Tool = "github.com/goreleaser/goreleaser/v2"      // tools/go.mod
	Act        Tool = "github.com/nektos/act"                    // tools/rehearse/go.mod
)

// Module is a Go module of the repository that pins tools (a `tool`
// directive for each): Dir is its directory relative to the repository root,
// slash-separated; Tools are its pinned tools, which Ensure builds together:
// asking for one of them builds every one of them that is missing, in the
// same `go build`.
type Module struct {
	Dir   string
	Tools []Tool
}

// The tools modules.
var (
	// Release holds the release tools, pinned in tools/go.mod.
	Release = Module{Dir: "tools", Tools: []Tool{Cosign, Goreleaser}}
	// Rehearse holds act, pinned in tools/rehearse/go.mod.
	Rehearse = Module{Dir: "tools/rehearse", Tools: []Tool{Act}}
	// Modules lists every tools module, the release tools first.
	Modules = []Module{Release, Rehearse}
)

// Pinned lists the release tools (tools/go.mod), which EnsureAll builds.
var Pinned = Release.Tools

// ModuleOf returns the tools module that pins t.
func ModuleOf(t Tool) (Module, error) {
	for _, m := range Modules {
		for _, u := range m.Tools {
			if u == t {
				return m, nil
			}
		}
	}
	return Module{}, fmt.Errorf("tool cache: %s is pinned in none of the tools modules", t)
}

// Name is the tool's binary name: the last path element that is not a
// major-version suffix.
func (t Tool) Name() string {
	parts := strings.Split(string(t), "/")
	for i := len(parts) - 1; i > 0; i-- {
		if !(len(parts[i]) > 1 && parts[i][0] == 'v' && strings.Trim(parts[i][1:], "0123456789") == "") {
			return parts[i]
		}
	}
	return parts[0]
}

// file is the name of t's binary in a cache directory.
func (t Tool) file() string {
	if runtime.GOOS == "windows" {
		return t.Name() + ".exe"
	}
	return t.Name()
}

// recipe names how the binaries are built; changing the build command
// below must change it, so that binaries built the old way are not reused.
const recipe = "go build -o DIR/ -ldflags=-s -w CGO_ENABLED=0 GOFLAGS= (1)"

// manifestName is the file in a cache directory that lists its binaries.
const manifestName = "manifest.json"

// builds counts the `go build` commands this process has started to fill
// the cache; tests read it to see that a cached tool was reused.
var builds atomic.Int64

// CacheRoot is the per-user cache of the project: $FLUID_CACHE_DIR, else
// fluid-os/ in os.UserCacheDir().
func CacheRoot() (string, error) {
	if d := os.Getenv("FLUID_CACHE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tool cache: no cache directory (set FLUID_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "fluid-os"), nil
}

// Dir returns the cache directory of m's tools for the current pins of m in
// the repository at root and the Go that builds them.
func Dir(root string, m Module) (string, error) {
	dir, _, err := dirAndEnv(root, m)
	return dir, err
}

// dirAndEnv returns m's cache directory and the environment that builds
// m's tools. The key reads m's go.mod and go.sum only: each module's own
// `module` line keeps two modules apart, and the key of tools/ is the one
// it had before there were more modules.
func dirAndEnv(root string, m Module) (string, []string, error) {
	tools := filepath.Join(root, filepath.FromSlash(m.Dir))
	mod, err := os.ReadFile(filepath.Join(tools, "go.mod"))
	if err != nil {
		return "", nil, fmt.Errorf("tool cache: read %s/go.mod: %w", m.Dir, err)
	}
	sum, err := os.ReadFile(filepath.Join(tools, "go.sum"))
	if err != nil && !errors.Is(err, os.ErrNotExist) { // a module without dependencies has none
		return "", nil, fmt.Errorf("tool cache: read %s/go.sum: %w", m.Dir, err)
	}
	env := buildEnv()
	goVersion, err := goVersion(tools, env)
	if err != nil {
		return "", nil, err
	}
	cache, err := CacheRoot()
	if err != nil {
		return "", nil, err
	}
	h := sha256.New()
	for _, part := range [][]byte{mod, sum, []byte(goVersion), []byte(runtime.GOOS + "/" + runtime.GOARCH), []byte(recipe)} {
		fmt.Fprintf(h, "%d\n", len(part))
		h.Write(part)
	}
	return filepath.Join(cache, "tools", hex.EncodeToString(h.Sum(nil)[:8])), env, nil
}

// buildEnv is the environment of `go env` and `go build`: the caller's,
// with the settings that change the binaries fixed, so that the cache key
// describes them. The tools run here, so they are built for this machine.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOWORK":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
}

// goVersions remembers `go env GOVERSION` per module directory and
// environment: asking costs a process start.
var goVersions sync.Map

// goVersion is the version of the Go that builds in dir (GOTOOLCHAIN and the
// go/toolchain lines of the module's go.mod can choose another than the
// default).
func goVersion(dir string, env []string) (string, error) {
	memo := dir + "\x00" + os.Getenv("PATH") + "\x00" + os.Getenv("GOTOOLCHAIN") + "\x00" + os.Getenv("GOROOT")
	if v, ok := goVersions.Load(memo); ok {
		return v.(string), nil
	}
	cmd := exec.Command("go", "env", "GOVERSION")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	v := strings.TrimSpace(string(out))
	if err == nil && v == "" {
		err = errors.New("it printed nothing")
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("tool cache: go env GOVERSION in %s: %w", dir, err)
	}
	goVersions.Store(memo, v)
	return v, nil
}

// Ensure returns the path of t's binary, building it with `go build` in
// the directory of t's module when the cache does not have it (together
// with every other missing tool of that module; the other modules' tools
// are not looked at). log, when not nil, is told before a (slow) build
// starts and when a damaged binary is replaced.
func Ensure(ctx context.Context, root string, t Tool, log func(string)) (string, error) {
	m, err := ModuleOf(t)
	if err != nil {
		return "", err
	}
	bins, err := ensure(ctx, root, m, t, log)
	if err != nil {
		return "", err
	}
	return bins[t], nil
}

// EnsureAll is Ensure for every release tool (Pinned, tools/go.mod); it
// returns their paths.
func EnsureAll(ctx context.Context, root string, log func(string)) (map[Tool]string, error) {
	return EnsureModule(ctx, root, Release, log)
}

// EnsureModule is Ensure for every tool of m; it returns their paths.
func EnsureModule(ctx context.Context, root string, m Module, log func(string)) (map[Tool]string, error) {
	return ensure(ctx, root, m, "", log)
}

// EnsureAllModules is Ensure for every tool of every module (Modules), one
// module after the other, the release tools first. A module that fails
// does not stop the others: the paths of the tools that were built or
// cached come back with the modules' errors, joined.
func EnsureAllModules(ctx context.Context, root string, log func(string)) (map[Tool]string, error) {
	return ensureModules(ctx, root, Modules, log)
}

func ensureModules(ctx context.Context, root string, mods []Module, log func(string)) (map[Tool]string, error) {
	all := map[Tool]string{}
	var errs []error
	for _, m := range mods {
		bins, err := ensure(ctx, root, m, "", log)
		if err != nil {
			errs = append(errs, err)
		}
		for t, bin := range bins {
			all[t] = bin
		}
	}
	return all, errors.Join(errs...)
}

// ensure returns the binaries of m's tools, building the missing or
// damaged ones. With want set, only want has to be good for the fast path:
// the others are looked at (and built) when a build is needed anyway.
func ensure(ctx context.Context, root string, m Module, want Tool, log func(string)) (map[Tool]string, error) {
	if log == nil {
		log = func(string) {}
	}
	tools := m.Tools
	if err := checkNames(tools); err != nil {
		return nil, err
	}
	dir, env, err := dirAndEnv(root, m)
	if err != nil {
		return nil, err
	}
	need := tools
	if want != "" {
		need = []Tool{want}
	}
	// Fast path, no lock: the manifest lists the binaries and they are intact.
	if bins, bad := check(dir, need, nil); len(bad) == 0 {
		return bins, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tool cache: %w", err)
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have built them while we waited for the lock.
	bins, bad := check(dir, tools, log)
	if len(bad) == 0 {
		return bins, nil
	}
	// Build directories of killed builders (we hold the lock: no one else
	// is building here).
	old, _ := filepath.Glob(filepath.Join(dir, ".build-*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
	if err := build(ctx, root, m.Dir, dir, env, bad, log); err != nil {
		return nil, err
	}
	bins, bad = check(dir, tools, log)
	if len(bad) != 0 {
		return nil, fmt.Errorf("tool cache: %s still missing or damaged in %s after building", names(bad), dir)
	}
	return bins, nil
}

// checkNames refuses two tools with one binary name: they would overwrite
// each other in the cache directory.
func checkNames(tools []Tool) error {
	seen := map[string]Tool{}
	for _, t := range tools {
		if u, ok := seen[t.Name()]; ok && u != t {
			return fmt.Errorf("tool cache: %s and %s would both be called %s", u, t, t.Name())
		}
		seen[t.Name()] = t
	}
	return nil
}

// manifest is manifest.json in a cache directory: what was built, from
// what, and each binary's SHA-256.
type manifest struct {
	GoVersion string           `json:"go_version"`
	Platform  string           `json:"platform"`
	Recipe    string           `json:"recipe"`
	Tools     map[string]entry `json:"tools"` // by binary name
}

type entry struct {
	Package string    `json:"package"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Built   time.Time `json:"built"`
}

func readManifest(dir string) manifest {
	var m manifest
	if data, err := os.ReadFile(filepath.Join(dir, manifestName)); err == nil {
		_ = json.Unmarshal(data, &m) // a damaged manifest lists nothing: everything is rebuilt
	}
	if m.Tools == nil {
		m.Tools = map[string]entry{}
	}
	return m
}

// check returns the paths of the tools whose binary matches the manifest
// and the tools that are missing or damaged; log, when not nil, hears about
// damaged ones.
func check(dir string, tools []Tool, log func(string)) (map[Tool]string, []Tool) {
	m := readManifest(dir)
	bins := map[Tool]string{}
	var bad []Tool
	for _, t := range tools {
		bin := filepath.Join(dir, t.file())
		e, ok := m.Tools[t.Name()]
		if !ok || e.Package != string(t) {
			bad = append(bad, t)
			continue
		}
		if err := verify(bin, e); err != nil {
			if log != nil {
				log(fmt.Sprintf("cached %s is damaged (%v); rebuilding it", bin, err))
			}
			bad = append(bad, t)
			continue
		}
		bins[t] = bin
	}
	return bins, bad
}

// verify checks bin against its manifest entry: every time, so that a
// binary damaged since (a full disk, a stray write) is never run. Hashing
// is cheap next to what the tools then do (~0.1 s for goreleaser).
func verify(bin string, e entry) error {
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if fi.Size() != e.Size {
		return fmt.Errorf("%d bytes, the manifest says %d", fi.Size(), e.Size)
	}
	sum, err := fileutil.SHA256(bin)
	if err != nil {
		return err
	}
	if sum != e.SHA256 {
		return fmt.Errorf("SHA-256 %s, the manifest says %s", sum, e.SHA256)
	}
	return nil
}

// build compiles tools with one `go build` in modDir (the module's
// directory, relative to root) into a temporary directory in dir, moves each
// binary into dir and records it in the manifest. The caller holds the lock.
func build(ctx context.Context, root, modDir, dir string, env []string, tools []Tool, log func(string)) error {
	sort.Slice(tools, func(i, j int) bool { return tools[i].Name() < tools[j].Name() })
	log(fmt.Sprintf("building %s from %s/go.mod into %s (once per machine and pin set; minutes on a cold Go build cache)", names(tools), modDir, dir))
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return fmt.Errorf("tool cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-o", tmp + string(filepath.Separator), "-ldflags=-s -w"}
	for _, t := range tools {
		args = append(args, string(t))
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = filepath.Join(root, filepath.FromSlash(modDir)), env
	builds.Add(1)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tool cache: go %s (in %s/): %w\n%s", strings.Join(args, " "), modDir, err, tail(out))
	}
	m := readManifest(dir)
	goVersion, _ := goVersion(cmd.Dir, env)
	m.GoVersion, m.Platform, m.Recipe = goVersion, runtime.GOOS+"/"+runtime.GOARCH, recipe
	for _, t := range tools {
		built := filepath.Join(tmp, t.file())
		fi, err := os.Stat(built)
		if err != nil {
			return fmt.Errorf("tool cache: go build made no %s: %w", t.file(), err)
		}
		sum, err := fileutil.SHA256(built)
		if err != nil {
			return fmt.Errorf("tool cache: %w", err)
		}
		// Binary first, then the manifest entry: a reader never finds an
		// entry whose binary is not complete.
		if err := os.Rename(built, filepath.Join(dir, t.file())); err != nil {
			return fmt.Errorf("tool cache: %w", err)
		}
		m.Tools[t.Name()] = entry{Package: string(t), SHA256: sum, Size: fi.Size(), Built: time.Now().UTC().Truncate(time.Second)}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile0644(filepath.Join(dir, manifestName), append(data, '\n')); err != nil {
		return fmt.Errorf("tool cache: %w", err)
	}
	log(fmt.Sprintf("built %s in %s", names(tools), time.Since(start).Round(time.Second)))
	return nil
}

func names(tools []Tool) string {
	var n []string
	for _, t := range tools {
		n = append(n, t.Name())
	}
	return strings.Join(n, " and ")
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
