// Package modfmt is the host side of the Fluid OS module file format
// (modules/include/fluid_module.h): it packs a linked module ELF into a .mod
// file (Pack), parses and validates .mod files exactly as the kernel's loader
// does (Parse, a Go mirror of kernel/module/modparse.c used by tests), and
// holds the one copy of the compiler and linker flags every module variant is
// built with (CFlags, LDFlags).
package modfmt

import (
	"fmt"
	"strings"
)

// Format constants; they mirror the #defines in modules/include/fluid_module.h
// (TestHeaderMatchesC parses that header and fails on drift).
const (
	Magic       = 0x444F4D46 // "FMOD" little-endian
	ABIVersion  = 3          // 3: x86_64 (2 was i686)
	HeaderSize  = 108
	CRCStart    = 12 // the CRC-32 covers file bytes [CRCStart, file_size)
	NameMax     = 32 // name field incl. its NUL
	HashSize    = 8  // leading bytes of SHA-256(image || reloc table)
	MaxAlign    = 4096
	PageSize    = 4096 // FLUID_MOD_PAGE_SIZE: code and data never share a page
	MaxImage    = 1 << 22
	MaxRelocs   = 1 << 16
	NoOffset    = 0xFFFFFFFF
	MaxDeadline = 600000 // ms; FLUID_MOD_MAX_DEADLINE_MS
	RelocSize   = 8
	FlagProfile = 0x1
	knownFlags  = FlagProfile
	// RX86_64_64 and RX86_64Relative are the two relocation types a
	// module may carry (FLUID_R_X86_64_*): add the load address to the
	// 64-bit word at the entry's image offset.
	RX86_64_64      = 1
	RX86_64Relative = 8
	// RelocWordSize is the size of the word a relocation adjusts.
	RelocWordSize = 8
	// ServicesVersion is FLUID_SERVICES_VERSION, the services table of
	// this tree's kernel; Parse, like the kernel, refuses other values.
	ServicesVersion = 2

	// EntrySymbol is the module entry point every module defines.
	EntrySymbol = "fluid_main"
	// ProfileSymbol is the optional profile dump hook (see fluid_module.h).
	ProfileSymbol = "fluid_profile_dump"
	// DeadlineSymbol is the optional uint32 a module defines with
	// FLUID_DEADLINE_MS(ms); Pack copies its value into the header.
	DeadlineSymbol = "fluid_deadline_ms"
	// ServicesSection is FLUID_SERVICES_SECTION: every object compiled
	// with fluid_module.h puts FLUID_SERVICES_VERSION there as a uint32,
	// and Pack copies it into the header field services_version.
	ServicesSection = ".fluid_services_version"
)

// Header field offsets (FLUID_MOD_OFF_* in fluid_module.h).
const (
	offMagic       = 0
	offABIVersion  = 4
	offHeaderSize  = 6
	offCRC32       = 8
	offFileSize    = 12
	offName        = 16
	offVariant     = 48
	offFlags       = 52
	offHash        = 56
	offImageOffset = 64
	offCodeSize    = 68
	offDataSize    = 72
	offBSSSize     = 76
	offAlign       = 80
	offEntry       = 84
	offRelocOffset = 88
	offRelocCount  = 92
	offProfile     = 96
	offDeadline    = 100
	offServices    = 104
)

// Variant is the build variant tag stored in a module header.
type Variant uint32

// The variants, numbered as FLUID_VARIANT_* in fluid_module.h.
const (
	VariantBaseline     Variant = 0 // -O2
	VariantO3           Variant = 1 // -O3
	VariantPGO          Variant = 2 // -O2 -fprofile-instr-use
	VariantInstrumented Variant = 3 // -O2 -fprofile-instr-generate
	variantCount                = 4
)

// String returns the name the kernel prints for the variant.
func (v Variant) String() string {
	switch v {
	case VariantBaseline:
		return "baseline"
	case VariantO3:
		return "O3"
	case VariantPGO:
		return "PGO"
	case VariantInstrumented:
		return "instrumented"
	}
	return fmt.Sprintf("variant(%d)", uint32(v))
}

// ParseVariant maps "baseline", "O3", "PGO" or "instrumented" (any case) to
// a Variant.
func ParseVariant(s string) (Variant, error) {
	var names []string
	for v := Variant(0); v < variantCount; v++ {
		if strings.EqualFold(s, v.String()) {
			return v, nil
		}
		names = append(names, v.String())
	}
	return 0, fmt.Errorf("unknown module variant %q (want one of %s)", s, strings.Join(names, ", "))
}

// ValidName reports whether name can be a module name: 1..31 characters from
// [a-z0-9_-], so it is also a valid 8.3-free FAT32 file stem.
func ValidName(name string) error {
	if len(name) == 0 || len(name) >= NameMax {
		return fmt.Errorf("module name %q: must be 1..%d characters", name, NameMax-1)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("module name %q: only a-z, 0-9, '_' and '-' are allowed", name)
		}
	}
	return nil
}

// relocTypeName names x86_64 relocation types for error messages; the
// kernel's module_reloc_name (kernel/module/modparse.c) knows the same
// names (a test compares them).
func relocTypeName(t uint32) string {
	if n, ok := relocNames[t]; ok {
		return n
	}
	return fmt.Sprintf("%d", t)
}

var relocNames = map[uint32]string{
	0: "R_X86_64_NONE", 1: "R_X86_64_64", 2: "R_X86_64_PC32", 3: "R_X86_64_GOT32",
	4: "R_X86_64_PLT32", 5: "R_X86_64_COPY", 6: "R_X86_64_GLOB_DAT",
	7: "R_X86_64_JUMP_SLOT", 8: "R_X86_64_RELATIVE", 9: "R_X86_64_GOTPCREL",
	10: "R_X86_64_32", 11: "R_X86_64_32S", 12: "R_X86_64_16", 13: "R_X86_64_PC16",
	14: "R_X86_64_8", 15: "R_X86_64_PC8", 16: "R_X86_64_DTPMOD64",
	17: "R_X86_64_DTPOFF64", 18: "R_X86_64_TPOFF64", 24: "R_X86_64_PC64",
	25: "R_X86_64_GOTOFF64", 26: "R_X86_64_GOTPC32", 32: "R_X86_64_SIZE32",
	33: "R_X86_64_SIZE64", 37: "R_X86_64_IRELATIVE", 41: "R_X86_64_GOTPCRELX",
	42: "R_X86_64_REX_GOTPCRELX",
}
