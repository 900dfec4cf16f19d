// Package serial is the one place the host knows the guest's serial (COM1)
// protocol (docs/CONTRACTS.md, "Serial (COM1) lines the host reads"): the
// markers the boot stages and the kernel print, the frame codec (base64
// payload lines between a BEGIN and an END marker, checked by length and
// CRC-32), the module run summaries the frames carry, the console filter
// and a streaming line parser that the QEMU runner's per-line hook feeds
// while the guest runs.
//
// This file alone spells the markers and the frame syntax (a test fails if
// any other non-test Go file of the tree does). The package imports nothing
// of the project's.
package serial

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Markers: the serial lines the host recognises. A test checks that every
// one appears in docs/CONTRACTS.md's serial table and that every line of
// that table starts from one of them.
const (
	// MarkerStage1Fatal starts stage 1's refusal line ("stage1: FATAL: <reason>").
	MarkerStage1Fatal = "stage1: FATAL"
	// MarkerStage2 starts every stage 2 line: seeing one means the log is a guest's.
	MarkerStage2 = "stage2: "
	// MarkerStage2Fatal starts stage 2's refusal line ("stage2: FATAL: <reason>").
	MarkerStage2Fatal = "stage2: FATAL"
	// MarkerBanner starts the kernel's first line ("Fluid OS <version> (BareFlow-LLVM)").
	MarkerBanner = "Fluid OS "
	// MarkerTSC precedes the TSC at kernel_main ("boot: kernel_main reached at tsc=<n>");
	// under -icount shift=0 it counts guest instructions since reset.
	MarkerTSC = "kernel_main reached at tsc="
	// MarkerEndTSC precedes the TSC just before the FLUID-END line
	// ("boot: run ended at tsc=<n>"): under -icount shift=0 the guest
	// instructions of the whole run.
	MarkerEndTSC = "run ended at tsc="
	// MarkerException starts a CPU exception dump.
	MarkerException = "*** CPU EXCEPTION"
	// MarkerPanic starts a kernel panic line ("*** PANIC: <message>").
	MarkerPanic = "*** PANIC"
	// MarkerKtest starts the test kernel's lines ("[ktest] PASS <name>", ...).
	MarkerKtest = "[ktest] "
	// MarkerModule starts the module loader's lines ("module <name>: ...").
	MarkerModule = "module "
	// MarkerModuleLoaded follows the name on the line of a module that
	// loaded ("module <name>: loaded (<variant> <hash>) from ...").
	MarkerModuleLoaded = ": loaded ("
	// MarkerModuleResult follows the name on a module's result line
	// ("module <name>: result <ok|FAIL|CRASHED|TIMEOUT> calls=...").
	MarkerModuleResult = ": result "
	// MarkerModuleRefused follows the name of a module file that was not
	// run ("module <name>: refused: <reason>").
	MarkerModuleRefused = ": refused: "
	// MarkerModuleSkipped follows the name of a /modules entry that was
	// not loaded ("module <name>: skipped: <reason>").
	MarkerModuleSkipped = ": skipped: "
	// MarkerModuleTimedOut follows the name of a module that overran its
	// deadline ("module <name>: timed out after <n> ms (at <name>+0x<off>)").
	MarkerModuleTimedOut = ": timed out after "
	// MarkerModuleCrashed follows the name of a module that raised a CPU
	// exception ("module <name>: crashed: exception <v> (<mnemonic> <name>) err=0x<e> at <name>+0x<off>").
	MarkerModuleCrashed = ": crashed: "
	// MarkerModulePageFault follows the name on a crashed module's page
	// fault line ("module <name>: page fault at 0x<cr2>: ...").
	MarkerModulePageFault = ": page fault at "
	// MarkerModuleBacktrace follows the name on a crashed or timed-out
	// module's backtrace ("module <name>: backtrace: <name>+0x<off> ...").
	MarkerModuleBacktrace = ": backtrace: "
	// MarkerModuleHook follows the name of a module whose profile dump hook
	// the guard stopped during the frame export (crashed or timed out, at
	// NAME+0xOFF).
	MarkerModuleHook = ": profile hook "
	// MarkerFrameBegin starts a frame (format: kernel/include/profiling.h).
	MarkerFrameBegin = "@@FLUID-FRAME-BEGIN "
	// MarkerFrameEnd ends a frame.
	MarkerFrameEnd = "@@FLUID-FRAME-END "
	// MarkerFrameError replaces a frame the guest could not produce.
	MarkerFrameError = "@@FLUID-FRAME-ERROR "
	// MarkerFramesDone follows the last frame, with the counts sent.
	MarkerFramesDone = "@@FLUID-FRAMES-DONE "
	// MarkerEnd starts the run's last line.
	MarkerEnd = "FLUID-END "
	// MarkerPass is the whole last line of a passed run.
	MarkerPass = "FLUID-END pass"
	// MarkerFail starts the last line of a failed run ("FLUID-END fail <class>: <reason>").
	MarkerFail = "FLUID-END fail"
)

// Frame syntax, as in kernel/include/profiling.h.
const (
	// FrameVersion is the frame format version the kernel writes (v=).
	FrameVersion = 1
	// KindSummary frames carry a module's JSON run summary.
	KindSummary = "summary"
	// KindProfraw frames carry a module's raw LLVM profile.
	KindProfraw = "profraw"
	// B64Line is the payload line length the kernel uses (PROF_B64_LINE).
	B64Line = 76

	b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)

// ClassModule is the class word of the end line of a run that failed
// because modules failed ("FLUID-END fail module: ...", exit 41).
const ClassModule = "module"

// Module results. The summary frame's JSON "result" is one of the Result*
// words; the loader's result line prints the Line* word of the same
// outcome.
const (
	ResultOK      = "ok"      // ran and passed its checks
	ResultFail    = "fail"    // ran to the end but a check failed
	ResultCrashed = "crashed" // raised a CPU exception inside its own code
	ResultTimeout = "timeout" // overran its deadline and was stopped

	LineOK      = "ok"
	LineFail    = "FAIL"
	LineCrashed = "CRASHED"
	LineTimeout = "TIMEOUT"
)

// Finished reports whether a summary result is one of a module that ran to
// its end (ok or fail): only such a module sends a profraw frame.
func Finished(result string) bool { return result == ResultOK || result == ResultFail }

// locRE matches a module-relative code location, NAME+0xOFF (lowercase
// hex, as the kernel prints it).
var locRE = regexp.MustCompile(`([A-Za-z0-9_][A-Za-z0-9_.-]*)\+0x([0-9a-f]{1,8})\b`)

// Loc is one module-relative code location a kernel line named.
type Loc struct {
	Module string
	Off    uint32
}

// String is the location as the kernel prints it.
func (l Loc) String() string { return fmt.Sprintf("%s+0x%x", l.Module, l.Off) }

// ParseLocs returns every NAME+0xOFF in s, in order.
func ParseLocs(s string) []Loc {
	var out []Loc
	for _, m := range locRE.FindAllStringSubmatch(s, -1) {
		off, err := strconv.ParseUint(m[2], 16, 32)
		if err != nil {
			continue
		}
		out = append(out, Loc{Module: m[1], Off: uint32(off)})
	}
	return out
}

// moduleLine splits a loader line ("module <name>: ...") into the module's
// name and the rest from the colon on; ok is false for any other line.
func moduleLine(l string) (name, rest string, ok bool) {
	if !strings.HasPrefix(l, MarkerModule) {
		return "", "", false
	}
	s := l[len(MarkerModule):]
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.ContainsAny(s[:i], " \t") {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// Summary is one module's run summary, as the kernel sends it in a summary
// frame (profiling_export in kernel/prof/export.c).
type Summary struct {
	Module      string `json:"module"`
	Variant     string `json:"variant"` // baseline, O3, PGO, instrumented
	Hash        string `json:"hash"`    // the module header's hash, hex
	Calls       uint64 `json:"calls"`
	CyclesTotal uint64 `json:"cycles_total"` // rdtsc; guest instructions under -icount shift=0
	CyclesMin   uint64 `json:"cycles_min"`
	CyclesMax   uint64 `json:"cycles_max"`
	Result      string `json:"result"` // ResultOK, ResultFail, ResultCrashed or ResultTimeout
}

// DecodeSummary decodes a summary frame's payload strictly: a field the
// host does not know is an error.
func DecodeSummary(payload []byte) (Summary, error) {
	var s Summary
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	err := dec.Decode(&s)
	return s, err
}

// EncodeFrame writes one frame in the kernel's format (the Go mirror of
// prof_frame_write, used by tests and tools).
func EncodeFrame(w io.Writer, kind, module string, payload []byte) error {
	var b bytes.Buffer
	b.WriteString(beginLine(kind, module, len(payload), crc32.ChecksumIEEE(payload)) + "\n")
	enc := base64.StdEncoding.EncodeToString(payload)
	for len(enc) > 0 {
		n := min(B64Line, len(enc))
		b.WriteString(enc[:n])
		b.WriteByte('\n')
		enc = enc[n:]
	}
	b.WriteString(endLine(kind, module) + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// beginLine is a frame's BEGIN line exactly as the kernel prints it.
func beginLine(kind, module string, length int, crc uint32) string {
	return fmt.Sprintf("%sv=%d kind=%s module=%s len=%d crc32=%08x", MarkerFrameBegin, FrameVersion, kind, module, length, crc)
}

// endLine is a frame's END line exactly as the kernel prints it.
func endLine(kind, module string) string {
	return fmt.Sprintf("%skind=%s module=%s", MarkerFrameEnd, kind, module)
}

// EncodeDone writes the FRAMES-DONE line.
func EncodeDone(w io.Writer, frames, errs int) error {
	_, err := fmt.Fprintf(w, "%sframes=%d errors=%d\n", MarkerFramesDone, frames, errs)
	return err
}

// EncodeError writes a FRAME-ERROR line (the Go mirror of prof_frame_error).
func EncodeError(w io.Writer, kind, module, reason string) error {
	_, err := fmt.Fprintf(w, "%skind=%s module=%s reason=%s\n", MarkerFrameError, kind, module, reason)
	return err
}

// EncodeCapture writes c as the kernel's export would: every frame, every
// error line, then the FRAMES-DONE line with c's counts.
func EncodeCapture(w io.Writer, c *Capture) error {
	for _, f := range c.Frames {
		if err := EncodeFrame(w, f.Kind, f.Module, f.Payload); err != nil {
			return err
		}
	}
	for _, e := range c.Errors {
		if err := EncodeError(w, e.Kind, e.Module, e.Reason); err != nil {
			return err
		}
	}
	return EncodeDone(w, c.DoneFrames, c.DoneErrors)
}

// fields parses "k=v k=v ..." after a marker. The ERROR line's reason runs
// to the end of the line, so parsing stops at "reason=".
func fields(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, "reason=") {
			m["reason"] = s[len("reason="):]
			break
		}
		tok, rest, _ := strings.Cut(s, " ")
		k, v, ok := strings.Cut(tok, "=")
		if ok {
			m[k] = v
		}
		s = rest
	}
	return m
}

// frameBegin is a BEGIN marker's fields, as sent (unchecked).
type frameBegin struct {
	Version, Kind, Module, Len, CRC32 string
}

// frameLine says which frame marker starts line and returns its fields:
// marker is "" for a line that is not a frame marker. Only whole-line
// markers count (a marker after other output on a line is payload noise).
func frameLine(line string) (marker string, f map[string]string) {
	for _, m := range []string{MarkerFrameBegin, MarkerFrameEnd, MarkerFrameError, MarkerFramesDone} {
		if strings.HasPrefix(line, m) {
			return m, fields(line[len(m):])
		}
	}
	return "", nil
}

func beginOf(f map[string]string) frameBegin {
	return frameBegin{Version: f["v"], Kind: f["kind"], Module: f["module"], Len: f["len"], CRC32: f["crc32"]}
}

// check validates a BEGIN marker's fields and returns the announced length
// and CRC-32; line is the marker line, quoted in the error.
func (b frameBegin) check(line string) (length int, crc uint32, err error) {
	if b.Version != strconv.Itoa(FrameVersion) {
		return 0, 0, fmt.Errorf("frame format version %q, this host reads %d; rebuild the kernel and the host tools from one commit", b.Version, FrameVersion)
	}
	if b.Kind == "" || b.Module == "" {
		return 0, 0, fmt.Errorf("garbled BEGIN marker %q", line)
	}
	if length, err = strconv.Atoi(b.Len); err != nil || length < 0 {
		return 0, 0, fmt.Errorf("garbled length in BEGIN marker %q", line)
	}
	v, perr := strconv.ParseUint(b.CRC32, 16, 32)
	if perr != nil || len(b.CRC32) != 8 {
		return 0, 0, fmt.Errorf("garbled crc32 in BEGIN marker %q", line)
	}
	// Only the kernel's exact form: no extra spaces or fields, no "+",
	// leading zeros or upper-case hex (found by FuzzParser).
	if want := beginLine(b.Kind, b.Module, length, uint32(v)); line != want {
		return 0, 0, fmt.Errorf("garbled BEGIN marker %q: the kernel writes %q", line, want)
	}
	return length, uint32(v), nil
}

// payloadLine reports whether line can be a frame's base64 payload line.
func payloadLine(line string) bool {
	return len(line) > 0 && len(line) <= B64Line && strings.Trim(line, b64Alphabet) == ""
}

// decodePayload turns a frame's base64 lines into its payload and checks it
// against the BEGIN marker's length and CRC-32.
func decodePayload(b64 string, length int, crc uint32) ([]byte, error) {
	// Strict: the padding bits of the last group must be zero, as the
	// kernel's encoder leaves them, so one payload has one text.
	data, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("garbled payload: %v", err)
	}
	if len(data) != length {
		return nil, fmt.Errorf("truncated: %d payload bytes, the BEGIN marker announced %d", len(data), length)
	}
	if got := crc32.ChecksumIEEE(data); got != crc {
		return nil, fmt.Errorf("CRC-32 mismatch: payload has %08x, the BEGIN marker announced %08x (the serial data was corrupted)", got, crc)
	}
	return data, nil
}

// doneCounts parses the FRAMES-DONE fields.
func doneCounts(f map[string]string) (frames, errs int, ok bool) {
	fr, err1 := strconv.Atoi(f["frames"])
	er, err2 := strconv.Atoi(f["errors"])
	return fr, er, err1 == nil && err2 == nil
}

// noDone is the complaint about a log without the FRAMES-DONE line.
var noDone = "the serial log has no " + strings.TrimSpace(MarkerFramesDone) + " line: the guest stopped (or the capture was cut) before the export finished"

// ParseTSC returns the TSC the kernel printed at kernel_main if line is
// that line (the marker may follow other text).
func ParseTSC(line string) (uint64, bool) { return tscAfter(line, MarkerTSC) }

// ParseEndTSC returns the TSC the kernel printed just before FLUID-END if
// line is that line.
func ParseEndTSC(line string) (uint64, bool) { return tscAfter(line, MarkerEndTSC) }

// tscAfter reads the decimal number after marker on line.
func tscAfter(line, marker string) (uint64, bool) {
	i := strings.Index(line, marker)
	if i < 0 {
		return 0, false
	}
	digits := line[i+len(marker):]
	n := 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	v, err := strconv.ParseUint(digits[:n], 10, 64)
	return v, err == nil
}

// fatalMarkers are the lines that name why a boot stopped, in the order
// they are looked for on a line.
var fatalMarkers = []string{MarkerStage2Fatal, MarkerStage1Fatal, MarkerPanic}

// guestPrefixes start the lines that show a log is a guest's serial output.
var guestPrefixes = []string{MarkerStage2, MarkerBanner}
