package build

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/toolchain"
)

// TestContainerModeBuildsTheSameBytes runs the build with
// FLUID_TOOLCHAIN=container through a stand-in engine (testdata/fake-docker,
// which maps the container's /src and /out back to the host and runs the
// step with only the variables the container would see), so the whole
// container path — toolchain probe, command construction, path rewriting,
// the output mount — is exercised for real, and the kernel and boot stages
// it produces must be byte-identical to a host build.
func TestContainerModeBuildsTheSameBytes(t *testing.T) {
	if os.Getenv("FLUID_TOOLCHAIN") == "container" {
		t.Skip("the stand-in engine runs the host toolchain; CI in container mode has none (the real engine is exercised by every build step there)")
	}
	hostTC, err := toolchain.Find()
	if err != nil {
		t.Fatalf("host toolchain: %v", err)
	}
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	fake, _ := filepath.Abs("testdata/fake-docker")
	if err := os.Symlink(fake, filepath.Join(bin, "docker")); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "docker.log")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_DOCKER_LOG", log)
	t.Setenv("FAKE_LLVM_BIN", hostTC.LLVMDir)
	t.Setenv("FLUID_TOOLCHAIN", "container")
	t.Setenv("FLUID_CONTAINER_ENGINE", "docker")
	const image = "ghcr.io/fluid-os/toolchain@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	t.Setenv("FLUID_TOOLCHAIN_IMAGE", image)

	build := func(out string) (*Builder, string, BootArtifacts) {
		b, err := New(Options{Root: root, Out: out, Log: io.Discard, Version: "test", Commit: "test", SourceDateEpoch: 1})
		if err != nil {
			t.Fatalf("builder: %v", err)
		}
		k, err := b.Kernel(KernelNormal)
		if err != nil {
			t.Fatalf("kernel: %v", err)
		}
		boot, err := b.Boot()
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
	if hb.Toolchain().Container != nil {
		t.Fatal("host mode still in the container")
	}
	for _, pair := range [][2]string{{ck, hk}, {cboot.Stage1, hboot.Stage1}, {cboot.Stage2, hboot.Stage2}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between container and host builds (%d vs %d bytes)", filepath.Base(pair[0]), len(a), len(b))
		}
	}
}
