package container

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const testImage = "ghcr.io/fluid-os/fluid-toolchain@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestWrapDocker(t *testing.T) {
	root := "/home/alice/src/fluid"
	argv := []string{
		"/usr/lib/llvm-19/bin/clang", "--target=i686-unknown-none-elf",
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
		"clang", "--target=i686-unknown-none-elf",
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
		"podman run --rm", "--userns=keep-id", "--security-opt label=disable",
		"--volume /opt/cache:/cache:ro", "--env FLUID_OUT=/src/build",
		"--env SOURCE_DATE_EPOCH", " 077 nasm -f bin /src/boot/stage1.asm",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("podman command lacks %q:\n%s", want, s)
		}
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

func TestLock(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, ".github/toolchain"), 0o755); err != nil {
		t.Fatal(err)
	}
	df := []byte("FROM ubuntu@sha256:" + strings.Repeat("0", 64) + "\n")
	if err := os.WriteFile(filepath.Join(root, DockerfilePath), df, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := DockerfileSHA256(root)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, LockFile), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("# comment\nimage=ghcr.io/fluid-os/fluid-toolchain\ndigest=\ndockerfile-sha256=" + sum + "\n")
	lock, err := CheckLock(root)
	if err != nil {
		t.Fatalf("CheckLock: %v", err)
	}
	if lock.Ref() != "" {
		t.Errorf("no digest yet, Ref = %q", lock.Ref())
	}
	if _, err := DefaultOptions(root, func(string) string { return "" }); !errors.Is(err, ErrNoImage) {
		t.Errorf("DefaultOptions without a digest: err = %v, want ErrNoImage", err)
	}

	digest := "sha256:" + strings.Repeat("c", 64)
	write("image=ghcr.io/fluid-os/fluid-toolchain\ndigest=" + digest + "\ndockerfile-sha256=" + sum + "\n")
	opts, err := DefaultOptions(root, func(k string) string {
		if k == EnvEngine {
			return "podman"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Image != "ghcr.io/fluid-os/fluid-toolchain@"+digest || opts.Engine != "podman" {
		t.Errorf("DefaultOptions = %+v", opts)
	}

	// A changed Dockerfile makes the lock stale, and the error says what to do.
	if err := os.WriteFile(filepath.Join(root, DockerfilePath), append(df, "RUN true\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckLock(root); err == nil || !strings.Contains(err.Error(), "Dockerfile changed") {
		t.Errorf("stale lock: err = %v", err)
	}

	for _, bad := range []string{
		"digest=sha256:" + strings.Repeat("c", 64) + "\n",             // no image
		"image=x\ndigest=sha256:123\ndockerfile-sha256=" + sum + "\n", // short digest
		"image=x\ndockerfile-sha256=abc\n",                            // short hash
		"image=x\ntag=latest\ndockerfile-sha256=" + sum + "\n",        // unknown key
		"image=x\njust a line\n",                                      // not key=value
	} {
		write(bad)
		if _, err := ReadLock(filepath.Join(root, LockFile)); err == nil {
			t.Errorf("ReadLock accepted %q", bad)
		}
	}
}

func TestFromEnvAndCommand(t *testing.T) {
	root := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if o, err := FromEnv(root, getenv); o != nil || err != nil {
		t.Fatalf("host mode: %v, %v", o, err)
	}
	env[EnvMode] = "container"
	if _, err := FromEnv(root, getenv); err == nil || !strings.Contains(err.Error(), "FLUID_TOOLCHAIN=container") {
		t.Errorf("container mode without a lock or image: %v", err)
	}
	env[EnvImage] = testImage
	o, err := FromEnv(root, getenv)
	if err != nil || o == nil {
		t.Fatalf("container mode with an image: %v, %v", o, err)
	}
	cmd, err := o.Command(context.Background(), []string{"/usr/bin/clang", "--version"}, []string{"SOURCE_DATE_EPOCH=1"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Args[0] != "docker" || cmd.Args[len(cmd.Args)-2] != "clang" || !slices.Equal(cmd.Env, []string{"SOURCE_DATE_EPOCH=1"}) {
		t.Errorf("Command = %q env %q", cmd.Args, cmd.Env)
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
