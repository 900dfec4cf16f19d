package repro

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"

	"github.com/fluid-os/fluid/internal/layout"
)

// ImageManifestPath is where a Fluid OS disk image carries its own build
// manifest: /manifest.json in FAT32 partition 1 (internal/build.Compose).
// A release's baseline and PGO images each hold their own; the release's
// manifest.json asset is the PGO image's.
const ImageManifestPath = "/manifest.json"

// ErrNotImage is wrapped when a file is not a Fluid OS disk image (e.g. a
// still-compressed .zst, or another file altogether).
var ErrNotImage = errors.New("not a Fluid OS disk image")

// ImageFiles returns every regular file in partition 1 of the Fluid OS disk
// image at p, by absolute path ("/KERNEL.ELF", "/modules/fib.mod", ...).
// The image is opened read-only.
func ImageFiles(p string) (map[string][]byte, error) {
	head := make([]byte, layout.SectorSize)
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if _, err := f.ReadAt(head, 0); err != nil || st.Size() <= layout.Part1LBA*layout.SectorSize ||
		head[510] != 0x55 || head[511] != 0xAA || binary.LittleEndian.Uint32(head[440:]) != layout.DiskSignature {
		return nil, fmt.Errorf("%s: %w (no MBR with the Fluid OS disk signature 0x%08x, or smaller than %d MiB; a .img.zst must be decompressed first)",
			p, ErrNotImage, layout.DiskSignature, layout.Part1LBA*layout.SectorSize>>20)
	}
	d, err := diskfs.OpenBackend(file.New(f, true), diskfs.WithOpenMode(diskfs.ReadOnly), diskfs.WithSectorSize(diskfs.SectorSize512))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", p, ErrNotImage, err)
	}
	fsys, err := d.GetFilesystem(1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: partition 1 holds no readable FAT32 file system: %v", p, ErrNotImage, err)
	}
	out := map[string][]byte{}
	// io/fs paths: "." is the root, no leading slash.
	err = fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out["/"+p] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: read partition 1: %w", p, err)
	}
	return out, nil
}

// ImageManifest returns the bytes of the manifest the image at p carries
// (ImageManifestPath).
func ImageManifest(p string) ([]byte, error) {
	files, err := ImageFiles(p)
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		if equalFold(name, ImageManifestPath) {
			return data, nil
		}
	}
	return nil, fmt.Errorf("%s: %w: partition 1 has no %s (an image from before manifests were embedded?)", p, ErrNotImage, ImageManifestPath)
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

// diskRegion is one part of the disk layout (boot/bootinfo.h).
type diskRegion struct {
	name       string
	start, end int64 // byte offsets; end = -1: to the end of the image
}

func diskRegions() []diskRegion {
	s := int64(layout.SectorSize)
	return []diskRegion{
		{"stage 1 (MBR boot code)", 0, 440},
		{"MBR disk signature", 440, 446},
		{"MBR partition table", 446, 510},
		{"MBR boot signature", 510, 512},
		{"stage 2", layout.Stage2LBA * s, (layout.Stage2LBA + layout.Stage2MaxSectors) * s},
		{"kernel header sector (LBA 64)", layout.KernelHdrLBA * s, (layout.KernelHdrLBA + 1) * s},
		{"kernel payload", (layout.KernelHdrLBA + 1) * s, layout.Part1LBA * s},
		{"FAT32 partition 1", layout.Part1LBA * s, -1},
	}
}

// DiffDiskImages lists, for two Fluid OS disk images, every region of the
// disk layout whose bytes differ and, for partition 1, every file that
// differs or exists in only one of them ("the FAT32 partition 1: /KERNEL.ELF
// differs"). It returns nil when the images are byte-identical. a is "the
// release", b "the rebuild" in the wording.
func DiffDiskImages(a, b string) ([]string, error) {
	da, err := os.ReadFile(a)
	if err != nil {
		return nil, err
	}
	db, err := os.ReadFile(b)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(da, db) {
		return nil, nil
	}
	var out []string
	if len(da) != len(db) {
		out = append(out, fmt.Sprintf("size: %d bytes vs %d in the rebuild", len(da), len(db)))
	}
	for _, r := range diskRegions() {
		ea, eb := r.end, r.end
		if r.end < 0 {
			ea, eb = int64(len(da)), int64(len(db))
		}
		ra, rb := clip(da, r.start, ea), clip(db, r.start, eb)
		if bytes.Equal(ra, rb) {
			continue
		}
		i := firstDiff(ra, rb)
		line := fmt.Sprintf("%s differs (first at image offset %d, 0x%x)", r.name, r.start+int64(i), r.start+int64(i))
		if r.end < 0 {
			line += partitionFiles(a, b)
		}
		out = append(out, line)
	}
	for i := layout.Stage2LBA + layout.Stage2MaxSectors; i < layout.KernelHdrLBA; i++ {
		s := int64(i) * layout.SectorSize
		if !bytes.Equal(clip(da, s, s+layout.SectorSize), clip(db, s, s+layout.SectorSize)) {
			out = append(out, fmt.Sprintf("unused sector %d differs", i))
		}
	}
	return out, nil
}

// partitionFiles names the files of partition 1 that differ between the
// images at a and b, as a suffix for DiffDiskImages's line.
func partitionFiles(a, b string) string {
	fa, errA := ImageFiles(a)
	fb, errB := ImageFiles(b)
	if errA != nil || errB != nil {
		return fmt.Sprintf(": the file system cannot be read (%v)", errors.Join(errA, errB))
	}
	names := map[string]bool{}
	for n := range fa {
		names[n] = true
	}
	for n := range fb {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var diff []string
	for _, n := range sorted {
		x, inA := fa[n]
		y, inB := fb[n]
		switch {
		case !inB:
			diff = append(diff, n+" (only in the release)")
		case !inA:
			diff = append(diff, n+" (only in the rebuild)")
		case !bytes.Equal(x, y):
			if where, _, ok := firstDifferingSection(x, y); ok {
				n += " (" + where + ")"
			}
			diff = append(diff, n)
		}
	}
	if len(diff) == 0 {
		return ": every file is the same; the file system's own structures differ (directory entries, FAT, timestamps)"
	}
	s := ": files "
	for i, d := range diff {
		if i > 0 {
			s += ", "
		}
		s += d
	}
	return s
}

func clip(b []byte, start, end int64) []byte {
	if start > int64(len(b)) {
		return nil
	}
	if end > int64(len(b)) {
		end = int64(len(b))
	}
	return b[start:end]
}
