package image

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluid-os/fluid/internal/layout"
)

// seg is one PT_LOAD segment of a hand-made ELF: paddr is where it loads,
// vaddr where it is linked (0: paddr + layout.KernelVMA, the higher half
// kernel/kernel.ld links at).
type seg struct {
	paddr, vaddr uint64
	data         []byte
	memsz        uint64
}

// elfSpec describes a hand-made 64-bit ELF executable.
type elfSpec struct {
	machine uint16 // 62 = EM_X86_64
	etype   uint16 // 2 = ET_EXEC
	entry   uint64 // physical: written as entry + layout.KernelVMA
	segs    []seg
	notLoad bool // write the segments as PT_NOTE instead of PT_LOAD
}

// writeELF writes a minimal ELF64 executable (no sections) and returns its path.
func writeELF(t testing.TB, dir string, s elfSpec) string {
	t.Helper()
	if s.machine == 0 {
		s.machine = 62
	}
	if s.etype == 0 {
		s.etype = 2
	}
	const ehsize, phsize = 64, 56
	le := binary.LittleEndian
	var b bytes.Buffer
	ident := []byte{0x7f, 'E', 'L', 'F', 2, 1, 1}
	b.Write(append(ident, make([]byte, 16-len(ident))...))
	w := func(v any) { binary.Write(&b, le, v) }
	w(s.etype)
	w(s.machine)
	w(uint32(1))
	w(s.entry + layout.KernelVMA)
	w(uint64(ehsize)) // phoff
	w(uint64(0))      // shoff
	w(uint32(0))      // flags
	w(uint16(ehsize))
	w(uint16(phsize))
	w(uint16(len(s.segs)))
	w(uint16(64))
	w(uint16(0))
	w(uint16(0))
	off := uint64(ehsize + phsize*len(s.segs))
	off = (off + 15) &^ 15
	offsets := make([]uint64, len(s.segs))
	for i, sg := range s.segs {
		offsets[i] = off
		typ := uint32(1) // PT_LOAD
		if s.notLoad {
			typ = 4
		}
		vaddr := sg.vaddr
		if vaddr == 0 {
			vaddr = sg.paddr + layout.KernelVMA
		}
		memsz := sg.memsz
		if memsz == 0 {
			memsz = uint64(len(sg.data))
		}
		w(typ)
		w(uint32(7)) // flags
		w(off)
		w(vaddr)
		w(sg.paddr)
		w(uint64(len(sg.data)))
		w(memsz)
		w(uint64(16))
		off += (uint64(len(sg.data)) + 15) &^ 15
	}
	for i, sg := range s.segs {
		for uint64(b.Len()) < offsets[i] {
			b.WriteByte(0)
		}
		b.Write(sg.data)
	}
	p := filepath.Join(dir, "kernel.elf")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fixtures writes a stage 1, a stage 2 and a kernel ELF and returns a Spec
// using them.
func fixtures(t testing.TB, dir string) Spec {
	t.Helper()
	stage1 := bytes.Repeat([]byte{0x90}, Stage1Size)
	stage1[0], stage1[1] = 0xEB, 0xFE // jmp $
	copy(stage1[Stage1Size-8:], "STAGE1!!")
	stage2 := make([]byte, 3*512+100)
	copy(stage2, "\xEB\x05\x90FLS2")
	copy(stage2[len(stage2)-8:], "STAGE2!!")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kdir := filepath.Join(dir, "k")
	if err := os.Mkdir(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := writeELF(t, kdir, elfSpec{entry: 0x100000, segs: []seg{
		{paddr: 0x100000, data: bytes.Repeat([]byte("KERNTEXT"), 300)},
		{paddr: 0x102000, data: []byte("DATA"), memsz: 0x3000},
	}})
	return Spec{
		Out:       filepath.Join(dir, "out", "fluid.img"),
		Stage1:    write("stage1.bin", stage1),
		Stage2:    write("stage2.bin", stage2),
		KernelELF: kernel,
		Files: []File{
			{Path: "/modules/fib.mod", Data: []byte("fib module bytes")},
			{Path: "/KERNEL.ELF", Src: kernel},
			{Path: "/modules/sum.mod", Data: bytes.Repeat([]byte{1, 2, 3}, 5000)},
			{Path: "/MANIFEST.JSON", Data: []byte("{\"schema\": 1}\n")},
			{Path: "/docs/deep/nested/readme.txt", Data: []byte("nested directories need '..' entries fsck.fat accepts\n")},
		},
	}
}
