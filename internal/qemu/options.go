// Package qemu boots a Fluid OS disk image in QEMU and says what happened:
// exactly one Outcome per run (Passed, Failed, Crashed, TimedOut,
// StartFailed), with the serial lines that explain it and the command line
// to reproduce it.
//
// The shape follows hugelgupf/vmtest's qemu package: Options is a plain
// struct whose fields document their environment overrides, Cmdline builds
// the argv without starting anything (so a test can print the exact command
// to paste into a shell), and misuse is reported with sentinel errors.
//
// The guest tells the harness how it ended in two ways that must agree: the
// isa-debug-exit status (internal/layout: 33 pass, 35 test failure, 37
// panic, 39 CPU exception, 41 module failure, 43 boot error; 0 = the guest
// reset itself under -no-reboot) and its last serial line (`FLUID-END pass`
// or `FLUID-END fail <class>: <reason>`). See docs/CONTRACTS.md.
package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables that override Options fields left at their zero
// value.
const (
	EnvBinary  = "FLUID_QEMU"         // Options.Binary
	EnvKVM     = "FLUID_KVM"          // Options.KVM when "1"
	EnvTimeout = "FLUID_QEMU_TIMEOUT" // Options.Timeout, a Go duration ("90s")
	EnvIcount  = "FLUID_ICOUNT"       // Options.Icount when "1"
)

// Defaults used for Options fields left at their zero value.
const (
	DefaultBinary  = "qemu-system-x86_64"
	DefaultTimeout = 60 * time.Second
	DefaultMemory  = "128M"
)

// Sentinel errors for misuse of Options.
var (
	ErrNoImage     = errors.New("qemu: Options.Image is empty")
	ErrImage       = errors.New("qemu: disk image not usable")
	ErrIcountKVM   = errors.New("qemu: Icount needs TCG; it cannot be combined with KVM")
	ErrBadGDBPort  = errors.New("qemu: Options.GDB is not a TCP port")
	ErrBadMemory   = errors.New("qemu: Options.Memory is not a QEMU memory size")
	ErrBadTimeout  = errors.New("qemu: bad " + EnvTimeout)
	ErrReservedArg = errors.New("qemu: Options.Extra repeats an option the harness sets")
)

// Options configure one QEMU run. The zero value of every field but Image
// is usable.
type Options struct {
	// Binary is the QEMU executable. Default: $FLUID_QEMU, else
	// "qemu-system-x86_64" (found in $PATH).
	Binary string

	// Image is the raw disk image to boot (required). It is attached as the
	// first IDE disk with snapshot=on: the guest's writes go to a temporary
	// overlay, so the image stays unchanged and several runs may share it.
	Image string

	// Writable attaches Image without snapshot=on, so guest writes reach
	// the file (and a second QEMU on the same image is refused).
	Writable bool

	// Timeout bounds the whole run; on expiry QEMU's process group is
	// killed and the outcome is TimedOut. Default: $FLUID_QEMU_TIMEOUT (a
	// Go duration), else DefaultTimeout.
	Timeout time.Duration

	// SerialLog is a file that receives the complete COM1 output (created
	// or truncated). Default: none; Result.Tail still holds the last lines.
	SerialLog string

	// Stream, if set, receives COM1 output live, as it arrives.
	Stream io.Writer

	// OnLine, if set, is called with every complete COM1 line (without the
	// line ending) as it arrives, from the goroutine reading the serial
	// port; it must return quickly. This is where a consumer attaches while
	// the guest runs: serial.Parser.Line decodes frames as they arrive,
	// serial.Console shows the console without frame payloads.
	OnLine func(line string)

	// KVM asks for hardware acceleration (-accel kvm). Run honours it only
	// after ProbeKVM shows a guest actually starts and finishes quickly on
	// this host; otherwise it falls back to TCG and says so in
	// Result.Notes. Default: true when $FLUID_KVM is "1", unless Icount.
	KVM bool

	// Icount makes guest time deterministic: -icount shift=0,sleep=off
	// -rtc clock=vm (TCG only). Default: true when $FLUID_ICOUNT is "1".
	Icount bool

	// GDB, if non-zero, opens a gdb stub on this TCP port and starts the
	// CPU stopped (-gdb tcp::PORT -S); attach with `target remote :PORT`.
	GDB int

	// QMP, if set, is the path of a QMP unix socket QEMU listens on
	// (server, nowait); see DialQMP and ReadVGAText.
	QMP string

	// NoSerial boots without a UART at COM1 (-serial none instead of
	// -serial stdio): the guest has no serial port, so no lines arrive,
	// OnLine is never called and a guest that exits 33 is reported Failed
	// (no end marker seen). Tests of a kernel without COM1 check
	// Result.ExitStatus and the VGA screen instead.
	NoSerial bool

	// Memory is the guest RAM size. Default: DefaultMemory.
	Memory string

	// CPU is the -cpu model with its feature switches (e.g. "qemu64,-lm",
	// a CPU without long mode, which stage 2 must refuse). Default: QEMU's
	// own under TCG (qemu64: x86_64 with NX), "host" under KVM.
	CPU string

	// DiskErrors, if set, is a QEMU blkdebug configuration file: the image
	// is attached through the blkdebug driver, which fails the disk
	// requests the file names (e.g. one read of a given sector with EIO,
	// [inject-error] event = "read_aio", sector = "N", once = "on"), to
	// test the kernel's disk error paths.
	DiskErrors string

	// DriveOptions, if set, is appended to the disk's -drive option list
	// (e.g. "throttling.bps-read=65536": a disk that reads 64 KiB/s).
	DriveOptions string

	// Extra arguments appended to the command line.
	Extra []string
}

// resolve returns o with environment overrides and defaults applied and
// checks it.
func (o Options) resolve(getenv func(string) string) (Options, error) {
	if o.Image == "" {
		return o, ErrNoImage
	}
	if o.Binary == "" {
		o.Binary = getenv(EnvBinary)
	}
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if o.Timeout == 0 {
		if s := getenv(EnvTimeout); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("%w: %q is not a positive Go duration like 90s", ErrBadTimeout, s)
			}
			o.Timeout = d
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if !o.Icount && getenv(EnvIcount) == "1" {
		o.Icount = true
	}
	// $FLUID_KVM is a preference (CI sets it on runners with /dev/kvm); a
	// run that needs -icount (deterministic guest time: profiles, exact
	// instruction counts) keeps TCG. Only KVM and Icount both asked for in
	// code are a contradiction.
	if !o.KVM && !o.Icount && getenv(EnvKVM) == "1" {
		o.KVM = true
	}
	if o.KVM && o.Icount {
		return o, ErrIcountKVM
	}
	if o.GDB < 0 || o.GDB > 65535 {
		return o, fmt.Errorf("%w: %d", ErrBadGDBPort, o.GDB)
	}
	if o.Memory == "" {
		o.Memory = DefaultMemory
	}
	if !validMemory(o.Memory) {
		return o, fmt.Errorf("%w: %q (want e.g. 128M or 1G)", ErrBadMemory, o.Memory)
	}
	for _, a := range o.Extra {
		switch a {
		case "-serial", "-monitor", "-display", "-no-reboot", "-qmp", "-gdb", "-cpu":
			return o, fmt.Errorf("%w: %s", ErrReservedArg, a)
		}
	}
	return o, nil
}

func validMemory(s string) bool {
	num := strings.TrimRight(s, "MGmgKk")
	if len(s)-len(num) > 1 {
		return false
	}
	n, err := strconv.Atoi(num)
	return err == nil && n > 0
}

// Cmdline returns the QEMU argv for o (environment overrides applied) and
// the same command shell-quoted, ready to paste. Pasted, it prints the
// guest's serial output on the terminal. Nothing is started.
func (o Options) Cmdline() (argv []string, shell string, err error) {
	r, err := o.resolve(os.Getenv)
	if err != nil {
		return nil, "", err
	}
	argv = r.argv()
	return argv, ShellQuote(argv), nil
}

func (o Options) argv() []string {
	drive := "file=" + qemuOptEscape(o.Image) + ",format=raw,if=ide"
	if o.DiskErrors != "" {
		drive = "driver=raw,file.driver=blkdebug,file.config=" + qemuOptEscape(o.DiskErrors) +
			",file.image.filename=" + qemuOptEscape(o.Image) + ",if=ide"
	}
	if !o.Writable {
		drive += ",snapshot=on"
	}
	if o.DriveOptions != "" {
		drive += "," + o.DriveOptions
	}
	com1 := "stdio" // COM1 is the harness's serial pipe
	if o.NoSerial {
		com1 = "none"
	}
	a := []string{o.Binary,
		"-no-reboot",
		"-display", "none",
		"-monitor", "none",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", drive,
		"-serial", com1,
		"-m", o.Memory,
	}
	if o.KVM {
		a = append(a, "-accel", "kvm")
	} else {
		a = append(a, "-accel", "tcg")
	}
	if o.CPU != "" {
		a = append(a, "-cpu", o.CPU)
	} else if o.KVM {
		a = append(a, "-cpu", "host")
	}
	if o.Icount {
		a = append(a, "-icount", "shift=0,sleep=off", "-rtc", "clock=vm")
	}
	if o.GDB != 0 {
		a = append(a, "-gdb", "tcp::"+strconv.Itoa(o.GDB), "-S")
	}
	if o.QMP != "" {
		a = append(a, "-qmp", "unix:"+qemuOptEscape(o.QMP)+",server=on,wait=off")
	}
	return append(a, o.Extra...)
}

// qemuOptEscape escapes a value inside a QEMU option list, where a comma
// separates options and ",," stands for a literal comma.
func qemuOptEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// ShellQuote joins argv into one POSIX shell command line, quoting each
// argument that needs it.
func ShellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@+%") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
