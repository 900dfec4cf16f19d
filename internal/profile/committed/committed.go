// Package committed reads the committed profiles/ directory: its summary,
// whether each module's profile still fits the module's sources, and, as a
// build.ProfileSource (Dir), the profile each module's PGO build uses. It
// is what building a PGO image needs of the profiles, without the capture
// pipeline (QEMU, frames) of internal/profile.
package committed

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/build/recipe"
)

// Files in profiles/ this package reads.
const (
	SummaryFile = "summary.json"
	// TextExt is the extension of a module's text profile.
	TextExt = ".proftext"
)

// Present reports whether the tree at root has committed profiles
// (profiles/summary.json).
func Present(root string) bool {
	_, err := os.Stat(filepath.Join(Dir{Root: root}.dir(), SummaryFile))
	return err == nil
}

// Dir is a profiles directory as a build.ProfileSource.
type Dir struct {
	Root string // the source tree the profiles must fit
	Path string // the profiles directory; default Root/profiles
}

func (d Dir) dir() string {
	if d.Path != "" {
		return d.Path
	}
	return filepath.Join(d.Root, "profiles")
}

// ModuleProfiles returns each module's text profile, after checking that
// summary.json records every module with its current sources (else a
// *StaleError, which wraps recipe.ErrStaleProfiles).
func (d Dir) ModuleProfiles(modules []string) (map[string]string, error) {
	dir := d.dir()
	doc, err := ReadSummary(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckFresh(doc, d.Root, modules); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range modules {
		out[m] = filepath.Join(dir, m+TextExt)
	}
	return out, nil
}

// ModuleRecord is one module's entry in profiles/summary.json. It holds
// only what is the same on every capture of one commit: the guest's cycle
// figures are not (IDE transfers complete at host-dependent points, so
// timer interrupts land at different places in a module's run), and are
// kept in RawDir/run-summary.json instead.
type ModuleRecord struct {
	Module  string `json:"module"`
	Variant string `json:"variant"`
	Hash    string `json:"hash"` // module header hash of the instrumented build
	Calls   uint64 `json:"calls"`
	Result  string `json:"result"`
	// Why says why a module that did not finish its capture run (Result
	// crashed, timeout or fail) has no profile (Profile is then "").
	Why           string `json:"why,omitempty"`
	SourceSHA256  string `json:"source_sha256"`
	Profile       string `json:"profile"` // file name in profiles/; "" for a module without one
	ProfileSHA256 string `json:"profile_sha256"`
}

// SummaryDoc is profiles/summary.json.
type SummaryDoc struct {
	FrameVersion int            `json:"frame_version"`
	Light        bool           `json:"light"` // captured from a LIGHT=1 build
	Modules      []ModuleRecord `json:"modules"`
}

// ReadSummary reads profiles/summary.json from dir.
func ReadSummary(dir string) (*SummaryDoc, error) {
	data, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, fmt.Errorf("read profiles: %w (run `go tool mage profile` to capture them)", err)
	}
	var doc SummaryDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return &doc, nil
}

// SourceHashes returns, per module, the SHA-256 over the files its build
// reads: modules/<m>/*.{c,h}, modules/lib/*.{c,h} and modules/include/*.h
// (relative path and content of each, in sorted order).
func SourceHashes(root string, modules []string) (map[string]string, error) {
	shared, err := globAll(root, "modules/lib/*.c", "modules/lib/*.h", "modules/include/*.h")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range modules {
		own, err := globAll(root, "modules/"+m+"/*.c", "modules/"+m+"/*.h")
		if err != nil {
			return nil, err
		}
		if len(own) == 0 {
			return nil, fmt.Errorf("module %s: no sources in modules/%s", m, m)
		}
		files := append(own, shared...)
		sort.Strings(files)
		h := sha256.New()
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				return nil, fmt.Errorf("module %s: %w", m, err)
			}
			fmt.Fprintf(h, "%s %d\n", f, len(data))
			h.Write(data)
		}
		out[m] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

func globAll(root string, patterns ...string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(root, p))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				return nil, err
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	return out, nil
}

// StaleError lists modules whose committed profile does not fit the
// current sources.
type StaleError struct {
	Modules []string // sorted
	Why     map[string]string
}

// Unwrap makes a StaleError a recipe.ErrStaleProfiles.
func (e *StaleError) Unwrap() error { return recipe.ErrStaleProfiles }

func (e *StaleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stale profiles for %d module(s):", len(e.Modules))
	for _, m := range e.Modules {
		fmt.Fprintf(&b, "\n  %s: %s", m, e.Why[m])
	}
	fmt.Fprintf(&b, "\nrefresh them with `%s` (then commit profiles/)", recipe.RefreshCommand)
	return b.String()
}

// CheckFresh compares profiles/summary.json with the current module
// sources; it returns a *StaleError naming every module whose profile is
// missing or was captured from other sources. (A LIGHT=1 capture is not
// stale for a full build: LIGHT only changes how much work the modules do
// at run time; if a module's code depends on it, clang's
// -Werror=profile-instr-out-of-date catches the mismatch.)
func CheckFresh(doc *SummaryDoc, root string, modules []string) error {
	cur, err := SourceHashes(root, modules)
	if err != nil {
		return err
	}
	rec := map[string]ModuleRecord{}
	for _, r := range doc.Modules {
		rec[r.Module] = r
	}
	se := &StaleError{Why: map[string]string{}}
	for _, m := range modules {
		r, ok := rec[m]
		switch {
		case !ok:
			se.Why[m] = "no profile in profiles/ (a new module?)"
		case r.Result != "" && r.Result != "ok":
			why := r.Why
			if why == "" {
				why = "result " + r.Result
			}
			se.Why[m] = fmt.Sprintf("no profile in profiles/: the module did not pass its capture run (%s); fix it", why)
		case r.SourceSHA256 != cur[m]:
			se.Why[m] = fmt.Sprintf("modules/%s changed since its profile was captured", m)
		default:
			continue
		}
		se.Modules = append(se.Modules, m)
	}
	if len(se.Modules) > 0 {
		sort.Strings(se.Modules)
		return se
	}
	return nil
}
