package modfmt

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/fluid-os/fluid/internal/atomicfile"
)

// Linker-script symbols that delimit the module image (modules/module.ld).
const (
	symImageStart = "__fluid_image_start"
	symImageEnd   = "__fluid_image_end"
)

// Pack reads a module ELF linked with LDFlags and modules/module.ld and
// returns the .mod file bytes for module name built as variant ("baseline",
// "O3", "PGO" or "instrumented").
func Pack(elfPath, name, variant string) ([]byte, error) {
	v, err := ParseVariant(variant)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", elfPath, err)
	}
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("pack %s: %w", elfPath, err)
	}
	f, err := elf.Open(elfPath)
	if err != nil {
		return nil, fmt.Errorf("pack module %s: open ELF %s: %w", name, elfPath, err)
	}
	defer f.Close()
	out, err := pack(f, name, v)
	if err != nil {
		return nil, fmt.Errorf("pack module %s from %s: %w", name, elfPath, err)
	}
	return out, nil
}

// PackFile packs elfPath and writes the module to outPath atomically (a
// temporary file in the same directory, then rename).
func PackFile(elfPath, name, variant, outPath string) error {
	data, err := Pack(elfPath, name, variant)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile0644(outPath, data)
}

type layout struct {
	image    []byte // code + data bytes
	codeSize uint32
	dataSize uint32
	bssSize  uint32
	align    uint32
}

func pack(f *elf.File, name string, v Variant) ([]byte, error) {
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("not an x86_64 little-endian ELF64 (class %v, machine %v): compile with modfmt.CFlags (--target=x86_64-unknown-none-elf) and link with modfmt.LDFlags", f.Class, f.Machine)
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("read symbol table (was the module stripped?): %w", err)
	}
	symAddr := func(n string) (uint32, bool) {
		for _, s := range syms {
			if s.Name == n && s.Section != elf.SHN_UNDEF {
				return uint32(s.Value), true
			}
		}
		return 0, false
	}
	start, ok1 := symAddr(symImageStart)
	end, ok2 := symAddr(symImageEnd)
	if !ok1 || !ok2 || start != 0 || end < start {
		return nil, fmt.Errorf("missing or bad %s/%s: link with -T %s", symImageStart, symImageEnd, LinkerScript)
	}
	lay, err := collectImage(f, end)
	if err != nil {
		return nil, err
	}
	if f.Entry >= uint64(lay.codeSize) {
		return nil, fmt.Errorf("entry point 0x%x is outside the code (size 0x%x): define %s and link with -e %s", f.Entry, lay.codeSize, EntrySymbol, EntrySymbol)
	}
	relocs, err := collectRelocs(f, lay)
	if err != nil {
		return nil, err
	}
	profile := uint32(NoOffset)
	var flags uint32
	if a, ok := symAddr(ProfileSymbol); ok {
		if a >= lay.codeSize {
			return nil, fmt.Errorf("%s at 0x%x is not in the code", ProfileSymbol, a)
		}
		profile, flags = a, FlagProfile
	}

	var deadline uint32
	if a, ok := symAddr(DeadlineSymbol); ok {
		if uint64(a)+4 > uint64(len(lay.image)) {
			return nil, fmt.Errorf("%s at 0x%x is not in the image: define it with FLUID_DEADLINE_MS(ms) at file scope", DeadlineSymbol, a)
		}
		deadline = binary.LittleEndian.Uint32(lay.image[a:])
		if deadline > MaxDeadline {
			return nil, fmt.Errorf("%s is %d ms, more than %d ms", DeadlineSymbol, deadline, MaxDeadline)
		}
	}

	services, err := servicesVersion(f)
	if err != nil {
		return nil, err
	}

	var relocBytes bytes.Buffer
	for _, r := range relocs {
		_ = binary.Write(&relocBytes, binary.LittleEndian, r)
	}
	imageOff := uint32(HeaderSize)
	relocOff := alignUp(imageOff+uint32(len(lay.image)), 4)
	fileSize := relocOff + uint32(relocBytes.Len())

	out := make([]byte, fileSize)
	copy(out[imageOff:], lay.image)
	copy(out[relocOff:], relocBytes.Bytes())

	h := sha256.New()
	h.Write(lay.image)
	h.Write(relocBytes.Bytes())
	sum := h.Sum(nil)

	le := binary.LittleEndian
	le.PutUint32(out[offMagic:], Magic)
	le.PutUint16(out[offABIVersion:], ABIVersion)
	le.PutUint16(out[offHeaderSize:], HeaderSize)
	le.PutUint32(out[offFileSize:], fileSize)
	copy(out[offName:offName+NameMax], name)
	le.PutUint32(out[offVariant:], uint32(v))
	le.PutUint32(out[offFlags:], flags)
	copy(out[offHash:offHash+HashSize], sum[:HashSize])
	le.PutUint32(out[offImageOffset:], imageOff)
	le.PutUint32(out[offCodeSize:], lay.codeSize)
	le.PutUint32(out[offDataSize:], lay.dataSize)
	le.PutUint32(out[offBSSSize:], lay.bssSize)
	le.PutUint32(out[offAlign:], lay.align)
	le.PutUint32(out[offEntry:], uint32(f.Entry))
	le.PutUint32(out[offRelocOffset:], relocOff)
	le.PutUint32(out[offRelocCount:], uint32(len(relocs)))
	le.PutUint32(out[offProfile:], profile)
	le.PutUint32(out[offDeadline:], deadline)
	le.PutUint32(out[offServices:], services)
	le.PutUint32(out[offCRC32:], crc32.ChecksumIEEE(out[CRCStart:]))

	if _, err := parse(out, false); err != nil {
		return nil, fmt.Errorf("packed module does not validate (a modfmt bug): %w", err)
	}
	return out, nil
}

// servicesVersion reads the services table version record: one uint32 per
// object file that included fluid_module.h, in the non-allocated section
// ServicesSection. It refuses an ELF without the record (an object built
// without the header, or linked without the module linker script, which
// keeps the section out of the image), and one whose objects were compiled
// against different versions.
func servicesVersion(f *elf.File) (uint32, error) {
	s := f.Section(ServicesSection)
	if s == nil || s.Type != elf.SHT_PROGBITS || s.Size == 0 {
		return 0, fmt.Errorf("no services table version record (section %s): compile every source with #include \"fluid_module.h\" from %s and link with -T %s", ServicesSection, IncludeDir, LinkerScript)
	}
	if s.Flags&elf.SHF_ALLOC != 0 {
		return 0, fmt.Errorf("section %s is part of the image: link with -T %s", ServicesSection, LinkerScript)
	}
	data, err := s.Data()
	if err != nil {
		return 0, fmt.Errorf("read section %s: %w", ServicesSection, err)
	}
	if len(data)%4 != 0 {
		return 0, fmt.Errorf("section %s: size %d is not a multiple of 4", ServicesSection, len(data))
	}
	v := binary.LittleEndian.Uint32(data)
	for i := 4; i < len(data); i += 4 {
		if w := binary.LittleEndian.Uint32(data[i:]); w != v {
			return 0, fmt.Errorf("objects were compiled against services table versions %d and %d: rebuild every source with the same %s/fluid_module.h", v, w, IncludeDir)
		}
	}
	return v, nil
}

// collectImage lays out the allocated sections below the image end: code
// (everything before the first writable section), then data (from there on,
// including read-only sections such as __llvm_prf_names that the linker
// script places among the data), then bss. When the module has data or bss,
// the first writable section starts on a page (modules/module.ld) and the
// code size is that page offset, padding included: the kernel maps code and
// data with different permissions, page by page (W^X).
func collectImage(f *elf.File, end uint32) (*layout, error) {
	type sec struct {
		s          *elf.Section
		addr, size uint32
	}
	var in []sec
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 {
			continue
		}
		addr, size := uint32(s.Addr), uint32(s.Size)
		if s.Addr >= uint64(end) {
			switch s.Type {
			case elf.SHT_DYNSYM, elf.SHT_STRTAB, elf.SHT_HASH, elf.SHT_GNU_HASH, elf.SHT_RELA, elf.SHT_REL, elf.SHT_DYNAMIC:
				continue // -pie bookkeeping, not part of the module
			}
			return nil, fmt.Errorf("section %s at 0x%x lies after the image end 0x%x: add it to %s", s.Name, s.Addr, end, LinkerScript)
		}
		if s.Addr+s.Size > uint64(end) {
			return nil, fmt.Errorf("section %s [0x%x,0x%x) crosses the image end 0x%x", s.Name, s.Addr, s.Addr+s.Size, end)
		}
		if s.Type == elf.SHT_REL || s.Type == elf.SHT_RELA || s.Type == elf.SHT_DYNAMIC {
			return nil, fmt.Errorf("section %s (%v) inside the image: link with -T %s", s.Name, s.Type, LinkerScript)
		}
		in = append(in, sec{s, addr, size})
	}
	sort.Slice(in, func(i, j int) bool { return in[i].addr < in[j].addr })

	lay := &layout{align: 16}
	codeEnd, fileEnd := uint32(0), uint32(0)
	sawData, sawBSS := false, false
	firstWritable := ""
	for _, x := range in {
		if a := uint32(x.s.Addralign); a > lay.align {
			lay.align = a
		}
		writable := x.s.Flags&elf.SHF_WRITE != 0
		if writable && !sawData {
			// The first writable section (data, or bss when there is
			// no data) ends the code.
			sawData = true
			codeEnd = x.addr
			firstWritable = x.s.Name
		}
		switch {
		case x.s.Type == elf.SHT_NOBITS:
			if !writable {
				return nil, fmt.Errorf("section %s: read-only NOBITS section is not supported", x.s.Name)
			}
			sawBSS = true
			continue
		case sawBSS:
			return nil, fmt.Errorf("section %s with contents follows .bss: keep bss last (see %s)", x.s.Name, LinkerScript)
		}
		if x.addr+x.size > fileEnd {
			fileEnd = x.addr + x.size
		}
	}
	if lay.align > MaxAlign || lay.align&(lay.align-1) != 0 {
		return nil, fmt.Errorf("image alignment %d: must be a power of two up to %d", lay.align, MaxAlign)
	}
	if !sawData {
		// Nothing writable: what lies between the code and the image end
		// is the linker script's page alignment, not bss.
		codeEnd = fileEnd
		end = fileEnd
	} else if codeEnd%PageSize != 0 {
		return nil, fmt.Errorf("the first writable section %s starts at 0x%x, not on a %d-byte page: code and data would share a page; link with -T %s", firstWritable, codeEnd, PageSize, LinkerScript)
	}
	if fileEnd < codeEnd {
		fileEnd = codeEnd // no data, only bss: the code's last page is padded
	}
	if end > MaxImage {
		return nil, fmt.Errorf("image of %d bytes exceeds the %d-byte limit", end, MaxImage)
	}
	lay.image = make([]byte, fileEnd)
	for _, x := range in {
		if x.s.Type == elf.SHT_NOBITS {
			continue
		}
		data, err := x.s.Data()
		if err != nil {
			return nil, fmt.Errorf("read section %s: %w", x.s.Name, err)
		}
		copy(lay.image[x.addr:], data)
	}
	lay.codeSize = codeEnd
	lay.dataSize = fileEnd - codeEnd
	lay.bssSize = end - fileEnd
	return lay, nil
}

// reloc is one relocation table entry as stored in the file.
type reloc struct {
	Offset uint32
	Type   uint32
}

// elf64RelaSize is the size of one Elf64_Rela: r_offset, r_info, r_addend.
const elf64RelaSize = 24

// collectRelocs turns the ELF's dynamic relocations (.rela.dyn) into module
// relocations. x86_64 keeps the addend in the Elf64_Rela entry, not in the
// word, so Pack writes it there: R_X86_64_RELATIVE (B + A) gets A, and an
// R_X86_64_64 against a defined symbol (S + A) gets S + A, both addresses
// relative to the image start, so both mean "add the load address to the
// 64-bit word" to the loader. Any other type is refused by name.
func collectRelocs(f *elf.File, lay *layout) ([]reloc, error) {
	var dsyms []elf.Symbol
	dsyms, err := f.DynamicSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, fmt.Errorf("read dynamic symbols: %w", err)
	}
	var out []reloc
	le := binary.LittleEndian
	limit := uint64(lay.codeSize) + uint64(lay.dataSize)
	for _, s := range f.Sections {
		switch s.Type {
		case elf.SHT_REL:
			if s.Flags&elf.SHF_ALLOC != 0 {
				return nil, fmt.Errorf("section %s: REL relocations are not used on x86_64 (want RELA): link with modfmt.LDFlags", s.Name)
			}
			continue
		case elf.SHT_RELA:
		default:
			continue
		}
		if s.Flags&elf.SHF_ALLOC == 0 {
			// --emit-relocs style static relocation lists are not needed.
			continue
		}
		data, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.Name, err)
		}
		if len(data)%elf64RelaSize != 0 {
			return nil, fmt.Errorf("%s: size %d is not a multiple of %d", s.Name, len(data), elf64RelaSize)
		}
		for i := 0; i < len(data); i += elf64RelaSize {
			off := le.Uint64(data[i:])
			info := le.Uint64(data[i+8:])
			addend := le.Uint64(data[i+16:])
			typ, symIdx := uint32(info), info>>32
			if off > limit || limit-off < RelocWordSize {
				return nil, fmt.Errorf("%s: %s at 0x%x is outside the image code+data (0x%x bytes)", s.Name, relocTypeName(typ), off, limit)
			}
			switch typ {
			case RX86_64Relative:
				le.PutUint64(lay.image[off:], addend)
			case RX86_64_64:
				if symIdx == 0 || symIdx > uint64(len(dsyms)) {
					return nil, fmt.Errorf("%s: R_X86_64_64 at 0x%x has bad symbol index %d", s.Name, off, symIdx)
				}
				sym := dsyms[symIdx-1] // DynamicSymbols drops the null entry
				if sym.Section == elf.SHN_UNDEF {
					return nil, fmt.Errorf("undefined symbol %q: modules must be self-contained (only fluid_module.h services are available)", sym.Name)
				}
				le.PutUint64(lay.image[off:], sym.Value+addend)
			default:
				return nil, fmt.Errorf("%s: unsupported relocation %s at 0x%x (only R_X86_64_RELATIVE and R_X86_64_64): compile with modfmt.CFlags (-fpie) and link with modfmt.LDFlags", s.Name, relocTypeName(typ), off)
			}
			out = append(out, reloc{Offset: uint32(off), Type: typ})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	if len(out) > MaxRelocs {
		return nil, fmt.Errorf("%d relocations exceed the limit of %d", len(out), MaxRelocs)
	}
	return out, nil
}

func alignUp(x, a uint32) uint32 { return (x + a - 1) &^ (a - 1) }
