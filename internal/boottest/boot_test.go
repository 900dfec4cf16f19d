package boottest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
)

// boot runs img and returns the result and all serial lines.
func boot(t *testing.T, opts qemu.Options) (*qemu.Result, []string) {
	t.Helper()
	return qemutest.Boot(t, opts)
}

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// kernelImage builds a kernel variant and an image holding it (no modules).
func kernelImage(t *testing.T, b *build.Builder, v build.KernelVariant) (elf, img string) {
	t.Helper()
	elf = buildtest.Kernel(t, b, v)
	img = buildtest.Image(t, b, build.ImageSpec{Name: "boottest-" + v.Name + ".img", Kernel: elf})
	return elf, img
}

// TestNormalBoot boots build/fluid.img (`mage build`) and expects a pass,
// with stage 2's progress lines and the kernel banner on serial.
func TestNormalBoot(t *testing.T) {
	qemutest.Need(t)
	a := buildtest.All(t)
	r, lines := boot(t, qemu.Options{Image: a.Image})
	if r.Outcome != qemu.Passed {
		t.Fatalf("normal boot did not pass:\n%s", r)
	}
	if !hasLine(lines, "stage2: ") || !hasLine(lines, "Fluid OS ") {
		t.Errorf("serial lacks the stage 2 progress or the banner:\n%s", strings.Join(lines, "\n"))
	}
}

// TestTestKernel boots the in-kernel test build; every test must pass.
func TestTestKernel(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	_, img := kernelImage(t, b, build.KernelTest)
	// -icount: guest time follows executed instructions, so the timer tests
	// hold however loaded the host is (wall-clock TCG made a 100 ms sleep
	// take 275 ms by the TSC when other QEMUs were running).
	r, lines := boot(t, qemu.Options{Image: img, Icount: true})
	if r.Outcome != qemu.Passed {
		t.Fatalf("test kernel did not pass:\n%s", r)
	}
	if !hasLine(lines, "[ktest] PASS ") || !hasLine(lines, "[ktest] ") {
		t.Errorf("no [ktest] lines:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "[ktest] FAIL") {
			t.Errorf("failing in-kernel test: %s", l)
		}
	}
}

// TestFaultKernels checks that each deliberate fault gets its outcome.
func TestFaultKernels(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	tests := []struct {
		fault   int
		test    bool
		timeout time.Duration
		outcome qemu.Outcome
		status  int
		check   func(t *testing.T, r *qemu.Result)
	}{
		{fault: 1, outcome: qemu.Crashed, status: layout.StatusReset, check: func(t *testing.T, r *qemu.Result) {
			if !strings.Contains(r.Reason, "reset itself") {
				t.Errorf("reason %q does not say the guest reset", r.Reason)
			}
		}},
		{fault: 2, outcome: qemu.Crashed, status: layout.StatusCPUException, check: func(t *testing.T, r *qemu.Result) {
			if len(r.Dump) == 0 || !strings.HasPrefix(r.Dump[0], "*** CPU EXCEPTION 14") {
				t.Errorf("no page-fault dump: %q", r.Dump)
			}
		}},
		{fault: 3, timeout: 10 * time.Second, outcome: qemu.TimedOut, status: -1, check: func(t *testing.T, r *qemu.Result) {
			if !hasLine(r.Tail, "Fluid OS ") && r.Lines < 3 {
				t.Errorf("the spinning kernel printed too little before the timeout: %q", r.Tail)
			}
		}},
		{fault: 4, test: true, outcome: qemu.Failed, status: layout.StatusTestFail, check: func(t *testing.T, r *qemu.Result) {
			if !strings.HasPrefix(r.FailLine, "FLUID-END fail test") {
				t.Errorf("fail line %q", r.FailLine)
			}
		}},
		// A kernel stack overflow: the #PF on the guard page cannot push
		// its frame, so #DF arrives on its own IST stack and dumps.
		{fault: 5, outcome: qemu.Crashed, status: layout.StatusCPUException, check: func(t *testing.T, r *qemu.Result) {
			wantDump(t, r, "*** CPU EXCEPTION 8 (double fault)", "kernel stack overflow", "RIP=", "R15=", "CR3=", "backtrace")
		}},
		// W^X (kernel/mm/vm.c): a write to kernel .text, a call into heap
		// data and a call into stack data each end in a #PF dump naming the
		// address the kernel announced, why it faulted and what it hit.
		{fault: 6, outcome: qemu.Crashed, status: layout.StatusCPUException, check: func(t *testing.T, r *qemu.Result) {
			wantPF(t, r, "fault: writing to kernel .text at ", "protection violation, write access", "kernel .text (read-only, executable)")
		}},
		{fault: 7, outcome: qemu.Crashed, status: layout.StatusCPUException, check: func(t *testing.T, r *qemu.Result) {
			wantPF(t, r, "fault: calling heap data at ", "protection violation, instruction fetch access", "the kernel heap (read-write, no-execute)")
			wantDump(t, r, "page fault: called from 0xffffffff8")
		}},
		{fault: 8, outcome: qemu.Crashed, status: layout.StatusCPUException, check: func(t *testing.T, r *qemu.Result) {
			wantPF(t, r, "fault: calling stack data at ", "protection violation, instruction fetch access", "the kernel stack (read-write, no-execute)")
			wantDump(t, r, "page fault: called from 0xffffffff8")
		}},
	}
	for _, tt := range tests {
		v := build.KernelVariant{Name: fmt.Sprintf("kernel-fault%d", tt.fault), Test: tt.test, Defines: []string{fmt.Sprintf("FLUID_FAULT=%d", tt.fault)}}
		t.Run(v.Name, func(t *testing.T) {
			_, img := kernelImage(t, b, v)
			r, _ := boot(t, qemu.Options{Image: img, Timeout: tt.timeout})
			if r.Outcome != tt.outcome || r.ExitStatus != tt.status {
				t.Fatalf("outcome %v exit %d, want %v exit %d:\n%s", r.Outcome, r.ExitStatus, tt.outcome, tt.status, r)
			}
			tt.check(t, r)
		})
	}
}

// wantDump fails unless every want is part of some line of r's dump.
func wantDump(t *testing.T, r *qemu.Result, wants ...string) {
	t.Helper()
	all := strings.Join(r.Dump, "\n")
	for _, w := range wants {
		if !strings.Contains(all, w) {
			t.Errorf("the exception dump lacks %q:\n%s", w, all)
		}
	}
}

// wantPF checks a W^X fault kernel's #PF dump: the address the kernel
// printed after announce is CR2 in the "page fault at" line, which says
// why, and the next line names the region (vm_describe).
func wantPF(t *testing.T, r *qemu.Result, announce, why, region string) {
	t.Helper()
	var addr string
	for _, l := range r.Tail {
		if strings.HasPrefix(l, announce) {
			addr = strings.TrimPrefix(l, announce)
		}
	}
	if addr == "" {
		t.Fatalf("no %q line before the fault:\n%s", announce, strings.Join(r.Tail, "\n"))
	}
	wantDump(t, r, "*** CPU EXCEPTION 14 (page fault)", "page fault at "+addr+": "+why, "page fault: "+region, "CR2="+strings.TrimPrefix(addr, "0x"))
}

// TestHighMemory boots the test kernel with 6 GiB of RAM: QEMU puts 3 GiB
// of it above 4 GiB, which the kernel must map, report and use: it writes
// and reads back 1 MiB there at boot, and the in-kernel test
// vm_high_memory_when_present checks the mapping and an allocation there.
// (Every in-kernel test's own outcome is TestTestKernel's business.)
func TestHighMemory(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	_, img := kernelImage(t, b, build.KernelTest)
	r, lines := boot(t, qemu.Options{Image: img, Memory: "6G", Icount: true})
	if r.Outcome == qemu.Crashed || r.Outcome == qemu.TimedOut || r.Outcome == qemu.StartFailed {
		t.Fatalf("6 GiB guest did not finish its tests:\n%s", r)
	}
	// The in-kernel tests that need RAM above 4 GiB run only here: a
	// failing one fails this test (a guest that ends in test-fail is not
	// a crash or a timeout).
	for _, l := range lines {
		if strings.HasPrefix(l, "[ktest] FAIL") {
			t.Errorf("failing in-kernel test with 6 GiB: %s", l)
		}
	}
	wantHighMemory(t, lines, "3072 MiB at 0x0000000100000000-0x00000001c0000000")
}

// wantHighMemory checks the test kernel's lines about RAM above 4 GiB: the
// range vm.c reports (above) and the 1 MiB written and read back there.
func wantHighMemory(t *testing.T, lines []string, above string) {
	t.Helper()
	for _, want := range []string{
		"vm: usable RAM above 4 GiB: " + above,
		"vm: high memory: wrote and read back 1024 KiB at 0x0000000100000000",
		"[ktest] PASS vm_high_memory_when_present",
	} {
		if !hasLine(lines, want) {
			t.Errorf("no line %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

// TestHugeMemory boots the test kernel with 64 GiB of RAM, backed by a
// sparse file (share=on: the host commits only the pages the guest
// touches, a few MiB), so it runs on a host with far less RAM. The direct
// map then needs one page directory per GiB, more than vm.c's fixed table
// pages: every E820 range must still be mapped (issue 13), not end in
// "vm: no page-table page left".
func TestHugeMemory(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	_, img := kernelImage(t, b, build.KernelTest)
	backing := filepath.Join(t.TempDir(), "ram")
	r, lines := boot(t, qemu.Options{Image: img, Memory: "64G", Icount: true, Extra: []string{
		"-object", "memory-backend-file,id=fluidram,size=64G,mem-path=" + backing + ",share=on",
		"-machine", "pc,memory-backend=fluidram",
	}})
	if r.Outcome != qemu.Passed {
		t.Fatalf("64 GiB guest did not pass:\n%s", r)
	}
	wantHighMemory(t, lines, "62464 MiB at 0x0000000100000000-0x0000001040000000")
}

// TestNoLongModeCPU boots on a CPU model with long mode switched off:
// stage 2 must refuse it with its message (screen and COM1) and exit 43
// before the kernel runs.
func TestNoLongModeCPU(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	_, img := kernelImage(t, b, build.KernelNormal)
	r, lines := boot(t, qemu.Options{Image: img, CPU: "qemu64,-lm"})
	if r.Outcome != qemu.Failed || r.ExitStatus != layout.StatusBootError {
		t.Fatalf("outcome %v exit %d, want Failed exit %d:\n%s", r.Outcome, r.ExitStatus, layout.StatusBootError, r)
	}
	const want = "stage2: FATAL: this CPU has no long mode (x86_64); Fluid OS needs an x86_64 CPU"
	if r.FailLine != want {
		t.Errorf("fail line %q, want %q", r.FailLine, want)
	}
	if hasLine(lines, "Fluid OS ") {
		t.Errorf("the kernel ran on a CPU without long mode")
	}
}

// TestNoSSE2CPU boots on a long-mode CPU model without FXSR (so no SSE):
// x86_64 modules are compiled for SSE2, so the kernel must refuse the CPU
// with a message naming what is missing instead of crashing every module
// with #UD.
func TestNoSSE2CPU(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	_, img := kernelImage(t, b, build.KernelNormal)
	r, _ := boot(t, qemu.Options{Image: img, CPU: "qemu64,-fxsr"})
	if r.Outcome != qemu.Failed || r.ExitStatus != layout.StatusPanic {
		t.Fatalf("outcome %v exit %d, want Failed exit %d:\n%s", r.Outcome, r.ExitStatus, layout.StatusPanic, r)
	}
	const want = "fpu: CPU has no SSE2 with FXSR (CPUID.1:EDX bits 24, 25, 26)"
	if !strings.Contains(r.FailLine, want) {
		t.Errorf("fail line %q lacks %q", r.FailLine, want)
	}
}

// TestBigKernel boots a kernel whose payload is over 1 MiB (more than a
// 16-bit sector count or one 64 KiB segment covers), padded with .rodata
// whose last byte the kernel checks.
func TestBigKernel(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	v := build.KernelVariant{Name: "kernel-pad1200", Test: true, Defines: []string{"FLUID_PAD_KIB=1200"}}
	elf, img := kernelImage(t, b, v)
	_, _, info, err := image.KernelPayload(elf)
	if err != nil {
		t.Fatal(err)
	}
	if info.PayloadSize <= 1<<20 {
		t.Fatalf("padded kernel payload is only %d bytes; want > 1 MiB", info.PayloadSize)
	}
	r, lines := boot(t, qemu.Options{Image: img, Icount: true}) // test kernel: timer tests need guest time
	if r.Outcome != qemu.Passed {
		t.Fatalf("%d-byte kernel did not boot:\n%s", info.PayloadSize, r)
	}
	if !hasLine(lines, "pad: 1200 KiB") {
		t.Errorf("kernel did not report checking its padding")
	}
}

// TestBootStagesRefuseBadImages corrupts copies of the normal image: stage 1
// must refuse a missing or mis-sized stage 2, and stage 2 a bad kernel
// header or payload, each with its FATAL line and EXIT_BOOT_ERROR.
func TestBootStagesRefuseBadImages(t *testing.T) {
	qemutest.Need(t)
	a := buildtest.All(t)
	orig, err := os.ReadFile(a.Image)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	hdrOff := layout.KernelHdrLBA * layout.SectorSize
	s2 := layout.Stage2LBA * layout.SectorSize
	tests := []struct {
		name    string
		corrupt func(img []byte)
		stage   string // which stage must refuse
	}{
		{name: "stage 2 magic", stage: "stage1", corrupt: func(img []byte) { img[s2+layout.Stage2MagicOffset] = 'X' }},
		{name: "stage 2 size field 0", stage: "stage1", corrupt: func(img []byte) { img[s2+7] = 0 }},
		{name: "bad magic", corrupt: func(img []byte) { img[hdrOff+layout.KHdrOffMagic] = 'X' }},
		{name: "bad header CRC", corrupt: func(img []byte) { img[hdrOff+layout.KHdrOffHdrCRC] ^= 0xFF }},
		{name: "bad payload CRC", corrupt: func(img []byte) { img[hdrOff+layout.SectorSize+100] ^= 0x01 }},
		{name: "bad version, header CRC fixed", corrupt: func(img []byte) {
			le.PutUint32(img[hdrOff+layout.KHdrOffVersion:], 99)
			le.PutUint32(img[hdrOff+layout.KHdrOffHdrCRC:], crc32.ChecksumIEEE(img[hdrOff:hdrOff+layout.KHdrOffHdrCRC]))
		}},
		{name: "load below 1 MiB, header CRC fixed", corrupt: func(img []byte) {
			le.PutUint32(img[hdrOff+layout.KHdrOffLoadAddr:], 0x8000)
			le.PutUint32(img[hdrOff+layout.KHdrOffHdrCRC:], crc32.ChecksumIEEE(img[hdrOff:hdrOff+layout.KHdrOffHdrCRC]))
		}},
		{name: "payload too big, header CRC fixed", corrupt: func(img []byte) {
			le.PutUint32(img[hdrOff+layout.KHdrOffPayloadSz:], (layout.KernelMaxSectors+1)*layout.SectorSize)
			le.PutUint32(img[hdrOff+layout.KHdrOffHdrCRC:], crc32.ChecksumIEEE(img[hdrOff:hdrOff+layout.KHdrOffHdrCRC]))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := append([]byte(nil), orig...)
			tt.corrupt(img)
			p := filepath.Join(t.TempDir(), "corrupt.img")
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
			r, lines := boot(t, qemu.Options{Image: p, Timeout: time.Minute})
			if r.Outcome != qemu.Failed || r.ExitStatus != layout.StatusBootError {
				t.Fatalf("outcome %v exit %d, want Failed exit %d:\n%s", r.Outcome, r.ExitStatus, layout.StatusBootError, r)
			}
			stage := tt.stage
			if stage == "" {
				stage = "stage2"
			}
			if !strings.HasPrefix(r.FailLine, stage+": FATAL: ") {
				t.Errorf("fail line %q, want a %s: FATAL line", r.FailLine, stage)
			}
			if hasLine(lines, "Fluid OS ") {
				t.Errorf("the kernel ran although stage 2 should have refused it")
			}
		})
	}
}

// TestVGABanner reads the screen over QMP once the banner is on serial:
// the kernel prints it to VGA as well.
func TestVGABanner(t *testing.T) {
	qemutest.Need(t)
	a := buildtest.All(t)
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	banner := make(chan string, 1)
	var once sync.Once
	type shot struct {
		screen []string
		err    error
	}
	shots := make(chan shot, 1)
	// kprintf writes COM1 before VGA, so the banner is surely on screen
	// once the line after it arrives on serial.
	seen := false
	opts := qemu.Options{Image: a.Image, QMP: sock, OnLine: func(l string) {
		if seen {
			once.Do(func() { banner <- l })
		}
		if strings.HasPrefix(l, "Fluid OS ") {
			seen = true
		}
	}}
	// Stop the guest right after the banner, read the screen, resume.
	go func() {
		var l string
		select {
		case l = <-banner:
		case <-time.After(qemutest.DefaultTimeout):
			shots <- shot{err: fmt.Errorf("no banner on serial")}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		q, err := qemu.DialQMP(ctx, sock)
		if err != nil {
			shots <- shot{err: err}
			return
		}
		defer q.Close()
		if err := q.Stop(ctx); err != nil {
			shots <- shot{err: err}
			return
		}
		screen, err := q.ReadVGAText(ctx)
		if cerr := q.Cont(ctx); err == nil {
			err = cerr
		}
		_ = l
		shots <- shot{screen: screen, err: err}
	}()
	r, lines := boot(t, opts)
	s := <-shots
	if s.err != nil {
		t.Fatalf("read the screen: %v\n%s", s.err, r)
	}
	if r.Outcome != qemu.Passed {
		t.Errorf("boot with a screen read did not pass:\n%s", r)
	}
	var want string
	for _, l := range lines {
		if strings.HasPrefix(l, "Fluid OS ") {
			want = l
			break
		}
	}
	found := false
	for _, row := range s.screen {
		if strings.TrimSpace(row) == want {
			found = true
		}
	}
	if !found {
		t.Errorf("banner %q not on the VGA screen:\n%s", want, strings.Join(s.screen, "\n"))
	}
}
