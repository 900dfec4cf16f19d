package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tree writes files (repo-relative path -> contents) under a temp root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var files = map[string]string{
	"kernel/core/main.c":    "int main;\n",
	"boot/stage1.asm":       "; stage 1\n",
	"build/kernel.elf":      "\x7fELF...",
	"build/fluid.img":       "image bytes",
	"profiles/fib.profdata": "profile",
}

func sample(t *testing.T, root string) *Manifest {
	t.Helper()
	in, err := HashFiles(root, []string{"kernel/core/main.c", "boot/stage1.asm", "boot/stage1.asm"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := HashFiles(root, []string{"build/kernel.elf", "build/fluid.img"})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := HashFiles(root, []string{"profiles/fib.profdata"})
	if err != nil {
		t.Fatal(err)
	}
	return &Manifest{
		Project: "fluid-os", Version: "v0.1.0", Commit: "0123abcd", SourceDateEpoch: 1700000000,
		Toolchain: map[string]Tool{
			"nasm":  {Name: "nasm", Version: "2.16.01", SHA256: sum("nasm")},
			"clang": {Name: "clang-19", Version: "19.1.7", SHA256: sum("clang")},
		},
		Inputs: in, Outputs: out, Profiles: prof, Variant: "normal",
	}
}

func TestManifestDescribesFiles(t *testing.T) {
	root := tree(t, files)
	m := sample(t, root)
	want := []FileHash{{"boot/stage1.asm", sum("; stage 1\n")}, {"kernel/core/main.c", sum("int main;\n")}}
	if !reflect.DeepEqual(m.Inputs, want) {
		t.Errorf("inputs %v, want %v (sorted, deduplicated)", m.Inputs, want)
	}
	p := filepath.Join(root, "build", "manifest.json")
	if err := m.Write(p); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("read back %+v\nwant %+v", got, m)
	}
	if mm := Verify(got, root); len(mm) != 0 {
		t.Errorf("fresh manifest does not verify: %v", mm)
	}
	data, _ := os.ReadFile(p)
	text := string(data)
	if !strings.HasPrefix(text, "{\n  \"schema\": 1,\n  \"project\": \"fluid-os\",\n  \"version\": \"v0.1.0\",\n  \"commit\": \"0123abcd\",\n  \"source_date_epoch\": 1700000000,\n  \"toolchain\": {\n    \"clang\": {") {
		t.Errorf("unexpected layout:\n%s", text)
	}
	if !strings.HasSuffix(text, "  \"variant\": \"normal\"\n}\n") {
		t.Errorf("manifest does not end with variant and a newline:\n%s", text)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestStableBytes(t *testing.T) {
	root := tree(t, files)
	a, err := sample(t, root).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m := sample(t, root)
	// Same content, lists in another order: same bytes.
	m.Outputs[0], m.Outputs[1] = m.Outputs[1], m.Outputs[0]
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("same manifest, different bytes:\n%s\n%s", a, b)
	}
	empty, err := (&Manifest{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(empty), `"inputs": [],`) || !strings.Contains(string(empty), `"toolchain": {},`) {
		t.Errorf("empty lists should be [] and {}:\n%s", empty)
	}
}

func TestChangedInputIsNamed(t *testing.T) {
	root := tree(t, files)
	m := sample(t, root)
	before, _ := m.Marshal()

	// One byte of one input changes.
	p := filepath.Join(root, "kernel", "core", "main.c")
	if err := os.WriteFile(p, []byte("int maim;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mm := Verify(m, root)
	if len(mm) != 1 || mm[0].Path != "kernel/core/main.c" || mm[0].Section != "inputs" || mm[0].Got != sum("int maim;\n") {
		t.Fatalf("Verify = %v, want one mismatch naming kernel/core/main.c", mm)
	}
	if s := mm[0].String(); !strings.Contains(s, "inputs kernel/core/main.c: sha256 is ") {
		t.Errorf("mismatch text %q", s)
	}
	// Rehashing gives a different manifest.
	after, _ := sample(t, root).Marshal()
	if bytes.Equal(before, after) {
		t.Error("a changed input did not change the manifest")
	}

	// A deleted output is reported as missing.
	if err := os.Remove(filepath.Join(root, "build", "fluid.img")); err != nil {
		t.Fatal(err)
	}
	mm = Verify(m, root)
	if len(mm) != 2 || mm[1].Path != "build/fluid.img" || mm[1].Got != "" || !errors.Is(mm[1].Err, os.ErrNotExist) {
		t.Fatalf("Verify = %v, want main.c changed and build/fluid.img missing", mm)
	}
	if !strings.Contains(mm[1].String(), "missing") {
		t.Errorf("%q", mm[1].String())
	}
}

func TestErrors(t *testing.T) {
	root := tree(t, files)
	for _, p := range []string{"/etc/passwd", "../x", "a/../b", "", `a\b`} {
		if _, err := HashFiles(root, []string{p}); err == nil || !strings.Contains(err.Error(), "repo-relative") {
			t.Errorf("HashFiles(%q) err = %v", p, err)
		}
	}
	if _, err := HashFiles(root, []string{"kernel/none.c"}); err == nil || !strings.Contains(err.Error(), "kernel/none.c") {
		t.Errorf("missing file err = %v", err)
	}
	if mm := Verify(&Manifest{Inputs: []FileHash{{"../outside", sum("x")}}}, root); len(mm) != 1 || mm[0].Err == nil {
		t.Errorf("Verify of a path leaving root = %v", mm)
	}

	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "m.json")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	tests := []struct{ name, json, want string }{
		{"schema", `{"schema": 2}`, "unsupported manifest schema 2"},
		{"unknown field", `{"schema": 1, "extra": true}`, `unknown field "extra"`},
		{"bad hash", `{"schema": 1, "inputs": [{"path": "a", "sha256": "xyz"}]}`, "not 64 lower-case hex"},
		{"duplicate", `{"schema": 1, "outputs": [{"path": "a", "sha256": "` + sum("") + `"}, {"path": "a", "sha256": "` + sum("") + `"}]}`, "listed twice"},
		{"not json", `schema: 1`, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.json)
			if _, err := Read(p); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Read err = %v, want one naming %s and containing %q", err, p, tt.want)
			}
		})
	}
	m := &Manifest{Inputs: []FileHash{{"a", "nothex"}}}
	if err := m.Write(filepath.Join(dir, "bad.json")); err == nil {
		t.Error("Write accepted a bad hash")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.json")); !os.IsNotExist(err) {
		t.Error("failed Write left a file")
	}
}
