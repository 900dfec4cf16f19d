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
	"errors"
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
	// MarkerFile starts the kernel's line about a file it read for a module
	// (read_file): "file /<path>: read <n> bytes in <us> us (<mbps> MB/s)",
	// or "file /<path>: <reason>" when it could not.
	MarkerFile = "file /"
	// MarkerDiskPath starts the kernel's line saying how it reads the disk
	// (kernel/module/workload.c): "workload: disk reads by bus-master DMA
	// (...)" or "workload: disk reads by PIO (rep insw): <why>".
	MarkerDiskPath = "workload: disk reads by "
	// MarkerLlama starts every line of the llama module.
	MarkerLlama = "llama: "
	// MarkerLlamaModel starts the llama module's line about the model it
	// loaded; it opens the lines of one call of the module's entry.
	MarkerLlamaModel = "llama: model "
	// MarkerLlamaPrompt starts the line with the prompt and its token ids.
	MarkerLlamaPrompt = "llama: prompt "
	// MarkerLlamaTokens starts the line with the generated token ids.
	MarkerLlamaTokens = "llama: tokens "
	// MarkerLlamaText starts the line with the generated text, quoted.
	MarkerLlamaText = "llama: text "
	// MarkerLlamaGenerated starts the line with the generation's figures.
	MarkerLlamaGenerated = "llama: generated "
	// MarkerLlamaRefused starts the line saying why the module refused to
	// run (and fails).
	MarkerLlamaRefused = "llama: refused: "
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

// fileReadRE is a successful read_file line after MarkerFile.
var fileReadRE = regexp.MustCompile(`^(\S*): read ([0-9]+) bytes in ([0-9]+) us \(([0-9]+\.[0-9]+) MB/s\)$`)

// FileRead is one line the kernel printed about a file it read for a
// module: the figures of a read, or why it could not.
type FileRead struct {
	Path   string // absolute, as in the image's FAT32 partition
	Bytes  uint64
	Micros uint64  // how long the read took, in microseconds
	MBps   float64 // megabytes (10^6 bytes) per second, as the kernel printed it
	Failed string  // the reason, when the file could not be read ("" when it was)
	Line   int     // serial line (1-based)
}

// ParseFileLine parses a kernel file line (MarkerFile). ok is false for a
// line that is not one; err is set for one that starts like one but does not
// follow the syntax.
func ParseFileLine(l string) (f FileRead, ok bool, err error) {
	if !strings.HasPrefix(l, MarkerFile) {
		return f, false, nil
	}
	rest := l[len(MarkerFile)-1:]
	if m := fileReadRE.FindStringSubmatch(rest); m != nil {
		f.Path = m[1]
		var e1, e2, e3 error
		f.Bytes, e1 = strconv.ParseUint(m[2], 10, 64)
		f.Micros, e2 = strconv.ParseUint(m[3], 10, 64)
		f.MBps, e3 = strconv.ParseFloat(m[4], 64)
		if err := errors.Join(e1, e2, e3); err != nil {
			return f, true, fmt.Errorf("garbled file line %q: a number out of range: %v", clip(l), err)
		}
		return f, true, nil
	}
	path, why, found := strings.Cut(rest, ": ")
	if !found || path == "" || strings.ContainsAny(path, " \t") || why == "" || strings.HasPrefix(why, "read ") {
		return f, true, fmt.Errorf("garbled file line %q: the kernel writes %q or %q", clip(l), MarkerFile+"<path>: read <n> bytes in <us> us (<mbps> MB/s)", MarkerFile+"<path>: <reason>")
	}
	f.Path, f.Failed = path, why
	return f, true, nil
}

// EncodeFileRead is the kernel's line for a read (the Go mirror, for tests).
func EncodeFileRead(f FileRead) string {
	if f.Failed != "" {
		return fmt.Sprintf("file %s: %s", f.Path, f.Failed)
	}
	return fmt.Sprintf("file %s: read %d bytes in %d us (%.2f MB/s)", f.Path, f.Bytes, f.Micros, f.MBps)
}

// EscapeText quotes bytes as the llama module does inside "...": bytes
// 0x20..0x7E other than '"' and '\\' stand for themselves, every other byte
// is \xNN (two lowercase hex digits). The quotes are not included.
func EscapeText(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			s.WriteByte(c)
		} else {
			fmt.Fprintf(&s, "\\x%02x", c)
		}
	}
	return s.String()
}

// UnescapeText undoes EscapeText. It is strict, so one byte string has one
// text: a byte EscapeText would have escaped, a backslash not followed by
// x and two lowercase hex digits, or an escape of a byte EscapeText writes
// as itself is an error naming where it is.
func UnescapeText(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if c < 0x20 || c > 0x7e || c == '"' {
				return nil, fmt.Errorf("byte %d of the quoted text is 0x%02x, which is always written \\x%02x", i, c, c)
			}
			out = append(out, c)
			continue
		}
		if i+3 >= len(s) || s[i+1] != 'x' || !lowerHex(s[i+2]) || !lowerHex(s[i+3]) {
			return nil, fmt.Errorf("byte %d of the quoted text: a backslash must start \\xNN with two lowercase hex digits", i)
		}
		v, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
		if b := byte(v); b >= 0x20 && b <= 0x7e && b != '"' && b != '\\' {
			return nil, fmt.Errorf("byte %d of the quoted text: \\x%02x is %q, which is written as itself", i, b, rune(b))
		}
		out = append(out, byte(v))
		i += 3
	}
	return out, nil
}

func lowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// LlamaModel is the llama module's model line.
type LlamaModel struct {
	Path                                                string
	Layers, Dim, Heads, KVHeads, Hidden, Vocab, Context int
	Type                                                string // F32, F16, Q8_0
	Bytes                                               uint64
}

var llamaModelRE = regexp.MustCompile(`^(\S+): ([0-9]+) layers, dim ([0-9]+), ([0-9]+) heads \(([0-9]+) kv\), hidden ([0-9]+), vocab ([0-9]+), context ([0-9]+), ([A-Z0-9_]+), ([0-9]+) bytes$`)

// llamaPromptRE is the prompt line after MarkerLlamaPrompt; the quoted
// text has no raw '"' (EscapeText writes it \x22).
var llamaPromptRE = regexp.MustCompile(`^"([^"]*)" = ([0-9]+) tokens?: ([0-9]+(?: [0-9]+)*)$`)

var llamaGeneratedRE = regexp.MustCompile(`^([0-9]+) tokens? in ([0-9]+) tsc \(([0-9]+) tsc/token, ([0-9]+\.[0-9]{3}) ms/token\)$`)

var llamaTextRE = regexp.MustCompile(`^"([^"]*)"$`)

// LlamaLine is one parsed llama module line: Kind is the marker it starts
// with and exactly the fields of that kind are set.
type LlamaLine struct {
	Kind      string // MarkerLlamaModel, MarkerLlamaPrompt, ...
	Model     LlamaModel
	Prompt    []byte // unescaped
	IDs       []int  // the prompt's ids or the generated tokens
	Text      []byte // unescaped
	Generated int
	TSC       uint64 // the whole generation's (the prompt excluded)
	TSCPerTok uint64
	MsPerTok  float64
	Refused   string
}

// ParseLlamaLine parses a llama module line. ok is false for a line that
// does not start with MarkerLlama; err is set for one that does but is not
// one of the contract's lines in its exact syntax (docs/CONTRACTS.md).
func ParseLlamaLine(l string) (ll LlamaLine, ok bool, err error) {
	if !strings.HasPrefix(l, MarkerLlama) {
		return ll, false, nil
	}
	bad := func(why string) (LlamaLine, bool, error) {
		return ll, true, fmt.Errorf("garbled llama line %q: %s", clip(l), why)
	}
	ints := func(s string) ([]int, error) {
		out := []int{}
		if s == "" {
			return out, nil
		}
		for _, f := range strings.Split(s, " ") {
			v, err := strconv.Atoi(f)
			if err != nil || v < 0 || strconv.Itoa(v) != f {
				return nil, fmt.Errorf("token id %q is not a decimal number", f)
			}
			out = append(out, v)
		}
		return out, nil
	}
	switch {
	case strings.HasPrefix(l, MarkerLlamaModel):
		ll.Kind = MarkerLlamaModel
		m := llamaModelRE.FindStringSubmatch(l[len(MarkerLlamaModel):])
		if m == nil {
			return bad("want " + MarkerLlamaModel + "<path>: <n> layers, dim <n>, <n> heads (<n> kv), hidden <n>, vocab <n>, context <n>, <type>, <n> bytes")
		}
		var errs []error
		n := func(i int) int {
			v, err := strconv.ParseUint(m[i], 10, 32) // the module prints uint32s
			errs = append(errs, err)
			return int(v)
		}
		ll.Model = LlamaModel{Path: m[1], Layers: n(2), Dim: n(3), Heads: n(4), KVHeads: n(5), Hidden: n(6), Vocab: n(7), Context: n(8), Type: m[9]}
		var err error
		ll.Model.Bytes, err = strconv.ParseUint(m[10], 10, 64)
		if err := errors.Join(append(errs, err)...); err != nil {
			return bad("a number out of range: " + err.Error())
		}
	case strings.HasPrefix(l, MarkerLlamaPrompt):
		ll.Kind = MarkerLlamaPrompt
		m := llamaPromptRE.FindStringSubmatch(l[len(MarkerLlamaPrompt):])
		if m == nil {
			return bad("want " + MarkerLlamaPrompt + "\"<text>\" = <n> tokens: <id> ...")
		}
		if ll.Prompt, err = UnescapeText(m[1]); err != nil {
			return bad(err.Error())
		}
		if ll.IDs, err = ints(m[3]); err != nil {
			return bad(err.Error())
		}
		if n, _ := strconv.Atoi(m[2]); n != len(ll.IDs) {
			return bad(fmt.Sprintf("it announces %s tokens and lists %d", m[2], len(ll.IDs)))
		}
	case strings.HasPrefix(l, MarkerLlamaTokens):
		ll.Kind = MarkerLlamaTokens
		if ll.IDs, err = ints(l[len(MarkerLlamaTokens):]); err != nil {
			return bad(err.Error())
		}
	case strings.HasPrefix(l, MarkerLlamaText):
		ll.Kind = MarkerLlamaText
		m := llamaTextRE.FindStringSubmatch(l[len(MarkerLlamaText):])
		if m == nil {
			return bad("want " + MarkerLlamaText + "\"<escaped text>\"")
		}
		if ll.Text, err = UnescapeText(m[1]); err != nil {
			return bad(err.Error())
		}
		if ll.Text == nil {
			ll.Text = []byte{}
		}
	case strings.HasPrefix(l, MarkerLlamaGenerated):
		ll.Kind = MarkerLlamaGenerated
		m := llamaGeneratedRE.FindStringSubmatch(l[len(MarkerLlamaGenerated):])
		if m == nil {
			return bad("want " + MarkerLlamaGenerated + "<n> tokens in <n> tsc (<n> tsc/token, <x.yyy> ms/token)")
		}
		gen, e1 := strconv.ParseUint(m[1], 10, 32)
		var e2, e3, e4 error
		ll.Generated = int(gen)
		ll.TSC, e2 = strconv.ParseUint(m[2], 10, 64)
		ll.TSCPerTok, e3 = strconv.ParseUint(m[3], 10, 64)
		ll.MsPerTok, e4 = strconv.ParseFloat(m[4], 64)
		if err := errors.Join(e1, e2, e3, e4); err != nil {
			return bad("a number out of range: " + err.Error())
		}
	case strings.HasPrefix(l, MarkerLlamaRefused):
		ll.Kind = MarkerLlamaRefused
		ll.Refused = l[len(MarkerLlamaRefused):]
		if strings.TrimSpace(ll.Refused) == "" {
			return bad("a refusal without a reason")
		}
	default:
		return bad("not one of the llama module's lines (model, prompt, tokens, text, generated, refused)")
	}
	return ll, true, nil
}

// EncodeLlamaLines are the lines the llama module prints for one call (the
// Go mirror of the module's output, for tests): model (when r.Model has a
// path), then the refusal, or prompt, tokens, text and generated.
func EncodeLlamaLines(r LlamaRun) []string {
	var out []string
	if r.Model.Path != "" {
		out = append(out, EncodeLlamaLine(LlamaLine{Kind: MarkerLlamaModel, Model: r.Model}))
	}
	if r.Refused != "" {
		return append(out, EncodeLlamaLine(LlamaLine{Kind: MarkerLlamaRefused, Refused: r.Refused}))
	}
	return append(out,
		EncodeLlamaLine(LlamaLine{Kind: MarkerLlamaPrompt, Prompt: r.Prompt, IDs: r.PromptIDs}),
		EncodeLlamaLine(LlamaLine{Kind: MarkerLlamaTokens, IDs: r.Tokens}),
		EncodeLlamaLine(LlamaLine{Kind: MarkerLlamaText, Text: r.Text}),
		EncodeLlamaLine(LlamaLine{Kind: MarkerLlamaGenerated, Generated: r.Generated, TSC: r.TSC, TSCPerTok: r.TSCPerToken, MsPerTok: r.MsPerToken}))
}

// EncodeLlamaLine is one llama module line as the module prints it.
func EncodeLlamaLine(ll LlamaLine) string {
	switch ll.Kind {
	case MarkerLlamaModel:
		m := ll.Model
		return fmt.Sprintf("%s%s: %d layers, dim %d, %d heads (%d kv), hidden %d, vocab %d, context %d, %s, %d bytes",
			MarkerLlamaModel, m.Path, m.Layers, m.Dim, m.Heads, m.KVHeads, m.Hidden, m.Vocab, m.Context, m.Type, m.Bytes)
	case MarkerLlamaPrompt:
		return fmt.Sprintf("%s\"%s\" = %d tokens: %s", MarkerLlamaPrompt, EscapeText(ll.Prompt), len(ll.IDs), joinInts(ll.IDs))
	case MarkerLlamaTokens:
		return MarkerLlamaTokens + joinInts(ll.IDs)
	case MarkerLlamaText:
		return MarkerLlamaText + "\"" + EscapeText(ll.Text) + "\""
	case MarkerLlamaGenerated:
		return fmt.Sprintf("%s%d tokens in %d tsc (%d tsc/token, %.3f ms/token)", MarkerLlamaGenerated, ll.Generated, ll.TSC, ll.TSCPerTok, ll.MsPerTok)
	case MarkerLlamaRefused:
		return MarkerLlamaRefused + ll.Refused
	}
	return ""
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}

// fatalMarkers are the lines that name why a boot stopped, in the order
// they are looked for on a line.
var fatalMarkers = []string{MarkerStage2Fatal, MarkerStage1Fatal, MarkerPanic}

// guestPrefixes start the lines that show a log is a guest's serial output.
var guestPrefixes = []string{MarkerStage2, MarkerBanner}
