package toolchain

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/fluid-os/fluid/internal/container"
)

// Command returns the command that runs a toolchain tool: directly on the
// host, or inside the pinned image in container mode. env is the step's
// environment (in container mode only the variables the container package
// passes through reach the tool).
func (tc *Toolchain) Command(ctx context.Context, argv []string, env []string) (*exec.Cmd, error) {
	if tc.Container != nil {
		return tc.Container.Command(ctx, argv, env)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	return cmd, nil
}

// CommandIn is Command for a step that runs in dir (a host directory the
// step can see: inside the tree, the output directory or a mount).
func (tc *Toolchain) CommandIn(ctx context.Context, dir string, argv []string, env []string) (*exec.Cmd, error) {
	if tc.Container != nil {
		o := *tc.Container
		o.Dir = dir
		return o.Command(ctx, argv, env)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	return cmd, nil
}

// probed is what a tool said about itself inside the sandbox or image.
type probed struct{ SHA256, Version string }

// probeIn runs each tool of paths (name -> path inside opts' root) once
// with its version arguments, in the order of Requirements, and returns
// the SHA-256 of its binary and the first line it printed. A tool that is
// missing or prints nothing is left out; the caller names it.
func probeIn(ctx context.Context, opts container.Options, paths map[string]string) (map[string]probed, error) {
	var script strings.Builder
	for _, r := range Requirements {
		if p, ok := paths[r.Name]; ok {
			fmt.Fprintf(&script, "[ -x %s ] && printf '%%s\\t%%s\\t%%s\\n' %s \"$(sha256sum \"$(readlink -f %s)\" | cut -d' ' -f1)\" \"$(%s %s 2>&1 | head -n1)\";\n",
				p, r.Name, p, p, strings.Join(r.VersArgs, " "))
		}
	}
	cmd, err := opts.Command(ctx, []string{"/bin/sh", "-c", script.String()}, os.Environ())
	if err != nil {
		return nil, err
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	got := map[string]probed{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) == 3 && strings.TrimSpace(f[2]) != "" {
			if _, ok := paths[f[0]]; ok {
				got[f[0]] = probed{SHA256: f[1], Version: strings.TrimSpace(f[2])}
			}
		}
	}
	return got, nil
}

func findInContainer(opts container.Options, lt *LockedTree) (*Toolchain, error) {
	opts.ImagePaths = append(opts.ImagePaths, "/usr/")
	tc := &Toolchain{Mode: ModeContainer, LLVMDir: lt.llvmDirIn(), Tools: map[string]*Tool{}, Container: &opts, Lock: lt}
	paths := lt.inRootfs()
	got, err := probeIn(context.Background(), opts, paths)
	if err != nil {
		return nil, fmt.Errorf("%w: %s=container, but probing the toolchain image %s failed (%v)\nis the engine (%s) installed and the image loaded (go tool mage toolchainImage writes it)? Unset %s to build in the same rootfs through bubblewrap",
			ErrMissing, container.EnvMode, opts.Image, err, engineName(opts), container.EnvMode)
	}
	for name, p := range got {
		tc.Tools[name] = &Tool{Name: name, Path: paths[name], SHA256: p.SHA256, Version: p.Version}
	}
	var missing []string
	for _, r := range Requirements {
		if _, ok := tc.Tools[r.Name]; !ok && paths[r.Name] != "" {
			missing = append(missing, r.Binary)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the toolchain image %s lacks %s; write it from the lock with `go tool mage toolchainImage` and load it", ErrMissing, opts.Image, strings.Join(missing, ", "))
	}
	if err := tc.setMajor(); err != nil {
		return nil, fmt.Errorf("%w (image %s)", err, opts.Image)
	}
	tc.addHostTools() // QEMU, gdb, the FAT tools: the tests and QEMU targets need them
	return tc, nil
}

func engineName(o container.Options) string {
	if o.Engine == "" {
		return "docker"
	}
	return o.Engine
}
