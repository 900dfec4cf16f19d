// Package profile turns what the kernel sends over COM1 after a profiling
// run into the committed profiles/ directory, and gives the PGO build what
// it needs from there.
//
// The guest sends frames (format in kernel/include/profiling.h): per module
// a JSON summary and, for instrumented modules, the raw LLVM profile that
// compiler-rt's buffer writer produced inside the module. ParseLog checks
// every frame (markers, length, CRC-32, base64) and refuses truncated or
// garbled ones by module name; Collect checks that every expected module
// sent what it should; Write converts raw profiles to text with the
// toolchain's own llvm-profdata and replaces profiles/ only when every
// module succeeded.
package profile

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// Frame markers and kinds, as in kernel/include/profiling.h.
const (
	markBegin = "@@FLUID-FRAME-BEGIN "
	markEnd   = "@@FLUID-FRAME-END "
	markError = "@@FLUID-FRAME-ERROR "
	markDone  = "@@FLUID-FRAMES-DONE "

	// FrameVersion is the frame format version the kernel writes (v=).
	FrameVersion = 1
	// KindSummary frames carry a module's JSON run summary.
	KindSummary = "summary"
	// KindProfraw frames carry a module's raw LLVM profile.
	KindProfraw = "profraw"

	// b64Line is the payload line length the kernel uses (PROF_B64_LINE).
	b64Line = 76
)

// ErrRefused is wrapped by every error about a frame or capture the host
// will not use.
var ErrRefused = errors.New("profile capture refused")

// ErrNoKVM is wrapped by KVMBoot when this host cannot run a KVM guest.
var ErrNoKVM = errors.New("no working KVM")

// Frame is one complete, verified frame.
type Frame struct {
	Kind    string
	Module  string
	Payload []byte
	Line    int // serial log line of the BEGIN marker (1-based)
}

// GuestError is a FRAME-ERROR line: the guest could not produce a payload.
type GuestError struct {
	Kind, Module, Reason string
	Line                 int
}

// Capture is everything ParseLog found in a serial log.
type Capture struct {
	Frames []Frame
	Errors []GuestError
	// Done is set when the FRAMES-DONE line was seen; DoneFrames and
	// DoneErrors are the counts the guest says it sent.
	Done                   bool
	DoneFrames, DoneErrors int
}

// FrameError says which frame was refused and why.
type FrameError struct {
	Module  string // "" when the marker was too garbled to name it
	Kind    string
	Line    int // serial log line of the marker
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

// EncodeFrame writes f in the kernel's frame format (the Go mirror of
// prof_frame_write, used by tests and tools).
func EncodeFrame(w io.Writer, kind, module string, payload []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%sv=%d kind=%s module=%s len=%d crc32=%08x\n", markBegin, FrameVersion, kind, module, len(payload), crc32.ChecksumIEEE(payload))
	enc := base64.StdEncoding.EncodeToString(payload)
	for len(enc) > 0 {
		n := min(b64Line, len(enc))
		b.WriteString(enc[:n])
		b.WriteByte('\n')
		enc = enc[n:]
	}
	fmt.Fprintf(&b, "%skind=%s module=%s\n", markEnd, kind, module)
	_, err := w.Write(b.Bytes())
	return err
}

// EncodeDone writes the FRAMES-DONE line.
func EncodeDone(w io.Writer, frames, errs int) error {
	_, err := fmt.Fprintf(w, "%sframes=%d errors=%d\n", markDone, frames, errs)
	return err
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

// open is a frame being read.
type open struct {
	kind, module string
	line         int
	length       int
	crc          uint32
	b64          strings.Builder
}

// ParseLog reads a serial log and returns every frame in it. Lines outside
// frames (boot messages, module output) are ignored. Any frame that is
// truncated, garbled, of the wrong length or CRC is refused: the error
// joins one FrameError per bad frame (wrapping ErrRefused), naming the
// module. A log without the FRAMES-DONE line, or whose frame counts
// disagree with it, is refused as truncated.
func ParseLog(r io.Reader) (*Capture, error) {
	c := &Capture{}
	var errs []error
	var cur *open
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		// A marker may follow other output on the same line if the guest
		// printed a partial line first; only whole-line markers count.
		switch {
		case strings.HasPrefix(line, markBegin):
			if cur != nil {
				errs = append(errs, &FrameError{cur.module, cur.kind, cur.line, fmt.Sprintf("truncated: a new frame began at line %d before this one ended", n)})
			}
			f := fields(line[len(markBegin):])
			cur = &open{kind: f["kind"], module: f["module"], line: n}
			var err error
			if f["v"] != strconv.Itoa(FrameVersion) {
				err = fmt.Errorf("frame format version %q, this host reads %d; rebuild the kernel and the host tools from one commit", f["v"], FrameVersion)
			} else if cur.kind == "" || cur.module == "" {
				err = fmt.Errorf("garbled BEGIN marker %q", line)
			} else if cur.length, err = strconv.Atoi(f["len"]); err != nil || cur.length < 0 {
				err = fmt.Errorf("garbled length in BEGIN marker %q", line)
			} else if v, perr := strconv.ParseUint(f["crc32"], 16, 32); perr != nil || len(f["crc32"]) != 8 {
				err = fmt.Errorf("garbled crc32 in BEGIN marker %q", line)
			} else {
				cur.crc = uint32(v)
			}
			if err != nil {
				errs = append(errs, &FrameError{cur.module, cur.kind, n, err.Error()})
				cur = nil
			}
		case strings.HasPrefix(line, markEnd):
			f := fields(line[len(markEnd):])
			if cur == nil {
				errs = append(errs, &FrameError{f["module"], f["kind"], n, "END marker without a BEGIN (the start of the frame is missing or garbled)"})
				continue
			}
			fr, err := cur.finish(f)
			if err != nil {
				errs = append(errs, &FrameError{cur.module, cur.kind, cur.line, err.Error()})
			} else {
				c.Frames = append(c.Frames, fr)
			}
			cur = nil
		case strings.HasPrefix(line, markError):
			f := fields(line[len(markError):])
			c.Errors = append(c.Errors, GuestError{Kind: f["kind"], Module: f["module"], Reason: f["reason"], Line: n})
		case strings.HasPrefix(line, markDone):
			f := fields(line[len(markDone):])
			fr, err1 := strconv.Atoi(f["frames"])
			er, err2 := strconv.Atoi(f["errors"])
			if err1 != nil || err2 != nil {
				errs = append(errs, &FrameError{Line: n, Problem: fmt.Sprintf("garbled FRAMES-DONE line %q", line)})
				continue
			}
			c.Done, c.DoneFrames, c.DoneErrors = true, fr, er
		default:
			if cur != nil {
				if len(line) > b64Line || strings.Trim(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
					errs = append(errs, &FrameError{cur.module, cur.kind, cur.line, fmt.Sprintf("garbled: line %d inside the frame is not base64: %q", n, clip(line))})
					cur = nil
					continue
				}
				cur.b64.WriteString(line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read serial log: %w", err)
	}
	if cur != nil {
		got := base64.StdEncoding.DecodedLen(cur.b64.Len())
		errs = append(errs, &FrameError{cur.module, cur.kind, cur.line, fmt.Sprintf("truncated: the serial log ends inside the frame (about %d of %d bytes arrived)", got, cur.length)})
	}
	if !c.Done {
		errs = append(errs, fmt.Errorf("%w: the serial log has no @@FLUID-FRAMES-DONE line: the guest stopped (or the capture was cut) before the export finished", ErrRefused))
	} else if len(errs) == 0 && (c.DoneFrames != len(c.Frames) || c.DoneErrors != len(c.Errors)) {
		errs = append(errs, fmt.Errorf("%w: the guest sent %d frames and %d error lines but the log holds %d and %d: frames were lost", ErrRefused, c.DoneFrames, c.DoneErrors, len(c.Frames), len(c.Errors)))
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, nil
}

func (o *open) finish(end map[string]string) (Frame, error) {
	if end["kind"] != o.kind || end["module"] != o.module {
		return Frame{}, fmt.Errorf("garbled: END marker names %s %s", end["module"], end["kind"])
	}
	data, err := base64.StdEncoding.DecodeString(o.b64.String())
	if err != nil {
		return Frame{}, fmt.Errorf("garbled payload: %v", err)
	}
	if len(data) != o.length {
		return Frame{}, fmt.Errorf("truncated: %d payload bytes, the BEGIN marker announced %d", len(data), o.length)
	}
	if got := crc32.ChecksumIEEE(data); got != o.crc {
		return Frame{}, fmt.Errorf("CRC-32 mismatch: payload has %08x, the BEGIN marker announced %08x (the serial data was corrupted)", got, o.crc)
	}
	return Frame{Kind: o.kind, Module: o.module, Payload: data, Line: o.line}, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
