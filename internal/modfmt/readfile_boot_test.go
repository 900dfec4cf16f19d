package modfmt_test

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

// blob is n deterministic pseudo-random bytes.
func blob(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 14))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readFileImage builds an image of the kernel alone with the readfile test
// module (and the same source packed again as each of also),
// /data/blob.bin = data, /data/expect.txt saying its size and CRC-32 and
// an empty /data/empty.bin, of size bytes (0: the default).
func readFileImage(t *testing.T, tag string, data []byte, size int64, also ...string) string {
	t.Helper()
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	defer unlock()
	kernel, err := b.Kernel(t.Context(), build.KernelNormal)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	src := filepath.Join(b.Root(), "internal/modfmt/testdata/files/readfile.c")
	spec := build.ImageSpec{Name: "fluid-modfmt-readfile-" + tag + ".img", Kernel: kernel, Size: size, Extra: []image.File{
		{Path: "/modules/readfile.mod", Data: buildTestModule(t, b.Root(), "files", "readfile")},
		{Path: "/data/blob.bin", Data: data},
		{Path: "/data/expect.txt", Data: fmt.Appendf(nil, "%d %08x\n", len(data), crc32.ChecksumIEEE(data))},
		{Path: "/data/empty.bin", Data: []byte{}},
	}}
	for _, name := range also {
		spec.Extra = append(spec.Extra, image.File{Path: "/modules/" + name + ".mod", Data: buildModuleWith(t, b.Root(), name, src, filepath.Join(b.Root(), modfmt.IncludeDir))})
	}
	img, err := b.Image(t.Context(), spec)
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	return img
}

// bootReadFile boots readFileImage's image with o (its Image and Timeout
// set here) and requires a pass.
func bootReadFile(t *testing.T, tag string, data []byte, size int64, o qemu.Options, also ...string) (*qemu.Result, []string) {
	t.Helper()
	o.Image, o.Timeout = readFileImage(t, tag, data, size, also...), 3*time.Minute
	// Without -icount: QEMU's disk I/O takes no guest time under icount,
	// so only a plain run gives a load rate worth reading.
	res, lines := qemutest.Boot(t, o)
	if res.Outcome != qemu.Passed || res.ExitStatus != layout.StatusPass {
		t.Fatalf("outcome %v exit %d, want a pass (exit %d):\n%s", res.Outcome, res.ExitStatus, layout.StatusPass, strings.Join(lines, "\n"))
	}
	return res, lines
}

// readLine matches the kernel's line for a file it read:
// "file PATH: read N bytes in US us (R.RR MB/s)".
var readLine = regexp.MustCompile(`^file (\S+): read (\d+) bytes in (\d+) us \((\d+\.\d\d) MB/s\)$`)

// readLines returns the read line of each path, in order.
func readLines(lines []string) map[string][][]string {
	got := map[string][][]string{}
	for _, l := range lines {
		if m := readLine.FindStringSubmatch(l); m != nil {
			got[m[1]] = append(got[m[1]], m)
		}
	}
	return got
}

func countLines(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

// TestBootReadFile boots two modules built from testdata/files/readfile.c
// (readfile, then readfile2) that read /data/blob.bin through read_file
// three calls each. The module checks the size and CRC-32 the test put in
// /data/expect.txt, the same pointer on a second request and under another
// spelling, NULL and size 0 for a missing file and for a directory, an
// empty file, and that ms moves. Here: the run passes, each file was read
// from the disk once (one read line, with the size), both modules saw the
// blob at the same address (the cache outlives the first module's heap,
// which the guard released), and the missing file and the directory got
// their reason line at every request.
func TestBootReadFile(t *testing.T) {
	data := blob(300*1024+123, 1) // not a whole sector or cluster: the partial tail too
	_, lines := bootReadFile(t, "small", data, 0, qemu.Options{}, "readfile2")
	checkReadFile(t, lines, data)
	// QEMU's pc machine has a PIIX3 IDE controller: the kernel reads by DMA.
	if mode := diskMode(lines); !strings.HasPrefix(mode, "workload: disk reads by bus-master DMA (PCI 00:01.1 8086:7010") {
		t.Errorf("disk line %q, want bus-master DMA through the PIIX3 at 00:01.1", mode)
	}
}

// TestBootReadFilePIO is TestBootReadFile on QEMU's isapc machine (with an
// x86_64 CPU, qemu64, instead of its 486): no PCI,
// so no bus-master controller; the kernel says so and reads by PIO, and
// every check holds the same.
func TestBootReadFilePIO(t *testing.T) {
	data := blob(100*1024+7, 3)
	_, lines := bootReadFile(t, "pio", data, 0, qemu.Options{CPU: "qemu64", Extra: []string{"-machine", "isapc"}}, "readfile2")
	checkReadFile(t, lines, data)
	if mode, want := diskMode(lines), "workload: disk reads by PIO (rep insw): no bus-master IDE controller on PCI bus 0"; mode != want {
		t.Errorf("disk line %q, want %q", mode, want)
	}
}

// diskMode is the kernel's line saying how it reads the disk, or "".
func diskMode(lines []string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, "workload: disk reads by ") {
			return l
		}
	}
	return ""
}

// checkReadFile asserts what TestBootReadFile describes on the serial
// lines of a run of readfile and readfile2 over data.
func checkReadFile(t *testing.T, lines []string, data []byte) {
	t.Helper()
	reads := readLines(lines)
	for path, size := range map[string]int{"/data/blob.bin": len(data), "/data/expect.txt": len(fmt.Sprintf("%d %08x\n", len(data), crc32.ChecksumIEEE(data))), "/data/empty.bin": 0} {
		if len(reads[path]) != 1 {
			t.Errorf("%s: %d read lines, want exactly 1 (read once, then from the cache): %q", path, len(reads[path]), reads[path])
			continue
		}
		if got, _ := strconv.Atoi(reads[path][0][2]); got != size {
			t.Errorf("%s: read line says %d bytes, want %d", path, got, size)
		}
	}
	if len(reads) != 3 {
		t.Errorf("read lines for %d paths, want 3 (blob, expect, empty; the other spelling is the same file): %v", len(reads), reads)
	}
	for _, l := range []string{"file /data/missing.bin: not found", "file /data: a directory, not a file"} {
		if n := countLines(lines, l); n != 6 {
			t.Errorf("%d lines %q, want 6 (two modules, three calls each)", n, l)
		}
	}
	at := regexp.MustCompile(`^readfile: /data/blob\.bin at (0x[0-9a-f]+), (\d+) bytes$`)
	var addrs []string
	for _, l := range lines {
		if m := at.FindStringSubmatch(l); m != nil {
			addrs = append(addrs, m[1])
			if m[2] != strconv.Itoa(len(data)) {
				t.Errorf("module saw %s bytes, want %d", m[2], len(data))
			}
		}
	}
	if len(addrs) != 6 {
		t.Errorf("%d lines giving the blob's address, want 6: %v", len(addrs), addrs)
	}
	for _, a := range addrs {
		if a != addrs[0] {
			t.Errorf("the blob moved: addresses %v, want one address for both modules and every call", addrs)
			break
		}
	}
	for _, m := range []string{"readfile", "readfile2"} {
		re := regexp.MustCompile(`(?m)^module ` + m + `: result ok calls=3 .* checks=(\d+)/(\d+)$`)
		if mm := re.FindStringSubmatch(strings.Join(lines, "\n")); mm == nil || mm[1] != mm[2] {
			t.Errorf("no passing result line for %s with every check ok: %q", m, mm)
		}
	}
}

// TestBootReadFileLarge reads a 32 MiB file through read_file, booted
// without -icount, three ways: with the default RAM (into the heap; the
// load rate and the disk path are logged), with the RAM below 4 GiB cut to
// 32 MiB and 1 GiB in all (the heap cannot hold it: it goes to RAM above
// 4 GiB, through the DMA bounce buffer), and with 32 MiB of RAM in all
// (it fits nowhere: the kernel says so and how to fix it, the module gets
// NULL and fails). The content check is the module's CRC-32.
func TestBootReadFileLarge(t *testing.T) {
	data := blob(32<<20, 2)
	img := readFileImage(t, "32m", data, 96<<20)
	boot := func(o qemu.Options) (*qemu.Result, []string) {
		o.Image, o.Timeout = img, 3*time.Minute
		return qemutest.Boot(t, o)
	}
	pass := func(res *qemu.Result, lines []string, what string) bool {
		if res.Outcome != qemu.Passed || res.ExitStatus != layout.StatusPass {
			t.Errorf("%s: outcome %v exit %d, want a pass:\n%s", what, res.Outcome, res.ExitStatus, strings.Join(lines, "\n"))
			return false
		}
		reads := readLines(lines)["/data/blob.bin"]
		if len(reads) != 1 {
			t.Errorf("%s: %d read lines for /data/blob.bin, want 1", what, len(reads))
			return false
		}
		if got, _ := strconv.Atoi(reads[0][2]); got != len(data) {
			t.Errorf("%s: read line says %s bytes, want %d", what, reads[0][2], len(data))
		}
		t.Logf("%s: 32 MiB through read_file: %s us, %s MB/s (%s)", what, reads[0][3], reads[0][4], diskMode(lines))
		return true
	}

	res, lines := boot(qemu.Options{})
	pass(res, lines, "128 MiB RAM")

	res, lines = boot(qemu.Options{Memory: "1G", Extra: []string{"-machine", "pc,max-ram-below-4g=32M"}})
	if pass(res, lines, "32 MiB below 4 GiB, 1 GiB in all") {
		at := regexp.MustCompile(`^readfile: /data/blob\.bin at 0x([0-9a-f]+), `)
		for _, l := range lines {
			if m := at.FindStringSubmatch(l); m != nil {
				if a, _ := strconv.ParseUint(m[1], 16, 64); a < 1<<32 {
					t.Errorf("the blob is at %#x, want RAM above 4 GiB (the heap is too small for it)", a)
				}
				break
			}
		}
	}

	res, lines = boot(qemu.Options{Memory: "32M", Extra: []string{"-machine", "pc,max-ram-below-4g=32M"}})
	if res.ExitStatus != layout.StatusModuleFail {
		t.Errorf("32 MiB of RAM: outcome %v exit %d, want a module failure (exit %d)", res.Outcome, res.ExitStatus, layout.StatusModuleFail)
	}
	want := regexp.MustCompile(`(?m)^file /data/blob\.bin: 33554432 bytes do not fit in the \d+ MiB of free heap; boot with more RAM \(-m\)$`)
	if !want.MatchString(strings.Join(lines, "\n")) {
		t.Errorf("32 MiB of RAM: no line matching %s", want)
	}
}

// TestReadFileOnHost runs the readfile test module in modrun_host with
// --root DIR holding data/blob.bin, data/expect.txt and data/empty.bin:
// the host stand-ins for read_file and ms pass every check the kernel's
// do (same pointer, a name in another case, NULL for a missing file and a
// directory), each file is read once, and without --root the module is
// told why it gets nothing.
func TestReadFileOnHost(t *testing.T) {
	b := buildtest.Builder(t)
	tc := toolchaintest.Find(t)
	bin := buildModrunHost(t, b.Root())
	mod := filepath.Join(t.TempDir(), "readfile.mod")
	if err := os.WriteFile(mod, buildTestModule(t, b.Root(), "files", "readfile"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	data := blob(70000, 4)
	for name, b := range map[string][]byte{
		"data/blob.bin":   data,
		"data/expect.txt": fmt.Appendf(nil, "%d %08x\n", len(data), crc32.ChecksumIEEE(data)),
		"data/empty.bin":  {},
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := toolchaintest.Run(tc, "", bin, "--root", root, mod)
	if err != nil || !strings.Contains(string(out), "ok readfile calls=3 ") {
		t.Fatalf("readfile on the host with --root: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range []string{
		"file /data/blob.bin: read 70000 bytes from " + filepath.Join(root, "data/blob.bin"),
		"file /data/empty.bin: read 0 bytes from " + filepath.Join(root, "data/empty.bin"),
	} {
		if n := countLines(lines, l); n != 1 {
			t.Errorf("%d lines %q, want 1 (read once, then the same bytes):\n%s", n, l, out)
		}
	}
	for _, l := range []string{"file /data/missing.bin: not found", "file /data: a directory, not a file"} {
		if n := countLines(lines, l); n != 3 {
			t.Errorf("%d lines %q, want 3 (one per call):\n%s", n, l, out)
		}
	}
	out, _ = toolchaintest.Run(tc, "", bin, mod)
	if !strings.Contains(string(out), "file /data/expect.txt: no files on the host: run modrun_host with --root DIR") ||
		!strings.Contains(string(out), "FAIL readfile") {
		t.Errorf("readfile on the host without --root: want the reason and a failure:\n%s", out)
	}
}

// TestBootReadFileNotChargedToDeadline boots slowread, a module with a
// 50 ms deadline whose first read_file loads 4 MiB by PIO (QEMU's isapc:
// about a second): the kernel's reading time is not the module's, so it
// passes, it saw the read take longer than its whole deadline, and its
// cycles (the result line) are fewer than the read's.
func TestBootReadFileNotChargedToDeadline(t *testing.T) {
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	kernel, err := b.Kernel(t.Context(), build.KernelNormal)
	var img string
	if err == nil {
		img, err = b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-slowread.img", Kernel: kernel, Extra: []image.File{
			{Path: "/modules/slowread.mod", Data: buildTestModule(t, b.Root(), "files", "slowread")},
			{Path: "/data/blob.bin", Data: blob(4<<20, 5)},
		}})
	}
	unlock()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, Timeout: 3 * time.Minute, CPU: "qemu64", Extra: []string{"-machine", "isapc"}})
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Passed {
		t.Fatalf("outcome %v exit %d, want a pass:\n%s", res.Outcome, res.ExitStatus, log)
	}
	took := regexp.MustCompile(`(?m)^slowread: read_file took (\d+) ms$`).FindStringSubmatch(log)
	if took == nil {
		t.Fatalf("no line saying how long read_file took:\n%s", log)
	}
	if ms, _ := strconv.Atoi(took[1]); ms <= 3*50 {
		t.Errorf("read_file took %d ms: not longer than the module's whole deadline (3 calls of 50 ms), so this proves nothing; make the file bigger", ms)
	}
	// Nor is it charged to the module's cycles: all three calls together
	// cost less than the read alone (TSC MHz x ms x 1000 cycles).
	mhz := regexp.MustCompile(`(?m)^timer: PIT .* TSC (\d+)\.(\d{3}) MHz `).FindStringSubmatch(log)
	cycles := regexp.MustCompile(`(?m)^module slowread: result ok calls=3 cycles total=(\d+) `).FindStringSubmatch(log)
	if mhz == nil || cycles == nil {
		t.Fatalf("no TSC frequency line or no result line for slowread:\n%s", log)
	}
	khz, _ := strconv.ParseUint(mhz[1]+mhz[2], 10, 64)
	ms, _ := strconv.ParseUint(took[1], 10, 64)
	total, _ := strconv.ParseUint(cycles[1], 10, 64)
	if read := khz * ms; total >= read {
		t.Errorf("slowread's three calls took %d cycles, the read alone %d: the read is counted as the module's work", total, read)
	}
	t.Logf("read_file took %s ms against a deadline of 3 x 50 ms; the module's cycles: %s", took[1], cycles[1])
}

// TestBootReadFileHuge loads a file of $FLUID_READFILE_MIB MiB (say 1200,
// the size of TinyLlama-1.1B Q8_0) with -m 3G on the pc machine, as a user's
// own model is loaded, through the bigread module (testdata/files), which
// checks its size and a CRC-32 of every 4093rd byte: it lands in the heap
// (about 3 GiB there). Skipped unless FLUID_READFILE_MIB is set (it builds
// an image of the file's size plus 64 MiB, at most image.MaxSize).
func TestBootReadFileHuge(t *testing.T) {
	mib, err := strconv.Atoi(os.Getenv("FLUID_READFILE_MIB"))
	if err != nil || mib <= 0 {
		t.Skip("FLUID_READFILE_MIB not set (MiB of the file to load, e.g. 1200)")
	}
	size := int64(mib+64) << 20
	if size > image.MaxSize {
		t.Fatalf("FLUID_READFILE_MIB=%d: the image would be %d MiB, over the %d MiB the image builder makes", mib, size>>20, image.MaxSize>>20)
	}
	data := blob(mib<<20, 6)
	var sample []byte
	for off := 0; off < len(data); off += 4093 {
		sample = append(sample, data[off])
	}
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	kernel, err := b.Kernel(t.Context(), build.KernelNormal)
	var img string
	if err == nil {
		img, err = b.Image(t.Context(), build.ImageSpec{Name: "fluid-modfmt-readfile-huge.img", Kernel: kernel, Size: size, Extra: []image.File{
			{Path: "/modules/bigread.mod", Data: buildTestModule(t, b.Root(), "files", "bigread")},
			{Path: "/data/blob.bin", Data: data},
			{Path: "/data/expect.txt", Data: fmt.Appendf(nil, "%d %08x\n", len(data), crc32.ChecksumIEEE(sample))},
		}})
	}
	unlock()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, Memory: "3G", Timeout: 15 * time.Minute})
	if res.Outcome != qemu.Passed {
		t.Fatalf("outcome %v exit %d, want a pass:\n%s", res.Outcome, res.ExitStatus, strings.Join(lines, "\n"))
	}
	reads := readLines(lines)["/data/blob.bin"]
	if len(reads) != 1 {
		t.Fatalf("%d read lines for /data/blob.bin, want 1", len(reads))
	}
	t.Logf("%d MiB through read_file with -m 3G: %s us, %s MB/s (%s)", mib, reads[0][3], reads[0][4], diskMode(lines))
}

// TestBootReadFileDMAErrorFallsBackToPIO fails one READ DMA of
// /data/blob.bin with a disk error (QEMU's blkdebug, once): the kernel
// says so, reads the same sectors again by PIO, and the run passes with
// the right bytes. The failed command leaves ERR set in the drive's status
// until the next command is written; the driver must not take that for a
// failure of the next command (it did: every later read failed, by PIO
// too, for the rest of the boot).
func TestBootReadFileDMAErrorFallsBackToPIO(t *testing.T) {
	data := blob(300*1024+123, 7)
	img := readFileImage(t, "dmaerr", data, 0)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	at := -1
	for off := 0; off+4096 <= len(raw); off += 512 {
		if bytes.Equal(raw[off:off+4096], data[:4096]) {
			at = off / 512
			break
		}
	}
	if at < 0 {
		t.Fatal("/data/blob.bin's first sectors not found in the image")
	}
	cfg := filepath.Join(t.TempDir(), "blkdebug.conf")
	rule := fmt.Sprintf("[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"%d\"\nonce = \"on\"\n", at+10)
	if err := os.WriteFile(cfg, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, DiskErrors: cfg, Timeout: 3 * time.Minute})
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Passed || res.ExitStatus != layout.StatusPass {
		t.Fatalf("outcome %v exit %d, want a pass after one failed DMA read:\n%s", res.Outcome, res.ExitStatus, log)
	}
	want := fmt.Sprintf("ata: READ DMA at LBA %d: ", at)
	if !strings.Contains(log, want) || !strings.Contains(log, "(device error); reading by PIO from now on") {
		t.Errorf("no line %q...(device error); reading by PIO from now on: the injected error did not hit a DMA read:\n%s", want, log)
	}
	if reads := readLines(lines)["/data/blob.bin"]; len(reads) != 1 {
		t.Errorf("/data/blob.bin: %d read lines, want 1:\n%s", len(reads), log)
	}
}

// TestBootReadFileSlowDisk reads /data/blob.bin from a disk QEMU throttles
// to 64 KiB/s, so one 128 KiB READ DMA takes 2 s: a slow disk, not a
// broken one. The driver's waits are bounded in time (ATA_TIMEOUT_MS), not
// in polls alone: 4,000,000 polls were 0.6 s under TCG, the DMA was
// declared failed, and the drive, still in that command, failed every
// read after it.
func TestBootReadFileSlowDisk(t *testing.T) {
	data := blob(200*1024+5, 8)
	img := readFileImage(t, "slow", data, 0)
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, DriveOptions: "throttling.bps-read=65536", Timeout: 3 * time.Minute})
	log := strings.Join(lines, "\n")
	if res.Outcome != qemu.Passed || res.ExitStatus != layout.StatusPass {
		t.Fatalf("outcome %v exit %d, want a pass from a slow disk:\n%s", res.Outcome, res.ExitStatus, log)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "ata: ") {
			t.Errorf("a slow DMA read taken for a failure: %s", l)
		}
	}
}

// TestBootReadFileDMATimeoutStops: a disk so slow (16 KiB/s) that one
// 128 KiB READ DMA overruns the 5 s timeout leaves the drive inside that
// command. The kernel must not fall back to PIO then (a PIO read would be
// handed the stuck command's data as its own: garbage taken for a FAT or a
// file): it says so, every later read fails naming why, and the module's
// read_file gets NULL with the reason, so the run fails cleanly.
func TestBootReadFileDMATimeoutStops(t *testing.T) {
	data := blob(200*1024+5, 9)
	img := readFileImage(t, "stuck", data, 0)
	res, lines := qemutest.Boot(t, qemu.Options{Image: img, DriveOptions: "throttling.bps-read=16384", Timeout: 3 * time.Minute})
	log := strings.Join(lines, "\n")
	if res.Outcome == qemu.Passed {
		t.Fatalf("a read that timed out passed:\n%s", log)
	}
	for _, want := range []string{"READ DMA did not finish", "no more disk reads this boot", "file /data/blob.bin: unreadable:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	for _, bad := range []string{"reading by PIO from now on", "invalid cluster"} {
		if strings.Contains(log, bad) {
			t.Errorf("the log has %q: a read after the timeout went on:\n%s", bad, log)
		}
	}
}
