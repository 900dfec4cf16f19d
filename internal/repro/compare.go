package repro

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/layout"
)

// Difference describes one artifact that is not the same in two builds.
type Difference struct {
	// Path is the artifact, relative to the build root (e.g. "build/kernel.elf").
	Path string
	// Missing is "A" or "B" when the artifact exists in only one build.
	Missing string
	// SizeA and SizeB are the two sizes in bytes.
	SizeA, SizeB int64
	// Offset is the first differing byte (or the shorter size when one file
	// is a prefix of the other).
	Offset int64
	// Where names what holds that offset: the ELF section for ELF files, the
	// disk region for a Fluid OS disk image, empty otherwise.
	Where string
	// Diffoscope holds the start of diffoscope's report when it is installed.
	Diffoscope string
}

// String is the one line verify prints for the difference.
func (d Difference) String() string {
	if d.Missing != "" {
		return fmt.Sprintf("%s: only in build %s", d.Path, other(d.Missing))
	}
	s := fmt.Sprintf("%s: first difference at offset %d (0x%x)", d.Path, d.Offset, d.Offset)
	if d.Where != "" {
		s += " in " + d.Where
	}
	if d.SizeA != d.SizeB {
		s += fmt.Sprintf("; sizes %d vs %d", d.SizeA, d.SizeB)
	}
	return s
}

func other(missing string) string {
	if missing == "A" {
		return "B"
	}
	return "A"
}

// Artifact is one file both builds produced identically.
type Artifact struct {
	Path   string // relative to the build root
	Size   int64
	SHA256 string
}

// Comparison is the outcome of comparing two build trees.
type Comparison struct {
	Same        []Artifact
	Differences []Difference
}

// Err returns nil when the trees matched, or an error naming every
// differing artifact.
func (c Comparison) Err() error {
	if len(c.Differences) == 0 {
		return nil
	}
	lines := make([]string, len(c.Differences))
	for i, d := range c.Differences {
		lines[i] = "  " + d.String()
	}
	return fmt.Errorf("%w: %d of %d artifacts differ between the two builds:\n%s",
		ErrNotReproducible, len(c.Differences), len(c.Differences)+len(c.Same), strings.Join(lines, "\n"))
}

// ErrNotReproducible is wrapped by every verify failure caused by differing
// artifacts (as opposed to a build that failed).
var ErrNotReproducible = errors.New("build is not reproducible")

// Exclude reports whether a path under build/ is not an artifact: locks,
// logs, caches, the build's step stamps (cache keys, which hash the command
// lines and so the tree's path) and dependency files, which say how a build
// ran rather than what it produced. Intermediate objects are compared: a
// differing .o names the source that caused a differing kernel.
func Exclude(rel string) bool {
	base := filepath.Base(rel)
	switch {
	case base == ".lock", strings.HasSuffix(base, ".log"), strings.HasSuffix(base, ".d"),
		strings.HasSuffix(base, ".tmp"), base == "bench.json", base == "bench.svg":
		return true
	}
	for _, dir := range []string{".stamps", "cache", "tmp", "logs", "serial"} {
		if strings.Contains("/"+filepath.ToSlash(rel)+"/", "/"+dir+"/") {
			return true
		}
	}
	return false
}

// CompareTrees compares every artifact under dirA/sub and dirB/sub (sub is
// usually "build"), in sorted order. Paths in the result are "sub/...".
// When diffoscope is on PATH it is run on each differing pair (bounded by
// ctx and a per-file timeout) and the start of its report kept.
func CompareTrees(ctx context.Context, dirA, dirB, sub string) (Comparison, error) {
	var c Comparison
	a, err := listArtifacts(filepath.Join(dirA, sub))
	if err != nil {
		return c, err
	}
	b, err := listArtifacts(filepath.Join(dirB, sub))
	if err != nil {
		return c, err
	}
	sorted := append(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b))...)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, n := range sorted {
		rel := filepath.ToSlash(filepath.Join(sub, n))
		if !a[n] {
			c.Differences = append(c.Differences, Difference{Path: rel, Missing: "A"})
			continue
		}
		if !b[n] {
			c.Differences = append(c.Differences, Difference{Path: rel, Missing: "B"})
			continue
		}
		fa, fb := filepath.Join(dirA, sub, n), filepath.Join(dirB, sub, n)
		d, same, err := CompareFiles(fa, fb)
		if err != nil {
			return c, err
		}
		if same != nil {
			same.Path = rel
			c.Same = append(c.Same, *same)
			continue
		}
		d.Path = rel
		d.Diffoscope = runDiffoscope(ctx, fa, fb)
		c.Differences = append(c.Differences, d)
	}
	return c, nil
}

// listArtifacts returns the regular files under dir (relative paths),
// minus the excluded ones. A missing dir is an error: the build produced
// nothing.
func listArtifacts(dir string) (map[string]bool, error) {
	out := map[string]bool{}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no artifacts: %s does not exist; did the build run?", dir)
	}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			if rel != "." && Exclude(rel+"/x") {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && !Exclude(rel) {
			out[rel] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list artifacts in %s: %w", dir, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no artifacts in %s: did the build run?", dir)
	}
	return out, nil
}

// CompareFiles compares two files. It returns either the shared artifact
// (when identical) or a Difference with the first differing offset and, for
// ELF files and disk images, what lies there.
func CompareFiles(a, b string) (Difference, *Artifact, error) {
	var d Difference
	ba, err := os.ReadFile(a)
	if err != nil {
		return d, nil, fmt.Errorf("compare artifacts: %w", err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		return d, nil, fmt.Errorf("compare artifacts: %w", err)
	}
	if bytes.Equal(ba, bb) {
		sum := sha256.Sum256(ba)
		return d, &Artifact{Size: int64(len(ba)), SHA256: hex.EncodeToString(sum[:])}, nil
	}
	d.SizeA, d.SizeB = int64(len(ba)), int64(len(bb))
	d.Offset = int64(firstDiff(ba, bb))
	d.Where = Locate(ba, d.Offset)
	if d.Where == "" && json.Valid(ba) && json.Valid(bb) {
		var va, vb any
		if json.Unmarshal(ba, &va) == nil && json.Unmarshal(bb, &vb) == nil {
			if diffs := JSONDiff(va, vb, ""); len(diffs) > 0 {
				d.Where = "JSON " + diffs[0]
				if len(diffs) > 1 {
					d.Where += fmt.Sprintf(" (and %d more)", len(diffs)-1)
				}
			}
		}
	}
	if where, off, ok := firstDifferingSection(ba, bb); ok {
		// A section that grew moves everything after it, so the first
		// differing byte is often a header field; the first section whose
		// contents differ says what actually changed.
		d.Offset, d.Where = off, where
	}
	return d, nil, nil
}

// firstDifferingSection compares two ELF files section by section, in file
// order of a, and returns the first section whose name, type or contents
// differ, with the file offset (in a) of its first differing byte.
func firstDifferingSection(a, b []byte) (string, int64, bool) {
	if !bytes.HasPrefix(a, []byte(elf.ELFMAG)) || !bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
		return "", 0, false
	}
	fa, err := elf.NewFile(bytes.NewReader(a))
	if err != nil {
		return "", 0, false
	}
	defer fa.Close()
	fb, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return "", 0, false
	}
	defer fb.Close()
	secs := append([]*elf.Section(nil), fa.Sections...)
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].Offset < secs[j].Offset })
	for _, sa := range secs {
		if sa.Type == elf.SHT_NULL {
			continue
		}
		sb := fb.Section(sa.Name)
		if sb == nil {
			return fmt.Sprintf("ELF section %s (missing from the other build)", sa.Name), int64(sa.Offset), true
		}
		if sa.Type == elf.SHT_NOBITS {
			if sa.Size != sb.Size {
				return fmt.Sprintf("ELF section %s (size 0x%x vs 0x%x)", sa.Name, sa.Size, sb.Size), int64(sa.Offset), true
			}
			continue
		}
		da, errA := sa.Data()
		db, errB := sb.Data()
		if errA != nil || errB != nil {
			continue
		}
		if !bytes.Equal(da, db) {
			i := firstDiff(da, db)
			extra := ""
			if len(da) != len(db) {
				extra = fmt.Sprintf(", section size 0x%x vs 0x%x", len(da), len(db))
			}
			return fmt.Sprintf("ELF section %s (+0x%x%s)", sa.Name, i, extra), int64(sa.Offset) + int64(i), true
		}
		if sa.Addr != sb.Addr || sa.Flags != sb.Flags {
			return fmt.Sprintf("ELF section %s (address or flags)", sa.Name), int64(sa.Offset), true
		}
	}
	for _, sb := range fb.Sections {
		if fa.Section(sb.Name) == nil {
			return fmt.Sprintf("ELF section %s (only in the second build)", sb.Name), 0, true
		}
	}
	return "", 0, false
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	// Compare in chunks first: disk images are tens of MiB.
	const chunk = 4096
	i := 0
	for ; i+chunk <= n; i += chunk {
		if !bytes.Equal(a[i:i+chunk], b[i:i+chunk]) {
			break
		}
	}
	for ; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// Locate names what holds file offset off in data: for an ELF file the
// section (or the ELF/program header), for a Fluid OS disk image the region
// of the disk layout (boot/bootinfo.h), otherwise "".
func Locate(data []byte, off int64) string {
	if bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return locateELF(data, off)
	}
	if isDiskImage(data) {
		return locateDisk(off)
	}
	return ""
}

func locateELF(data []byte, off int64) string {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "an ELF file that debug/elf cannot parse (" + err.Error() + ")"
	}
	defer f.Close()
	var ehsize int64 = 52
	if f.Class == elf.ELFCLASS64 {
		ehsize = 64
	}
	if off < ehsize {
		return "the ELF header"
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NULL {
			continue
		}
		if off >= int64(s.Offset) && off < int64(s.Offset+s.FileSize) {
			return fmt.Sprintf("ELF section %s (+0x%x)", s.Name, off-int64(s.Offset))
		}
	}
	phoff, shoff, phent := int64(binary.LittleEndian.Uint32(data[28:32])), int64(binary.LittleEndian.Uint32(data[32:36])), int64(32)
	if f.Class == elf.ELFCLASS64 && len(data) >= 64 {
		phoff, shoff, phent = int64(binary.LittleEndian.Uint64(data[32:40])), int64(binary.LittleEndian.Uint64(data[40:48])), 56
	}
	if n := int64(len(f.Progs)); n > 0 && off >= phoff && off < phoff+n*phent {
		return fmt.Sprintf("the ELF program headers (entry %d)", (off-phoff)/phent)
	}
	if shoff > 0 && off >= shoff {
		return "the ELF section header table"
	}
	return "the ELF file outside any section (padding between sections)"
}

// isDiskImage recognises a Fluid OS disk: the boot signature and the fixed
// MBR disk signature, and room for the partition.
func isDiskImage(data []byte) bool {
	if len(data) < layout.Part1LBA*layout.SectorSize {
		return false
	}
	return data[510] == 0x55 && data[511] == 0xAA && binary.LittleEndian.Uint32(data[440:444]) == layout.DiskSignature
}

func locateDisk(off int64) string {
	sector := off / layout.SectorSize
	switch {
	case off < 440:
		return "the disk image: stage 1 (MBR boot code)"
	case off < 446:
		return "the disk image: MBR disk signature"
	case off < 510:
		return "the disk image: MBR partition table"
	case sector == 0:
		return "the disk image: MBR boot signature"
	case sector >= layout.Stage2LBA && sector < layout.Stage2LBA+layout.Stage2MaxSectors:
		return fmt.Sprintf("the disk image: stage 2 (LBA %d)", sector)
	case sector == layout.KernelHdrLBA:
		return "the disk image: kernel header sector (LBA 64)"
	case sector > layout.KernelHdrLBA && sector < layout.Part1LBA:
		return fmt.Sprintf("the disk image: kernel payload (LBA %d, payload offset 0x%x)", sector, off-(layout.KernelHdrLBA+1)*layout.SectorSize)
	case sector >= layout.Part1LBA:
		return fmt.Sprintf("the disk image: FAT32 partition 1 (partition offset 0x%x)", off-layout.Part1LBA*layout.SectorSize)
	}
	return fmt.Sprintf("the disk image: unused sector %d", sector)
}

// diffoscopeLines bounds how much of diffoscope's report is kept.
const diffoscopeLines = 40

// runDiffoscope returns the start of diffoscope's text report on a and b,
// or "" when diffoscope is not installed.
func runDiffoscope(ctx context.Context, a, b string) string {
	bin, err := exec.LookPath("diffoscope")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--text", "-", "--no-progress", "--max-report-size", "262144", a, b)
	out, _ := cmd.Output() // exits 1 when the files differ
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() && len(lines) < diffoscopeLines {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		if ctx.Err() != nil {
			return "diffoscope printed nothing: " + ctx.Err().Error()
		}
		return "diffoscope printed nothing"
	}
	return strings.Join(lines, "\n")
}
