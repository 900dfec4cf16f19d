// Package bootbench measures the boot chain's figures: clean and no-op build
// times (next to `go tool mage -l` alone), QEMU wall time from start to
// guest exit for the default image next to a 512-byte boot sector that only
// writes to the serial port and exits (the floor), guest instructions from
// reset to kernel_main under -icount, the rate at which the kernel loads a
// 32 MiB file for a module (read_file, without -icount: under -icount QEMU's
// disk I/O takes no guest time) and which disk path it used, and kernel
// and image sizes.
//
// These are figures to read, not assertions: nothing here fails on a slow
// machine.
package bootbench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/serial"
	"github.com/fluid-os/fluid/internal/toolchain"
)

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Report holds every figure.
type Report struct {
	CleanBuild      time.Duration `json:"clean_build_ns"`
	CleanBuildHost  time.Duration `json:"clean_build_host_llvm_ns,omitempty"`
	HostLLVM        string        `json:"host_llvm,omitempty"`
	DepsWarm        time.Duration `json:"deps_warm_ns"`
	NoOpBuild       time.Duration `json:"noop_build_ns"`
	MageList        time.Duration `json:"mage_list_ns"`
	BootWall        time.Duration `json:"boot_wall_ns"`
	KernelOnlyWall  time.Duration `json:"kernel_only_boot_wall_ns"`
	FloorWall       time.Duration `json:"floor_wall_ns"`
	ResetToMain     uint64        `json:"instructions_reset_to_kernel_main"`
	ResetToMainNote string        `json:"instructions_note,omitempty"`
	// ResetToEnd: guest instructions of the whole normal run, reset to
	// the FLUID-END line.
	ResetToEnd uint64 `json:"instructions_reset_to_end"`
	// FileLoad is the median rate, in MB/s (10^6 bytes per second), at
	// which the kernel read a 32 MiB file for a module through read_file
	// (QEMU TCG without -icount), by its own TSC timing; FileLoadPath is
	// the kernel's line saying how it reads the disk (DMA or PIO).
	FileLoad      float64 `json:"file_load_mbps"`
	FileLoadPath  string  `json:"file_load_path"`
	KernelELF     int64   `json:"kernel_elf_bytes"`
	KernelPayload int64   `json:"kernel_payload_bytes"`
	KernelMem     int64   `json:"kernel_mem_bytes"`
	Stage2        int64   `json:"stage2_bytes"`
	Image         int64   `json:"image_bytes"`
	Runs          int     `json:"runs"`
}

// Options for Run.
type Options struct {
	Root string    // repository root
	Runs int       // repetitions for timings (median); default 5
	Log  io.Writer // progress
}

// Run measures everything. It builds into a temporary directory for the
// clean build and uses the repository's build/ for the rest.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Runs <= 0 {
		o.Runs = 5
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	r := &Report{Runs: o.Runs}

	// Clean build: a fresh output directory, the real compile graph.
	tmp, err := os.MkdirTemp("", "fluid-bootbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// The locked rootfs through bubblewrap, then (when the host has an
	// LLVM) the same clean build with it, in the same run, alternating.
	tcs := []*toolchain.Toolchain{nil}
	if host, err := toolchain.Find(); err == nil {
		host.Mode = toolchain.ModeHost
		tcs = append(tcs, host)
		r.HostLLVM = firstLine(host.Tools["clang"].Version)
	} else {
		fmt.Fprintf(o.Log, "bootbench: no host LLVM to compare the clean build with (%v)\n", firstLine(err.Error()))
	}
	var clean [2][]time.Duration
	for i := 0; i < 3; i++ {
		for k, tc := range tcs {
			out := filepath.Join(tmp, fmt.Sprintf("clean-%d-%d", k, i))
			if i == 0 {
				fmt.Fprintf(o.Log, "bootbench: clean build into %s\n", out)
			}
			cb, err := build.New(build.Options{Root: o.Root, Out: out, Log: io.Discard, Toolchain: tc})
			if err != nil {
				return nil, err
			}
			start := time.Now()
			if _, err := cb.All(ctx); err != nil {
				return nil, fmt.Errorf("clean build: %w", err)
			}
			clean[k] = append(clean[k], time.Since(start))
		}
	}
	r.CleanBuild = median(clean[0])
	if len(tcs) > 1 {
		r.CleanBuildHost = median(clean[1])
	}

	// No-op build vs `mage -l`: both as a user runs them.
	if _, err := timeCmd(ctx, o.Root, "go", "tool", "mage", "build"); err != nil { // warm up build/
		return nil, err
	}
	fmt.Fprintf(o.Log, "bootbench: timing `go tool mage build` (no-op) and `go tool mage -l`, %d runs each\n", o.Runs)
	var noop, list []time.Duration
	for i := 0; i < o.Runs; i++ {
		d, err := timeCmd(ctx, o.Root, "go", "tool", "mage", "build")
		if err != nil {
			return nil, err
		}
		noop = append(noop, d)
		d, err = timeCmd(ctx, o.Root, "go", "tool", "mage", "-l")
		if err != nil {
			return nil, err
		}
		list = append(list, d)
	}
	r.NoOpBuild, r.MageList = median(noop), median(list)
	var deps []time.Duration
	for i := 0; i < o.Runs; i++ {
		d, err := timeCmd(ctx, o.Root, "go", "tool", "mage", "deps")
		if err != nil {
			return nil, err
		}
		deps = append(deps, d)
	}
	r.DepsWarm = median(deps)

	b, err := build.New(build.Options{Root: o.Root, Log: io.Discard})
	if err != nil {
		return nil, err
	}
	a, err := b.All(ctx)
	if err != nil {
		return nil, err
	}
	floor, err := floorImage(b, a.Boot.Floor)
	if err != nil {
		return nil, err
	}
	// The boot chain alone: the same stages and kernel, no modules, so the
	// kernel goes from reset to FLUID-END without running a workload.
	bare, err := b.Image(ctx, build.ImageSpec{Name: "bootbench-kernel-only.img", Kernel: a.Kernel})
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(o.Log, "bootbench: booting fluid.img, the kernel-only image and the floor sector in turn, %d runs each\n", o.Runs)
	var boot, kern, fl []time.Duration
	for i := 0; i < o.Runs; i++ {
		for _, c := range []struct {
			img  string
			out  *[]time.Duration
			pass bool // must end in FLUID-END pass
		}{{a.Image, &boot, true}, {bare, &kern, false}, {floor, &fl, false}} {
			res, err := qemu.Run(ctx, qemu.Options{Image: c.img, Timeout: 2 * time.Minute})
			if err != nil {
				return nil, err
			}
			if c.pass && res.Outcome != qemu.Passed {
				return nil, fmt.Errorf("boot of %s did not pass: %s", c.img, res)
			}
			if res.ExitStatus < 0 {
				return nil, fmt.Errorf("%s did not exit by itself: %s", c.img, res)
			}
			*c.out = append(*c.out, res.Duration)
		}
	}
	r.BootWall, r.KernelOnlyWall, r.FloorWall = median(boot), median(kern), median(fl)

	// Instructions from reset to kernel_main: -icount makes the TSC count
	// instructions; the kernel prints it first thing.
	var serialLines serial.Parser
	res, err := qemu.Run(ctx, qemu.Options{Image: a.Image, Icount: true, Timeout: 5 * time.Minute, OnLine: serialLines.Line})
	if err != nil {
		return nil, err
	}
	if res.Outcome != qemu.Passed {
		return nil, fmt.Errorf("icount boot did not pass: %s", res)
	}
	tsc, ok := serialLines.TSC()
	r.ResetToMain = tsc
	if !ok {
		r.ResetToMainNote = "the kernel printed no `" + serial.MarkerTSC + "` line"
	}
	if end, ok := serialLines.EndTSC(); ok {
		r.ResetToEnd = end
	} else {
		r.ResetToMainNote += "; the kernel printed no `" + serial.MarkerEndTSC + "` line"
	}

	fmt.Fprintf(o.Log, "bootbench: loading a %d MiB file through read_file, %d runs\n", loadRateBytes>>20, o.Runs)
	img, err := loadRateImage(ctx, b, a.Kernel)
	if err != nil {
		return nil, err
	}
	if r.FileLoad, r.FileLoadPath, err = loadRate(ctx, img, o.Runs); err != nil {
		return nil, err
	}

	r.KernelELF = fileSize(a.Kernel)
	r.Image = fileSize(a.Image)
	r.Stage2 = fileSize(a.Boot.Stage2)
	if _, payload, info, err := image.KernelPayload(a.Kernel); err == nil {
		r.KernelPayload = int64(len(payload))
		r.KernelMem = int64(info.MemSize)
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(b.Out(), "bootbench.json"), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// Table renders the report for a terminal, with the goals next to the figures.
func (r *Report) Table() string {
	var s strings.Builder
	ratio := func(a, b time.Duration) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", float64(a)/float64(b))
	}
	fmt.Fprintf(&s, "%-44s %14s   %s\n", "figure (median of "+strconv.Itoa(r.Runs)+")", "value", "goal / comparison")
	if r.CleanBuildHost > 0 {
		fmt.Fprintf(&s, "%-44s %14s   %s of the same build with host %s (%s); goal ≤ 1.20×\n", "clean build (locked rootfs, bubblewrap)", ms(r.CleanBuild), ratio(r.CleanBuild, r.CleanBuildHost), r.HostLLVM, ms(r.CleanBuildHost))
	} else {
		fmt.Fprintf(&s, "%-44s %14s   (no host LLVM to compare with)\n", "clean build (locked rootfs, bubblewrap)", ms(r.CleanBuild))
	}
	fmt.Fprintf(&s, "%-44s %14s   goal: well under a second\n", "go tool mage deps, toolchain already cached", ms(r.DepsWarm))
	fmt.Fprintf(&s, "%-44s %14s   %s of `go tool mage -l` (%s); goal ≤ 1.50×\n", "no-op build (go tool mage build)", ms(r.NoOpBuild), ratio(r.NoOpBuild, r.MageList), ms(r.MageList))
	fmt.Fprintf(&s, "%-44s %14s   %s of the 512-byte floor (%s); goal ≤ 1.50×\n", "QEMU start → guest exit, boot chain only", ms(r.KernelOnlyWall), ratio(r.KernelOnlyWall, r.FloorWall), ms(r.FloorWall))
	fmt.Fprintf(&s, "%-44s %14s   %s of the floor (includes 7 modules × 3 runs)\n", "QEMU start → guest exit, fluid.img (TCG)", ms(r.BootWall), ratio(r.BootWall, r.FloorWall))
	note := ""
	if r.ResetToMainNote != "" {
		note = r.ResetToMainNote
	}
	fmt.Fprintf(&s, "%-44s %14d   %s\n", "guest instructions reset → kernel_main", r.ResetToMain, note)
	fmt.Fprintf(&s, "%-44s %14d   the whole normal run (7 modules × 3 runs, export)\n", "guest instructions reset → end of run", r.ResetToEnd)
	fmt.Fprintf(&s, "%-44s %14s   TCG, no icount; kernel reads by %s\n", fmt.Sprintf("%d MiB file through read_file", loadRateBytes>>20), fmt.Sprintf("%.2f MB/s", r.FileLoad), strings.TrimPrefix(r.FileLoadPath, serial.MarkerDiskPath))
	fmt.Fprintf(&s, "%-44s %14d\n", "kernel.elf bytes", r.KernelELF)
	fmt.Fprintf(&s, "%-44s %14d   (%d in memory incl. .bss)\n", "kernel payload bytes (loaded by stage 2)", r.KernelPayload, r.KernelMem)
	fmt.Fprintf(&s, "%-44s %14d\n", "stage2.bin bytes", r.Stage2)
	fmt.Fprintf(&s, "%-44s %14d\n", "fluid.img bytes", r.Image)
	return s.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// floorImage pads the 512-byte floor sector to a 1 MiB disk.
func floorImage(b *build.Builder, floorBin string) (string, error) {
	data, err := os.ReadFile(floorBin)
	if err != nil {
		return "", err
	}
	if len(data) != 512 || data[510] != 0x55 || data[511] != 0xAA {
		return "", fmt.Errorf("%s is not a 512-byte boot sector ending in 55 AA", floorBin)
	}
	img := make([]byte, 1<<20)
	copy(img, data)
	out := filepath.Join(b.Out(), "floor.img")
	return out, os.WriteFile(out, img, 0o644)
}

func timeCmd(ctx context.Context, dir, name string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// The load-rate module and its file: loadrate/loadrate.c checks the file against
// the same stream (LOADRATE_BYTES, LOADRATE_SEED there).
const (
	loadRateBytes = 32 << 20
	loadRateSeed  = 0x14
	loadRatePath  = "/bench/blob.bin"
)

// loadRateSource is the load-rate module's source, repository-relative.
const loadRateSource = "internal/bootbench/loadrate/loadrate.c"

// loadRateBlob is loadRateBytes of Marsaglia's xorshift32 (13, 17, 5)
// from loadRateSeed, little-endian words: fluid_module.h's xorshift32.
func loadRateBlob() []byte {
	b := make([]byte, loadRateBytes)
	s := uint32(loadRateSeed)
	for i := 0; i < len(b); i += 4 {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		binary.LittleEndian.PutUint32(b[i:], s)
	}
	return b
}

// loadRateModule compiles loadrate/loadrate.c and the module runtime with
// the module flags through the build's step runner (objects under
// build/bootbench/loadrate/), and packs it as module loadrate.
func loadRateModule(ctx context.Context, b *build.Builder) ([]byte, error) {
	dir := filepath.Join(b.Out(), "bootbench", "loadrate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	src := filepath.Join(b.Root(), loadRateSource)
	hdr := filepath.Join(b.Root(), modfmt.IncludeDir, "fluid_module.h")
	tc := b.Toolchain()
	var objs []string
	for _, c := range []string{src, filepath.Join(b.Root(), modfmt.RuntimeDir, "runtime.c")} {
		obj := filepath.Join(dir, strings.TrimSuffix(filepath.Base(c), ".c")+".o")
		argv := append(append([]string{tc.Path("clang")}, modfmt.CFlags()...), "-I"+modfmt.IncludeDir, "-c", c, "-o", obj)
		if _, err := b.Step(ctx, "CC", c, argv, []string{c, hdr}, []string{obj}); err != nil {
			return nil, fmt.Errorf("load-rate module: %w", err)
		}
		objs = append(objs, obj)
	}
	elf := filepath.Join(dir, "loadrate.elf")
	argv := append(append([]string{tc.Path("ld.lld")}, modfmt.LDFlags()...), "-T", modfmt.LinkerScript, "-o", elf)
	if _, err := b.Step(ctx, "LD", elf, append(argv, objs...), append(objs, modfmt.LinkerScript), []string{elf}); err != nil {
		return nil, fmt.Errorf("load-rate module: %w", err)
	}
	return modfmt.Pack(elf, "loadrate", "baseline")
}

// loadRateImage builds build/bootbench-loadrate.img: the kernel alone
// with the load-rate module and its 32 MiB file.
func loadRateImage(ctx context.Context, b *build.Builder, kernel string) (string, error) {
	mod, err := loadRateModule(ctx, b)
	if err != nil {
		return "", err
	}
	return b.Image(ctx, build.ImageSpec{Name: "bootbench-loadrate.img", Kernel: kernel, Size: 96 << 20, Extra: []image.File{
		{Path: build.ModuleImagePath("loadrate"), Data: mod},
		{Path: loadRatePath, Data: loadRateBlob()},
	}})
}

// loadRate boots loadRateImage's image runs times, without -icount, and
// returns the median MB/s the kernel printed for the read and its line
// saying how it reads the disk.
func loadRate(ctx context.Context, img string, runs int) (float64, string, error) {
	var rates []float64
	path := ""
	for i := 0; i < runs; i++ {
		var rate float64
		var lines []string
		res, err := qemu.Run(ctx, qemu.Options{Image: img, Timeout: 2 * time.Minute, OnLine: func(l string) { lines = append(lines, l) }})
		if err != nil {
			return 0, "", err
		}
		if res.Outcome != qemu.Passed {
			return 0, "", fmt.Errorf("load-rate boot of %s did not pass: %s", img, res)
		}
		for _, l := range lines {
			if strings.HasPrefix(l, serial.MarkerDiskPath) {
				path = l
			}
		}
		for _, f := range res.Files {
			if f.Path == loadRatePath && f.Failed == "" {
				rate = f.MBps
			}
		}
		if rate == 0 {
			return 0, "", fmt.Errorf("load-rate boot of %s: the kernel printed no read line for %s", img, loadRatePath)
		}
		rates = append(rates, rate)
	}
	sort.Float64s(rates)
	return rates[len(rates)/2], path, nil
}
