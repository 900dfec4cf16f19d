package build

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// TestContainerModeBuildsTheSameBytes runs the build with
// FLUID_TOOLCHAIN=container through a stand-in engine (testdata/fake-docker,
// which runs each step with bubblewrap in the locked rootfs — the same
// bytes as the OCI image — with the --volume, --workdir and --env options
// the container package built), so the whole container path — toolchain
// probe, command construction, path rewriting, the output mount — is
// exercised for real, and the kernel and boot stages it produces must be
// byte-identical to a rootfs-mode build.
func TestContainerModeBuildsTheSameBytes(t *testing.T) {
	if os.Getenv("FLUID_TOOLCHAIN") == "container" {
		t.Skip("the real engine is exercised by every build step in container mode")
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLUID_TOOLCHAIN", "")
	rtc, err := toolchain.FindIn(root)
	if err != nil || rtc.Rootfs == nil {
		t.Fatalf("rootfs toolchain: %v", err)
	}
	bin := t.TempDir()
	fake, _ := filepath.Abs("testdata/fake-docker")
	if err := os.Symlink(fake, filepath.Join(bin, "docker")); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "docker.log")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_DOCKER_LOG", log)
	t.Setenv("FAKE_ROOTFS", rtc.Rootfs.Root)
	t.Setenv("FLUID_TOOLCHAIN", "container")
	t.Setenv("FLUID_CONTAINER_ENGINE", "docker")
	image := rtc.Lock.Lock.OCI.Ref()

	build := func(out string) (*Builder, string, BootArtifacts) {
		b, err := New(Options{Root: root, Out: out, Log: io.Discard, Version: "test", Commit: "test", SourceDateEpoch: 1})
		if err != nil {
			t.Fatalf("builder: %v", err)
		}
		k, err := b.Kernel(t.Context(), KernelNormal)
		if err != nil {
			t.Fatalf("kernel: %v", err)
		}
		boot, err := b.Boot(t.Context())
		if err != nil {
			t.Fatalf("boot stages: %v", err)
		}
		return b, k, boot
	}
	cb, ck, cboot := build(t.TempDir())
	if cb.Toolchain().Container == nil {
		t.Fatal("FLUID_TOOLCHAIN=container did not select container mode")
	}
	calls, _ := os.ReadFile(log)
	if n := strings.Count(string(calls), "run --rm"); n < 10 {
		t.Fatalf("only %d steps went through the engine:\n%s", n, calls)
	}
	for _, want := range []string{"--volume " + root + ":/src", ":/out", image, "-ffile-prefix-map=/src=."} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("engine invocations lack %q", want)
		}
	}
	if strings.Contains(string(calls), "-ffile-prefix-map="+root) {
		t.Errorf("a host path reached the container's command line")
	}

	t.Setenv("FLUID_TOOLCHAIN", "")
	hb, hk, hboot := build(t.TempDir())
	if hb.Toolchain().Mode != toolchain.ModeRootfs {
		t.Fatalf("default mode is %q, want rootfs", hb.Toolchain().Mode)
	}
	for _, pair := range [][2]string{{ck, hk}, {cboot.Stage1, hboot.Stage1}, {cboot.Stage2, hboot.Stage2}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between container and rootfs builds (%d vs %d bytes)", filepath.Base(pair[0]), len(a), len(b))
		}
	}
}

// TestPodmanBuildsTheSameBytes is container mode with a real engine: the
// toolchain image (written by `go tool mage toolchainImage` and loaded with
// `podman load`) named by its image ID in FLUID_TEST_PODMAN_IMAGE. The
// kernel, boot stages, modules and manifest must be byte-identical to the
// bubblewrap build. Opt-in: loading the 730 MB image and one `podman run`
// per step take minutes, and CI machines have no engine.
func TestPodmanBuildsTheSameBytes(t *testing.T) {
	img := os.Getenv("FLUID_TEST_PODMAN_IMAGE")
	if img == "" {
		t.Skip("set FLUID_TEST_PODMAN_IMAGE to the loaded toolchain image's ID (go tool mage toolchainImage prints it) to build with podman")
	}
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	build := func(out string) *Artifacts {
		b, err := New(Options{Root: root, Out: out, Log: io.Discard, Version: "test", Commit: "test", SourceDateEpoch: 1})
		if err != nil {
			t.Fatalf("builder: %v", err)
		}
		a, err := b.All(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Setenv("FLUID_TOOLCHAIN", "container")
	t.Setenv("FLUID_CONTAINER_ENGINE", "podman")
	t.Setenv("FLUID_TOOLCHAIN_IMAGE", img)
	pod := t.TempDir()
	build(pod)
	t.Setenv("FLUID_TOOLCHAIN", "")
	rfs := t.TempDir()
	build(rfs)
	n := 0
	err = filepath.WalkDir(rfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, ".stamps") || d.Name() == ".lock" {
			return err
		}
		rel, _ := filepath.Rel(rfs, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(pod, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the podman and bubblewrap builds", rel)
		}
		n++
		return nil
	})
	if err != nil || n < 20 {
		t.Fatalf("compared %d artifacts: %v", n, err)
	}
}
