// Package debugger runs the project's gdb ritual: QEMU halted at reset with a
// gdb stub, gdb loading kernel.elf's symbols, breakpoints on kernel_main,
// module_execute and profiling_trigger_export (the seed notes' three stops).
package debugger

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fluid-os/fluid/internal/qemu"
	"golang.org/x/term"
)

// DefaultBreakpoints are the functions the ritual stops at.
var DefaultBreakpoints = []string{"kernel_main", "module_execute", "profiling_trigger_export"}

// Session is one debugging session.
type Session struct {
	Kernel      string        // kernel ELF with symbols
	SourceDir   string        // repository root: the ELF's paths are relative to it (-ffile-prefix-map)
	Image       string        // disk image to boot
	Port        int           // gdb stub TCP port; 0 = a free one
	Breakpoints []string      // default DefaultBreakpoints
	Timeout     time.Duration // QEMU lifetime bound; default 30 min
	Memory      string        // QEMU -m; "" = the harness default (an image with a user's model needs more)

	result func() *qemu.Result // after Start: waits for QEMU's result (once)
}

// GDBArchitecture is the gdb architecture of the kernel and the stub.
const GDBArchitecture = "i386:x86-64"

// Script returns the gdb command file for the session. Breakpoints on
// functions that the kernel does not have (yet) are set as pending, so gdb
// neither stops nor asks.
func (s *Session) Script() string {
	var b strings.Builder
	b.WriteString("set pagination off\nset confirm off\nset breakpoint pending on\n")
	// The x86_64 gdb stub of qemu-system-x86_64 sends the 64-bit register
	// set from reset on; gdb must expect it before it connects.
	fmt.Fprintf(&b, "set architecture %s\n", GDBArchitecture)
	fmt.Fprintf(&b, "file %s\n", s.Kernel)
	if s.SourceDir != "" {
		fmt.Fprintf(&b, "directory %s\n", s.SourceDir)
	}
	fmt.Fprintf(&b, "target remote 127.0.0.1:%d\n", s.Port)
	bps := s.Breakpoints
	if bps == nil {
		bps = DefaultBreakpoints
	}
	for _, bp := range bps {
		fmt.Fprintf(&b, "break %s\n", bp)
	}
	return b.String()
}

// FreePort asks the kernel for an unused TCP port on the loopback interface.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start boots the image in QEMU, stopped at the first instruction with the
// gdb stub listening, writes the gdb script next to the image and returns
// its path plus a function that stops QEMU and returns its result.
func (s *Session) Start(ctx context.Context) (script string, stop func() *qemu.Result, err error) {
	if s.Port == 0 {
		if s.Port, err = FreePort(); err != nil {
			return "", nil, fmt.Errorf("find a free port for the gdb stub: %w", err)
		}
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Minute
	}
	script = filepath.Join(filepath.Dir(s.Image), "debug.gdb")
	if err := os.WriteFile(script, []byte(s.Script()), 0o644); err != nil {
		return "", nil, fmt.Errorf("write gdb script: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan *qemu.Result, 1)
	opts := qemu.Options{Image: s.Image, GDB: s.Port, Timeout: s.Timeout, Memory: s.Memory,
		SerialLog: filepath.Join(filepath.Dir(s.Image), "debug-serial.log")}
	go func() {
		r, err := qemu.Run(ctx, opts)
		if err != nil {
			r = &qemu.Result{Outcome: qemu.StartFailed, Reason: err.Error()}
		}
		done <- r
	}()
	// Wait until the stub listens (or QEMU died).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, derr := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), 200*time.Millisecond)
		if derr == nil {
			c.Close()
			break
		}
		select {
		case r := <-done:
			cancel()
			return "", nil, fmt.Errorf("QEMU exited before its gdb stub came up: %s", r)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			return "", nil, fmt.Errorf("QEMU's gdb stub on port %d did not come up within 10 s", s.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once sync.Once
	var res *qemu.Result
	s.result = func() *qemu.Result {
		once.Do(func() { res = <-done })
		return res
	}
	return script, func() *qemu.Result { cancel(); return s.result() }, nil
}

// Wait blocks until the QEMU that Start booted exits on its own (the guest
// ends, its timeout passes, or Start's context is cancelled, e.g. by
// Ctrl-C) and returns its result; it does not stop QEMU.
func (s *Session) Wait() *qemu.Result {
	return s.result()
}

// Command is the gdb command line for a script.
func Command(gdb, script string) []string {
	return []string{gdb, "-q", "-x", script}
}

// Batch runs gdb non-interactively: the script, then `continue` until the
// first breakpoint, then the extra commands (e.g. "bt", "info registers"),
// and returns gdb's combined output.
func Batch(ctx context.Context, gdb, script string, extra ...string) (string, error) {
	args := []string{"-q", "-batch", "-nx", "-x", script, "-ex", "continue"}
	for _, e := range extra {
		args = append(args, "-ex", e)
	}
	cmd := exec.CommandContext(ctx, gdb, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Interactive runs a started session for a person: with a terminal on stdin
// it runs gdb (argv, from Command) there, Ctrl-C going to gdb rather than to
// this process; without one it prints the gdb command to run by hand and
// waits for QEMU to end (wait: Session.Wait; the guest exits, or Ctrl-C
// cancels the context QEMU was started with), so the printed command has a
// stub to attach to. Either way it stops QEMU and prints its result on w.
func Interactive(argv []string, stop, wait func() *qemu.Result, stdin *os.File, w io.Writer) error {
	var err error
	if !term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprintf(w, "debug: no terminal; attach with:\n  %s\nQEMU keeps running until the guest exits or you press Ctrl-C.\n", qemu.ShellQuote(argv))
		wait()
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, w, os.Stderr
		signal.Ignore(os.Interrupt) // Ctrl-C belongs to gdb now
		err = cmd.Run()
	}
	fmt.Fprintln(w, stop().String())
	return err
}
