package repro

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
)

// writeImage builds a Fluid OS disk image (internal/image, as the build
// does) holding files, and returns its path.
func writeImage(t *testing.T, files []image.File) string {
	t.Helper()
	dir := t.TempDir()
	stage1, stage2, kernel := filepath.Join(dir, "stage1.bin"), filepath.Join(dir, "stage2.bin"), filepath.Join(dir, "kernel.elf")
	s2 := make([]byte, 512)
	binary.LittleEndian.PutUint32(s2[layout.Stage2MagicOffset:], layout.Stage2Magic)
	for p, data := range map[string][]byte{stage1: make([]byte, image.Stage1Size), stage2: s2, kernel: tinyELF([]byte("kernel"))} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "fluid.img")
	err := image.Build(image.Spec{Out: out, Size: 50 << 20, Stage1: stage1, Stage2: stage2, KernelELF: kernel, Files: files,
		SourceDateEpoch: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fatGeometry locates the structures of partition 1 in an image's bytes.
type fatGeometry struct {
	fats        []int64 // offsets of each FAT copy
	dataStart   int64
	clusterSize int64
	root        uint32
}

func geometry(t *testing.T, img []byte) fatGeometry {
	t.Helper()
	p := int64(layout.Part1LBA * layout.SectorSize)
	bs := img[p:]
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	spf := int64(binary.LittleEndian.Uint32(bs[36:]))
	g := fatGeometry{clusterSize: int64(bs[13]) * bps, root: binary.LittleEndian.Uint32(bs[44:])}
	for i := int64(0); i < int64(bs[16]); i++ {
		g.fats = append(g.fats, p+(reserved+i*spf)*bps)
	}
	g.dataStart = p + (reserved+int64(len(g.fats))*spf)*bps
	return g
}

func (g fatGeometry) setFAT(img []byte, cluster, next uint32) {
	for _, f := range g.fats {
		binary.LittleEndian.PutUint32(img[f+int64(cluster)*4:], next)
	}
}

func (g fatGeometry) getFAT(img []byte, cluster uint32) uint32 {
	return binary.LittleEndian.Uint32(img[g.fats[0]+int64(cluster)*4:]) & fatMask
}

// entry returns the offset of the root directory entry with the 8.3 name
// short ("MANIFESTJSO") and its first cluster.
func (g fatGeometry) entry(t *testing.T, img []byte, short string) (int64, uint32) {
	t.Helper()
	off := g.dataStart + int64(g.root-2)*g.clusterSize
	i := bytes.Index(img[off:off+g.clusterSize], []byte(short))
	if i < 0 || i%32 != 0 {
		t.Fatalf("no root directory entry %q", short)
	}
	e := off + int64(i)
	return e, uint32(binary.LittleEndian.Uint16(img[e+20:]))<<16 | uint32(binary.LittleEndian.Uint16(img[e+26:]))
}

// The files of partition 1 come back with exactly the bytes written, at
// sizes around the 512-byte cluster: go-diskfs's reader returned files
// rounded up to whole clusters (928 bytes read as 1024), so a report could
// call two equal files different.
func TestImageFilesExactContents(t *testing.T) {
	want := map[string][]byte{}
	var files []image.File
	for i, n := range []int{0, 1, 511, 512, 513, 928, 1756, 5000, 70000} {
		p := fmt.Sprintf("/modules/m%d.mod", i)
		if i%3 == 0 {
			p = fmt.Sprintf("/A%d.BIN", i)
		}
		data := bytes.Repeat([]byte{byte('a' + i)}, n)
		want[p] = data
		files = append(files, image.File{Path: p, Data: data})
	}
	want["/manifest.json"] = []byte("{}\n")
	files = append(files, image.File{Path: "/manifest.json", Data: want["/manifest.json"]})
	got, err := ImageFiles(writeImage(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d files, want %d", len(got), len(want))
	}
	for p, data := range want {
		if g, ok := got[p]; !ok || !bytes.Equal(g, data) {
			t.Errorf("%s: %d bytes, want %d (present %v)", p, len(g), len(data), ok)
		}
	}
}

// A release image comes from a download, before any signature check: a
// malformed file system in it must be an error, not a hang, a panic or all
// of memory.
func TestImageFilesMalformedFAT(t *testing.T) {
	good := writeImage(t, []image.File{
		{Path: "/KERNEL.ELF", Data: bytes.Repeat([]byte{1}, 3000)},
		{Path: "/manifest.json", Data: bytes.Repeat([]byte(" "), 1500)},
		{Path: "/modules/fib.mod", Data: bytes.Repeat([]byte{2}, 700)},
	})
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	g := geometry(t, orig)
	for _, tt := range []struct {
		name    string
		breakIt func(t *testing.T, img []byte)
		want    string
	}{
		{"root directory chain loops on itself", func(t *testing.T, img []byte) { g.setFAT(img, g.root, g.root) }, "used twice"},
		{"file chain loops", func(t *testing.T, img []byte) {
			_, c := g.entry(t, img, "MANIFESTJSO")
			g.setFAT(img, g.getFAT(img, c), c)
		}, "used twice"},
		{"file larger than its chain", func(t *testing.T, img []byte) {
			e, _ := g.entry(t, img, "MANIFESTJSO")
			binary.LittleEndian.PutUint32(img[e+28:], 100000)
		}, "its cluster chain holds"},
		{"file of 4 GiB", func(t *testing.T, img []byte) {
			e, _ := g.entry(t, img, "MANIFESTJSO")
			binary.LittleEndian.PutUint32(img[e+28:], 0xFFFFFFFF)
		}, "its cluster chain holds"},
		{"cross-linked files", func(t *testing.T, img []byte) {
			e, _ := g.entry(t, img, "MANIFESTJSO")
			_, k := g.entry(t, img, "KERNEL  ELF")
			binary.LittleEndian.PutUint16(img[e+26:], uint16(k))
			binary.LittleEndian.PutUint16(img[e+20:], uint16(k>>16))
		}, "used twice"},
		{"chain leaves the data area", func(t *testing.T, img []byte) {
			_, c := g.entry(t, img, "MANIFESTJSO")
			g.setFAT(img, c, 0x0FFFFFF0)
		}, "outside the data area"},
		{"chain runs into a free cluster", func(t *testing.T, img []byte) {
			_, c := g.entry(t, img, "MANIFESTJSO")
			g.setFAT(img, c, 0)
		}, "free or bad cluster"},
		{"subdirectory is the root", func(t *testing.T, img []byte) {
			e, _ := g.entry(t, img, "MODULES    ")
			binary.LittleEndian.PutUint16(img[e+26:], uint16(g.root))
			binary.LittleEndian.PutUint16(img[e+20:], uint16(g.root>>16))
		}, "used twice"},
		{"FAT of 4 G sectors", func(t *testing.T, img []byte) {
			binary.LittleEndian.PutUint32(img[layout.Part1LBA*layout.SectorSize+36:], 0xFFFFFFFF)
		}, "leave no data area"},
		{"partition past the end of the image", func(t *testing.T, img []byte) {
			binary.LittleEndian.PutUint32(img[446+12:], 0xFFFFFF00)
		}, "does not fit"},
		{"a huge root directory", func(t *testing.T, img []byte) {
			// The root's chain grows by 500 free clusters, each full of
			// empty files: 8000 entries.
			n := 0
			fill := func(c uint32) { // every free slot of cluster c
				off := g.dataStart + int64(c-2)*g.clusterSize
				for e := off; e < off+g.clusterSize; e += 32 {
					if img[e] == 0 {
						copy(img[e:], fmt.Sprintf("F%07dBIN", n))
						img[e+11] = 0x20
						n++
					}
				}
			}
			last := g.root
			for g.getFAT(img, last) < fatEOC {
				last = g.getFAT(img, last)
			}
			fill(last)
			for c := uint32(1000); c < 1500; c++ {
				g.setFAT(img, last, c)
				g.setFAT(img, c, fatMask)
				last = c
				fill(c)
			}
		}, "more than 4096 files"},
		{"a file name with an escape sequence", func(t *testing.T, img []byte) {
			e, _ := g.entry(t, img, "KERNEL  ELF")
			img[e+1] = 0x1b
		}, "U+001B"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := append([]byte(nil), orig...)
			tt.breakIt(t, img)
			p := filepath.Join(t.TempDir(), "bad.img")
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
			for name, f := range map[string]func(string) error{
				"ImageFiles":    func(p string) error { _, err := ImageFiles(p); return err },
				"ImageManifest": func(p string) error { _, err := ImageManifest(p); return err },
			} {
				done := make(chan error, 1)
				go func() {
					defer func() {
						if r := recover(); r != nil {
							done <- fmt.Errorf("panic: %v", r)
						}
					}()
					done <- f(p)
				}()
				select {
				case err := <-done:
					if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), tt.want) {
						t.Errorf("%s: %v, want ErrNotImage with %q", name, err, tt.want)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%s: still running after 20s", name)
				}
			}
			// DiffDiskImages reports it, and does not fail or hang.
			d, err := DiffDiskImages(p, good)
			if err != nil || !strings.Contains(strings.Join(d, "\n"), "cannot be read") && !strings.Contains(strings.Join(d, "\n"), "MBR partition table differs") {
				t.Errorf("DiffDiskImages: %v %q", err, d)
			}
		})
	}
}

// MaxImageSize is the largest image the build makes.
func TestMaxImageSize(t *testing.T) {
	if MaxImageSize != image.MaxSize {
		t.Errorf("MaxImageSize = %d, internal/image.MaxSize = %d", MaxImageSize, image.MaxSize)
	}
}
