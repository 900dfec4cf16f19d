package container

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const testImage = "ghcr.io/fluid-os/fluid-toolchain@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestWrapDocker(t *testing.T) {
	root := "/home/alice/src/fluid"
	argv := []string{
		"/usr/lib/llvm-19/bin/clang", "--target=x86_64-unknown-none-elf",
		"-ffile-prefix-map=/home/alice/src/fluid/=", "-I/home/alice/src/fluid/kernel/include",
		"-c", "/home/alice/src/fluid/kernel/core/main.c",
		"-o", "/home/alice/src/fluid/build/obj/kernel/core/main.o",
		"-I/usr/include", "kernel/rel.c",
	}
	got, err := Wrap(argv, Options{Image: testImage, Root: root, Dir: root + "/build", UID: 1000, GID: 1001})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docker", "run", "--rm", "--network=none", "--read-only", "--tmpfs", "/tmp:rw,exec,mode=1777",
		"--user", "1000:1001",
		"--volume", "/home/alice/src/fluid:/src",
		"--workdir", "/src/build",
		"--env", "HOME=/tmp", "--env", "LANG=C.UTF-8", "--env", "LC_ALL=C.UTF-8", "--env", "TZ=UTC",
		"--env", "SOURCE_DATE_EPOCH", "--env", "LIGHT", "--env", "FLUID_LIGHT", "--env", "FLUID_KTEST",
		"--entrypoint", "/bin/sh", testImage, "-c", `umask "$0" && exec "$@"`, "0022",
		"clang", "--target=x86_64-unknown-none-elf",
		"-ffile-prefix-map=/src/=", "-I/src/kernel/include",
		"-c", "/src/kernel/core/main.c",
		"-o", "/src/build/obj/kernel/core/main.o",
		"-I/usr/include", "kernel/rel.c",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Wrap:\n got %q\nwant %q", got, want)
	}
	// No host path may survive anywhere in the command after the image name.
	img := slices.Index(got, testImage)
	for _, a := range got[img:] {
		if strings.Contains(a, root) {
			t.Errorf("host path leaked into container argument %q", a)
		}
	}
}

func TestWrapPodmanAndOptions(t *testing.T) {
	root := t.TempDir()
	got, err := Wrap([]string{"nasm", "-f", "bin", root + "/boot/stage1.asm"}, Options{
		Engine: "podman", Image: "sha256:" + strings.Repeat("ab", 32), Root: root,
		UID: 0, GID: 0, Umask: "077", PassEnv: []string{"SOURCE_DATE_EPOCH", "TZ"},
		SetEnv: map[string]string{"FLUID_OUT": root + "/build"},
		Mounts: []Mount{{Host: "/opt/cache", Container: "/cache", ReadOnly: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(got, " ")
	for _, want := range []string{
		"podman run --rm", "--security-opt label=disable",
		"--volume /opt/cache:/cache:ro", "--env FLUID_OUT=/src/build",
		"--env SOURCE_DATE_EPOCH", " 077 nasm -f bin /src/boot/stage1.asm",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("podman command lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "keep-id") {
		t.Errorf("rootful podman given --userns=keep-id (it refuses it):\n%s", s)
	}
	rootless, _ := Wrap([]string{"true"}, Options{Engine: "podman", Image: "sha256:" + strings.Repeat("ab", 32), Root: root, UID: 1000, GID: 1000})
	if !slices.Contains(rootless, "--userns=keep-id") {
		t.Errorf("rootless podman without --userns=keep-id: %q", rootless)
	}
	// TZ is fixed to UTC, never passed through from the host.
	if strings.Contains(s, "--env TZ ") || !strings.Contains(s, "--env TZ=UTC") {
		t.Errorf("TZ must be fixed to UTC, not passed through: %s", s)
	}
}

func TestWrapErrors(t *testing.T) {
	root := "/w/tree"
	tests := []struct {
		name string
		argv []string
		opts Options
		want error
	}{
		{"empty argv", nil, Options{Image: testImage, Root: root}, ErrEmptyArgv},
		{"no image", []string{"clang"}, Options{Root: root}, ErrNoImage},
		{"tag not digest", []string{"clang"}, Options{Image: "ubuntu:24.04", Root: root}, ErrNotByDigest},
		{"short digest", []string{"clang"}, Options{Image: "x@sha256:abc", Root: root}, ErrNotByDigest},
		{"bad engine", []string{"clang"}, Options{Engine: "lxc", Image: testImage, Root: root}, ErrBadEngine},
		{"relative root", []string{"clang"}, Options{Image: testImage, Root: "tree"}, ErrRelativeRoot},
		{"arg outside tree", []string{"clang", "-o", "/tmp/x.o"}, Options{Image: testImage, Root: root}, ErrOutsideTree},
		{"dir outside tree", []string{"clang"}, Options{Image: testImage, Root: root, Dir: "/elsewhere"}, ErrOutsideTree},
		{"prefix is not a parent", []string{"clang", "/w/tree2/a.c"}, Options{Image: testImage, Root: root}, ErrOutsideTree},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Wrap(tc.argv, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReplaceDir(t *testing.T) {
	tests := []struct{ in, want string }{
		{"-ffile-prefix-map=/a/b/=", "-ffile-prefix-map=/src/="},
		{"-ffile-prefix-map=/a/b=", "-ffile-prefix-map=/src="},
		{"-I/a/bc", "-I/a/bc"}, // /a/bc is not under /a/b
		{"/a/b:/a/b/x", "/src:/src/x"},
		{"-Wl,-Map,/a/b/build/k.map", "-Wl,-Map,/src/build/k.map"},
	}
	for _, tc := range tests {
		if got := replaceDir(tc.in, "/a/b", "/src"); got != tc.want {
			t.Errorf("replaceDir(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDefaultOptionsAndCommand(t *testing.T) {
	root := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, err := DefaultOptions(root, "", getenv); !errors.Is(err, ErrNoImage) {
		t.Errorf("no image: err = %v, want ErrNoImage", err)
	}
	if _, err := DefaultOptions(root, "ghcr.io/x/y:latest", getenv); !errors.Is(err, ErrNotByDigest) {
		t.Errorf("tag: err = %v, want ErrNotByDigest", err)
	}
	o, err := DefaultOptions(root, testImage, getenv)
	if err != nil || o.Image != testImage {
		t.Fatalf("image from the lock: %+v, %v", o, err)
	}
	env[EnvImage] = "ghcr.io/other/img@sha256:" + strings.Repeat("d", 64)
	env[EnvEngine] = "podman"
	if o, err := DefaultOptions(root, testImage, getenv); err != nil || o.Image != env[EnvImage] || o.Engine != "podman" {
		t.Errorf("override: %+v, %v", o, err)
	}
	cmd, err := o.Command(context.Background(), []string{"/usr/bin/clang", "--version"}, []string{"SOURCE_DATE_EPOCH=1"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Args[0] != "docker" || cmd.Args[len(cmd.Args)-2] != "clang" || !slices.Equal(cmd.Env, []string{"SOURCE_DATE_EPOCH=1"}) {
		t.Errorf("Command = %q env %q", cmd.Args, cmd.Env)
	}
}

// TestWrapBwrap: the bubblewrap line binds the rootfs read-only at /, the
// tree at /src and an outside output directory at /out, unshares every
// namespace, clears the environment down to the fixed variables and the
// passed-through ones (with their values, which bwrap cannot read itself),
// keeps tool paths inside the rootfs, and HostPath inverts the mounts.
func TestWrapBwrap(t *testing.T) {
	o := Options{Engine: Bwrap, Rootfs: "/cache/rootfs", Root: "/home/me/fluid", UID: 1000, GID: 1000,
		Mounts: []Mount{{Host: "/tmp/out", Container: "/out"}}, ImagePaths: []string{"/usr/"}}
	full, err := wrap([]string{"/usr/lib/llvm-18/bin/clang", "-c", "/home/me/fluid/kernel/a.c", "-o", "/tmp/out/a.o", "-ffile-prefix-map=/home/me/fluid=."}, o,
		[]string{"SOURCE_DATE_EPOCH=42", "HOME=/root", "SECRET=x"})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(full, " ")
	for _, want := range []string{
		"bwrap --ro-bind /cache/rootfs / --dev /dev --proc /proc --ro-bind /proc/sys /proc/sys",
		"--tmpfs /tmp --unshare-all --cap-drop ALL",
		"--clearenv", "--bind /home/me/fluid /src", "--bind /tmp/out /out", "--chdir /src",
		"--setenv SOURCE_DATE_EPOCH 42", "--setenv TZ UTC", "--setenv HOME /tmp",
		"-- /bin/sh -c", "0022 /usr/lib/llvm-18/bin/clang -c /src/kernel/a.c -o /out/a.o -ffile-prefix-map=/src=.",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("bwrap line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "SECRET") || strings.Contains(line, "--share-net") {
		t.Errorf("bwrap line leaks the host environment or the network:\n%s", line)
	}
	for in, want := range map[string]string{"/src/kernel/a.c": "/home/me/fluid/kernel/a.c", "/out/x/y.o": "/tmp/out/x/y.o", "/src": "/home/me/fluid"} {
		if got, ok := o.HostPath(in); !ok || got != want {
			t.Errorf("HostPath(%s) = %q %v, want %q", in, got, ok, want)
		}
	}
	if _, ok := o.HostPath("/usr/lib/llvm-18/lib/clang/18/include/stdint.h"); ok {
		t.Error("HostPath mapped a rootfs path to the host")
	}
	if _, err := Wrap([]string{"clang"}, Options{Engine: Bwrap, Root: "/x"}); !errors.Is(err, ErrNoImage) {
		t.Errorf("bwrap without a rootfs: %v", err)
	}
}

// TestEntrypointScriptRuns runs, on the host, exactly what Wrap tells the
// container's /bin/sh to run: the umask is applied and the step's argv
// arrives intact, spaces and quotes included.
func TestEntrypointScriptRuns(t *testing.T) {
	root := t.TempDir()
	full, err := Wrap([]string{"sh", "-c", `umask; printf '%s|' "$@"`, "step", "a b", `c'd`, "$HOME"}, Options{Image: testImage, Root: root, Umask: "0077"})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(full, testImage)
	if i < 2 || full[i-2] != "--entrypoint" || full[i-1] != "/bin/sh" {
		t.Fatalf("no /bin/sh entrypoint before the image: %q", full)
	}
	out, err := exec.Command("/bin/sh", full[i+1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got, want := string(out), "0077\na b|c'd|$HOME|"; got != want {
		t.Errorf("entrypoint ran %q, want %q", got, want)
	}
}
