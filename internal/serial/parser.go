package serial

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrRefused is wrapped by every error about a frame or capture the host
// will not use.
var ErrRefused = errors.New("profile capture refused")

// MaxDumpLines bounds the CPU exception dump a Parser keeps.
const MaxDumpLines = 40

// Frame is one complete, verified frame.
type Frame struct {
	Kind    string
	Module  string
	Payload []byte
	Line    int // serial line of the BEGIN marker (1-based)
}

// GuestError is a FRAME-ERROR line: the guest could not produce a payload.
type GuestError struct {
	Kind, Module, Reason string
	Line                 int
}

// Capture is every frame a serial log held.
type Capture struct {
	Frames []Frame
	Errors []GuestError
	// Done is set when the FRAMES-DONE line was seen; DoneFrames and
	// DoneErrors are the counts the guest says it sent.
	Done                   bool
	DoneFrames, DoneErrors int
}

// Summaries returns the run summaries of the capture's summary frames that
// decode and name a module (leniently: fields the host does not know are
// ignored), in the order they arrived.
func (c *Capture) Summaries() []Summary {
	var out []Summary
	for _, fr := range c.Frames {
		var s Summary
		if fr.Kind == KindSummary && json.Unmarshal(fr.Payload, &s) == nil && s.Module != "" {
			out = append(out, s)
		}
	}
	return out
}

// FrameError says which frame was refused and why.
type FrameError struct {
	Module  string // "" when the marker was too garbled to name it
	Kind    string
	Line    int // serial line of the marker
	Problem string
}

func (e *FrameError) Error() string {
	who := e.Module
	if who == "" {
		who = "(unnamed)"
	}
	if e.Kind != "" {
		who += " " + e.Kind
	}
	return fmt.Sprintf("module %s frame (serial line %d): %s", who, e.Line, e.Problem)
}

func (e *FrameError) Unwrap() error { return ErrRefused }

// open is a frame being read.
type open struct {
	kind, module string
	line         int
	length       int
	crc          uint32
	b64          strings.Builder
	short        int // serial line of a payload line shorter than B64Line (must be the last)
}

// Parser reads the guest's serial output one line at a time, as it
// arrives: it decodes frames as they complete and remembers the end line,
// the line naming a failure, the CPU exception dump, the TSC at
// kernel_main and whether the output is a guest's at all. Line is its
// per-line hook (qemu.Options.OnLine); it is not safe for concurrent use,
// so read the results after the run. The zero value is ready to use.
type Parser struct {
	lines  int
	guest  bool
	end    string // last FLUID-END line
	fatal  string // first stage1/stage2 FATAL or PANIC line
	dump   []string
	inDump bool
	tsc    uint64
	hasTSC bool
	endTSC uint64 // the last "run ended at tsc=" line's
	hasEnd bool

	capture Capture
	errs    []error
	cur     *open
	// afterDone are the frames and error lines that arrived after the
	// FRAMES-DONE line ("kind module (serial line n)").
	afterDone []string
	doneLine  int // the serial line of the FRAMES-DONE line, 0 before it

	llama    []*LlamaRun
	llamaHas map[string]int // the current call's line kinds, by marker: the serial line of each
	files    []FileRead
	lineErrs []error // malformed llama and file lines (*LineError)

	mods  []*ModuleRun
	modIx map[string]*ModuleRun
	// running is the module between its loaded and result lines, or "".
	running string
}

// ModuleRun is what the loader's lines said about one module (or /modules
// entry), in the order the log first named it.
type ModuleRun struct {
	Name    string
	Variant string // from the loaded line: baseline, O3, PGO, instrumented
	Hash    string // from the loaded line: the module header's hash
	Result  string // the result line's word (LineOK, LineFail, LineCrashed, LineTimeout); "" if none
	// ResultWhy is the reason the result line gives after its figures
	// ("... checks=2/3: <reason>"), or "".
	ResultWhy string
	Refused   string // why the file was not run ("" if it was)
	Skipped   string // why the entry was not loaded ("" if it was)
	// Fault holds the lines that say how the module stopped: its timed-out
	// or crashed line, the page fault line and the backtrace, whole.
	Fault []string
	// Locs are the module-relative code locations those lines name.
	Locs []Loc
}

// Failed reports whether the module did not run to a passing end: it was
// refused or skipped, crashed, timed out, or reported a failed check.
func (m *ModuleRun) Failed() bool {
	return m.Refused != "" || m.Skipped != "" || len(m.Fault) > 0 || (m.Result != "" && m.Result != LineOK)
}

// Why is one phrase saying how a failed module failed ("" if it did not).
func (m *ModuleRun) Why() string {
	switch {
	case m.Skipped != "":
		return "skipped: " + m.Skipped
	case m.Refused != "":
		return "refused: " + m.Refused
	case len(m.Fault) > 0:
		_, rest, _ := moduleLine(m.Fault[0])
		return strings.TrimPrefix(rest, ": ")
	case m.Result != "" && m.Result != LineOK && m.ResultWhy != "":
		return "result " + m.Result + ": " + m.ResultWhy
	case m.Result != "" && m.Result != LineOK:
		return "result " + m.Result
	}
	return ""
}

// Line takes one serial line without its line ending (a trailing "\r" is
// dropped).
func (p *Parser) Line(l string) {
	l = strings.TrimRight(l, "\r")
	p.lines++
	p.status(l)
	p.frame(l)
	p.module(l)
	p.workload(l)
}

// LlamaRun is what the llama module printed in one call of its entry
// (docs/CONTRACTS.md): a model line opens a call; a call ends with its
// generated or refused line.
type LlamaRun struct {
	Line      int // serial line of the call's first llama line (1-based)
	Model     LlamaModel
	Prompt    []byte // the prompt text, unescaped
	PromptIDs []int
	Tokens    []int  // the generated token ids
	Text      []byte // the generated text, unescaped (EscapeText gives it back as printed)
	// Generated is how many tokens the generated line counts; TSC is the
	// TSC the generation took, the prompt excluded, and TSCPerToken that
	// per token: under -icount shift=0, guest instructions.
	Generated   int
	TSC         uint64
	TSCPerToken uint64
	MsPerToken  float64
	Refused     string // the refused line's reason ("" unless the module refused)
	ended       bool
}

// Done reports whether the call reached its generated or refused line.
func (r *LlamaRun) Done() bool { return r.ended }

// LineError is a llama module or kernel file line that does not follow the
// contract's syntax. The parser keeps reading; LineErrors returns them all.
type LineError struct {
	Line    int    // serial line (1-based)
	Problem string // names the line's text
}

func (e *LineError) Error() string { return fmt.Sprintf("serial line %d: %s", e.Line, e.Problem) }

// workload follows the llama module's lines and the kernel's file lines.
func (p *Parser) workload(l string) {
	if f, ok, err := ParseFileLine(l); ok {
		if err != nil {
			p.lineErrs = append(p.lineErrs, &LineError{p.lines, err.Error()})
			return
		}
		f.Line = p.lines
		p.files = append(p.files, f)
		return
	}
	ll, ok, err := ParseLlamaLine(l)
	if !ok {
		return
	}
	if err != nil {
		p.lineErrs = append(p.lineErrs, &LineError{p.lines, err.Error()})
		return
	}
	var cur *LlamaRun
	if n := len(p.llama); n > 0 {
		cur = p.llama[n-1]
	}
	if cur == nil || cur.Done() || ll.Kind == MarkerLlamaModel {
		if ll.Kind != MarkerLlamaModel && ll.Kind != MarkerLlamaRefused {
			// Only a refusal comes before the model line (run.txt is read
			// first): this call lost its model line.
			p.lineErrs = append(p.lineErrs, &LineError{p.lines, fmt.Sprintf("a %q line with no %q line before it in its call", strings.TrimSpace(ll.Kind), strings.TrimSpace(MarkerLlamaModel))})
		}
		cur = &LlamaRun{Line: p.lines}
		p.llama = append(p.llama, cur)
		p.llamaHas = map[string]int{}
	}
	if first, twice := p.llamaHas[ll.Kind]; twice {
		p.lineErrs = append(p.lineErrs, &LineError{p.lines, fmt.Sprintf("a second %q line in the llama call that began at serial line %d (the first was at line %d)", strings.TrimSpace(ll.Kind), cur.Line, first)})
		return
	}
	p.llamaHas[ll.Kind] = p.lines
	switch ll.Kind {
	case MarkerLlamaModel:
		cur.Model = ll.Model
	case MarkerLlamaPrompt:
		cur.Prompt, cur.PromptIDs = ll.Prompt, ll.IDs
	case MarkerLlamaTokens:
		cur.Tokens = ll.IDs
	case MarkerLlamaText:
		cur.Text = ll.Text
	case MarkerLlamaGenerated:
		cur.Generated, cur.TSC, cur.TSCPerToken, cur.MsPerToken = ll.Generated, ll.TSC, ll.TSCPerTok, ll.MsPerTok
		cur.ended = true
		if _, listed := p.llamaHas[MarkerLlamaTokens]; listed && len(cur.Tokens) != ll.Generated {
			p.lineErrs = append(p.lineErrs, &LineError{p.lines, fmt.Sprintf("it counts %d generated tokens, the tokens line of its call lists %d", ll.Generated, len(cur.Tokens))})
		}
	case MarkerLlamaRefused:
		cur.Refused, cur.ended = ll.Refused, true
	}
}

// Llama is every call of the llama module the log holds, in order.
func (p *Parser) Llama() []*LlamaRun { return p.llama }

// Files is every kernel file line, in order.
func (p *Parser) Files() []FileRead { return p.files }

// LineErrors joins one *LineError per llama module or file line that did
// not follow the contract's syntax (nil when all did). Such a line is
// never dropped silently: whoever reads the llama figures (the boot tests,
// mage qemu's summary, mage bench) reports this error.
func (p *Parser) LineErrors() error { return errors.Join(p.lineErrs...) }

// module follows the loader's lines about each module.
func (p *Parser) module(l string) {
	name, rest, ok := moduleLine(l)
	if !ok {
		return
	}
	if p.running != "" && name != p.running {
		// Between a module's loaded and result lines only that module's
		// lines are the kernel's: a line about another module is the
		// running module's own output (it prints on the same serial line).
		return
	}
	m := p.modIx[name]
	if m == nil {
		if p.modIx == nil {
			p.modIx = map[string]*ModuleRun{}
		}
		m = &ModuleRun{Name: name}
		p.modIx[name] = m
		p.mods = append(p.mods, m)
	}
	switch {
	case strings.HasPrefix(rest, MarkerModuleLoaded):
		f := strings.Fields(strings.SplitN(rest[len(MarkerModuleLoaded):], ")", 2)[0])
		if len(f) == 2 {
			m.Variant, m.Hash = f[0], f[1]
		}
		p.running = name
	case strings.HasPrefix(rest, MarkerModuleResult):
		r := rest[len(MarkerModuleResult):]
		if f := strings.Fields(r); len(f) > 0 {
			m.Result = f[0]
		}
		if _, why, ok := strings.Cut(r, ": "); ok {
			m.ResultWhy = strings.TrimSpace(why)
		}
		p.running = ""
	case strings.HasPrefix(rest, MarkerModuleRefused):
		m.Refused = strings.TrimSpace(rest[len(MarkerModuleRefused):])
	case strings.HasPrefix(rest, MarkerModuleSkipped):
		m.Skipped = strings.TrimSpace(rest[len(MarkerModuleSkipped):])
	case strings.HasPrefix(rest, MarkerModuleTimedOut), strings.HasPrefix(rest, MarkerModuleCrashed),
		strings.HasPrefix(rest, MarkerModulePageFault), strings.HasPrefix(rest, MarkerModuleBacktrace),
		strings.HasPrefix(rest, MarkerModuleHook):
		if len(m.Fault) < MaxDumpLines {
			m.Fault = append(m.Fault, l)
			m.Locs = append(m.Locs, ParseLocs(rest)...)
		}
	}
}

// Modules is every module the loader's lines named, in the order it first
// named them.
func (p *Parser) Modules() []*ModuleRun { return p.mods }

// FailedModules are the modules that were refused, skipped, crashed, timed
// out or failed a check, in log order.
func (p *Parser) FailedModules() []*ModuleRun {
	var out []*ModuleRun
	for _, m := range p.mods {
		if m.Failed() {
			out = append(out, m)
		}
	}
	return out
}

// status follows the lines that say how the run went. These markers are
// matched where they start, so BIOS noise earlier on the same line does
// not hide them.
func (p *Parser) status(l string) {
	if !p.guest {
		for _, g := range guestPrefixes {
			if strings.HasPrefix(l, g) {
				p.guest = true
			}
		}
	}
	if !p.hasTSC {
		p.tsc, p.hasTSC = ParseTSC(l)
	}
	if t, ok := ParseEndTSC(l); ok {
		p.endTSC, p.hasEnd = t, true
	}
	if i := strings.Index(l, MarkerEnd); i >= 0 {
		p.end = strings.TrimSpace(l[i:])
		p.guest = true
		p.inDump = false
		return
	}
	if i := strings.Index(l, MarkerException); i >= 0 {
		if p.dump == nil {
			p.dump = []string{l[i:]}
			p.inDump = true
		}
		return
	}
	if p.inDump {
		if len(p.dump) < MaxDumpLines {
			p.dump = append(p.dump, l)
		}
		return
	}
	if p.fatal == "" {
		for _, m := range fatalMarkers {
			if i := strings.Index(l, m); i >= 0 {
				p.fatal = l[i:]
				break
			}
		}
	}
}

// frame follows the frames.
func (p *Parser) frame(line string) {
	n := p.lines
	marker, f := frameLine(line)
	switch marker {
	case MarkerFrameBegin:
		if p.cur != nil {
			p.refuse(p.cur.line, fmt.Sprintf("truncated: a new frame began at line %d before this one ended", n))
		}
		b := beginOf(f)
		p.cur = &open{kind: b.Kind, module: b.Module, line: n}
		var err error
		if p.cur.length, p.cur.crc, err = b.check(line); err != nil {
			p.refuse(n, err.Error())
			p.cur = nil
		}
	case MarkerFrameEnd:
		if p.cur == nil {
			p.errs = append(p.errs, &FrameError{f["module"], f["kind"], n, "END marker without a BEGIN (the start of the frame is missing or garbled)"})
			return
		}
		if f["kind"] != p.cur.kind || f["module"] != p.cur.module {
			p.refuse(p.cur.line, fmt.Sprintf("garbled: END marker names %s %s", f["module"], f["kind"]))
		} else if want := endLine(p.cur.kind, p.cur.module); line != want {
			p.refuse(p.cur.line, fmt.Sprintf("garbled: END marker %q at line %d, the kernel writes %q", line, n, want))
		} else if data, err := decodePayload(p.cur.b64.String(), p.cur.length, p.cur.crc); err != nil {
			p.refuse(p.cur.line, err.Error())
		} else {
			p.capture.Frames = append(p.capture.Frames, Frame{Kind: p.cur.kind, Module: p.cur.module, Payload: data, Line: p.cur.line})
			if p.capture.Done {
				p.afterDone = append(p.afterDone, fmt.Sprintf("%s %s frame (serial line %d)", p.cur.module, p.cur.kind, p.cur.line))
			}
		}
		p.cur = nil
	case MarkerFrameError:
		p.capture.Errors = append(p.capture.Errors, GuestError{Kind: f["kind"], Module: f["module"], Reason: f["reason"], Line: n})
		if p.capture.Done {
			p.afterDone = append(p.afterDone, fmt.Sprintf("%s %s error line (serial line %d)", f["module"], f["kind"], n))
		}
	case MarkerFramesDone:
		fr, er, ok := doneCounts(f)
		if !ok {
			p.errs = append(p.errs, &FrameError{Line: n, Problem: fmt.Sprintf("garbled FRAMES-DONE line %q", line)})
			return
		}
		if p.capture.Done {
			// The guest sends it once: a second one is another run's, or
			// printed by a module (modules share the serial line). The
			// first one's counts stand.
			p.afterDone = append(p.afterDone, fmt.Sprintf("a second %s line (serial line %d)", strings.TrimSpace(MarkerFramesDone), n))
			return
		}
		p.capture.Done, p.capture.DoneFrames, p.capture.DoneErrors = true, fr, er
		p.doneLine = n
	default:
		if p.cur == nil {
			return
		}
		if !payloadLine(line) {
			p.refuse(p.cur.line, fmt.Sprintf("garbled: line %d inside the frame is not base64: %q", n, clip(line)))
			p.cur = nil
			return
		}
		if p.cur.short != 0 {
			p.refuse(p.cur.line, fmt.Sprintf("garbled: payload line %d is only part of a line, yet line %d follows it (characters were lost)", p.cur.short, n))
			p.cur = nil
			return
		}
		if len(line) < B64Line {
			p.cur.short = n
		}
		p.cur.b64.WriteString(line)
	}
}

// refuse records a FrameError for the open frame, whose marker is at line.
func (p *Parser) refuse(line int, problem string) {
	p.errs = append(p.errs, &FrameError{p.cur.module, p.cur.kind, line, problem})
}

// Lines is how many lines the parser has seen.
func (p *Parser) Lines() int { return p.lines }

// Guest reports whether the output is a guest's: a stage 2 line, the
// kernel banner or an end line was seen.
func (p *Parser) Guest() bool { return p.guest }

// EndLine is the last FLUID-END line (from its marker on), or "".
func (p *Parser) EndLine() string { return p.end }

// Passed reports whether the end line is FLUID-END pass.
func (p *Parser) Passed() bool { return p.end == MarkerPass }

// FailLine is the line that best names a failure: the FLUID-END fail line,
// else the first stage 1/stage 2 FATAL or PANIC line, else "".
func (p *Parser) FailLine() string {
	if strings.HasPrefix(p.end, MarkerFail) {
		return p.end
	}
	return p.fatal
}

// FailClass is the class of the FLUID-END fail line ("test", "panic",
// "exception", ClassModule), or "" when the run did not end with one.
func (p *Parser) FailClass() string {
	rest, ok := strings.CutPrefix(p.end, MarkerFail+" ")
	if !ok {
		return ""
	}
	class, _, _ := strings.Cut(rest, ":")
	return class
}

// Dump is the CPU exception dump from its first line on (at most
// MaxDumpLines lines), or nil.
func (p *Parser) Dump() []string { return p.dump }

// TSC is the TSC the kernel printed at kernel_main, if it did.
func (p *Parser) TSC() (uint64, bool) { return p.tsc, p.hasTSC }

// EndTSC is the TSC the kernel printed just before its FLUID-END line.
func (p *Parser) EndTSC() (uint64, bool) { return p.endTSC, p.hasEnd }

// Capture returns the frames seen so far and, when the capture is not
// usable, an error joining one FrameError per bad frame (each wrapping
// ErrRefused and naming the module), a frame cut off by the end of the
// output, a missing FRAMES-DONE line, or frame counts that disagree with
// it. The frames that did arrive intact are returned with the error.
func (p *Parser) Capture() (*Capture, error) {
	c := p.capture
	errs := append([]error(nil), p.errs...)
	if p.cur != nil {
		got := base64.StdEncoding.DecodedLen(p.cur.b64.Len())
		errs = append(errs, &FrameError{p.cur.module, p.cur.kind, p.cur.line, fmt.Sprintf("truncated: the serial log ends inside the frame (about %d of %d bytes arrived)", got, p.cur.length)})
	}
	if !c.Done {
		errs = append(errs, fmt.Errorf("%w: %s", ErrRefused, noDone))
	} else if len(errs) == 0 && (c.DoneFrames != len(c.Frames) || c.DoneErrors != len(c.Errors)) {
		errs = append(errs, p.countError(&c))
	} else if len(p.afterDone) > 0 {
		// The guest sends nothing after FRAMES-DONE, whatever the counts say.
		errs = append(errs, fmt.Errorf("%w: after the %s line (serial line %d) the log holds %s: the guest sends no frame after it (two runs joined, or lines a module printed?)", ErrRefused, strings.TrimSpace(MarkerFramesDone), p.doneLine, strings.Join(p.afterDone, ", ")))
	}
	if len(errs) > 0 {
		return &c, errors.Join(errs...)
	}
	return &c, nil
}

// countError explains frame and error-line counts that disagree with the
// FRAMES-DONE line (every frame that arrived decoded): fewer means some
// were lost on the way, more means the log holds frames the guest did not
// count, repeated or from another run, which are named.
func (p *Parser) countError(c *Capture) error {
	var why []string
	counts := fmt.Sprintf("the guest's %s line announced %d frames and %d error lines, the log holds %d and %d",
		strings.TrimSpace(MarkerFramesDone), c.DoneFrames, c.DoneErrors, len(c.Frames), len(c.Errors))
	if len(c.Frames) < c.DoneFrames || len(c.Errors) < c.DoneErrors {
		why = append(why, "frames or error lines were lost on the way (the serial data was cut or corrupted)")
	}
	if len(c.Frames) > c.DoneFrames || len(c.Errors) > c.DoneErrors {
		extra := fmt.Sprintf("the log holds more than the guest sent in this run: %d extra frames and %d extra error lines", max(0, len(c.Frames)-c.DoneFrames), max(0, len(c.Errors)-c.DoneErrors))
		seen := map[string]int{}
		var dups []string
		for _, f := range c.Frames {
			k := f.Module + " " + f.Kind
			if seen[k]++; seen[k] == 2 {
				dups = append(dups, k)
			}
		}
		if len(dups) > 0 {
			extra += "; sent more than once: " + strings.Join(dups, ", ")
		}
		if len(p.afterDone) > 0 {
			extra += "; after the " + strings.TrimSpace(MarkerFramesDone) + " line: " + strings.Join(p.afterDone, ", ")
		}
		why = append(why, extra+" (is the log two runs joined, or a frame repeated?)")
	}
	return fmt.Errorf("%w: %s: %s", ErrRefused, counts, strings.Join(why, "; "))
}

// ReadLog feeds every line of a serial log to a new Parser.
func ReadLog(r io.Reader) (*Parser, error) {
	p := &Parser{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		p.Line(sc.Text())
	}
	return p, sc.Err()
}

// ParseLog reads a serial log and returns every frame in it (see
// Parser.Capture). Lines outside frames (boot messages, module output) are
// ignored.
func ParseLog(r io.Reader) (*Capture, error) {
	p, err := ReadLog(r)
	if err != nil {
		return nil, fmt.Errorf("read serial log: %w", err)
	}
	return p.Capture()
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
