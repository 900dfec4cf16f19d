package toolchain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// The files that define the release toolchain, relative to the tree.
const (
	// DefinitionFile is what we ask for: suite, architecture, the packages
	// to include, the archive keys we trust. People edit it.
	DefinitionFile = "toolchain/definition.json"
	// LockFile is what the definition resolved to: every package's exact
	// version, the rootfs tarball's SHA-256 and size, the OCI image digest.
	// Only `go tool mage toolchainLock` writes it.
	LockFile = "toolchain/lock.json"
)

// Definition is toolchain/definition.json.
type Definition struct {
	Comment         string   `json:"_comment,omitempty"`
	Suite           string   `json:"suite"`
	Architecture    string   `json:"architecture"`
	Mirror          string   `json:"mirror"`
	Variant         string   `json:"variant"`
	Include         []string `json:"include"`
	SourceDateEpoch int64    `json:"source_date_epoch"`
	Keyring         string   `json:"keyring"`
	KeyFingerprints []string `json:"key_fingerprints"`
	LLVMMajor       int      `json:"llvm_major"`
	OCIRepository   string   `json:"oci_repository"`
}

// Lock is toolchain/lock.json: the definition resolved against the archive.
// Everything a rootfs creation needs is in it, so the tarball (and the OCI
// image made from it) is a function of this file alone.
type Lock struct {
	Comment          string `json:"_comment,omitempty"`
	Suite            string `json:"suite"`
	Architecture     string `json:"architecture"`
	Mirror           string `json:"mirror"`
	Variant          string `json:"variant"`
	SourceDateEpoch  int64  `json:"source_date_epoch"`
	DefinitionSHA256 string `json:"definition_sha256"`
	KeyringSHA256    string `json:"keyring_sha256"`
	// LLVMVersion is the clang version the rootfs holds, e.g. "18.1.8".
	LLVMVersion string `json:"llvm_version"`
	// Mmdebstrap is the mmdebstrap version the lock was made with (an
	// older or newer one may write the tarball differently).
	Mmdebstrap string `json:"mmdebstrap"`
	// Packages maps every package dpkg lists in the rootfs to its version.
	Packages map[string]string `json:"packages"`
	Rootfs   TarballLock       `json:"rootfs"`
	OCI      OCILock           `json:"oci"`
}

// TarballLock identifies the rootfs tarball.
type TarballLock struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// OCILock is the OCI image made of the same bytes.
type OCILock struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
}

// Ref is the image reference by digest, repository@sha256:...
func (o OCILock) Ref() string {
	if o.Digest == "" {
		return ""
	}
	return o.Repository + "@" + o.Digest
}

// LockedTree is a tree's definition and lock, read and checked together.
type LockedTree struct {
	Root       string
	Definition Definition
	Lock       Lock
	// LockSHA256 is the SHA-256 of lock.json's bytes: the toolchain's
	// identity, recorded in every manifest and the key of the cache.
	LockSHA256 string

	cacheRoot string // overrides CacheRoot() (the benchmark's cold cache)
}

var (
	pkgNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	fprRE     = regexp.MustCompile(`^[0-9A-F]{40}$`)
	// A Debian version: [epoch:]upstream[-revision], upstream starting
	// with a digit (Debian policy 5.6.12). Nothing that could split an
	// --include list (",") or reach a shell.
	pkgVersionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)
	// The suite, architecture and mirror go into mmdebstrap's command line
	// and its customize hook (a shell script, and a printf format): plain
	// words and a plain URL only.
	wordRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	mirrorRE  = regexp.MustCompile(`^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~+/-]*)?$`)
	ociRepoRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*$`)
	variants  = map[string]bool{"extract": true, "custom": true, "essential": true, "apt": true, "required": true, "minbase": true, "buildd": true, "important": true, "debootstrap": true, "standard": true}
)

// ReadDefinition reads and checks toolchain/definition.json of the tree at root.
func ReadDefinition(root string) (Definition, []byte, error) {
	var d Definition
	path := filepath.Join(root, DefinitionFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return d, nil, fmt.Errorf("read the toolchain definition: %w", err)
	}
	if err := strictJSON(data, &d); err != nil {
		return d, nil, fmt.Errorf("%s: %w", path, err)
	}
	var bad []string
	if err := exactKeys(data, d); err != nil {
		bad = append(bad, err.Error())
	}
	if d.Suite == "" || d.Architecture == "" || d.Mirror == "" || d.Variant == "" {
		bad = append(bad, "suite, architecture, mirror and variant must all be set")
	} else {
		if !wordRE.MatchString(d.Suite) || !wordRE.MatchString(d.Architecture) {
			bad = append(bad, fmt.Sprintf("suite %q and architecture %q must be plain words (a-z, 0-9, -)", d.Suite, d.Architecture))
		}
		if !mirrorRE.MatchString(d.Mirror) {
			bad = append(bad, fmt.Sprintf("mirror %q is not a plain http(s) URL (letters, digits and . _ ~ + - / only)", d.Mirror))
		}
		if !variants[d.Variant] {
			bad = append(bad, fmt.Sprintf("variant %q is not one of mmdebstrap's variants", d.Variant))
		}
	}
	if d.Keyring != "" && (!filepath.IsLocal(d.Keyring) || strings.Contains(d.Keyring, "\\")) {
		bad = append(bad, fmt.Sprintf("keyring %q must be a path inside the tree", d.Keyring))
	}
	if d.OCIRepository != "" && !ociRepoRE.MatchString(d.OCIRepository) {
		bad = append(bad, fmt.Sprintf("oci_repository %q is not an image repository name", d.OCIRepository))
	}
	if len(d.Include) == 0 {
		bad = append(bad, "include lists no packages")
	}
	for _, p := range d.Include {
		if !pkgNameRE.MatchString(p) {
			bad = append(bad, fmt.Sprintf("include: %q is not a Debian package name (no versions here: they go in the lock)", p))
		}
	}
	if d.SourceDateEpoch <= 0 {
		bad = append(bad, "source_date_epoch must be a positive number of seconds")
	}
	if d.Keyring == "" || len(d.KeyFingerprints) == 0 {
		bad = append(bad, "keyring and key_fingerprints must be set")
	}
	for _, f := range d.KeyFingerprints {
		if !fprRE.MatchString(f) {
			bad = append(bad, fmt.Sprintf("key_fingerprints: %q is not 40 upper-case hex digits", f))
		}
	}
	if d.LLVMMajor <= 0 || d.OCIRepository == "" {
		bad = append(bad, "llvm_major and oci_repository must be set")
	}
	if len(bad) > 0 {
		return d, nil, fmt.Errorf("%s: %s", path, strings.Join(bad, "; "))
	}
	return d, data, nil
}

// ReadLock reads the definition and the lock of the tree at root and checks
// that they agree: the lock was made from this exact definition and
// keyring, and it pins every package the definition includes. A
// disagreement means someone edited one without the other.
func ReadLock(root string) (*LockedTree, error) {
	def, defData, err := ReadDefinition(root)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, LockFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the toolchain lock: %w; run `go tool mage toolchainLock` to create it", err)
	}
	var l Lock
	if err := strictJSON(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The lock's bytes are the toolchain's identity (the cache key, the
	// manifest's lock SHA-256), and only toolchainLock writes them: a
	// lock that does not re-encode to itself was edited by hand (and may
	// hide a duplicate or mis-cased key that review would read one way and
	// the decoder another).
	if enc, err := l.Encode(); err != nil || !bytes.Equal(enc, data) {
		return nil, fmt.Errorf("%s is not the file `go tool mage toolchainLock` writes (edited by hand? duplicate or mis-cased keys, reordered or reformatted lines, trailing data): restore it with `git checkout %s`, or regenerate it with `go tool mage toolchainLock` and commit the result", path, LockFile)
	}
	lt := &LockedTree{Root: root, Definition: def, Lock: l, LockSHA256: sha256Hex(data)}
	if err := lt.check(defData); err != nil {
		return nil, err
	}
	return lt, nil
}

func (lt *LockedTree) check(defData []byte) error {
	d, l := lt.Definition, lt.Lock
	var bad []string
	if got := sha256Hex(defData); l.DefinitionSHA256 != got {
		bad = append(bad, fmt.Sprintf("it was made from a definition with SHA-256 %s, but %s now hashes to %s", short(l.DefinitionSHA256), DefinitionFile, short(got)))
	}
	if kr, err := os.ReadFile(filepath.Join(lt.Root, d.Keyring)); err != nil {
		bad = append(bad, fmt.Sprintf("the keyring %s cannot be read (%v)", d.Keyring, err))
	} else if got := sha256Hex(kr); l.KeyringSHA256 != got {
		bad = append(bad, fmt.Sprintf("it trusts a keyring with SHA-256 %s, but %s hashes to %s", short(l.KeyringSHA256), d.Keyring, short(got)))
	}
	if l.Suite != d.Suite || l.Architecture != d.Architecture || l.Mirror != d.Mirror || l.Variant != d.Variant || l.SourceDateEpoch != d.SourceDateEpoch {
		bad = append(bad, fmt.Sprintf("its suite/architecture/mirror/variant/epoch (%s/%s/%s/%s/%d) differ from the definition's (%s/%s/%s/%s/%d)",
			l.Suite, l.Architecture, l.Mirror, l.Variant, l.SourceDateEpoch, d.Suite, d.Architecture, d.Mirror, d.Variant, d.SourceDateEpoch))
	}
	for _, p := range d.Include {
		if _, ok := l.Packages[p]; !ok {
			bad = append(bad, fmt.Sprintf("it pins no version of %s, which the definition includes", p))
		}
	}
	if !hex64RE.MatchString(l.Rootfs.SHA256) || l.Rootfs.Size <= 0 {
		bad = append(bad, "its rootfs sha256/size are missing")
	}
	if l.OCI.Repository != d.OCIRepository || !strings.HasPrefix(l.OCI.Digest, "sha256:") || !hex64RE.MatchString(strings.TrimPrefix(l.OCI.Digest, "sha256:")) {
		bad = append(bad, fmt.Sprintf("its OCI image (%s) is not %s@sha256:<64 hex>", l.OCI.Ref(), d.OCIRepository))
	}
	if !strings.HasPrefix(l.LLVMVersion, fmt.Sprintf("%d.", d.LLVMMajor)) {
		bad = append(bad, fmt.Sprintf("it holds LLVM %q, not LLVM %d", l.LLVMVersion, d.LLVMMajor))
	}
	names := slices.Sorted(maps.Keys(l.Packages))
	for _, name := range names {
		v := l.Packages[name]
		if !pkgNameRE.MatchString(name) {
			bad = append(bad, fmt.Sprintf("%q is not a package name", name))
		}
		if !pkgVersionRE.MatchString(v) {
			bad = append(bad, fmt.Sprintf("%s's version %q is not a Debian version", name, v))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the toolchain lock %s disagrees with the definition: %s. Run `go tool mage toolchainLock` to regenerate the lock from %s (it prints the diff), and commit both",
			LockFile, strings.Join(bad, "; "), DefinitionFile)
	}
	return nil
}

// Encode renders a lock as lock.json: indented, keys sorted (Go sorts map
// keys), one package per line, so a diff shows exactly what moved.
func (l Lock) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// IncludeArgs are the package requests of a creation from this lock:
// every package at its locked version, sorted.
func (l Lock) IncludeArgs() []string {
	names := slices.Sorted(maps.Keys(l.Packages))
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "=" + l.Packages[n]
	}
	return out
}

// DiffLocks describes, one line each, how two locks differ (for the
// toolchainLock target's report). Empty when they are the same.
func DiffLocks(old, new Lock) []string {
	var out []string
	sorted := append(slices.Collect(maps.Keys(old.Packages)), slices.Collect(maps.Keys(new.Packages))...)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, n := range sorted {
		o, inOld := old.Packages[n]
		w, inNew := new.Packages[n]
		switch {
		case !inOld:
			out = append(out, fmt.Sprintf("+ %s %s", n, w))
		case !inNew:
			out = append(out, fmt.Sprintf("- %s %s", n, o))
		case o != w:
			out = append(out, fmt.Sprintf("~ %s %s -> %s", n, o, w))
		}
	}
	if old.Rootfs != new.Rootfs {
		out = append(out, fmt.Sprintf("~ rootfs %s (%d bytes) -> %s (%d bytes)", short(old.Rootfs.SHA256), old.Rootfs.Size, short(new.Rootfs.SHA256), new.Rootfs.Size))
	}
	if old.OCI != new.OCI {
		out = append(out, fmt.Sprintf("~ oci %s -> %s", old.OCI.Ref(), new.OCI.Ref()))
	}
	if old.LLVMVersion != new.LLVMVersion {
		out = append(out, fmt.Sprintf("~ llvm %s -> %s", old.LLVMVersion, new.LLVMVersion))
	}
	return out
}

var hex64RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not valid JSON for this file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("not valid JSON for this file: data after the object")
	}
	return nil
}

// exactKeys checks the top-level keys of a JSON object against the json
// tags of v's struct type: each at most once and spelled exactly (the
// decoder matches case-insensitively and lets a later duplicate win).
func exactKeys(data []byte, v any) error {
	tags := map[string]bool{}
	t := reflect.TypeOf(v)
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		tags[name] = true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch {
		case seen[key]:
			return fmt.Errorf("key %q appears twice", key)
		case !tags[key]:
			return fmt.Errorf("key %q is not spelled as this file's keys are (they are lower case)", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
