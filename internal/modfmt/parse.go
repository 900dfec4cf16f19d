package modfmt

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
)

// Module is a parsed and validated module file.
type Module struct {
	Name        string
	Variant     Variant
	Flags       uint32
	Hash        [HashSize]byte
	ImageOffset uint32
	CodeSize    uint32
	DataSize    uint32
	BSSSize     uint32
	Align       uint32
	Entry       uint32
	Relocs      []Reloc
	// Profile is the image offset of fluid_profile_dump, or NoOffset.
	Profile uint32
	// DeadlineMS is the deadline of one entry call in milliseconds, 0 for
	// the kernel's default (FLUID_DEADLINE_MS in fluid_module.h).
	DeadlineMS uint32
	// ServicesVersion is the FLUID_SERVICES_VERSION the module was
	// compiled against (always ServicesVersion once Parse accepted it).
	ServicesVersion uint32
	// Image is the code+data bytes (a slice of the parsed buffer).
	Image []byte
}

// Reloc is one relocation entry: add the load address to the 64-bit word at
// Offset in the image.
type Reloc struct {
	Offset uint32
	Type   uint32
}

// HashString is the content hash as the kernel prints it (16 hex digits).
func (m *Module) HashString() string { return hex.EncodeToString(m.Hash[:]) }

// Parse validates a module file exactly as kernel/module/modparse.c does, in
// the same order, and returns its description. The error text matches the
// kernel's "refused: <what>" reason.
func Parse(b []byte) (*Module, error) { return parse(b, true) }

// parse is Parse; with checkServices false it accepts any services table
// version, as Pack does: the packer records the version a module was
// compiled against, and the kernel that loads it decides.
func parse(b []byte, checkServices bool) (*Module, error) {
	le := binary.LittleEndian
	n := uint64(len(b))
	if n < HeaderSize {
		return nil, fmt.Errorf("file too short: %d bytes, the header alone is %d", n, HeaderSize)
	}
	if m := le.Uint32(b[offMagic:]); m != Magic {
		return nil, fmt.Errorf("bad magic 0x%x (want \"FMOD\")", m)
	}
	if v := le.Uint16(b[offABIVersion:]); v != ABIVersion {
		return nil, fmt.Errorf("ABI version %d, this kernel reads %d: rebuild the module with this tree's %s/fluid_module.h", v, ABIVersion, IncludeDir)
	}
	if h := le.Uint16(b[offHeaderSize:]); h != HeaderSize {
		return nil, fmt.Errorf("header size %d, want %d", h, HeaderSize)
	}
	if fs := le.Uint32(b[offFileSize:]); uint64(fs) != n {
		return nil, fmt.Errorf("file size field %d does not match the file: truncated or padded", fs)
	}
	if want, got := le.Uint32(b[offCRC32:]), crc32.ChecksumIEEE(b[CRCStart:]); want != got {
		return nil, fmt.Errorf("checksum mismatch: header says 0x%x, contents give 0x%x", want, got)
	}
	if v := le.Uint32(b[offServices:]); checkServices && v != ServicesVersion {
		return nil, fmt.Errorf("built against services table version %d, this kernel has %d; rebuild the module with this tree's %s/fluid_module.h", v, ServicesVersion, IncludeDir)
	}
	name := b[offName : offName+NameMax]
	nlen := 0
	for nlen < NameMax && name[nlen] != 0 {
		nlen++
	}
	if nlen == NameMax {
		return nil, fmt.Errorf("name is not NUL-terminated")
	}
	if err := ValidName(string(name[:nlen])); err != nil {
		return nil, fmt.Errorf("bad name: only 1..31 of a-z 0-9 _ - allowed")
	}
	for _, c := range name[nlen:] {
		if c != 0 {
			return nil, fmt.Errorf("name padding is not zero")
		}
	}
	m := &Module{
		Name:        string(name[:nlen]),
		Variant:     Variant(le.Uint32(b[offVariant:])),
		Flags:       le.Uint32(b[offFlags:]),
		ImageOffset: le.Uint32(b[offImageOffset:]),
		CodeSize:    le.Uint32(b[offCodeSize:]),
		DataSize:    le.Uint32(b[offDataSize:]),
		BSSSize:     le.Uint32(b[offBSSSize:]),
		Align:       le.Uint32(b[offAlign:]),
		Entry:       le.Uint32(b[offEntry:]),
		Profile:     le.Uint32(b[offProfile:]),
		DeadlineMS:  le.Uint32(b[offDeadline:]),

		ServicesVersion: le.Uint32(b[offServices:]),
	}
	copy(m.Hash[:], b[offHash:offHash+HashSize])
	relocOff := uint64(le.Uint32(b[offRelocOffset:]))
	relocCount := uint64(le.Uint32(b[offRelocCount:]))
	if m.Variant >= variantCount {
		return nil, fmt.Errorf("unknown variant %d", uint32(m.Variant))
	}
	if m.Flags&^knownFlags != 0 {
		return nil, fmt.Errorf("unknown flags 0x%x", m.Flags&^knownFlags)
	}
	if m.DeadlineMS > MaxDeadline {
		return nil, fmt.Errorf("deadline %d ms exceeds %d ms", m.DeadlineMS, MaxDeadline)
	}
	if m.CodeSize == 0 {
		return nil, fmt.Errorf("code size is 0")
	}
	if m.Align == 0 || m.Align > MaxAlign || m.Align&(m.Align-1) != 0 {
		return nil, fmt.Errorf("alignment %d is not a power of two up to %d", m.Align, MaxAlign)
	}
	if (m.DataSize != 0 || m.BSSSize != 0) && m.CodeSize%PageSize != 0 {
		return nil, fmt.Errorf("code size 0x%x is not a multiple of %d, but data follows: code and data would share a page", m.CodeSize, PageSize)
	}
	filed := uint64(m.CodeSize) + uint64(m.DataSize)
	if filed+uint64(m.BSSSize) > MaxImage {
		return nil, fmt.Errorf("image of %d bytes exceeds %d", filed+uint64(m.BSSSize), MaxImage)
	}
	imgOff := uint64(m.ImageOffset)
	if imgOff < HeaderSize || imgOff+filed > n {
		return nil, fmt.Errorf("image at offset %d is outside the file", imgOff)
	}
	if uint64(m.Entry) >= uint64(m.CodeSize) {
		return nil, fmt.Errorf("entry offset 0x%x is outside the code", m.Entry)
	}
	if relocCount > MaxRelocs {
		return nil, fmt.Errorf("%d relocations exceed the limit of %d", relocCount, MaxRelocs)
	}
	if relocCount > 0 && (relocOff < imgOff+filed || relocOff+relocCount*RelocSize > n) {
		return nil, fmt.Errorf("relocation table at offset %d is outside the file after the image", relocOff)
	}
	if m.Flags&FlagProfile != 0 {
		if uint64(m.Profile) >= uint64(m.CodeSize) {
			return nil, fmt.Errorf("profile hook offset 0x%x is outside the code", m.Profile)
		}
	} else if m.Profile != NoOffset {
		return nil, fmt.Errorf("profile hook offset 0x%x set without the profile flag", m.Profile)
	}
	for i := uint64(0); i < relocCount; i++ {
		e := b[relocOff+i*RelocSize:]
		r := Reloc{Offset: le.Uint32(e), Type: le.Uint32(e[4:])}
		if r.Type != RX86_64_64 && r.Type != RX86_64Relative {
			return nil, fmt.Errorf("relocation %d: unsupported type %s (only R_X86_64_64 and R_X86_64_RELATIVE)", i, relocTypeName(r.Type))
		}
		if uint64(r.Offset)+RelocWordSize > filed {
			return nil, fmt.Errorf("relocation %d: target 0x%x is outside the image code+data", i, r.Offset)
		}
		m.Relocs = append(m.Relocs, r)
	}
	m.Image = b[imgOff : imgOff+filed]
	return m, nil
}
