package toolchain

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
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

// probeScript prints, for each tool, its name, the SHA-256 of its binary and
// the first line of its version output, separated by tabs.
func probeScript(reqs []Requirement, paths map[string]string) string {
	var b strings.Builder
	for _, r := range reqs {
		p := paths[r.Name]
		fmt.Fprintf(&b, "[ -x %s ] && printf '%%s\\t%%s\\t%%s\\n' %s \"$(sha256sum \"$(readlink -f %s)\" | cut -d' ' -f1)\" \"$(%s %s 2>&1 | head -n1)\";\n",
			p, r.Name, p, p, strings.Join(r.VersArgs, " "))
	}
	return b.String()
}

func findInContainer(opts container.Options, lt *LockedTree) (*Toolchain, error) {
	opts.ImagePaths = append(opts.ImagePaths, "/usr/")
	tc := &Toolchain{Mode: ModeContainer, LLVMDir: lt.llvmDirIn(), Tools: map[string]*Tool{}, Container: &opts, Lock: lt}
	var inImage []Requirement
	for _, r := range Requirements {
		if r.InLLVM || r.Name == "nasm" {
			inImage = append(inImage, r)
		}
	}
	paths := lt.inRootfs()
	argv := []string{"sh", "-c", probeScript(inImage, paths)}
	cmd, err := opts.Command(context.Background(), argv, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("%w: %s=container: %v", ErrMissing, container.EnvMode, err)
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s=container, but probing the toolchain image %s failed (%v): %s\nis the engine (%s) installed and the image loaded (go tool mage toolchainImage writes it)? Unset %s to build in the same rootfs through bubblewrap",
			ErrMissing, container.EnvMode, opts.Image, err, strings.TrimSpace(stderr.String()), engineName(opts), container.EnvMode)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		for _, r := range inImage {
			if r.Name == f[0] {
				tc.Tools[r.Name] = &Tool{Name: r.Name, Path: paths[r.Name], SHA256: f[1], Version: f[2]}
			}
		}
	}
	var missing []string
	for _, r := range inImage {
		if _, ok := tc.Tools[r.Name]; !ok {
			missing = append(missing, r.Binary)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the toolchain image %s lacks %s; write it from the lock with `go tool mage toolchainImage` and load it", ErrMissing, opts.Image, strings.Join(missing, ", "))
	}
	m := clangVersionRE.FindStringSubmatch(tc.Tools["clang"].Version)
	if m == nil {
		return nil, fmt.Errorf("%w: could not read clang's version from %q in image %s", ErrMissing, tc.Tools["clang"].Version, opts.Image)
	}
	tc.LLVMMajor, _ = strconv.Atoi(m[1])
	// Host tools the tests and QEMU targets need.
	for _, r := range Requirements {
		if r.Optional {
			if t, err := resolve(r, ""); err == nil {
				tc.Tools[r.Name] = t
			}
		}
	}
	return tc, nil
}

func engineName(o container.Options) string {
	if o.Engine == "" {
		return "docker"
	}
	return o.Engine
}
