package serial

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// protocolFile is the one non-test Go file that spells the serial markers
// and the frame syntax.
const protocolFile = "internal/serial/protocol.go"

// repoRoot is the directory of go.mod above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the serial package")
		}
		dir = parent
	}
}

// markers reads the Marker* string constants from protocol.go's source
// (name -> text), so a marker added there is checked without a list here.
func markers(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot(t), protocolFile), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Marker") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = v
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d Marker constants in %s", len(out), protocolFile)
	}
	return out
}

// wordMarkers are markers made of common words: only a string literal that
// is exactly the marker defines them again ("module %s: ..." is an error
// message, not the loader's line prefix).
var wordMarkers = map[string]bool{"MarkerBanner": true, "MarkerModule": true}

// frameSyntax are pieces of the frame lines' syntax that only protocol.go
// may spell.
var frameSyntax = []string{"crc32=", "kind=%s module=%s", "frames=%d errors=%d"}

// definesAgain says which marker or piece of frame syntax a string literal
// spells, or "".
func definesAgain(lit string, ms map[string]string) string {
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	// The longest first, so "FLUID-END pass" names MarkerPass, not MarkerEnd.
	sort.Slice(names, func(i, j int) bool {
		if len(ms[names[i]]) != len(ms[names[j]]) {
			return len(ms[names[i]]) > len(ms[names[j]])
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		m := ms[n]
		if wordMarkers[n] {
			if lit == m {
				return n
			}
		} else if strings.Contains(lit, strings.TrimSpace(m)) {
			return n
		}
	}
	for _, s := range frameSyntax {
		if strings.Contains(lit, s) {
			return fmt.Sprintf("frame syntax %q", s)
		}
	}
	return ""
}

// TestMarkersDefinedOnce fails when a non-test Go file other than
// protocol.go spells a serial marker or the frame syntax in a string
// literal: parse the guest's output with this package instead.
func TestMarkersDefinedOnce(t *testing.T) {
	root := repoRoot(t)
	ms := markers(t)
	checked := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "build", "vendor", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || rel == protocolFile {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if what := definesAgain(v, ms); what != "" {
				t.Errorf("%s: %s spells %s; only %s may (use package serial)", fset.Position(lit.Pos()), lit.Value, what, protocolFile)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d Go files under %s", checked, root)
	}
}

func TestDefinesAgain(t *testing.T) {
	ms := map[string]string{"MarkerEnd": "FLUID-END ", "MarkerPass": "FLUID-END pass", "MarkerBanner": "Fluid OS ", "MarkerFrameBegin": "@@FLUID-FRAME-BEGIN "}
	for lit, want := range map[string]string{
		"no FLUID-END line":                "MarkerEnd",
		"FLUID-END":                        "MarkerEnd",
		"FLUID-END pass":                   "MarkerPass",
		"Fluid OS ":                        "MarkerBanner",
		"Fluid OS release toolchain":       "",
		"@@FLUID-FRAME-BEGIN v=1":          "MarkerFrameBegin",
		"%skind=%s module=%s\n":            `frame syntax "kind=%s module=%s"`,
		"module %s: no summary frame":      "",
		"[frame %s for %s: %s bytes, ...]": "",
	} {
		if got := definesAgain(lit, ms); got != want {
			t.Errorf("definesAgain(%q) = %q, want %q", lit, got, want)
		}
	}
}

// serialSection returns docs/CONTRACTS.md's section on the serial lines.
func serialSection(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "CONTRACTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	const head = "\n## Serial (COM1) lines the host reads\n"
	s := string(data)
	i := strings.Index(s, head)
	if i < 0 {
		t.Fatalf("docs/CONTRACTS.md has no %q section", strings.TrimSpace(head))
	}
	s = s[i+len(head):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// lineSpans returns the code spans of the first cell of each table row:
// the serial lines the section documents.
func lineSpans(section string) []string {
	var spans []string
	for _, row := range strings.Split(section, "\n") {
		if !strings.HasPrefix(row, "| `") {
			continue
		}
		inCode, start := false, 0
		for i := 1; i < len(row); i++ {
			switch {
			case row[i] == '`':
				if inCode {
					spans = append(spans, strings.ReplaceAll(row[start:i], `\|`, "|"))
				}
				inCode, start = !inCode, i+1
			case row[i] == '|' && !inCode && row[i-1] != '\\':
				i = len(row) // end of the first cell
			}
		}
	}
	return spans
}

// TestContractsDocumentMarkers checks that docs/CONTRACTS.md's serial
// section and this package agree: every marker appears in a documented
// line, every documented line starts from a marker, and the section names
// this package as the one place the host parses them.
func TestContractsDocumentMarkers(t *testing.T) {
	section := serialSection(t)
	spans := lineSpans(section)
	if len(spans) < 10 {
		t.Fatalf("found only %d documented lines in the serial section", len(spans))
	}
	ms := markers(t)
	for n, m := range ms {
		found := false
		for _, s := range spans {
			found = found || strings.Contains(s, m)
		}
		if !found {
			t.Errorf("serial.%s (%q) is not in docs/CONTRACTS.md's serial table", n, m)
		}
	}
	for _, s := range spans {
		found := false
		for _, m := range ms {
			found = found || strings.Contains(s, m)
		}
		if !found {
			t.Errorf("docs/CONTRACTS.md documents the serial line %q, which no serial.Marker* constant starts", s)
		}
		if strings.HasPrefix(s, MarkerFrameBegin) && !strings.HasPrefix(s, fmt.Sprintf("%sv=%d ", MarkerFrameBegin, FrameVersion)) {
			t.Errorf("docs/CONTRACTS.md documents %q, but the frame version is %d", s, FrameVersion)
		}
	}
	if !strings.Contains(section, "`internal/serial`") || !strings.Contains(section, "`"+protocolFile+"`") {
		t.Errorf("docs/CONTRACTS.md's serial section does not name `internal/serial` and `%s`", protocolFile)
	}
}
