package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrQMP is wrapped by every QMP failure.
var ErrQMP = errors.New("qmp")

// QMP is a connection to a QEMU Machine Protocol socket (Options.QMP).
// It is not safe for concurrent use.
type QMP struct {
	conn net.Conn
	rd   *bufio.Reader
}

// DialQMP connects to the QMP socket at path, retrying until ctx ends (QEMU
// creates the socket shortly after it starts), and negotiates capabilities.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			q := &QMP{conn: conn, rd: bufio.NewReader(conn)}
			if err := q.handshake(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return q, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: connect %s: %v", ErrQMP, path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (q *QMP) handshake(ctx context.Context) error {
	q.deadline(ctx)
	line, err := q.rd.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%w: read greeting: %v", ErrQMP, err)
	}
	var greet struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := json.Unmarshal(line, &greet); err != nil || greet.QMP == nil {
		return fmt.Errorf("%w: unexpected greeting %q", ErrQMP, strings.TrimSpace(string(line)))
	}
	_, err = q.Execute(ctx, "qmp_capabilities", nil)
	return err
}

func (q *QMP) deadline(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetDeadline(dl)
	} else {
		q.conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

// Execute runs one QMP command with optional arguments and returns its
// "return" value. Asynchronous events arriving meanwhile are skipped.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.deadline(ctx)
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQMP, command, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%w: send %s: %v", ErrQMP, command, err)
	}
	for {
		line, err := q.rd.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("%w: %s: read reply: %v", ErrQMP, command, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("%w: %s: bad reply %q", ErrQMP, command, strings.TrimSpace(string(line)))
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("%w: %s: %s: %s", ErrQMP, command, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// HMP runs a human-monitor command through QMP and returns its output.
func (q *QMP) HMP(ctx context.Context, cmdline string) (string, error) {
	ret, err := q.Execute(ctx, "human-monitor-command", map[string]string{"command-line": cmdline})
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(ret, &out); err != nil {
		return "", fmt.Errorf("%w: %s: output is not a string", ErrQMP, cmdline)
	}
	return out, nil
}

// Stop pauses the guest CPUs.
func (q *QMP) Stop(ctx context.Context) error { _, err := q.Execute(ctx, "stop", nil); return err }

// Cont resumes the guest CPUs.
func (q *QMP) Cont(ctx context.Context) error { _, err := q.Execute(ctx, "cont", nil); return err }

// Quit ends QEMU (exit status 0).
func (q *QMP) Quit(ctx context.Context) error { _, err := q.Execute(ctx, "quit", nil); return err }

// VGA text mode facts: the colour text buffer at physical 0xB8000, 80x25
// cells of (character, attribute) bytes.
const (
	VGATextAddr = 0xB8000
	VGAColumns  = 80
	VGARows     = 25
)

// ReadPhys copies size bytes of guest physical memory from addr (QMP
// pmemsave into a temporary file; QEMU and the harness share the host).
func (q *QMP) ReadPhys(ctx context.Context, addr uint64, size int) ([]byte, error) {
	dir, err := os.MkdirTemp("", "fluid-qmp-")
	if err != nil {
		return nil, fmt.Errorf("%w: pmemsave: %v", ErrQMP, err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "mem.bin")
	if _, err := q.Execute(ctx, "pmemsave", map[string]any{"val": addr, "size": size, "filename": p}); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: pmemsave output: %v", ErrQMP, err)
	}
	if len(b) != size {
		return nil, fmt.Errorf("%w: pmemsave wrote %d bytes, want %d", ErrQMP, len(b), size)
	}
	return b, nil
}

// ReadVGAText returns the VGA text screen as VGARows lines with trailing
// spaces removed.
func (q *QMP) ReadVGAText(ctx context.Context) ([]string, error) {
	mem, err := q.ReadPhys(ctx, VGATextAddr, VGAColumns*VGARows*2)
	if err != nil {
		return nil, fmt.Errorf("read VGA text: %w", err)
	}
	return DecodeVGAText(mem), nil
}

// ReadVGAText connects to the QMP socket at sock, reads the VGA text screen
// and disconnects. The guest keeps running; stop it first (QMP.Stop) if the
// screen might change under you.
func ReadVGAText(ctx context.Context, sock string) ([]string, error) {
	q, err := DialQMP(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return q.ReadVGAText(ctx)
}

// DecodeVGAText turns 80x25 (character, attribute) cells into lines of
// text, trailing spaces removed. Code page 437 characters outside printable
// ASCII become '.', except NUL which is a blank.
func DecodeVGAText(mem []byte) []string {
	rows := len(mem) / (VGAColumns * 2)
	lines := make([]string, 0, rows)
	for r := 0; r < rows; r++ {
		var b strings.Builder
		for c := 0; c < VGAColumns; c++ {
			ch := mem[(r*VGAColumns+c)*2]
			switch {
			case ch == 0:
				b.WriteByte(' ')
			case ch < 0x20 || ch >= 0x7F:
				b.WriteByte('.')
			default:
				b.WriteByte(ch)
			}
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	return lines
}
