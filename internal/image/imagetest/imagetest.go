// Package imagetest holds test helpers for packages that build disk images
// without compiling a kernel.
package imagetest

import (
	"bytes"
	"encoding/binary"

	"github.com/fluid-os/fluid/internal/layout"
)

// TinyKernelELF is the smallest kernel image.KernelPayload accepts: an
// x86_64 ELF64 executable with one PT_LOAD segment holding payload,
// loaded at 1 MiB (layout.KernelLoadMin) and linked in the higher half
// (layout.KernelVMA + 1 MiB), entry at its first byte.
func TinyKernelELF(payload []byte) []byte {
	const ehsize, phsize = 64, 56
	const base = layout.KernelLoadMin
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	w(uint16(2))                       // ET_EXEC
	w(uint16(62))                      // EM_X86_64
	w(uint32(1))                       // version
	w(uint64(layout.KernelVMA + base)) // entry
	w(uint64(ehsize))                  // phoff
	w(uint64(0))                       // shoff
	w(uint32(0))                       // flags
	w(uint16(ehsize))                  // ehsize
	w(uint16(phsize))                  // phentsize
	w(uint16(1))                       // phnum
	w(uint16(64))                      // shentsize
	w(uint16(0))                       // shnum
	w(uint16(0))                       // shstrndx
	w(uint32(1))                       // PT_LOAD
	w(uint32(5))                       // R+X
	w(uint64(ehsize + phsize))         // offset
	w(uint64(layout.KernelVMA + base)) // vaddr
	w(uint64(base))                    // paddr
	w(uint64(len(payload)))            // filesz
	w(uint64(len(payload)))            // memsz
	w(uint64(4))                       // align
	b.Write(payload)
	return b.Bytes()
}
