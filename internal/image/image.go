// Package image builds the Fluid OS boot disk (build/fluid.img): an MBR disk
// with stage 1 in the boot code area, stage 2 and the kernel in the sectors
// before partition 1, and a FAT32 partition 1 holding the kernel ELF, the
// modules and the manifest. The layout is boot/bootinfo.h's (internal/layout):
//
//	LBA 0            stage 1 (0..439) | disk signature (440) | partition table | 55AA
//	LBA 1..62        stage 2
//	LBA 64           kernel header, then the payload from LBA 65
//	LBA 32768..end   partition 1, FAT32
//
// Images are reproducible: the same inputs give the same bytes.
package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/fluid-os/fluid/internal/layout"
)

const (
	// DefaultSize is the image size when Spec.Size is 0: 64 MiB.
	DefaultSize = 64 << 20
	// MaxSize is the largest image Build makes (FAT32 layout here is
	// checked up to this size).
	MaxSize = 2 << 30
	// DefaultLabel is the FAT32 volume label when Spec.Label is empty.
	DefaultLabel = "FLUIDOS"
	// VolumeSerial is the FAT32 volume serial number of every image (fixed,
	// so images are reproducible). It reads "FLD1" in a hex dump.
	VolumeSerial = 0x31444C46
	// Stage1Size is the exact size stage 1 must have: the MBR boot code area.
	Stage1Size = 440
	// MBR byte offsets.
	mbrDiskSigOff   = 440
	mbrPartTableOff = 446
	mbrBootSigOff   = 510
	// PartitionType is the MBR type of partition 1: FAT32 with LBA.
	PartitionType = mbr.Fat32LBA
)

// File is one file to put into the FAT32 partition.
type File struct {
	// Path in the image, absolute with '/' separators, e.g. "/KERNEL.ELF" or
	// "/modules/fib.mod". Directories are created as needed.
	Path string
	// Src is the host file to copy; ignored when Data is non-nil.
	Src string
	// Data is the file's contents, used instead of Src when non-nil.
	Data []byte
}

// Spec says what to build.
type Spec struct {
	Out       string // image path to write (atomically)
	Size      int64  // image size in bytes, a multiple of 512; 0 = DefaultSize
	Stage1    string // stage 1 binary, exactly Stage1Size bytes
	Stage2    string // stage 2 binary, at most STAGE2_MAX_SECTORS sectors, "FLS2" at offset 3
	KernelELF string // x86_64 kernel ELF; its payload goes to KERNEL_HDR_LBA
	Files     []File // files for partition 1, written in sorted order
	Label     string // FAT32 volume label (<= 11 chars); "" = DefaultLabel
	// SourceDateEpoch is the timestamp of every file and directory in
	// partition 1; the zero value means 1980-01-01 00:00:00 (the FAT epoch).
	SourceDateEpoch time.Time
}

// Build writes the disk image described by spec to spec.Out. It builds into
// a temporary file next to spec.Out and renames it into place, so spec.Out is
// either the old file or the complete new one; on error the temporary file is
// removed. Building twice from the same inputs gives identical bytes.
func Build(spec Spec) (err error) {
	if spec.Out == "" {
		return fmt.Errorf("build image: Spec.Out is empty; say where to write the image")
	}
	size := spec.Size
	if size == 0 {
		size = DefaultSize
	}
	label := spec.Label
	if label == "" {
		label = DefaultLabel
	}
	if len(label) > 11 || strings.ToUpper(label) != label || strings.ContainsAny(label, `"*+,./:;<=>?[\]|`) {
		return fmt.Errorf("build image %s: volume label %q: use at most 11 upper-case letters, digits, spaces, '-' or '_'", spec.Out, label)
	}

	stage1, stage2, khdr, kpayload, files, err := readInputs(spec)
	if err != nil {
		return fmt.Errorf("build image %s: %w", spec.Out, err)
	}

	if size%layout.SectorSize != 0 {
		return fmt.Errorf("build image %s: size %d is not a multiple of %d", spec.Out, size, layout.SectorSize)
	}
	if size > MaxSize {
		return fmt.Errorf("build image %s: size %d is more than the %d MiB maximum", spec.Out, size, MaxSize>>20)
	}
	partSectors, err := partitionSectors(size)
	if err != nil {
		return fmt.Errorf("build image %s: %w", spec.Out, err)
	}

	dir := filepath.Dir(spec.Out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("build image %s: %w", spec.Out, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(spec.Out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("build image %s: create temporary file: %w", spec.Out, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Truncate(size); err != nil {
		return fmt.Errorf("build image %s: size temporary file: %w", spec.Out, err)
	}

	if err := writeDisk(tmp, size, partSectors, label, stage1, stage2, khdr, kpayload, files, spec.SourceDateEpoch); err != nil {
		return fmt.Errorf("build image %s: %w", spec.Out, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("build image %s: sync: %w", spec.Out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("build image %s: chmod: %w", spec.Out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("build image %s: close: %w", spec.Out, err)
	}
	if err := os.Rename(tmpName, spec.Out); err != nil {
		return fmt.Errorf("build image %s: rename into place: %w", spec.Out, err)
	}
	return nil
}

// fileData is a validated File with its contents loaded.
type fileData struct {
	path string
	data []byte
}

func readInputs(spec Spec) (stage1, stage2, khdr, kpayload []byte, files []fileData, err error) {
	stage1, err = os.ReadFile(spec.Stage1)
	if err != nil {
		return nil, nil, nil, nil, nil, fmt.Errorf("read stage 1: %w", err)
	}
	if len(stage1) != Stage1Size {
		return nil, nil, nil, nil, nil, fmt.Errorf("stage 1 %s is %d bytes, want exactly %d (the MBR boot code area; bytes 440..511 hold the disk signature and partition table) — pad or trim it in boot/stage1.asm", spec.Stage1, len(stage1), Stage1Size)
	}
	stage2, err = os.ReadFile(spec.Stage2)
	if err != nil {
		return nil, nil, nil, nil, nil, fmt.Errorf("read stage 2: %w", err)
	}
	if limit := layout.Stage2MaxSectors * layout.SectorSize; len(stage2) > limit {
		return nil, nil, nil, nil, nil, fmt.Errorf("stage 2 %s is %d bytes, more than STAGE2_MAX_SECTORS (%d sectors = %d bytes); shrink boot/stage2.asm", spec.Stage2, len(stage2), layout.Stage2MaxSectors, limit)
	}
	if len(stage2) < layout.Stage2MagicOffset+4 || binary.LittleEndian.Uint32(stage2[layout.Stage2MagicOffset:]) != layout.Stage2Magic {
		return nil, nil, nil, nil, nil, fmt.Errorf("stage 2 %s lacks the \"FLS2\" magic at offset %d; stage 1 would refuse it (start boot/stage2.asm with a short jmp then db \"FLS2\")", spec.Stage2, layout.Stage2MagicOffset)
	}
	khdr, kpayload, _, err = KernelPayload(spec.KernelELF)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}

	seen := map[string]string{}
	for _, f := range spec.Files {
		p := f.Path
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" || strings.Contains(p, `\`) {
			return nil, nil, nil, nil, nil, fmt.Errorf("image file path %q: want an absolute clean path like /modules/fib.mod", p)
		}
		key := strings.ToUpper(p) // FAT names are case-insensitive
		if prev, dup := seen[key]; dup {
			return nil, nil, nil, nil, nil, fmt.Errorf("image file path %q: clashes with %q (FAT names are case-insensitive)", p, prev)
		}
		seen[key] = p
		data := f.Data
		if data == nil {
			if f.Src == "" {
				return nil, nil, nil, nil, nil, fmt.Errorf("image file %s: neither Src nor Data given", p)
			}
			data, err = os.ReadFile(f.Src)
			if err != nil {
				return nil, nil, nil, nil, nil, fmt.Errorf("image file %s: %w", p, err)
			}
		}
		files = append(files, fileData{path: p, data: data})
	}
	// A file may not also be a directory of another file.
	for _, f := range files {
		for d := path.Dir(f.path); d != "/"; d = path.Dir(d) {
			if prev, clash := seen[strings.ToUpper(d)]; clash {
				return nil, nil, nil, nil, nil, fmt.Errorf("image file path %q: %q is a file, so it cannot be a directory too", f.path, prev)
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return stage1, stage2, khdr, kpayload, files, nil
}

// partitionSectors returns the size of partition 1 for an image of size
// bytes: from PART1_LBA to the end, less the few sectors that sidestep
// go-diskfs's FAT sizing bug (see fat32Layout).
func partitionSectors(size int64) (uint32, error) {
	total := size / layout.SectorSize
	if total <= layout.Part1LBA {
		return 0, fmt.Errorf("image size %d MiB leaves no room for partition 1 at LBA %d; use at least %d MiB", size>>20, layout.Part1LBA, minSizeMiB)
	}
	sectors := uint32(total - layout.Part1LBA)
	for range 64 {
		clusters, ok := fat32Layout(sectors)
		if clusters < fat32MinClusters {
			return 0, fmt.Errorf("image size %d MiB gives partition 1 only %d FAT32 clusters (minimum %d); use at least %d MiB", size>>20, clusters, fat32MinClusters, minSizeMiB)
		}
		if ok {
			return sectors, nil
		}
		sectors--
	}
	return 0, fmt.Errorf("image size %d: found no FAT32 layout go-diskfs gets right; pick another size", size)
}

// minSizeMiB is the smallest image with a valid FAT32 partition 1 (16 MiB
// before the partition, ~33 MiB for 65525 clusters of 512 bytes plus FATs).
const minSizeMiB = 50

// chs returns the CHS triple (head, sector|cyl-high, cyl-low) for lba in the
// conventional 255-head, 63-sector geometry, or the "use LBA" maximum
// 1023/254/63 past its reach.
func chs(lba uint32) (head, sector, cyl byte) {
	const heads, spt = 255, 63
	c := lba / (heads * spt)
	if c > 1023 {
		return 254, 0xFF, 0xFF
	}
	h := (lba / spt) % heads
	s := lba%spt + 1
	return byte(h), byte(s) | byte((c>>2)&0xC0), byte(c)
}

func writeDisk(f *os.File, size int64, partSectors uint32, label string, stage1, stage2, khdr, kpayload []byte, files []fileData, ts time.Time) error {
	d, err := diskfs.OpenBackend(file.New(f, false), diskfs.WithOpenMode(diskfs.ReadWrite), diskfs.WithSectorSize(diskfs.SectorSize512))
	if err != nil {
		return fmt.Errorf("open disk: %w", err)
	}
	sh, ss, sc := chs(layout.Part1LBA)
	eh, es, ec := chs(layout.Part1LBA + partSectors - 1)
	table := &mbr.Table{
		LogicalSectorSize:  layout.SectorSize,
		PhysicalSectorSize: layout.SectorSize,
		Partitions: []*mbr.Partition{{
			Index:     1,
			Bootable:  true,
			Type:      PartitionType,
			Start:     layout.Part1LBA,
			Size:      partSectors,
			StartHead: sh, StartSector: ss, StartCylinder: sc,
			EndHead: eh, EndSector: es, EndCylinder: ec,
		}},
	}
	if err := d.Partition(table); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}

	// go-diskfs writes only bytes 446..511 of the MBR; the boot code and the
	// disk signature are ours. Checked again after everything is written.
	mbrHead := make([]byte, mbrPartTableOff)
	copy(mbrHead, stage1)
	binary.LittleEndian.PutUint32(mbrHead[mbrDiskSigOff:], layout.DiskSignature)
	if _, err := f.WriteAt(mbrHead, 0); err != nil {
		return fmt.Errorf("write stage 1: %w", err)
	}
	if _, err := f.WriteAt(stage2, layout.Stage2LBA*layout.SectorSize); err != nil {
		return fmt.Errorf("write stage 2: %w", err)
	}
	kernel := append(append([]byte{}, khdr...), kpayload...)
	if _, err := f.WriteAt(kernel, layout.KernelHdrLBA*layout.SectorSize); err != nil {
		return fmt.Errorf("write kernel: %w", err)
	}

	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: label, Reproducible: true})
	if err != nil {
		return fmt.Errorf("format partition 1 FAT32: %w", err)
	}
	made := map[string]bool{"/": true}
	for _, fd := range files {
		if dir := path.Dir(fd.path); !made[dir] {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("partition 1: mkdir %s: %w", dir, err)
			}
			for ; dir != "/"; dir = path.Dir(dir) {
				made[dir] = true
			}
		}
		w, err := fs.OpenFile(fd.path, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("partition 1: create %s: %w", fd.path, err)
		}
		n, err := w.Write(fd.data)
		if err == nil && n != len(fd.data) {
			err = fmt.Errorf("short write (%d of %d bytes)", n, len(fd.data))
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("partition 1: write %s: %w (is the image big enough? it is %d MiB)", fd.path, err, size>>20)
		}
	}
	if err := fs.Close(); err != nil {
		return fmt.Errorf("partition 1: close filesystem: %w", err)
	}

	if ts.IsZero() {
		ts = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if err := finishFAT32(f, layout.Part1LBA*layout.SectorSize, layout.Part1LBA, VolumeSerial, ts); err != nil {
		return fmt.Errorf("partition 1: %w", err)
	}

	// The MBR must hold stage 1, our signature, one partition and 55AA.
	got := make([]byte, layout.SectorSize)
	if _, err := f.ReadAt(got, 0); err != nil {
		return fmt.Errorf("read back MBR: %w", err)
	}
	if !bytes.Equal(got[:mbrPartTableOff], mbrHead) {
		return fmt.Errorf("MBR boot code or disk signature was overwritten while building the image")
	}
	if got[mbrPartTableOff+4] != byte(PartitionType) || binary.LittleEndian.Uint32(got[mbrPartTableOff+8:]) != layout.Part1LBA || got[mbrBootSigOff] != 0x55 || got[mbrBootSigOff+1] != 0xAA {
		return fmt.Errorf("MBR partition table or 0x55AA signature missing after building the image")
	}
	return nil
}
