package image

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/fluid-os/fluid/internal/layout"
)

// KernelInfo describes the kernel payload written after the kernel header
// sector; the fields are the header's (boot/bootinfo.h, KHDR_*).
type KernelInfo struct {
	LoadAddr    uint32 // physical load address of payload byte 0 (>= 1 MiB)
	Entry       uint32 // physical entry point, inside the payload
	PayloadSize uint32 // payload bytes on disk after the header sector
	MemSize     uint32 // bytes from LoadAddr to the end of .bss
	PayloadCRC  uint32 // CRC-32 IEEE of the payload
	HdrCRC      uint32 // CRC-32 IEEE of header bytes 0..31
	Sectors     int    // payload sectors on disk (PayloadSize rounded up)
}

// KernelPayload reads the x86_64 kernel ELF at elfPath and returns the
// kernel header sector (exactly layout.SectorSize bytes), the flat payload
// and what the header says.
//
// The payload is the file bytes of the PT_LOAD segments laid out flat from
// the lowest segment physical address (the load address) to the last
// file-backed byte, gaps zero-filled; MemSize reaches to the end of the
// highest segment in memory (.bss included). The kernel is linked in the
// higher half: every segment's virtual address must be its physical
// address + layout.KernelVMA (boot/bootinfo.h, kernel/kernel.ld), and the
// header's entry is the physical address of the ELF entry.
func KernelPayload(elfPath string) (hdr []byte, payload []byte, info KernelInfo, err error) {
	f, err := elf.Open(elfPath)
	if err != nil {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: not a readable ELF file (%w); build it with `mage build`", elfPath, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Data != elf.ELFDATA2LSB {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: is %v %v %v, want a 64-bit little-endian x86_64 ELF; link it with ld.lld -m elf_x86_64", elfPath, f.Class, f.Data, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: ELF type is %v, want ET_EXEC (a linked executable, not an object file)", elfPath, f.Type)
	}

	var segs []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Memsz > 0 {
			segs = append(segs, p)
		}
	}
	if len(segs) == 0 {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: has no PT_LOAD segment with contents; check kernel/kernel.ld", elfPath)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Paddr < segs[j].Paddr })

	load := segs[0].Paddr
	var fileEnd, memEnd, prevEnd uint64
	for i, p := range segs {
		if p.Vaddr != p.Paddr+layout.KernelVMA {
			return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: segment at paddr %#x has vaddr %#x, want paddr + KERNEL_VMA = %#x (boot/bootinfo.h); kernel/kernel.ld must link at KERNEL_VMA + the load address", elfPath, p.Paddr, p.Vaddr, p.Paddr+layout.KernelVMA)
		}
		if p.Filesz > p.Memsz {
			return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: segment at %#x has filesz %#x > memsz %#x", elfPath, p.Paddr, p.Filesz, p.Memsz)
		}
		if i > 0 && p.Paddr < prevEnd {
			return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: PT_LOAD segments overlap at %#x; check kernel/kernel.ld", elfPath, p.Paddr)
		}
		prevEnd = p.Paddr + p.Memsz
		if p.Filesz > 0 {
			fileEnd = max(fileEnd, p.Paddr+p.Filesz)
		}
		memEnd = max(memEnd, p.Paddr+p.Memsz)
	}
	if load < layout.KernelLoadMin {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: loads at %#x, below KERNEL_LOAD_MIN %#x (1 MiB); stage 2 and the BIOS own low memory — link the kernel at 1 MiB or above", elfPath, load, layout.KernelLoadMin)
	}
	if memEnd > 1<<30 {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: extends to physical %#x, past 1 GiB: stage 2's boot page tables map KERNEL_VMA to the first 1 GiB only (boot/stage2/longmode.inc), where _start runs the kernel until vm_init; shrink the kernel (.bss)", elfPath, memEnd)
	}
	if fileEnd < load {
		fileEnd = load // all segments are .bss-like: empty payload
	}
	payloadSize := fileEnd - load
	sectors := int((payloadSize + layout.SectorSize - 1) / layout.SectorSize)
	if sectors > layout.KernelMaxSectors {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: payload is %d bytes (%d sectors), more than KERNEL_MAX_SECTORS %d (%d KiB) fit between the kernel header and partition 1; shrink the kernel",
			elfPath, payloadSize, sectors, layout.KernelMaxSectors, layout.KernelMaxSectors*layout.SectorSize/1024)
	}
	entry := f.Entry - layout.KernelVMA // physical: stage 2 jumps there on its identity map
	if f.Entry < layout.KernelVMA || entry < load || entry >= fileEnd {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: entry point %#x (physical %#x) is outside the loaded bytes [%#x, %#x); check ENTRY() in kernel/kernel.ld", elfPath, f.Entry, entry, load, fileEnd)
	}
	// Stage 2 jumps to the entry on its identity map; only _start (section
	// .text.entry, which kernel/kernel.ld keeps first in .text, the first
	// byte of the executable segment) knows how to reach the higher half.
	// Any other entry (say ENTRY(kernel_main)) would run at its physical
	// address and die at boot in a misleading way, so refuse it here.
	var textStart uint64
	found := false
	for _, p := range segs {
		if p.Flags&elf.PF_X != 0 && entry >= p.Paddr && entry < p.Paddr+p.Filesz {
			textStart, found = p.Paddr, true
		}
	}
	if !found || entry != textStart {
		return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: entry point %#x (physical %#x) is not the first byte of an executable segment (%#x): stage 2 jumps there on its identity map and only _start, first in .text (section .text.entry), reaches the higher half; keep ENTRY(_start) and KEEP(*(.text.entry)) first in kernel/kernel.ld", elfPath, f.Entry, entry, textStart)
	}

	payload = make([]byte, payloadSize)
	for _, p := range segs {
		if p.Filesz == 0 {
			continue
		}
		off := p.Paddr - load
		if _, err := p.ReadAt(payload[off:off+p.Filesz], 0); err != nil {
			return nil, nil, KernelInfo{}, fmt.Errorf("kernel %s: read segment at %#x: %w", elfPath, p.Paddr, err)
		}
	}

	info = KernelInfo{
		LoadAddr:    uint32(load),
		Entry:       uint32(entry),
		PayloadSize: uint32(payloadSize),
		MemSize:     uint32(memEnd - load),
		PayloadCRC:  crc32.ChecksumIEEE(payload),
		Sectors:     sectors,
	}
	hdr = make([]byte, layout.SectorSize)
	le := binary.LittleEndian
	le.PutUint32(hdr[layout.KHdrOffMagic:], layout.KHdrMagic)
	le.PutUint32(hdr[layout.KHdrOffVersion:], layout.KHdrVersion)
	le.PutUint32(hdr[layout.KHdrOffHdrSize:], layout.SectorSize)
	le.PutUint32(hdr[layout.KHdrOffLoadAddr:], info.LoadAddr)
	le.PutUint32(hdr[layout.KHdrOffEntry:], info.Entry)
	le.PutUint32(hdr[layout.KHdrOffPayloadSz:], info.PayloadSize)
	le.PutUint32(hdr[layout.KHdrOffMemSize:], info.MemSize)
	le.PutUint32(hdr[layout.KHdrOffPayloadCRC:], info.PayloadCRC)
	info.HdrCRC = crc32.ChecksumIEEE(hdr[:layout.KHdrOffHdrCRC])
	le.PutUint32(hdr[layout.KHdrOffHdrCRC:], info.HdrCRC)
	return hdr, payload, info, nil
}

// ErrBadKernelHeader is wrapped by ParseKernelHeader for a header sector that
// is not a valid version-1 kernel header.
var ErrBadKernelHeader = errors.New("bad kernel header")

// ParseKernelHeader decodes and checks a kernel header sector (magic,
// version, size, header CRC). It does not check the payload CRC; compare
// info.PayloadCRC with crc32.ChecksumIEEE of the payload for that.
func ParseKernelHeader(hdr []byte) (KernelInfo, error) {
	if len(hdr) < layout.KHdrSize {
		return KernelInfo{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadKernelHeader, len(hdr), layout.KHdrSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(hdr[layout.KHdrOffMagic:]); m != layout.KHdrMagic {
		return KernelInfo{}, fmt.Errorf("%w: magic %#x, want %#x (\"FLUD\")", ErrBadKernelHeader, m, layout.KHdrMagic)
	}
	if v := le.Uint32(hdr[layout.KHdrOffVersion:]); v != layout.KHdrVersion {
		return KernelInfo{}, fmt.Errorf("%w: version %d, want %d", ErrBadKernelHeader, v, layout.KHdrVersion)
	}
	if s := le.Uint32(hdr[layout.KHdrOffHdrSize:]); s != layout.SectorSize {
		return KernelInfo{}, fmt.Errorf("%w: header size %d, want %d", ErrBadKernelHeader, s, layout.SectorSize)
	}
	info := KernelInfo{
		LoadAddr:    le.Uint32(hdr[layout.KHdrOffLoadAddr:]),
		Entry:       le.Uint32(hdr[layout.KHdrOffEntry:]),
		PayloadSize: le.Uint32(hdr[layout.KHdrOffPayloadSz:]),
		MemSize:     le.Uint32(hdr[layout.KHdrOffMemSize:]),
		PayloadCRC:  le.Uint32(hdr[layout.KHdrOffPayloadCRC:]),
		HdrCRC:      le.Uint32(hdr[layout.KHdrOffHdrCRC:]),
	}
	info.Sectors = int((uint64(info.PayloadSize) + layout.SectorSize - 1) / layout.SectorSize)
	if got := crc32.ChecksumIEEE(hdr[:layout.KHdrOffHdrCRC]); got != info.HdrCRC {
		return KernelInfo{}, fmt.Errorf("%w: header CRC %#x, computed %#x", ErrBadKernelHeader, info.HdrCRC, got)
	}
	return info, nil
}
