package profile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluid-os/fluid/internal/atomicfile"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// Files in profiles/ besides the per-module <module>.proftext.
const (
	SummaryFile   = "summary.json"
	ToolchainFile = "toolchain.json"
	// RunSummaryFile (in Output.RawDir) keeps the full summaries of the
	// capture run, cycle counts included.
	RunSummaryFile = "run-summary.json"
	// ReadmeFile explains the directory to a reviewer.
	ReadmeFile = "README.md"
	// TextExt is the extension of a module's text profile.
	TextExt = ".proftext"
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

// Output says where and with what Write produces profiles/.
type Output struct {
	Dir       string               // the profiles directory; replaced as a whole
	RawDir    string               // optional: keep each <module>.profraw here (e.g. build/profile)
	Profdata  string               // llvm-profdata of the toolchain that built the modules
	Runner    *toolchain.Toolchain // runs Profdata (in the locked rootfs); nil: on the host
	Toolchain ToolchainInfo        // written to toolchain.json (RawProfileVersion is filled in)
	Sources   map[string]string    // module -> SHA-256 of its sources at capture time
	Light     bool                 // captured from a LIGHT=1 build
}

// ModuleRecord is one module's entry in profiles/summary.json. It holds
// only what is the same on every capture of one commit: the guest's cycle
// figures are not (IDE transfers complete at host-dependent points, so
// timer interrupts land at different places in a module's run), and are
// kept in RawDir/run-summary.json instead.
type ModuleRecord struct {
	Module        string `json:"module"`
	Variant       string `json:"variant"`
	Hash          string `json:"hash"` // module header hash of the instrumented build
	Calls         uint64 `json:"calls"`
	Result        string `json:"result"`
	SourceSHA256  string `json:"source_sha256"`
	Profile       string `json:"profile"` // file name in profiles/
	ProfileSHA256 string `json:"profile_sha256"`
}

// SummaryDoc is profiles/summary.json.
type SummaryDoc struct {
	FrameVersion int            `json:"frame_version"`
	Light        bool           `json:"light"` // captured from a LIGHT=1 build
	Modules      []ModuleRecord `json:"modules"`
}

// Write converts every module's raw profile to text with o.Profdata and
// writes <module>.proftext, summary.json and toolchain.json into a fresh
// temporary directory next to o.Dir, then swaps it in. On any error o.Dir
// is left exactly as it was.
func Write(ctx context.Context, o Output, mods map[string]*Module) (err error) {
	if len(mods) == 0 {
		return fmt.Errorf("write %s: no modules captured", o.Dir)
	}
	if o.Profdata == "" {
		return errors.New("write profiles: no llvm-profdata given")
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

	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
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
		text := filepath.Join(tmp, n+TextExt)
		if err := profdata(ctx, o.Runner, o.Profdata, "merge", "--text", "-o", text, raw); err != nil {
			return fmt.Errorf("%w: module %s: %s could not read the captured raw profile (%s): %v", ErrRefused, n, filepath.Base(o.Profdata), raw, err)
		}
		data, err := os.ReadFile(text)
		if err != nil {
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

// profdata runs llvm-profdata with a fixed locale — through the toolchain
// (the locked rootfs) when tc is set, the same way every build step runs —
// and returns its stderr in the error.
func profdata(ctx context.Context, tc *toolchain.Toolchain, bin string, args ...string) error {
	env := append(os.Environ(), "LC_ALL=C")
	var cmd *exec.Cmd
	if tc != nil {
		c, err := tc.Command(ctx, append([]string{bin}, args...), env)
		if err != nil {
			return err
		}
		cmd = c
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return err
		}
		return fmt.Errorf("%w: %s", err, msg)
	}
	return nil
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
