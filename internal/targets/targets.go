// Package targets is what the mage targets that build and boot the working
// image do (magefiles/ only parse the environment and call one function
// here): build, clean, qemu, debug, profile, pgo, bench, bootbench, deps
// and toolchainBench. Each reports on w.
package targets

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/bench"
	"github.com/fluid-os/fluid/internal/bootbench"
	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/debugger"
	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/profile"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/symbolize"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// locked runs f with a builder from the environment holding the build lock.
func locked(f func(b *build.Builder) error) error {
	b, unlock, err := build.NewLocked(build.OptionsFromEnv())
	if err != nil {
		return err
	}
	defer unlock()
	return f(b)
}

// working builds the working image (what `mage build` does) from the recipe
// build.WorkingRecipe picks: the baseline, or the PGO recipe once `mage pgo`
// built it there (with a note and the baseline when the committed profiles
// went stale).
func working(ctx context.Context, w io.Writer) (b *build.Builder, a *build.Artifacts, err error) {
	err = locked(func(lb *build.Builder) error {
		b = lb
		src := (&profile.Pipeline{B: b}).Source()
		r, note, err := b.WorkingRecipe(src)
		if err != nil {
			return err
		}
		if note != "" {
			fmt.Fprintln(w, "modules: "+note)
		}
		a, err = b.Working(ctx, r, src)
		return err
	})
	return b, a, err
}

// Build is `mage build`.
func Build(ctx context.Context, w io.Writer) error {
	b, a, err := working(ctx, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "build: %s (%s)\n", b.Rel(a.Image), a.Summary)
	return nil
}

// Clean is `mage clean`.
func Clean(w io.Writer) error { return build.Clean(build.OptionsFromEnv(), w) }

// NeedTools checks optional tools a target needs, with the install hint.
func NeedTools(names ...string) error {
	b, err := build.New(build.OptionsFromEnv())
	if err != nil {
		return err
	}
	return b.Toolchain().Need(names...)
}

// Qemu is `mage qemu`: its error carries the outcome's exit code
// (qemu.Outcome.ExitCode) for mage to exit with.
func Qemu(w io.Writer) error {
	if err := NeedTools("qemu"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, a, err := working(ctx, w)
	if err != nil {
		return err
	}
	// The console shows every line but the base64 payload of profile
	// frames; build/serial.log keeps everything.
	// Memory: "" (the harness's default) unless the image holds a model
	// that needs more (build.LlamaMemory, also the manifest's qemu_memory).
	opts := qemu.Options{Image: a.Image, OnLine: serial.Console(w), SerialLog: filepath.Join(b.Out(), "serial.log"), Memory: a.Memory}
	if os.Getenv(qemu.EnvTimeout) == "" {
		// A user's model runs far longer than the default timeout allows.
		opts.Timeout = b.Options().Llama.BootTimeout(b.Options().Light)
	}
	if _, shell, err := opts.Cmdline(); err == nil {
		fmt.Fprintf(w, "qemu: %s\n", shell)
	}
	r, err := qemu.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, r.String())
	if line := LlamaSummary(r.Llama, r.Files, r.LineErrors); line != "" {
		fmt.Fprintln(w, line)
	}
	// NAME+0xOFF of crashed and timed-out modules, as source lines.
	(&symbolize.Symbolizer{B: b}).Report(ctx, r.FailedModules(), w)
	return r.Outcome.Exit()
}

// LlamaSummary is `mage qemu`'s one line about the llama module: the
// calls, tokens per call, the fastest call's tsc/token and ms/token, and
// the model's load rate from the kernel's file line; "" when the run had no
// llama lines. Malformed llama or file lines are named after it.
func LlamaSummary(runs []*serial.LlamaRun, files []serial.FileRead, lineErr error) string {
	if len(runs) == 0 && lineErr == nil {
		return ""
	}
	var s string
	var best *serial.LlamaRun
	for _, r := range runs {
		if r.Refused != "" {
			s = fmt.Sprintf("llama summary: refused (serial line %d): %s", r.Line, r.Refused)
			break
		}
		if r.Done() && (best == nil || r.TSCPerToken < best.TSCPerToken) {
			best = r
		}
	}
	switch {
	case s != "":
	case best == nil:
		s = fmt.Sprintf("llama summary: %d calls, none finished generating", len(runs))
	default:
		s = fmt.Sprintf("llama summary: %d calls, %d tokens each, %d tsc/token, %.3f ms/token (fastest call)", len(runs), best.Generated, best.TSCPerToken, best.MsPerToken)
		load := "no file line for it"
		for _, f := range files {
			if f.Path == best.Model.Path && f.Failed == "" {
				load = fmt.Sprintf("loaded at %.2f MB/s (%d bytes in %d us)", f.MBps, f.Bytes, f.Micros)
				break
			}
		}
		s += fmt.Sprintf("; model %s %s", best.Model.Path, load)
	}
	if lineErr != nil {
		s += "; malformed lines: " + strings.ReplaceAll(lineErr.Error(), "\n", "; ")
	}
	return s
}

// gdbPort parses FLUID_GDB_PORT; unset is 0 (a free port).
func gdbPort(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("FLUID_GDB_PORT=%q is not a port number", s)
	}
	return p, nil
}

// Debug is `mage debug`; port is FLUID_GDB_PORT's value.
func Debug(port string, w io.Writer) error {
	if err := NeedTools("qemu", "gdb"); err != nil {
		return err
	}
	p, err := gdbPort(port)
	if err != nil {
		return err
	}
	ctx, stopSig := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stopSig()
	b, a, err := working(ctx, w)
	if err != nil {
		return err
	}
	s := &debugger.Session{Kernel: a.Kernel, Image: a.Image, SourceDir: b.Root(), Port: p, Memory: a.Memory}
	script, stop, err := s.Start(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "debug: QEMU is halted at reset with a gdb stub on 127.0.0.1:%d; serial goes to %s\n",
		s.Port, filepath.Join(b.Out(), "debug-serial.log"))
	return debugger.Interactive(debugger.Command(b.Toolchain().Path("gdb"), script), stop, s.Wait, os.Stdin, w)
}

// Profile is `mage profile`.
func Profile(ctx context.Context) error {
	return locked(func(b *build.Builder) error { return (&profile.Pipeline{B: b}).Profile(ctx) })
}

// PGO is `mage pgo`.
func PGO(ctx context.Context, w io.Writer) error {
	return locked(func(b *build.Builder) error {
		a, err := b.Working(ctx, recipe.PGO, (&profile.Pipeline{B: b}).Source())
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "pgo: %s now holds the PGO modules (%s); boot it with `go tool mage qemu`\n", b.Rel(a.Image), a.Summary)
		return nil
	})
}

// Bench is `mage bench`.
func Bench(ctx context.Context, w io.Writer) error {
	return locked(func(b *build.Builder) error {
		rep, err := bench.Run(ctx, bench.Options{B: b, KVMBoot: profile.KVMBootMemory(b.Memory())})
		if err != nil {
			return err
		}
		if err := rep.WriteTable(w); err != nil {
			return err
		}
		for _, line := range rep.Verdict() {
			fmt.Fprintln(w, "bench:", line)
		}
		if err := rep.WriteFiles(b.Out()); err != nil {
			return err
		}
		fmt.Fprintf(w, "bench: wrote %s and %s\n", b.Rel(b.Out()+"/"+bench.JSONFile), b.Rel(b.Out()+"/"+bench.SVGFile))
		return nil
	})
}

// Bootbench is `mage bootbench`.
func Bootbench(ctx context.Context, w io.Writer) error {
	if err := NeedTools("qemu"); err != nil {
		return err
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	r, err := bootbench.Run(ctx, bootbench.Options{Root: root, Log: w})
	if err != nil {
		return err
	}
	fmt.Fprint(w, r.Table())
	return nil
}

// Deps is `mage deps`.
func Deps(ctx context.Context, w io.Writer) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	return toolchain.Deps(ctx, root, w)
}

// ToolchainBench is `mage toolchainBench`.
func ToolchainBench(ctx context.Context, w io.Writer) error {
	root, err := fileutil.FindRoot(".")
	if err != nil {
		return err
	}
	r, err := toolchain.Bench(ctx, root, 5, w)
	if err != nil {
		return err
	}
	fmt.Fprint(w, r.Table())
	return nil
}
