package qemu

import "strings"

// scanner splits serial output into lines and remembers what the harness
// needs: the last lines, the end marker, failure lines and an exception
// dump. It is used from one goroutine, then read after that goroutine ends.
type scanner struct {
	onLine  func(string)
	partial []byte
	ring    [TailLines]string
	lines   int
	endLine string // last FLUID-END line
	fatal   string // first stage1/stage2 FATAL or PANIC line
	dump    []string
	inDump  bool
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
	// Markers are matched where they start, so BIOS noise earlier on the
	// same line does not hide them.
	if i := strings.Index(l, MarkerEnd); i >= 0 {
		s.endLine = strings.TrimSpace(l[i:])
		s.inDump = false
		return
	}
	if i := strings.Index(l, MarkerException); i >= 0 {
		if s.dump == nil {
			s.dump = []string{l[i:]}
			s.inDump = true
		}
		return
	}
	if s.inDump {
		if len(s.dump) < maxDumpLines {
			s.dump = append(s.dump, l)
		}
		return
	}
	if s.fatal == "" {
		for _, m := range []string{MarkerStage2, MarkerStage1, MarkerPanic} {
			if i := strings.Index(l, m); i >= 0 {
				s.fatal = l[i:]
				break
			}
		}
	}
}

// failLine is the line that best names a failure: the FLUID-END fail line,
// else the first FATAL/PANIC line.
func (s *scanner) failLine() string {
	if strings.HasPrefix(s.endLine, MarkerFail) {
		return s.endLine
	}
	return s.fatal
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
