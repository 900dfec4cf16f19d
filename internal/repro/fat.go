package repro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fluid-os/fluid/internal/layout"
)

// A release image is input the rebuild does not trust: it comes from a
// download, before any signature check. go-diskfs, which writes the image,
// follows cluster chains without a bound (a chain that loops runs until
// memory is gone) and indexes past a chain shorter than the file size it
// claims (a panic). This is a small read-only FAT32 reader for partition 1
// of a Fluid OS disk image in which every number read from the image is
// checked before it is used: the partition must lie inside the image, the
// FAT inside the partition, every cluster inside the data area, and every
// cluster may belong to one chain only, so a loop or cross-linked files are
// errors and nothing read can be larger than the partition.

// errBadFAT is wrapped by every error about the structures of partition 1.
var errBadFAT = errors.New("malformed FAT32 file system")

const (
	fatEOC       = 0x0FFFFFF8 // this and above: end of chain
	fatBad       = 0x0FFFFFF7
	fatMask      = 0x0FFFFFFF
	fatMaxDepth  = 32   // directory nesting
	fatEntrySize = 32   // bytes per directory entry
	fatMaxName   = 255  // characters in a long name
	fatMaxFiles  = 4096 // files and directories (a release image has about ten)
	mbrPartEntry = 446  // first partition entry in the MBR
	fatMinSector = 512  // bytes per sector this reader accepts
	fatMaxSector = 4096 // (FAT allows 512..4096)
)

// fatVolume is partition 1 of a disk image, opened by openFAT.
type fatVolume struct {
	r           io.ReaderAt
	clusterSize int64
	dataStart   int64    // image offset of cluster 2
	fat         []uint32 // entries 0 .. nClusters+1
	nClusters   uint32
	root        uint32
	used        []bool // clusters already in a chain
	entries     int    // files and directories met so far
}

// fatFile is one regular file of the volume.
type fatFile struct {
	Path  string // "/KERNEL.ELF", "/modules/fib.mod"
	Size  int64
	chain []uint32
}

// openFAT reads the MBR's first partition entry and the FAT32 boot sector
// and FAT of that partition of the image r (imageSize bytes).
func openFAT(r io.ReaderAt, imageSize int64) (*fatVolume, error) {
	mbr := make([]byte, layout.SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("%w: reading the MBR: %v", errBadFAT, err)
	}
	pe := mbr[mbrPartEntry : mbrPartEntry+16]
	pStart, pSectors := int64(binary.LittleEndian.Uint32(pe[8:])), int64(binary.LittleEndian.Uint32(pe[12:]))
	if pStart != layout.Part1LBA {
		return nil, fmt.Errorf("%w: partition 1 starts at LBA %d, not %d", errBadFAT, pStart, layout.Part1LBA)
	}
	if pSectors == 0 || (pStart+pSectors)*layout.SectorSize > imageSize {
		return nil, fmt.Errorf("%w: partition 1 (LBA %d, %d sectors) does not fit in the %d-byte image", errBadFAT, pStart, pSectors, imageSize)
	}
	pOff, pSize := pStart*layout.SectorSize, pSectors*layout.SectorSize

	bs := make([]byte, fatMinSector)
	if _, err := r.ReadAt(bs, pOff); err != nil {
		return nil, fmt.Errorf("%w: reading the boot sector: %v", errBadFAT, err)
	}
	u16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	u32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	bps, spc := u16(11), int64(bs[13])
	reserved, nFATs := u16(14), int64(bs[16])
	total, spf, root := u32(32), u32(36), u32(44)
	switch {
	case bs[510] != 0x55 || bs[511] != 0xAA:
		return nil, fmt.Errorf("%w: no boot signature", errBadFAT)
	case bps < fatMinSector || bps > fatMaxSector || bps&(bps-1) != 0:
		return nil, fmt.Errorf("%w: %d bytes per sector", errBadFAT, bps)
	case spc == 0 || spc&(spc-1) != 0 || spc*bps > 64<<10:
		return nil, fmt.Errorf("%w: %d sectors per cluster", errBadFAT, spc)
	case u16(17) != 0 || u16(19) != 0 || u16(22) != 0:
		return nil, fmt.Errorf("%w: not FAT32 (FAT12/16 fields are set)", errBadFAT)
	case reserved == 0 || nFATs == 0 || nFATs > 2 || spf == 0:
		return nil, fmt.Errorf("%w: %d reserved sectors, %d FATs of %d sectors", errBadFAT, reserved, nFATs, spf)
	case total == 0 || total*bps > pSize:
		return nil, fmt.Errorf("%w: %d sectors of %d bytes do not fit in the %d-byte partition", errBadFAT, total, bps, pSize)
	case reserved+nFATs*spf >= total:
		return nil, fmt.Errorf("%w: the FATs (%d sectors from %d) leave no data area in %d sectors", errBadFAT, nFATs*spf, reserved, total)
	}
	nClusters := (total - reserved - nFATs*spf) / spc
	if nClusters == 0 || nClusters+2 > spf*bps/4 || nClusters >= fatBad-2 {
		return nil, fmt.Errorf("%w: %d clusters for a FAT of %d sectors", errBadFAT, nClusters, spf)
	}
	if root < 2 || root >= nClusters+2 {
		return nil, fmt.Errorf("%w: root directory cluster %d", errBadFAT, root)
	}
	// Bounded by the partition, which is bounded by the image.
	raw := make([]byte, (nClusters+2)*4)
	if _, err := r.ReadAt(raw, pOff+reserved*bps); err != nil {
		return nil, fmt.Errorf("%w: reading the FAT: %v", errBadFAT, err)
	}
	v := &fatVolume{
		r:           r,
		clusterSize: spc * bps,
		dataStart:   pOff + (reserved+nFATs*spf)*bps,
		fat:         make([]uint32, nClusters+2),
		nClusters:   uint32(nClusters),
		root:        uint32(root),
		used:        make([]bool, nClusters+2),
	}
	for i := range v.fat {
		v.fat[i] = binary.LittleEndian.Uint32(raw[i*4:]) & fatMask
	}
	return v, nil
}

// chain returns the clusters of the chain starting at first, marking them
// used: a cluster met twice (a loop, or two files sharing clusters) is an
// error, so all chains together hold at most nClusters clusters.
func (v *fatVolume) chain(first uint32, what string) ([]uint32, error) {
	var out []uint32
	for c := first; ; {
		if c < 2 || c >= v.nClusters+2 {
			return nil, fmt.Errorf("%w: %s: cluster %d is outside the data area (2..%d)", errBadFAT, what, c, v.nClusters+1)
		}
		if v.used[c] {
			return nil, fmt.Errorf("%w: %s: cluster %d is used twice (a loop in the cluster chain, or cross-linked files)", errBadFAT, what, c)
		}
		v.used[c] = true
		out = append(out, c)
		next := v.fat[c]
		if next >= fatEOC {
			return out, nil
		}
		if next == 0 || next == fatBad {
			return nil, fmt.Errorf("%w: %s: the chain runs into a free or bad cluster after cluster %d", errBadFAT, what, c)
		}
		c = next
	}
}

// readChain reads n bytes from the clusters of chain, in order.
func (v *fatVolume) readChain(chain []uint32, n int64) ([]byte, error) {
	if n > int64(len(chain))*v.clusterSize {
		return nil, fmt.Errorf("%w: %d bytes do not fit in %d clusters", errBadFAT, n, len(chain))
	}
	buf := make([]byte, n)
	for i, off := 0, int64(0); off < n; i++ {
		end := min(off+v.clusterSize, n)
		if _, err := v.r.ReadAt(buf[off:end], v.dataStart+int64(chain[i]-2)*v.clusterSize); err != nil {
			return nil, fmt.Errorf("%w: reading cluster %d: %v", errBadFAT, chain[i], err)
		}
		off = end
	}
	return buf, nil
}

// files lists every regular file of the volume, depth first in directory
// order. It can be called once per volume (chains are marked used).
func (v *fatVolume) files() ([]fatFile, error) {
	var out []fatFile
	err := v.walk(v.root, "", 0, &out)
	return out, err
}

func (v *fatVolume) walk(cluster uint32, dir string, depth int, out *[]fatFile) error {
	what := "directory " + dir + "/"
	if depth > fatMaxDepth {
		return fmt.Errorf("%w: %s: nested more than %d deep", errBadFAT, what, fatMaxDepth)
	}
	chain, err := v.chain(cluster, what)
	if err != nil {
		return err
	}
	data, err := v.readChain(chain, int64(len(chain))*v.clusterSize)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var lfn []uint16
	var lfnSum byte
	lfnNext := 0 // the sequence number the next LFN entry must have; 0: none pending
	for i := 0; i+fatEntrySize <= len(data); i += fatEntrySize {
		e := data[i : i+fatEntrySize]
		if e[0] == 0 {
			break
		}
		attr := e[11]
		if e[0] == 0xE5 {
			lfnNext = 0
			continue
		}
		if attr&0x3F == 0x0F { // a long-name part, last part first
			seq := int(e[0] & 0x1F)
			if e[0]&0x40 != 0 {
				lfn, lfnSum, lfnNext = make([]uint16, 13*seq), e[13], seq
			}
			if seq == 0 || seq != lfnNext || e[13] != lfnSum || len(lfn) < 13*seq {
				lfnNext = 0
				continue
			}
			p := lfn[13*(seq-1):]
			for k, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				p[k] = binary.LittleEndian.Uint16(e[o:])
			}
			lfnNext = seq - 1
			if lfnNext == 0 {
				lfnNext = -1 // complete: the short entry follows
			}
			continue
		}
		long := ""
		if lfnNext == -1 && shortNameSum(e[:11]) == lfnSum {
			n := len(lfn)
			for k, c := range lfn {
				if c == 0 {
					n = k
					break
				}
			}
			long = string(utf16.Decode(lfn[:n]))
		}
		lfnNext = 0
		if attr&0x08 != 0 { // volume label
			continue
		}
		name := long
		if name == "" {
			name = shortName(e)
		}
		if name == "." || name == ".." {
			continue
		}
		if v.entries++; v.entries > fatMaxFiles {
			return fmt.Errorf("%w: more than %d files and directories", errBadFAT, fatMaxFiles)
		}
		if err := checkFATName(name); err != nil {
			return fmt.Errorf("%w: %s: %v", errBadFAT, what, err)
		}
		key := strings.ToUpper(name)
		if seen[key] {
			return fmt.Errorf("%w: %s: two entries named %q", errBadFAT, what, name)
		}
		seen[key] = true
		p := dir + "/" + name
		first := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		if attr&0x10 != 0 {
			if err := v.walk(first, p, depth+1, out); err != nil {
				return err
			}
			continue
		}
		size := int64(binary.LittleEndian.Uint32(e[28:]))
		f := fatFile{Path: p, Size: size}
		if size > 0 || first != 0 {
			if f.chain, err = v.chain(first, "file "+p); err != nil {
				return err
			}
		}
		if size > int64(len(f.chain))*v.clusterSize {
			return fmt.Errorf("%w: file %s: %d bytes, but its cluster chain holds %d", errBadFAT, p, size, int64(len(f.chain))*v.clusterSize)
		}
		*out = append(*out, f)
	}
	return nil
}

// read returns the contents of f.
func (v *fatVolume) read(f fatFile) ([]byte, error) {
	return v.readChain(f.chain, f.Size)
}

// shortName is the 8.3 name of a directory entry, lower-cased where the
// entry's case flags say so (as Windows and Linux show it).
func shortName(e []byte) string {
	base := []byte(strings.TrimRight(string(e[0:8]), " "))
	ext := []byte(strings.TrimRight(string(e[8:11]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xE5
	}
	if e[12]&0x08 != 0 {
		base = []byte(strings.ToLower(string(base)))
	}
	if e[12]&0x10 != 0 {
		ext = []byte(strings.ToLower(string(ext)))
	}
	if len(ext) == 0 {
		return string(base)
	}
	return string(base) + "." + string(ext)
}

func shortNameSum(n []byte) byte {
	var s byte
	for _, c := range n {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// checkFATName refuses names no FAT driver writes: empty, too long, or
// with a path separator, a character that does not print or invalid
// UTF-16, which
// would otherwise reach the terminal in a report.
func checkFATName(name string) error {
	if name == "" || len([]rune(name)) > fatMaxName {
		return fmt.Errorf("a file name of %d characters", len([]rune(name)))
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || r == '/' || r == '\\' || r == utf8.RuneError {
			return fmt.Errorf("a file name with the character %U: %q", r, name)
		}
	}
	return nil
}
