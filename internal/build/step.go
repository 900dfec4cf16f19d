package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/fluid-os/fluid/internal/atomicfile"
)

// step is one node of the build graph: a command (or Go function) that turns
// inputs into outputs. A step is skipped when its stamp shows that the same
// command, toolchain and input contents (including every header the compiler
// reported in its depfile) produced outputs that are still there with the
// very contents the step wrote (their SHA-256 is in the stamp): an output
// edited or replaced by hand is rebuilt.
type step struct {
	tag     string   // short verb for the log line: CC, NASM, LD, IMG ...
	name    string   // what the log line names (repo-relative)
	argv    []string // command to run in the repo root; nil when fn is set
	fn      func() error
	inputs  []string // repo-relative or absolute files
	outputs []string
	depfile string // make-style depfile the command writes (optional)
	key     string // anything else that must invalidate the step
}

type stamp struct {
	Key  string   `json:"key"`
	Deps []string `json:"deps"`
	// Outs is the SHA-256 of each output the step wrote, by repo-relative
	// path (a stamp without it predates the check: the step reruns once).
	Outs map[string]string `json:"outs"`
}

// hasher hashes files once per build run.
type hasher struct {
	mu   sync.Mutex
	sums map[string]string
}

func (h *hasher) sum(path string) (string, error) {
	h.mu.Lock()
	s, ok := h.sums[path]
	h.mu.Unlock()
	if ok {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	d := sha256.Sum256(data)
	s = hex.EncodeToString(d[:])
	h.mu.Lock()
	h.sums[path] = s
	h.mu.Unlock()
	return s, nil
}

func (h *hasher) forget(paths ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range paths {
		delete(h.sums, p)
	}
}

func (b *Builder) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.root, p)
}

func (b *Builder) stampPath(s *step) string {
	rel := strings.NewReplacer("/", "_", "\\", "_").Replace(b.rel(s.outputs[0]))
	return filepath.Join(b.out, ".stamps", rel+".json")
}

// computeKey mixes the command, toolchain, extra key and the contents of
// every input and dependency.
func (b *Builder) computeKey(s *step, deps []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "tc=%s\nkey=%s\n", b.tcKey, s.key)
	for _, a := range s.argv {
		fmt.Fprintf(h, "arg=%s\n", a)
	}
	files := append(append([]string{}, s.inputs...), deps...)
	sort.Strings(files)
	prev := ""
	for _, f := range files {
		if f == prev {
			continue
		}
		prev = f
		hp := b.tc.InputPath(f)
		if hp == "" {
			continue // inside the toolchain image: the key covers it
		}
		sum, err := b.hash.sum(b.abs(hp))
		if err != nil {
			return "", err // a vanished dependency means: rebuild
		}
		fmt.Fprintf(h, "in=%s %s\n", b.rel(f), sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// upToDate reports whether s can be skipped.
func (b *Builder) upToDate(s *step) bool {
	data, err := os.ReadFile(b.stampPath(s))
	if err != nil {
		return false
	}
	var st stamp
	if json.Unmarshal(data, &st) != nil {
		return false
	}
	k, err := b.computeKey(s, st.Deps)
	if err != nil || k != st.Key {
		return false
	}
	return b.outputsIntact(s, st.Outs)
}

// outputsIntact reports whether every output of s exists with the content
// hash its stamp recorded (a missing, edited or replaced output is not).
func (b *Builder) outputsIntact(s *step, outs map[string]string) bool {
	for _, o := range s.outputs {
		want, ok := outs[b.rel(o)]
		if !ok {
			return false
		}
		got, err := b.hash.sum(b.abs(o))
		if err != nil || got != want {
			return false
		}
	}
	return true
}

// outputSums hashes the outputs s just wrote, for its stamp.
func (b *Builder) outputSums(s *step) (map[string]string, error) {
	outs := map[string]string{}
	for _, o := range s.outputs {
		sum, err := b.hash.sum(b.abs(o))
		if err != nil {
			return nil, fmt.Errorf("%s %s: the step did not write %s: %w", s.tag, s.name, b.rel(o), err)
		}
		outs[b.rel(o)] = sum
	}
	return outs, nil
}

// run executes s unless it is up to date. It reports whether it ran.
func (b *Builder) run(ctx context.Context, s *step) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%s %s: %w", s.tag, s.name, context.Cause(ctx))
	}
	if b.upToDate(s) {
		return false, nil
	}
	fmt.Fprintf(b.log, "%-5s %s\n", s.tag, s.name)
	for _, o := range s.outputs {
		if err := os.MkdirAll(filepath.Dir(b.abs(o)), 0o755); err != nil {
			return true, err
		}
	}
	_ = os.Remove(b.stampPath(s))
	b.hash.forget(absAll(b, s.outputs)...)
	if s.fn != nil {
		if err := s.fn(); err != nil {
			return true, err
		}
	} else {
		cmd, err := b.command(ctx, s.argv)
		if err != nil {
			return true, fmt.Errorf("%s %s: %w", s.tag, s.name, err)
		}
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err != nil {
			for _, o := range s.outputs {
				_ = os.Remove(b.abs(o)) // never leave a half-written artifact
			}
			return true, &StepError{Tag: s.tag, Name: s.name, Argv: s.argv, Output: buf.String(), Err: err}
		}
		if buf.Len() > 0 {
			_, _ = io.Copy(b.log, &buf)
		}
	}
	b.hash.forget(absAll(b, s.outputs)...)
	var deps []string
	if s.depfile != "" {
		d, err := parseDepfile(b.abs(s.depfile))
		if err != nil {
			return true, fmt.Errorf("%s %s: read depfile: %w", s.tag, s.name, err)
		}
		for _, p := range d {
			// A step in the rootfs reports the tree at /src and clang's
			// own headers at their rootfs paths: hash the host files.
			if h := b.tc.HostPath(p); h != "" {
				deps = append(deps, b.rel(h))
			}
		}
	}
	k, err := b.computeKey(s, deps)
	if err != nil {
		return true, fmt.Errorf("%s %s: hash inputs: %w", s.tag, s.name, err)
	}
	outs, err := b.outputSums(s)
	if err != nil {
		return true, err
	}
	data, _ := json.Marshal(stamp{Key: k, Deps: deps, Outs: outs})
	if err := os.MkdirAll(filepath.Dir(b.stampPath(s)), 0o755); err != nil {
		return true, err
	}
	return true, atomicfile.WriteFile(b.stampPath(s), data, 0o644)
}

// runAll runs independent steps with at most b.jobs at a time and returns
// the first error (in step order, so messages are stable).
func (b *Builder) runAll(ctx context.Context, steps []*step) (int, error) {
	errs := make([]error, len(steps))
	ran := make([]bool, len(steps))
	sem := make(chan struct{}, b.jobs)
	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, s *step) {
			defer wg.Done()
			defer func() { <-sem }()
			ran[i], errs[i] = b.run(ctx, s)
		}(i, s)
	}
	wg.Wait()
	n := 0
	for i := range steps {
		if ran[i] {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// StepError is a failed build command with its output.
type StepError struct {
	Tag, Name string
	Argv      []string
	Output    string
	Err       error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s %s failed (%v):\n%s\ncommand: %s", e.Tag, e.Name, e.Err,
		strings.TrimRight(e.Output, "\n"), shellQuote(e.Argv))
}

func (e *StepError) Unwrap() error { return e.Err }

func absAll(b *Builder, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = b.abs(p)
	}
	return out
}

// parseDepfile reads a make-style depfile ("out: in1 in2 \\\n in3").
func parseDepfile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var deps []string
	for _, line := range strings.Split(text, "\n") {
		i := strings.Index(line, ": ")
		if i < 0 {
			continue // blank, or a target with no prerequisites ("x.o:")
		}
		for _, f := range strings.Fields(line[i+2:]) {
			deps = append(deps, strings.ReplaceAll(f, "\\ ", " "))
		}
	}
	return deps, nil
}

func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func hashBytes(data []byte) string {
	d := sha256.Sum256(data)
	return hex.EncodeToString(d[:])
}

// Step runs argv (in the repository root) as a cached build step: it is
// skipped when the same command already produced outputs from inputs with
// the same contents. Paths may be absolute or repo-relative. It reports
// whether the command ran. Pipeline packages (profile, bench) use it for
// their own tool invocations.
func (b *Builder) Step(ctx context.Context, tag, name string, argv, inputs, outputs []string) (bool, error) {
	if len(outputs) == 0 {
		return false, fmt.Errorf("%s %s: a step needs at least one output", tag, name)
	}
	return b.run(ctx, &step{tag: tag, name: name, argv: argv, inputs: inputs, outputs: outputs})
}

// command is the one way a toolchain binary runs: argv in the repository
// root, through the toolchain (the locked rootfs, the container image or the
// host), in the build's fixed environment, stopped when ctx ends. Cached
// steps (run) and uncached queries (Output) both go through it.
func (b *Builder) command(ctx context.Context, argv []string) (*exec.Cmd, error) {
	env := b.env()
	if b.tc.Container != nil {
		// The engine itself needs the caller's environment (DOCKER_HOST,
		// XDG_RUNTIME_DIR, ...); what reaches the step is only what
		// internal/container passes by name.
		env = append(os.Environ(), env...)
	}
	cmd, err := b.tc.Command(ctx, argv, env)
	if err != nil {
		return nil, err
	}
	cmd.Dir = b.root
	return cmd, nil
}

// Output runs argv as a query that produces no file (e.g. asking clang
// where its runtime lives) and returns its trimmed standard output. It runs
// the way every build step does; only the cache is skipped.
func (b *Builder) Output(ctx context.Context, argv ...string) (string, error) {
	cmd, err := b.command(ctx, argv)
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("%s: %w: %s", shellQuote(argv), err, msg)
		}
		return "", fmt.Errorf("%s: %w", shellQuote(argv), err)
	}
	return strings.TrimSpace(string(out)), nil
}
