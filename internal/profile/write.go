package profile

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/profile/committed"
	"github.com/fluid-os/fluid/internal/serial"
)

// Files in profiles/ besides the per-module <module>.proftext.
const (
	SummaryFile   = committed.SummaryFile
	ToolchainFile = "toolchain.json"
	// RunSummaryFile (in Output.RawDir) keeps the full summaries of the
	// capture run, cycle counts included.
	RunSummaryFile = "run-summary.json"
	// ReadmeFile explains the directory to a reviewer.
	ReadmeFile = "README.md"
	// TextExt is the extension of a module's text profile.
	TextExt = committed.TextExt
)

// readme is profiles/README.md; Write regenerates the whole directory.
const readme = `# profiles/

Written by ` + "`go tool mage profile`" + ` — do not edit by hand; the whole directory is
replaced on every capture (and left untouched when a capture fails).

- ` + "`<module>.proftext`" + `: the module's LLVM instrumentation profile in text form
  (` + "`llvm-profdata merge --text`" + `), captured from an instrumented build booted under
  QEMU with ` + "`-icount shift=0,sleep=off`" + `, so two captures of one commit are identical.
  Per function: its CFG hash, then one counter per region (function entry first).
- ` + "`summary.json`" + `: per module the variant and hash of the captured build, how often it
  ran, its result, and the SHA-256 of its sources — ` + "`go tool mage pgo`" + ` refuses a
  profile whose sources have changed since.
- ` + "`toolchain.json`" + `: the exact clang, llvm-profdata and compiler-rt profile runtime
  that produced the profiles, and the raw profile format version they used.
`

// ToolchainInfo identifies the toolchain that produced profiles/: exact
// versions and binary hashes, never host paths.
type ToolchainInfo struct {
	LLVMMajor         int    `json:"llvm_major"`
	Clang             string `json:"clang"`
	ClangSHA256       string `json:"clang_sha256"`
	LLVMProfdata      string `json:"llvm_profdata"`
	LLVMProfdataSHA   string `json:"llvm_profdata_sha256"`
	ProfileRuntime    string `json:"profile_runtime"` // file name of libclang_rt.profile
	ProfileRuntimeSHA string `json:"profile_runtime_sha256"`
	RawProfileVersion uint64 `json:"raw_profile_version"` // from the captured raw profiles' header
	// Toolchain is where the profile was captured: the mode, and for the
	// locked toolchain the SHA-256 of toolchain/lock.json and its LLVM.
	Toolchain     string `json:"toolchain"`
	ToolchainLock string `json:"toolchain_lock_sha256,omitempty"`
	LLVMVersion   string `json:"llvm_version,omitempty"`
}

// The committed profiles' types, as profile's API had them.
type (
	ModuleRecord = committed.ModuleRecord
	SummaryDoc   = committed.SummaryDoc
	StaleError   = committed.StaleError
)

// ReadSummary, SourceHashes and CheckFresh read and judge profiles/ (package committed).
var (
	ReadSummary  = committed.ReadSummary
	SourceHashes = committed.SourceHashes
	CheckFresh   = committed.CheckFresh
)

// Output says where and with what Write produces profiles/.
type Output struct {
	Dir       string            // the profiles directory; replaced as a whole
	RawDir    string            // optional: keep each <module>.profraw here (e.g. build/profile)
	B         *build.Builder    // runs llvm-profdata as a build step, with the toolchain that built the modules
	Toolchain ToolchainInfo     // written to toolchain.json (RawProfileVersion is filled in)
	Sources   map[string]string // module -> SHA-256 of its sources at capture time
	Light     bool              // captured from a LIGHT=1 build
	// Unfinished are the modules of the capture that get no profile
	// (crashed, timed out, failed): summary.json records each with why.
	Unfinished []Unfinished
}

// Write converts every module's raw profile to text with llvm-profdata (a
// step of o.B, next to the raw profile) and
// writes <module>.proftext, summary.json and toolchain.json into a fresh
// temporary directory next to o.Dir, then swaps it in. On any error o.Dir
// is left exactly as it was.
func Write(ctx context.Context, o Output, mods map[string]*Module) (err error) {
	if len(mods) == 0 {
		return fmt.Errorf("write %s: no modules captured", o.Dir)
	}
	if o.B == nil {
		return errors.New("write profiles: no builder to run llvm-profdata")
	}
	parent, base := filepath.Dir(o.Dir), filepath.Base(o.Dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", o.Dir, err)
	}
	tmp, err := os.MkdirTemp(parent, base+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", o.Dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	rawDir := o.RawDir
	if rawDir == "" {
		rawDir = filepath.Join(tmp, ".raw")
	}
	if err := os.MkdirAll(rawDir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", o.Dir, err)
	}

	names := slices.Sorted(maps.Keys(mods))
	doc := SummaryDoc{FrameVersion: serial.FrameVersion, Light: o.Light}
	tcinfo := o.Toolchain
	var runs []serial.Summary
	for _, n := range names {
		m := mods[n]
		if len(m.Profraw) == 0 {
			return fmt.Errorf("%w: module %s: no raw profile to write", ErrRefused, n)
		}
		v, err := rawVersion(m.Profraw)
		if err != nil {
			return fmt.Errorf("%w: module %s: %v", ErrRefused, n, err)
		}
		if tcinfo.RawProfileVersion != 0 && tcinfo.RawProfileVersion != v {
			return fmt.Errorf("%w: module %s: raw profile version %d, other modules sent %d; were they built by different toolchains?", ErrRefused, n, v, tcinfo.RawProfileVersion)
		}
		tcinfo.RawProfileVersion = v
		raw := filepath.Join(rawDir, n+".profraw")
		if err := atomicfile.WriteFile0644(raw, m.Profraw); err != nil {
			return err
		}
		conv := filepath.Join(rawDir, n+TextExt)
		argv := []string{o.B.Toolchain().Path("llvm-profdata"), "merge", "--text", "-o", conv, raw}
		if _, err := o.B.Step(ctx, "PROF", o.B.Rel(conv), argv, []string{raw}, []string{conv}); err != nil {
			return fmt.Errorf("%w: module %s: llvm-profdata could not read the captured raw profile (%s): %v", ErrRefused, n, raw, err)
		}
		data, err := os.ReadFile(conv)
		if err != nil {
			return fmt.Errorf("module %s: %w", n, err)
		}
		if err := atomicfile.WriteFile0644(filepath.Join(tmp, n+TextExt), data); err != nil {
			return fmt.Errorf("module %s: %w", n, err)
		}
		sum := sha256.Sum256(data)
		runs = append(runs, m.Summary)
		doc.Modules = append(doc.Modules, ModuleRecord{
			Module:        n,
			Variant:       m.Summary.Variant,
			Hash:          m.Summary.Hash,
			Calls:         m.Summary.Calls,
			Result:        m.Summary.Result,
			SourceSHA256:  o.Sources[n],
			Profile:       n + TextExt,
			ProfileSHA256: hex.EncodeToString(sum[:]),
		})
	}
	for _, u := range o.Unfinished {
		if _, ok := mods[u.Module]; ok {
			return fmt.Errorf("write %s: module %s is both profiled and unfinished (%s)", o.Dir, u.Module, u.Why)
		}
		doc.Modules = append(doc.Modules, ModuleRecord{Module: u.Module, Result: u.Result, Why: u.Why, SourceSHA256: o.Sources[u.Module]})
	}
	slices.SortFunc(doc.Modules, func(a, b ModuleRecord) int { return strings.Compare(a.Module, b.Module) })
	if o.RawDir == "" {
		if err := os.RemoveAll(rawDir); err != nil {
			return fmt.Errorf("write %s: %w", o.Dir, err)
		}
	} else if err := writeJSON(filepath.Join(rawDir, RunSummaryFile), runs); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(tmp, SummaryFile), doc); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(tmp, ToolchainFile), tcinfo); err != nil {
		return err
	}
	if err := atomicfile.WriteFile0644(filepath.Join(tmp, ReadmeFile), []byte(readme)); err != nil {
		return err
	}
	return swapDir(tmp, o.Dir)
}

// rawVersion reads the version word of a raw profile: every raw profile
// starts with a 64-bit magic and a 64-bit version (the rest of the header
// is the toolchain's business; llvm-profdata reads it).
func rawVersion(raw []byte) (uint64, error) {
	if len(raw) < 16 {
		return 0, fmt.Errorf("raw profile is %d bytes, shorter than its header", len(raw))
	}
	return binary.LittleEndian.Uint64(raw[8:16]) & 0xffffffff, nil
}

// swapDir replaces dst by src (two renames; if the second fails the old
// directory is put back).
func swapDir(src, dst string) error {
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = src + ".old"
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("replace %s: %w", dst, err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if old != "" {
			if rerr := os.Rename(old, dst); rerr != nil {
				return fmt.Errorf("replace %s: %w (and restoring it from %s failed: %v)", dst, err, old, rerr)
			}
		}
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("remove old %s: %w", old, err)
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.WriteFile0644(path, append(data, '\n'))
}
