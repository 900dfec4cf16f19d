package boottest

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluid-os/fluid/internal/layout"
)

// fatImage is a disk image in memory with just enough FAT32 to corrupt the
// /modules directory the way a damaged disk would: the BPB geometry, the
// cluster chains of the FATs and the raw directory bytes. It trusts the
// image (the tests built it); the kernel is what must not.
type fatImage struct {
	b       []byte
	part    int64 // partition 1's byte offset
	bps     int64 // bytes per sector
	spc     int64 // sectors per cluster
	fat     int64 // first FAT's byte offset
	fatSize int64 // bytes per FAT
	nfats   int64
	data    int64 // cluster 2's byte offset
	root    uint32
}

func openFATImage(t *testing.T, path string) *fatImage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	f := &fatImage{b: b, part: layout.Part1LBA * layout.SectorSize}
	p := b[f.part:]
	f.bps = int64(le.Uint16(p[11:]))
	f.spc = int64(p[13])
	rsvd := int64(le.Uint16(p[14:]))
	f.nfats = int64(p[16])
	f.fatSize = int64(le.Uint32(p[36:])) * f.bps
	f.root = le.Uint32(p[44:])
	f.fat = f.part + rsvd*f.bps
	f.data = f.fat + f.nfats*f.fatSize
	return f
}

func (f *fatImage) clusterBytes() int64 { return f.spc * f.bps }

func (f *fatImage) cluster(c uint32) []byte {
	off := f.data + int64(c-2)*f.clusterBytes()
	return f.b[off : off+f.clusterBytes()]
}

func (f *fatImage) next(c uint32) uint32 {
	return binary.LittleEndian.Uint32(f.b[f.fat+int64(c)*4:]) & 0x0FFFFFFF
}

// setNext points cluster c's entry at v in every FAT copy.
func (f *fatImage) setNext(c, v uint32) {
	for i := int64(0); i < f.nfats; i++ {
		binary.LittleEndian.PutUint32(f.b[f.fat+i*f.fatSize+int64(c)*4:], v)
	}
}

// chain is the cluster chain from first to its end-of-chain mark.
func (f *fatImage) chain(t *testing.T, first uint32) []uint32 {
	t.Helper()
	var cs []uint32
	for c := first; c >= 2 && c < 0x0FFFFFF8; c = f.next(c) {
		if len(cs) > 1<<16 {
			t.Fatalf("cluster chain from %d does not end", first)
		}
		cs = append(cs, c)
	}
	return cs
}

// dirCluster is the first cluster of the root directory's entry whose 8.3
// name is name11 ("MODULES    ").
func (f *fatImage) dirCluster(t *testing.T, name11 string) uint32 {
	t.Helper()
	for _, c := range f.chain(t, f.root) {
		d := f.cluster(c)
		for off := 0; off < len(d); off += 32 {
			if bytes.Equal(d[off:off+11], []byte(name11)) {
				e := d[off:]
				return uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
			}
		}
	}
	t.Fatalf("no %q entry in the root directory", name11)
	return 0
}

func (f *fatImage) write(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, f.b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// reverseDir rewrites the directory starting at cluster first with its
// entries in the opposite order: each entry keeps its long-name entries
// in front of it ("." and ".." stay first), so the listing a kernel sees
// is the same set of names in the reverse directory order.
func (f *fatImage) reverseDir(t *testing.T, first uint32) {
	t.Helper()
	chain := f.chain(t, first)
	var raw []byte
	for _, c := range chain {
		raw = append(raw, f.cluster(c)...)
	}
	var head, groups [][]byte
	var cur []byte
	for off := 0; off < len(raw) && raw[off] != 0x00; off += 32 {
		e := raw[off : off+32]
		switch {
		case e[0] == '.':
			head = append(head, e)
		case e[11]&0x3F == 0x0F:
			cur = append(cur, e...)
		default:
			groups = append(groups, append(cur, e...))
			cur = nil
		}
	}
	out := make([]byte, 0, len(raw))
	for _, h := range head {
		out = append(out, h...)
	}
	for i := len(groups) - 1; i >= 0; i-- {
		out = append(out, groups[i]...)
	}
	out = append(out, make([]byte, len(raw)-len(out))...)
	for i, c := range chain {
		copy(f.cluster(c), out[int64(i)*f.clusterBytes():])
	}
}
