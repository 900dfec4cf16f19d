// Package manifest is the build manifest (build/manifest.json, also put in
// the image as /MANIFEST.JSON): which sources, toolchain and profiles went
// into a build and the SHA-256 of everything it produced, so anyone can
// check that a build or a downloaded image is what it claims.
//
// The JSON is stable: fields in struct order, every list sorted by path,
// 2-space indent, trailing newline — the same build gives the same bytes.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/fileutil"
)

// Schema is the manifest format version this package writes and reads.
const Schema = 1

// Manifest describes one build.
type Manifest struct {
	Schema          int             `json:"schema"`            // = Schema
	Project         string          `json:"project"`           // "fluid-os"
	Version         string          `json:"version"`           // e.g. `git describe` output
	Commit          string          `json:"commit"`            // full commit hash, or "unknown"
	SourceDateEpoch int64           `json:"source_date_epoch"` // the only time the build used
	Toolchain       map[string]Tool `json:"toolchain"`         // by role, e.g. "clang", "ld.lld", "nasm"
	Environment     Environment     `json:"toolchain_environment"`
	Inputs          []FileHash      `json:"inputs"`   // sources, repo-relative
	Outputs         []FileHash      `json:"outputs"`  // artifacts, repo-relative (build/...)
	Profiles        []FileHash      `json:"profiles"` // PGO profiles used, repo-relative
	Variant         string          `json:"variant"`  // e.g. "normal", "light", "pgo"
	// QEMUMemory is the QEMU -m a boot of the image needs when it is more
	// than the harness's default (a user's own llama model); "" otherwise.
	QEMUMemory string `json:"qemu_memory,omitempty"`
}

// ModeLocked is Environment.Mode for a build with the locked toolchain.
const ModeLocked = "locked"

// Environment says which toolchain the build steps ran in. Mode "locked"
// means the locked rootfs (through bubblewrap, or the same bytes as an OCI
// image with docker/podman), identified by the SHA-256 of
// toolchain/lock.json; "host" means whatever LLVM the host had, which
// releases refuse and rebuilds cannot reproduce.
type Environment struct {
	Mode         string `json:"mode"`
	LockSHA256   string `json:"lock_sha256,omitempty"`
	LLVMVersion  string `json:"llvm_version,omitempty"`
	RootfsSHA256 string `json:"rootfs_sha256,omitempty"`
	Image        string `json:"image,omitempty"`
}

// Tool identifies one tool of the toolchain without its install path.
type Tool struct {
	Name    string `json:"name"`    // executable name, e.g. "clang-19"
	Version string `json:"version"` // its version string
	SHA256  string `json:"sha256"`  // hash of the executable
}

// FileHash is one file and the hex SHA-256 of its contents.
type FileHash struct {
	Path   string `json:"path"` // repo-relative, '/'-separated
	SHA256 string `json:"sha256"`
}

// Normalize sorts every file list by path, sets Schema, and turns nil lists
// and maps into empty ones (so they marshal as [] and {}, not null).
func (m *Manifest) Normalize() {
	m.Schema = Schema
	if m.Toolchain == nil {
		m.Toolchain = map[string]Tool{}
	}
	for _, l := range []*[]FileHash{&m.Inputs, &m.Outputs, &m.Profiles} {
		if *l == nil {
			*l = []FileHash{}
		}
		sortHashes(*l)
	}
}

func sortHashes(l []FileHash) {
	sort.Slice(l, func(i, j int) bool { return l[i].Path < l[j].Path })
}

// Marshal returns the manifest's stable JSON (normalized first).
func (m *Manifest) Marshal() ([]byte, error) {
	m.Normalize()
	if err := m.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil { // Encode ends with a newline
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b.Bytes(), nil
}

// section is one of the manifest's file lists, with the name its JSON key
// and the errors give it.
type section struct {
	name string
	l    []FileHash
}

// sections are the manifest's file lists in manifest order.
func (m *Manifest) sections() []section {
	return []section{{"inputs", m.Inputs}, {"outputs", m.Outputs}, {"profiles", m.Profiles}}
}

// check refuses duplicate or malformed paths and malformed hashes.
func (m *Manifest) check() error {
	for _, sec := range m.sections() {
		for i, f := range sec.l {
			if err := checkRel(f.Path); err != nil {
				return fmt.Errorf("manifest %s: %w", sec.name, err)
			}
			if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
				return fmt.Errorf("manifest %s: %s: sha256 %q is not 64 lower-case hex digits", sec.name, f.Path, f.SHA256)
			}
			if i > 0 && sec.l[i-1].Path == f.Path {
				return fmt.Errorf("manifest %s: %s is listed twice", sec.name, f.Path)
			}
		}
	}
	return nil
}

// Write writes the manifest to path atomically (temporary file in the same
// directory, then rename).
func (m *Manifest) Write(path string) error {
	data, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := atomicfile.WriteFile0644(path, data); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	return nil
}

// ErrSchema is wrapped by Read for a manifest of another schema version.
var ErrSchema = errors.New("unsupported manifest schema")

// Read reads and checks a manifest. Unknown fields are an error (a newer
// writer's manifest should not be half understood).
func Read(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes manifest JSON; name is used in errors.
func Parse(data []byte, name string) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	if m.Schema != Schema {
		return nil, fmt.Errorf("read manifest %s: %w %d (this tool reads schema %d; update it)", name, ErrSchema, m.Schema, Schema)
	}
	m.Normalize()
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	return &m, nil
}

// checkRel accepts clean, relative, '/'-separated paths inside the root.
func checkRel(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("path %q: want a clean repo-relative path like kernel/core/main.c", p)
	}
	return nil
}

// HashFiles hashes the files at the repo-relative paths under root and
// returns them sorted by path. Duplicates are hashed once. A missing file
// or a path leaving root is an error naming it.
func HashFiles(root string, paths []string) ([]FileHash, error) {
	out := make([]FileHash, 0, len(paths))
	seen := map[string]bool{}
	for _, p := range paths {
		p = filepath.ToSlash(p)
		if err := checkRel(p); err != nil {
			return nil, fmt.Errorf("hash files: %w", err)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		sum, err := fileutil.SHA256(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return nil, fmt.Errorf("hash files: %w", err)
		}
		out = append(out, FileHash{Path: p, SHA256: sum})
	}
	sortHashes(out)
	return out, nil
}

// Mismatch is one file whose contents no longer match the manifest.
type Mismatch struct {
	Section string // "inputs", "outputs" or "profiles"
	Path    string // repo-relative
	Want    string // hash in the manifest
	Got     string // hash now; "" if the file is missing or unreadable
	Err     error  // why Got is empty
}

func (m Mismatch) String() string {
	if m.Got == "" {
		return fmt.Sprintf("%s %s: missing or unreadable (%v); the manifest records sha256 %s", m.Section, m.Path, m.Err, m.Want)
	}
	return fmt.Sprintf("%s %s: sha256 is %s, the manifest records %s", m.Section, m.Path, m.Got, m.Want)
}

// Verify rehashes every file the manifest lists under root and returns
// one Mismatch per file that differs or is missing, in manifest order
// (inputs, outputs, profiles). An empty result means everything matches.
func Verify(m *Manifest, root string) []Mismatch {
	var out []Mismatch
	for _, sec := range m.sections() {
		for _, f := range sec.l {
			if err := checkRel(f.Path); err != nil {
				out = append(out, Mismatch{Section: sec.name, Path: f.Path, Want: f.SHA256, Err: err})
				continue
			}
			got, err := fileutil.SHA256(filepath.Join(root, filepath.FromSlash(f.Path)))
			if err != nil {
				out = append(out, Mismatch{Section: sec.name, Path: f.Path, Want: f.SHA256, Err: err})
				continue
			}
			if got != f.SHA256 {
				out = append(out, Mismatch{Section: sec.name, Path: f.Path, Want: f.SHA256, Got: got})
			}
		}
	}
	return out
}
