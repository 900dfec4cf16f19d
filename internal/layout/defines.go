package layout

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Define is one object-like `#define NAME VALUE` line of a C header whose
// value is a plain integer.
type Define struct {
	Name  string // macro name, e.g. "STAGE2_LBA"
	Text  string // the value as written, e.g. "0x8000"
	Value uint64 // the value parsed
	Line  int    // 1-based line number in the header
}

// defineRe matches `#define NAME rest`, with optional spaces after '#'.
// A '(' right after the name (function-like macro) is captured separately.
var defineRe = regexp.MustCompile(`^#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(\()?\s*(.*)$`)

// Defines parses the object-like `#define NAME INT` lines of the C header at
// path, in file order. Comments are ignored; `#define` lines without a value
// (include guards) and function-like macros are skipped. A `#define` whose
// value is not a plain decimal or 0x-hex integer is an error naming the file
// and line: every number in bootinfo.h must be a literal so NASM and Go can
// mirror it.
func Defines(path string) ([]Define, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read defines: %w", err)
	}
	return parseDefines(path, src)
}

func parseDefines(path string, src []byte) ([]Define, error) {
	lines := strings.Split(string(stripComments(src)), "\n")
	var out []Define
	seen := map[string]int{}
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		// Join backslash continuations so a multi-line macro is one line.
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		m := defineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, funcLike, text := m[1], m[2] != "", strings.TrimSpace(m[3])
		if funcLike || text == "" {
			continue
		}
		v, err := parseInt(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: #define %s %s: value is not a plain integer literal (write the number itself, e.g. 0x8000 or 62, so NASM and Go can mirror it)", path, lineNo, name, text)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s:%d: #define %s repeats the definition at line %d; keep one", path, lineNo, name, prev)
		}
		seen[name] = lineNo
		out = append(out, Define{Name: name, Text: text, Value: v, Line: lineNo})
	}
	return out, nil
}

// ParseDefines returns the integer `#define`s of the C header at path by
// name; see Defines for what is parsed and what is an error.
func ParseDefines(path string) (map[string]uint64, error) {
	defs, err := Defines(path)
	if err != nil {
		return nil, err
	}
	m := make(map[string]uint64, len(defs))
	for _, d := range defs {
		m[d.Name] = d.Value
	}
	return m, nil
}

// GenerateNASMInclude turns the integer `#define`s of the header at hdrPath
// into NASM `%define NAME VALUE` lines, in file order, after a comment saying
// the file is generated. The output depends only on the header's contents and
// its last two path elements (normally "boot/bootinfo.h"), not on where the
// checkout lives.
func GenerateNASMInclude(hdrPath string) ([]byte, error) {
	defs, err := Defines(hdrPath)
	if err != nil {
		return nil, fmt.Errorf("generate NASM include: %w", err)
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("generate NASM include: %s has no `#define NAME INTEGER` lines; is it the right header?", hdrPath)
	}
	shown := filepath.ToSlash(filepath.Join(filepath.Base(filepath.Dir(hdrPath)), filepath.Base(hdrPath)))
	var b bytes.Buffer
	fmt.Fprintf(&b, "; generated from %s by internal/layout, do not edit\n", shown)
	for _, d := range defs {
		fmt.Fprintf(&b, "%%define %s %s\n", d.Name, d.Text)
	}
	return b.Bytes(), nil
}

// parseInt accepts decimal and 0x-prefixed hex, with optional C suffixes
// u/U/l/L.
func parseInt(s string) (uint64, error) {
	s = strings.TrimRight(s, "uUlL")
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// stripComments replaces C block and line comments with spaces, keeping
// newlines so line numbers stay right. String literals are not special-cased:
// bootinfo.h has none on #define lines.
func stripComments(src []byte) []byte {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		switch {
		case src[i] == '/' && i+1 < len(src) && src[i+1] == '*':
			i += 2
			for i < len(src) && !(src[i] == '*' && i+1 < len(src) && src[i+1] == '/') {
				if src[i] == '\n' {
					out = append(out, '\n')
				}
				i++
			}
			i++ // skip the '/' of "*/" (loop adds one more)
			out = append(out, ' ')
		case src[i] == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			if i < len(src) {
				out = append(out, '\n')
			}
		default:
			out = append(out, src[i])
		}
	}
	return out
}
