package qemu

import (
	"strings"

	"github.com/fluid-os/fluid/internal/serial"
)

// scanner splits serial output into lines, keeps the last ones, hands each
// to Options.OnLine and to a serial.Parser, which remembers the end marker,
// failure lines and an exception dump. It is used from one goroutine, then
// read after that goroutine ends.
type scanner struct {
	onLine  func(string)
	partial []byte
	ring    [TailLines]string
	lines   int
	status  serial.Parser
}

func newScanner(onLine func(string)) *scanner { return &scanner{onLine: onLine} }

func (s *scanner) write(p []byte) {
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			return
		}
		s.partial = append(s.partial, p[:i]...)
		s.line(string(s.partial))
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
}

// flush handles a last line without a line ending.
func (s *scanner) flush() {
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

func (s *scanner) line(l string) {
	l = strings.TrimRight(l, "\r")
	s.ring[s.lines%TailLines] = l
	s.lines++
	if s.onLine != nil {
		s.onLine(l)
	}
	s.status.Line(l)
}

// tail returns the last TailLines lines, oldest first.
func (s *scanner) tail() []string {
	n := min(s.lines, TailLines)
	out := make([]string, 0, n)
	for i := s.lines - n; i < s.lines; i++ {
		out = append(out, s.ring[i%TailLines])
	}
	return out
}
