package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/serial"
)

// Outcome is how a run ended. Every run has exactly one.
type Outcome int

// The outcomes.
const (
	// Passed: QEMU exited 33 (EXIT_PASS) and the guest printed
	// `FLUID-END pass`.
	Passed Outcome = iota + 1
	// Failed: the guest reported a failure (exit 35/37/41/43, a
	// `FLUID-END fail` line, a `stage2: FATAL` line), or the exit status and
	// the end marker disagree.
	Failed
	// Crashed: a CPU exception dump was seen (or exit 39), or the guest
	// reset itself (a triple fault: QEMU exits 0 under -no-reboot), or QEMU
	// itself died mid-run.
	Crashed
	// TimedOut: the guest was still running at the deadline; QEMU was
	// killed.
	TimedOut
	// StartFailed: QEMU did not start or refused its command line.
	StartFailed
)

func (o Outcome) String() string {
	switch o {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case Crashed:
		return "crashed"
	case TimedOut:
		return "timed out"
	case StartFailed:
		return "did not start"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Errors Result.Err wraps, one per outcome other than Passed.
var (
	ErrFailed      = errors.New("guest failed")
	ErrCrashed     = errors.New("guest crashed")
	ErrTimedOut    = errors.New("guest timed out")
	ErrStartFailed = errors.New("qemu did not start")
)

// TailLines is how many of the last serial lines a Result keeps.
const TailLines = 25

// Result is what happened in one run.
type Result struct {
	Outcome    Outcome
	Reason     string   // one sentence: why this outcome
	ExitStatus int      // QEMU's exit status; -1 if killed or never started
	EndLine    string   // the `FLUID-END ...` line, if the guest printed one
	FailLine   string   // the line naming the failure (FLUID-END fail, stage2: FATAL, *** PANIC)
	Dump       []string // the CPU exception dump, from its `*** CPU EXCEPTION` line
	// Modules is every module the loader's lines named, in log order, with
	// how it ended (serial.ModuleRun); FailedModules picks the failed ones.
	Modules []*serial.ModuleRun
	// Llama is every call of the llama module (serial.Parser.Llama), Files
	// every kernel file line, and LineErrors the llama and file lines that
	// broke their syntax (nil when none did).
	Llama      []*serial.LlamaRun
	Files      []serial.FileRead
	LineErrors error
	Tail       []string      // the last TailLines serial lines
	Lines      int           // serial lines seen
	SerialLog  string        // Options.SerialLog, if set
	Stderr     string        // QEMU's stderr
	Cmdline    string        // the command, shell-quoted
	Accel      string        // "tcg" or "kvm"
	Notes      []string      // things worth knowing (e.g. KVM fell back to TCG)
	Duration   time.Duration // wall time of the QEMU process
}

// ExitCode is the exit status of `mage qemu` for the outcome: 0 passed,
// 1 failed, 2 crashed, 3 timed out, 4 QEMU could not start.
func (o Outcome) ExitCode() int {
	switch o {
	case Passed:
		return 0
	case Failed:
		return 1
	case Crashed:
		return 2
	case TimedOut:
		return 3
	}
	return 4
}

// Exit returns nil for Passed and otherwise ErrFailed, ErrCrashed,
// ErrTimedOut or ErrStartFailed carrying o.ExitCode() as its ExitStatus
// (the method mage exits with).
func (o Outcome) Exit() error {
	if o == Passed {
		return nil
	}
	return exitError{o}
}

type exitError struct{ o Outcome }

func (e exitError) Error() string   { return e.Unwrap().Error() }
func (e exitError) ExitStatus() int { return e.o.ExitCode() }
func (e exitError) Unwrap() error {
	switch e.o {
	case Failed:
		return ErrFailed
	case Crashed:
		return ErrCrashed
	case TimedOut:
		return ErrTimedOut
	}
	return ErrStartFailed
}

// Err returns nil for a passed run and otherwise an error wrapping
// ErrFailed, ErrCrashed, ErrTimedOut or ErrStartFailed whose text is
// r.String().
func (r *Result) Err() error {
	switch r.Outcome {
	case Passed:
		return nil
	case Failed:
		return fmt.Errorf("%w: %s", ErrFailed, r)
	case Crashed:
		return fmt.Errorf("%w: %s", ErrCrashed, r)
	case TimedOut:
		return fmt.Errorf("%w: %s", ErrTimedOut, r)
	}
	return fmt.Errorf("%w: %s", ErrStartFailed, r)
}

// String is the human summary: what happened and why, the exit status, the
// failure line or dump, the last serial lines, and the command to rerun.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "QEMU run %s after %s", strings.ToUpper(r.Outcome.String()), r.Duration.Round(time.Millisecond))
	switch {
	case r.ExitStatus >= 0 && layout.StatusName(r.ExitStatus) != "":
		fmt.Fprintf(&b, " (exit %d = %s, %s)", r.ExitStatus, layout.StatusName(r.ExitStatus), r.Accel)
	case r.ExitStatus >= 0:
		fmt.Fprintf(&b, " (exit %d, %s)", r.ExitStatus, r.Accel)
	default:
		fmt.Fprintf(&b, " (%s)", r.Accel)
	}
	fmt.Fprintf(&b, ": %s.", r.Reason)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, " Note: %s.", n)
	}
	if r.SerialLog != "" {
		fmt.Fprintf(&b, " Serial log: %s.", r.SerialLog)
	}
	fmt.Fprintf(&b, " Rerun: %s", r.Cmdline)
	if failed := r.FailedModules(); len(failed) > 0 {
		b.WriteString("\nmodules that did not pass:")
		for _, m := range failed {
			b.WriteString("\n  " + m.Name + ": " + m.Why())
		}
	}
	if len(r.Dump) > 0 {
		b.WriteString("\nexception dump:")
		for _, l := range r.Dump {
			b.WriteString("\n  | " + l)
		}
	}
	if r.Outcome != Passed && len(r.Tail) > 0 {
		fmt.Fprintf(&b, "\nlast %d of %d serial lines:", len(r.Tail), r.Lines)
		for _, l := range r.Tail {
			b.WriteString("\n  | " + l)
		}
	}
	if r.Outcome != Passed && r.Stderr != "" {
		b.WriteString("\nqemu stderr:")
		for _, l := range strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n") {
			b.WriteString("\n  | " + l)
		}
	}
	return b.String()
}

// FailedModules are the modules that were refused, skipped, crashed, timed
// out or failed a check, in log order.
func (r *Result) FailedModules() []*serial.ModuleRun {
	var out []*serial.ModuleRun
	for _, m := range r.Modules {
		if m.Failed() {
			out = append(out, m)
		}
	}
	return out
}

// Run boots opts.Image and waits for the guest to exit, the timeout, or ctx.
// The returned error is non-nil only for misuse (bad Options, missing
// image); every run that was attempted is described by the Result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	o, err := opts.resolve(os.Getenv)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(o.Image); err != nil {
		return nil, fmt.Errorf("%w: %v (build it with `mage build` first)", ErrImage, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrImage, o.Image)
	}
	var notes []string
	if o.KVM {
		if perr := ProbeKVM(ctx, o.Binary); perr != nil {
			o.KVM = false
			notes = append(notes, fmt.Sprintf("KVM was asked for but %v; ran under TCG instead", perr))
		}
	}
	r := runOnce(ctx, o)
	r.Notes = append(notes, r.Notes...)
	return r, nil
}

// kvmProbeSector is a boot sector that writes EXIT_PASS to the debug-exit
// port at once: mov al,0x10; out 0xf4,al; cli; hlt; jmp $-3.
var kvmProbeCode = []byte{0xB0, layout.ExitPass, 0xE6, layout.DebugExitPort, 0xFA, 0xF4, 0xEB, 0xFD}

// KVMProbeTimeout is how long ProbeKVM lets its guest take.
const KVMProbeTimeout = 2 * time.Second

// ProbeKVM reports whether a KVM guest really runs on this host: it boots a
// one-instruction guest with -accel kvm and expects it to exit within
// KVMProbeTimeout. /dev/kvm existing is not enough (on some hosts the guest
// hangs). binary "" means the default QEMU.
func ProbeKVM(ctx context.Context, binary string) error {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return fmt.Errorf("/dev/kvm is not usable (%v)", err)
	} else {
		f.Close()
	}
	dir, err := os.MkdirTemp("", "fluid-kvm-probe-")
	if err != nil {
		return fmt.Errorf("KVM probe: %w", err)
	}
	defer os.RemoveAll(dir)
	sector := make([]byte, layout.SectorSize)
	copy(sector, kvmProbeCode)
	sector[510], sector[511] = 0x55, 0xAA
	img := filepath.Join(dir, "probe.img")
	if err := os.WriteFile(img, sector, 0o644); err != nil {
		return fmt.Errorf("KVM probe: %w", err)
	}
	o, err := Options{Binary: binary, Image: img, Timeout: KVMProbeTimeout, KVM: true}.resolve(func(string) string { return "" })
	if err != nil {
		return fmt.Errorf("KVM probe: %w", err)
	}
	if binary == "" {
		o.Binary = DefaultBinary
	}
	r := runOnce(ctx, o)
	if r.ExitStatus != layout.StatusPass {
		return fmt.Errorf("a KVM probe guest did not finish within %s (%s)", KVMProbeTimeout, r.Reason)
	}
	return nil
}

// runOnce runs QEMU with resolved options and classifies the outcome.
func runOnce(ctx context.Context, o Options) *Result {
	argv := o.argv()
	r := &Result{ExitStatus: -1, Cmdline: ShellQuote(argv), SerialLog: o.SerialLog, Accel: "tcg"}
	if o.KVM {
		r.Accel = "kvm"
	}
	startFailed := func(reason string) *Result {
		r.Outcome, r.Reason = StartFailed, reason
		return r
	}

	var logFile *os.File
	if o.SerialLog != "" {
		f, err := os.Create(o.SerialLog)
		if err != nil {
			return startFailed(fmt.Sprintf("cannot create the serial log: %v", err))
		}
		logFile = f
		defer logFile.Close()
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return startFailed(fmt.Sprintf("cannot make the serial pipe: %v", err))
	}
	var stderr limitedBuffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil // /dev/null: the guest gets no console input
	cmd.Stdout = pw
	cmd.Stderr = &stderr
	cmd.SysProcAttr = procAttr()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return startFailed(fmt.Sprintf("cannot run %s: %v (install QEMU or set %s)", o.Binary, err, EnvBinary))
	}
	pw.Close() // QEMU holds the write end now; EOF comes when it exits

	sc := newScanner(o.OnLine)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		var sinks []io.Writer
		if logFile != nil {
			sinks = append(sinks, logFile)
		}
		if o.Stream != nil {
			sinks = append(sinks, o.Stream)
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				for _, s := range sinks {
					s.Write(buf[:n]) // a failing sink must not stop the capture
				}
				sc.write(buf[:n])
			}
			if err != nil {
				sc.flush()
				return
			}
		}
	}()
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	var waitErr error
	killedBy := ""
	select {
	case waitErr = <-waitDone:
	case <-timer.C:
		killedBy = fmt.Sprintf("still running after the %s timeout; QEMU was killed", o.Timeout)
		waitErr = killGroup(cmd, waitDone)
	case <-ctx.Done():
		killedBy = fmt.Sprintf("run cancelled (%v); QEMU was killed", context.Cause(ctx))
		waitErr = killGroup(cmd, waitDone)
	}
	r.Duration = time.Since(start)
	select {
	case <-readDone:
	case <-time.After(2 * time.Second):
		pr.Close() // something still holds the pipe; stop reading
		<-readDone
	}
	pr.Close()
	r.Stderr = stderr.String()
	r.Tail, r.Lines, r.EndLine, r.Dump = sc.tail(), sc.lines, sc.status.EndLine(), sc.status.Dump()
	r.FailLine = sc.status.FailLine()
	r.Modules = sc.status.Modules()
	r.Llama, r.Files, r.LineErrors = sc.status.Llama(), sc.status.Files(), sc.status.LineErrors()

	if killedBy != "" {
		r.Outcome, r.Reason = TimedOut, timeoutReason(killedBy, r.EndLine, r.Modules)
		return r
	}
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		r.ExitStatus = 0
	case errors.As(waitErr, &exitErr) && exitErr.ExitCode() >= 0:
		r.ExitStatus = exitErr.ExitCode()
	default:
		r.Outcome, r.Reason = Crashed, fmt.Sprintf("QEMU ended abnormally: %v", waitErr)
		return r
	}
	r.Outcome, r.Reason = classify(r.ExitStatus, sc, r.Stderr)
	return r
}

// timeoutReason is the reason of a run QEMU was killed in: with the END
// line if the guest printed one, else naming the module that was running
// (loaded, no result line) when one was: the kernel's deadline could not
// stop it, which needs a timer interrupt.
func timeoutReason(killedBy, end string, mods []*serial.ModuleRun) string {
	reason := "guest " + killedBy
	if end != "" {
		return reason + fmt.Sprintf(" (it had printed %q)", end)
	}
	if n := len(mods); n > 0 {
		if m := mods[n-1]; m.Variant != "" && m.Result == "" && len(m.Fault) == 0 {
			reason += fmt.Sprintf("; module %s was running (loaded, no result line): it never gave control back and its deadline did not stop it, which needs timer interrupts (does it disable interrupts, cli, or halt with them off?)", m.Name)
		}
	}
	return reason
}

// classify turns QEMU's exit status and what the serial port said into an
// outcome and a reason.
func classify(status int, sc *scanner, stderr string) (Outcome, string) {
	end, fail, dump := sc.status.EndLine(), sc.status.FailLine(), sc.status.Dump()
	passMarker := sc.status.Passed()
	switch {
	// A dump line in a run the kernel ended normally (EXIT_PASS, or a
	// module failure) was printed by a module: modules share the serial
	// line. The kernel's own dump never comes back to those exits.
	case len(dump) > 0 && status != layout.StatusPass && status != layout.StatusModuleFail:
		return Crashed, fmt.Sprintf("CPU exception: %s", dump[0])
	case status == layout.StatusPass && passMarker:
		return Passed, "guest exited with EXIT_PASS and printed " + serial.MarkerPass
	case status == layout.StatusPass && end != "":
		return Failed, fmt.Sprintf("guest exited with EXIT_PASS but its end marker says %q", end)
	case status == layout.StatusPass:
		return Failed, "guest exited cleanly (EXIT_PASS) without its end marker `" + serial.MarkerPass + "`"
	case status == layout.StatusCPUException:
		return Crashed, "guest reported a CPU exception (exit 39) but printed no `" + serial.MarkerException + "` dump"
	case status == layout.StatusReset:
		if stderr != "" && sc.lines == 0 {
			return StartFailed, "QEMU exited 0 without running the guest: " + firstLine(stderr)
		}
		if passMarker {
			return Crashed, "guest printed " + serial.MarkerPass + " but then reset instead of exiting through isa-debug-exit"
		}
		return Crashed, "guest reset itself (triple fault?): QEMU exited 0 under -no-reboot with no end marker"
	case status == layout.StatusTestFail || status == layout.StatusPanic || status == layout.StatusModuleFail || status == layout.StatusBootError:
		what := layout.StatusName(status)
		if fail != "" {
			return Failed, fmt.Sprintf("guest failed (%s): %s", what, fail)
		}
		if passMarker {
			return Failed, fmt.Sprintf("guest printed %s but exited %d (%s)", serial.MarkerPass, status, what)
		}
		return Failed, fmt.Sprintf("guest exited %d (%s) without saying why on serial", status, what)
	case status == 1 && stderr != "" && sc.lines == 0:
		return StartFailed, "QEMU refused to start: " + firstLine(stderr)
	case stderr != "":
		return Crashed, fmt.Sprintf("QEMU exited %d, which is no guest exit code: %s", status, firstLine(stderr))
	}
	return Failed, fmt.Sprintf("QEMU exited %d, which is no Fluid exit code (see boot/bootinfo.h EXIT_*)", status)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// killGroup stops QEMU's process group: SIGTERM, then SIGKILL if it has not
// exited after a grace period. It returns Wait's result.
func killGroup(cmd *exec.Cmd, waitDone <-chan error) error {
	pid := cmd.Process.Pid
	signalGroup(pid, syscall.SIGTERM)
	select {
	case err := <-waitDone:
		return err
	case <-time.After(3 * time.Second):
	}
	signalGroup(pid, syscall.SIGKILL)
	return <-waitDone
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
