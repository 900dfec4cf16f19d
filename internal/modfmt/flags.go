package modfmt

// Paths of the module build inputs, relative to the repository root.
const (
	// IncludeDir holds fluid_module.h, the only header a module includes.
	IncludeDir = "modules/include"
	// LinkerScript links a module at address 0 (see modules/README.md).
	LinkerScript = "modules/module.ld"
	// RuntimeDir holds the freestanding helpers (memcpy & co) that every
	// module links: compile RuntimeDir/*.c with CFlags next to the module's
	// own modules/<name>/*.c.
	RuntimeDir = "modules/lib"
)

// CFlags returns the clang flags every module object is compiled with, for
// every variant. Variants add exactly one thing on top: -O3 replaces -O2 for
// the O3 variant, and the profiling build adds -fprofile-instr-generate or
// -fprofile-instr-use=<file>; nothing else may differ, or the profile would
// not match the optimized build. The caller adds -I<root>/IncludeDir, -c,
// the source and -o. A fresh slice is returned on every call.
func CFlags() []string {
	return []string{
		"--target=x86_64-unknown-none-elf",
		"-std=c11",
		"-ffreestanding",
		"-fno-stack-protector",
		// Position independent: code and data are reached RIP-relative,
		// so only stored addresses need the loader (R_X86_64_RELATIVE).
		"-fpie",
		// Modules run in ring 0 on the kernel stack, where an interrupt
		// pushes its frame right below RSP: no red zone.
		"-mno-red-zone",
		"-O2",
		"-fno-asynchronous-unwind-tables", // no .eh_frame in the image
		"-Wall", "-Wextra", "-Werror",
	}
}

// LDFlags returns the ld.lld flags every module is linked with; the caller
// adds -T <root>/LinkerScript, -o <name>.elf and the objects. `-pie -z
// notext` makes lld record every stored absolute address as an
// R_X86_64_RELATIVE dynamic relocation, which Pack turns into the module's
// relocation table.
func LDFlags() []string {
	return []string{
		"-m", "elf_x86_64",
		"-pie", "-z", "notext",
		"--no-dynamic-linker",
		"-nostdlib",
		"--build-id=none",
		"-e", EntrySymbol,
	}
}
