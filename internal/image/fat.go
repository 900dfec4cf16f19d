package image

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/fluid-os/fluid/internal/layout"
)

// FAT32 facts used here (Microsoft FAT specification, "BPB" and "Directory
// Entry" sections). Offsets are into the boot sector / a 32-byte entry.
const (
	bpbBytesPerSector  = 11 // u16
	bpbSectorsPerClus  = 13 // u8
	bpbReservedSectors = 14 // u16
	bpbNumFATs         = 16 // u8
	bpbHiddenSectors   = 28 // u32: LBA of the partition on the disk
	bpbTotalSectors32  = 32 // u32
	bpbSectorsPerFAT32 = 36 // u32
	bpbRootCluster     = 44 // u32
	bpbFSInfoSector    = 48 // u16
	bpbBackupBootSect  = 50 // u16
	bpbVolumeID        = 67 // u32: volume serial number

	fat32MinClusters = 65525      // fewer clusters make it FAT16 by definition
	fatEntryMask     = 0x0FFFFFFF // FAT32 entries are 28 bits
	fatEOCMin        = 0x0FFFFFF8 // end-of-chain markers are >= this

	dirEntrySize    = 32
	dirAttrOff      = 11
	dirAttrLFN      = 0x0F
	dirAttrDir      = 0x10
	dirCreateTenths = 13
	dirCreateTime   = 14
	dirCreateDate   = 16
	dirAccessDate   = 18
	dirClusterHi    = 20
	dirWriteTime    = 22
	dirWriteDate    = 24
	dirClusterLo    = 26
	dirFree         = 0xE5 // first name byte of a deleted entry

	fsiLeadSig   = 0   // u32 0x41615252
	fsiStrucSig  = 484 // u32 0x61417272
	fsiFreeCount = 488 // u32: free clusters
	fsiNextFree  = 492 // u32: hint where to look for a free cluster
	fsiTrailSig  = 508 // u32 0xAA550000
)

// fat32Layout reproduces go-diskfs v1.9.4's FAT32 sizing (fat32.Create) for
// a partition of the given sectors and reports whether the FAT it lays out
// has an entry for every cluster. go-diskfs issue #418 (fixed by PR #427,
// not in any release this module can use): when the sectors-per-FAT division
// comes out exact, the FAT is two entries short and fsck.fat rejects the
// filesystem ("Filesystem has N clusters but only space for N-2 FAT
// entries"). Build shrinks the partition until this returns ok.
func fat32Layout(sectors uint32) (clusters uint32, ok bool) {
	const reserved = 32
	size := int64(sectors) * layout.SectorSize
	var clusterBytes int64
	switch {
	case size <= 260<<20:
		clusterBytes = 512
	case size <= 8<<30:
		clusterBytes = 4 << 10
	case size <= 16<<30:
		clusterBytes = 8 << 10
	case size <= 32<<30:
		clusterBytes = 16 << 10
	default:
		clusterBytes = 32 << 10
	}
	spc := uint32(clusterBytes / layout.SectorSize)
	denom := layout.SectorSize*spc + 8
	spf := uint32(uint16((4*(sectors-reserved) + denom - 1) / denom))
	if sectors <= reserved+2*spf {
		return 0, false
	}
	clusters = (sectors - reserved - 2*spf) / spc
	return clusters, spf*(layout.SectorSize/4) >= clusters+2
}

// fatDate and fatTime encode t (UTC) as FAT directory date and time fields,
// clamped to the range FAT can store (1980..2107); seconds have 2 s steps.
func fatDateTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	switch {
	case t.Year() < 1980:
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > 2107:
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}

// finishFAT32 makes the FAT32 filesystem go-diskfs wrote at byte offset
// partOff reproducible and correct for a partition at hiddenSectors: it sets
// the volume serial and the hidden-sectors field in the boot sector and its
// backup, sets every directory entry's timestamps to ts, and checks that the
// FAT has an entry for every cluster. go-diskfs takes its timestamps from
// the process-wide SOURCE_DATE_EPOCH or the clock and its serial from the
// clock; rewriting them here keeps the image a function of its inputs only.
func finishFAT32(rw readWriterAt, partOff int64, hiddenSectors, serial uint32, ts time.Time) error {
	le := binary.LittleEndian
	bs := make([]byte, layout.SectorSize)
	if _, err := rw.ReadAt(bs, partOff); err != nil {
		return fmt.Errorf("read FAT32 boot sector: %w", err)
	}
	bps := uint32(le.Uint16(bs[bpbBytesPerSector:]))
	spc := uint32(bs[bpbSectorsPerClus])
	reserved := uint32(le.Uint16(bs[bpbReservedSectors:]))
	nfats := uint32(bs[bpbNumFATs])
	spf := le.Uint32(bs[bpbSectorsPerFAT32:])
	total := le.Uint32(bs[bpbTotalSectors32:])
	root := le.Uint32(bs[bpbRootCluster:])
	backup := uint32(le.Uint16(bs[bpbBackupBootSect:]))
	if bps != layout.SectorSize || spc == 0 || nfats == 0 || spf == 0 || bs[510] != 0x55 || bs[511] != 0xAA {
		return fmt.Errorf("FAT32 boot sector at byte %d is not what go-diskfs should write (bytes/sector %d, sectors/cluster %d, FATs %d, sectors/FAT %d)", partOff, bps, spc, nfats, spf)
	}
	dataStart := reserved + nfats*spf
	clusters := (total - dataStart) / spc
	if spf*bps/4 < clusters+2 {
		return fmt.Errorf("FAT32 layout is broken: %d clusters but the FAT has room for %d entries (go-diskfs issue #418); pick another image size", clusters, spf*bps/4-2)
	}
	if clusters < fat32MinClusters {
		return fmt.Errorf("FAT32 partition has %d clusters, fewer than the %d FAT32 requires; make the image bigger", clusters, fat32MinClusters)
	}

	le.PutUint32(bs[bpbHiddenSectors:], hiddenSectors)
	le.PutUint32(bs[bpbVolumeID:], serial)
	bootSectors := []uint32{0}
	if backup != 0 && backup < reserved {
		bootSectors = append(bootSectors, backup)
	}
	for _, sec := range bootSectors {
		if _, err := rw.WriteAt(bs, partOff+int64(sec)*int64(bps)); err != nil {
			return fmt.Errorf("write FAT32 boot sector %d: %w", sec, err)
		}
	}

	fatBytes := make([]byte, spf*bps)
	if _, err := rw.ReadAt(fatBytes, partOff+int64(reserved)*int64(bps)); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	next := func(c uint32) uint32 { return le.Uint32(fatBytes[4*c:]) & fatEntryMask }
	clusterOff := func(c uint32) int64 {
		return partOff + (int64(dataStart)+int64(c-2)*int64(spc))*int64(bps)
	}
	date, tm := fatDateTime(ts)
	clusBytes := int64(spc * bps)

	// Walk the directory tree from the root. visited guards against a loop
	// in a broken FAT.
	visited := map[uint32]bool{}
	var walk func(first, parent uint32) error
	walk = func(first, parent uint32) error {
		var subdirs []uint32
		for c := first; c >= 2 && c < fatEOCMin; c = next(c) {
			if c >= clusters+2 || visited[c] {
				return fmt.Errorf("FAT32 directory chain from cluster %d is broken at cluster %d", first, c)
			}
			visited[c] = true
			buf := make([]byte, clusBytes)
			if _, err := rw.ReadAt(buf, clusterOff(c)); err != nil {
				return fmt.Errorf("read directory cluster %d: %w", c, err)
			}
			end := false
			for off := 0; off < len(buf); off += dirEntrySize {
				e := buf[off : off+dirEntrySize]
				if e[0] == 0 {
					end = true
					break
				}
				if e[0] == dirFree || e[dirAttrOff] == dirAttrLFN {
					continue
				}
				e[dirCreateTenths] = 0
				le.PutUint16(e[dirCreateTime:], tm)
				le.PutUint16(e[dirCreateDate:], date)
				le.PutUint16(e[dirAccessDate:], date)
				le.PutUint16(e[dirWriteTime:], tm)
				le.PutUint16(e[dirWriteDate:], date)
				if e[dirAttrOff]&dirAttrDir != 0 && string(e[:11]) == "..         " {
					// ".." names the parent's first cluster, or 0 when the
					// parent is the root (go-diskfs writes the root's
					// cluster number, which fsck.fat rejects).
					up := parent
					if parent == root {
						up = 0
					}
					le.PutUint16(e[dirClusterHi:], uint16(up>>16))
					le.PutUint16(e[dirClusterLo:], uint16(up))
				}
				if e[dirAttrOff]&dirAttrDir != 0 && e[0] != '.' {
					sub := uint32(le.Uint16(e[dirClusterHi:]))<<16 | uint32(le.Uint16(e[dirClusterLo:]))
					subdirs = append(subdirs, sub)
				}
			}
			if _, err := rw.WriteAt(buf, clusterOff(c)); err != nil {
				return fmt.Errorf("write directory cluster %d: %w", c, err)
			}
			if end {
				break
			}
		}
		for _, s := range subdirs {
			if err := walk(s, first); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return err
	}
	return writeFSInfo(rw, partOff, bs, clusters, next)
}

// writeFSInfo fills the FSInfo sector's free-cluster count and next-free
// hint from the FAT (go-diskfs leaves them "unknown", which fsck.fat reports).
func writeFSInfo(rw readWriterAt, partOff int64, bs []byte, clusters uint32, next func(uint32) uint32) error {
	le := binary.LittleEndian
	sec := int64(le.Uint16(bs[bpbFSInfoSector:]))
	if sec == 0 || sec == 0xFFFF {
		return nil // no FSInfo sector
	}
	fsi := make([]byte, layout.SectorSize)
	off := partOff + sec*layout.SectorSize
	if _, err := rw.ReadAt(fsi, off); err != nil {
		return fmt.Errorf("read FSInfo sector: %w", err)
	}
	if le.Uint32(fsi[fsiLeadSig:]) != 0x41615252 || le.Uint32(fsi[fsiStrucSig:]) != 0x61417272 || le.Uint32(fsi[fsiTrailSig:]) != 0xAA550000 {
		return fmt.Errorf("FSInfo sector %d has no FSInfo signatures", sec)
	}
	var free, firstFree uint32
	for c := uint32(2); c < clusters+2; c++ {
		if next(c) == 0 {
			if free == 0 {
				firstFree = c
			}
			free++
		}
	}
	if free == 0 {
		firstFree = 0xFFFFFFFF
	}
	le.PutUint32(fsi[fsiFreeCount:], free)
	le.PutUint32(fsi[fsiNextFree:], firstFree)
	if _, err := rw.WriteAt(fsi, off); err != nil {
		return fmt.Errorf("write FSInfo sector: %w", err)
	}
	return nil
}

// readWriterAt is the part of *os.File finishFAT32 needs.
type readWriterAt interface {
	io.ReaderAt
	io.WriterAt
}
