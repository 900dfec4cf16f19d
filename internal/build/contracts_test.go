package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/toolchain"
)

// TestContractsDocumentKernelFlags keeps docs/CONTRACTS.md's "Kernel build"
// section equal to the flags the kernel is really built with.
func TestContractsDocumentKernelFlags(t *testing.T) {
	root := t.TempDir()
	b := &Builder{root: root, out: filepath.Join(root, "build"), tc: &toolchain.Toolchain{}}
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "CONTRACTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(data)
	if i := strings.Index(section, "\n## Kernel build\n"); i >= 0 {
		section = section[i:]
		if j := strings.Index(section[1:], "\n## "); j >= 0 {
			section = section[:j+1]
		}
	} else {
		t.Fatal(`docs/CONTRACTS.md has no "## Kernel build" section`)
	}
	doc := strings.Join(strings.Fields(section), " ")
	for _, c := range []struct {
		tool, what string
		flags      []string
	}{
		{"clang", "KernelCFlags", b.KernelCFlags()},
		{"nasm", "KernelNASMFlags", b.KernelNASMFlags()},
	} {
		want := "`" + c.tool + " " + strings.ReplaceAll(strings.Join(c.flags, " "), root, "<root>") + "`"
		if !strings.Contains(doc, want) {
			t.Errorf("docs/CONTRACTS.md's Kernel build section does not give %s's flags as the code has them (%s); want it to say:\n%s", c.tool, c.what, want)
		}
	}
}
