package repro

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/fluid-os/fluid/internal/layout"
)

// ImageManifestPath is where a Fluid OS disk image carries its own build
// manifest: /manifest.json in FAT32 partition 1 (internal/build, compose).
// A release's baseline and PGO images each hold their own; the release's
// manifest.json asset is the PGO image's.
const ImageManifestPath = "/manifest.json"

// ErrNotImage is wrapped when a file is not a Fluid OS disk image (e.g. a
// still-compressed .zst, or another file altogether).
var ErrNotImage = errors.New("not a Fluid OS disk image")

// MaxImageSize is the largest disk image this package reads: the largest
// the build makes (internal/image.MaxSize). A release image is 64 MiB.
const MaxImageSize = 2 << 30

// MaxManifestSize bounds a manifest.json (a release's is about 20 KiB).
const MaxManifestSize = 16 << 20

// openImage opens the Fluid OS disk image at p: a regular file of at most
// MaxImageSize bytes, big enough for partition 1, with the Fluid OS MBR.
func openImage(p string) (*os.File, int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: %w: not a regular file (%s)", p, ErrNotImage, fi.Mode().Type())
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	head := make([]byte, layout.SectorSize)
	if !st.Mode().IsRegular() || st.Size() > MaxImageSize {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w: %d bytes, more than the %d MiB the build can make", p, ErrNotImage, st.Size(), MaxImageSize>>20)
	}
	if _, err := f.ReadAt(head, 0); err != nil || st.Size() <= layout.Part1LBA*layout.SectorSize || !ImageHead(head) {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w (no MBR with the Fluid OS disk signature 0x%08x, or smaller than %d MiB; a .img.zst must be decompressed first)",
			p, ErrNotImage, layout.DiskSignature, layout.Part1LBA*layout.SectorSize>>20)
	}
	return f, st.Size(), nil
}

// ImageHead reports whether the first sector of a file is the MBR of a
// Fluid OS disk image: the boot signature and the fixed disk signature.
func ImageHead(sector []byte) bool {
	return len(sector) >= layout.SectorSize && sector[510] == 0x55 && sector[511] == 0xAA &&
		binary.LittleEndian.Uint32(sector[440:]) == layout.DiskSignature
}

// imageVolume opens the image at p and lists the files of its partition 1.
func imageVolume(p string) (*os.File, *fatVolume, []fatFile, error) {
	f, size, err := openImage(p)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := openFAT(f, size)
	if err == nil {
		var files []fatFile
		if files, err = v.files(); err == nil {
			return f, v, files, nil
		}
	}
	f.Close()
	return nil, nil, nil, fmt.Errorf("%s: %w: partition 1 holds no readable FAT32 file system: %v", p, ErrNotImage, err)
}

// ImageFiles returns every regular file in partition 1 of the Fluid OS disk
// image at p, by absolute path ("/KERNEL.ELF", "/modules/fib.mod", ...).
// The image is opened read-only, and a malformed file system (a cluster
// chain that loops or leaves the partition, a file larger than its chain)
// is an error wrapping ErrNotImage: together the files are never larger
// than the partition.
func ImageFiles(p string) (map[string][]byte, error) {
	f, v, files, err := imageVolume(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string][]byte, len(files))
	for _, ff := range files {
		data, err := v.read(ff)
		if err != nil {
			return nil, fmt.Errorf("%s: read partition 1: %w", p, err)
		}
		out[ff.Path] = data
	}
	return out, nil
}

// ImageManifest returns the bytes of the manifest the image at p carries
// (ImageManifestPath), at most MaxManifestSize.
func ImageManifest(p string) ([]byte, error) {
	f, v, files, err := imageVolume(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, ff := range files {
		if !equalFold(ff.Path, ImageManifestPath) {
			continue
		}
		if ff.Size > MaxManifestSize {
			return nil, fmt.Errorf("%s: %w: its %s is %d bytes, more than %d MiB", p, ErrNotImage, ImageManifestPath, ff.Size, MaxManifestSize>>20)
		}
		data, err := v.read(ff)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", p, ErrNotImage, err)
		}
		return data, nil
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
// release", b "the rebuild" in the wording. The images are read a chunk at
// a time, never whole.
func DiffDiskImages(a, b string) ([]string, error) {
	fa, fb, na, nb, err := openBoth(a, b)
	if err != nil {
		return nil, err
	}
	defer fa.Close()
	defer fb.Close()
	if _, same, err := firstDiffAt(fa, fb, 0, na, nb); err != nil || same {
		return nil, err
	}
	var out []string
	if na != nb {
		out = append(out, fmt.Sprintf("size: %d bytes vs %d in the rebuild", na, nb))
	}
	for _, r := range diskRegions() {
		ea, eb := min(r.end, na), min(r.end, nb)
		if r.end < 0 {
			ea, eb = na, nb
		}
		off, same, err := firstDiffAt(fa, fb, r.start, ea, eb)
		if err != nil {
			return nil, err
		}
		if same {
			continue
		}
		line := fmt.Sprintf("%s differs (first at image offset %d, 0x%x)", r.name, off, off)
		if r.end < 0 {
			line += partitionFiles(a, b)
		}
		out = append(out, line)
	}
	for i := layout.Stage2LBA + layout.Stage2MaxSectors; i < layout.KernelHdrLBA; i++ {
		s := int64(i) * layout.SectorSize
		if _, same, err := firstDiffAt(fa, fb, s, min(s+layout.SectorSize, na), min(s+layout.SectorSize, nb)); err != nil {
			return nil, err
		} else if !same {
			out = append(out, fmt.Sprintf("unused sector %d differs", i))
		}
	}
	return out, nil
}

// openBoth opens two disk images with openBounded; on error neither stays
// open.
func openBoth(a, b string) (fa, fb *os.File, na, nb int64, err error) {
	if fa, na, err = openBounded(a); err != nil {
		return nil, nil, 0, 0, err
	}
	if fb, nb, err = openBounded(b); err != nil {
		fa.Close()
		return nil, nil, 0, 0, err
	}
	return fa, fb, na, nb, nil
}

// compareImages compares two disk images a chunk at a time: nil when
// identical, else the Difference (first differing byte and the disk region
// holding it) CompareFiles gives for disk images.
func compareImages(a, b string) (*Difference, error) {
	fa, fb, na, nb, err := openBoth(a, b)
	if err != nil {
		return nil, err
	}
	defer fa.Close()
	defer fb.Close()
	off, same, err := firstDiffAt(fa, fb, 0, na, nb)
	if err != nil || same {
		return nil, err
	}
	return &Difference{SizeA: na, SizeB: nb, Offset: off, Where: locateDisk(off)}, nil
}

// openBounded opens a regular file of at most MaxImageSize bytes.
func openBounded(p string) (*os.File, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() > MaxImageSize) {
		err = fmt.Errorf("%s: not a regular file of at most %d MiB", p, MaxImageSize>>20)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// firstDiffAt compares a[start:endA] with b[start:endB] (ends clipped to
// start): the offset of the first differing byte (the shorter end when one
// is a prefix of the other), or same.
func firstDiffAt(a, b io.ReaderAt, start, endA, endB int64) (off int64, same bool, err error) {
	endA, endB = max(endA, start), max(endB, start)
	n := min(endA, endB)
	const chunk = 1 << 20
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	for off = start; off < n; off += chunk {
		k := min(int64(chunk), n-off)
		if _, err := a.ReadAt(ba[:k], off); err != nil {
			return 0, false, err
		}
		if _, err := b.ReadAt(bb[:k], off); err != nil {
			return 0, false, err
		}
		if !bytes.Equal(ba[:k], bb[:k]) {
			return off + int64(firstDiff(ba[:k], bb[:k])), false, nil
		}
	}
	return n, endA == endB, nil
}

// partitionFiles names the files of partition 1 that differ between the
// images at a and b, as a suffix for DiffDiskImages's line.
func partitionFiles(a, b string) string {
	fa, va, la, errA := imageVolume(a)
	if errA == nil {
		defer fa.Close()
	}
	fb, vb, lb, errB := imageVolume(b)
	if errB == nil {
		defer fb.Close()
	}
	if errA != nil || errB != nil {
		return fmt.Sprintf(": the file system cannot be read (%v)", errors.Join(errA, errB))
	}
	ma, mb := map[string]fatFile{}, map[string]fatFile{}
	names := map[string]bool{}
	for _, f := range la {
		ma[f.Path], names[f.Path] = f, true
	}
	for _, f := range lb {
		mb[f.Path], names[f.Path] = f, true
	}
	sorted := slices.Sorted(maps.Keys(names))
	var diff []string
	for _, n := range sorted {
		x, inA := ma[n]
		y, inB := mb[n]
		switch {
		case !inB:
			diff = append(diff, n+" (only in the release)")
			continue
		case !inA:
			diff = append(diff, n+" (only in the rebuild)")
			continue
		}
		dx, errX := va.read(x)
		dy, errY := vb.read(y)
		switch {
		case errX != nil || errY != nil:
			diff = append(diff, n+" (unreadable)")
		case !bytes.Equal(dx, dy):
			if where, _, ok := firstDifferingSection(dx, dy); ok {
				n += " (" + where + ")"
			}
			diff = append(diff, n)
		}
	}
	if len(diff) == 0 {
		return ": every file is the same; the file system's own structures differ (directory entries, FAT, timestamps)"
	}
	return ": files " + strings.Join(firstN(diff, 20), ", ")
}
