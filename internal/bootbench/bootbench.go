// Package bootbench measures the boot chain's figures: clean and no-op build
// times (next to `go tool mage -l` alone), QEMU wall time from start to
// guest exit for the default image next to a 512-byte boot sector that only
// writes to the serial port and exits (the floor), guest instructions from
// reset to kernel_main under -icount, and kernel and image sizes.
//
// These are figures to read, not assertions: nothing here fails on a slow
// machine.
package bootbench

import (
	"context"
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
	ResetToEnd    uint64 `json:"instructions_reset_to_end"`
	KernelELF     int64  `json:"kernel_elf_bytes"`
	KernelPayload int64  `json:"kernel_payload_bytes"`
	KernelMem     int64  `json:"kernel_mem_bytes"`
	Stage2        int64  `json:"stage2_bytes"`
	Image         int64  `json:"image_bytes"`
	Runs          int    `json:"runs"`
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
