package repro

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/image/imagetest"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/testutil"
)

// fakeRelease stands in for `go tool mage build|pgo`: it builds a real Fluid
// OS disk image (internal/image) whose kernel payload is kernel/main.c and
// whose /manifest.json records what the real build records — the commit,
// SOURCE_DATE_EPOCH, FLUID_VERSION, the toolchain mode and the SHA-256 of
// toolchain/lock.json, the input's hash — into build/fluid.img and
// build/manifest.json, so the image depends on exactly those.
type fakeRelease struct {
	variant string
	saw     *Spec // the spec the build ran with
}

func (f fakeRelease) Build(ctx context.Context, spec Spec, log io.Writer) error {
	if f.saw != nil {
		*f.saw = spec
	}
	return fakeBuild(spec.Root, spec.Getenv, f.variant, spec.Env)
}

// fakeBuild builds in root; its git runs with env (nil: this process's).
func fakeBuild(root string, getenv func(string) string, variant string, env []string) error {
	out := filepath.Join(root, "build")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(root, "kernel", "main.c"))
	if err != nil {
		return err
	}
	lock, err := os.ReadFile(filepath.Join(root, LockFile))
	if err != nil {
		return err
	}
	commit := "unknown"
	git := exec.Command("git", "-C", root, "rev-parse", "HEAD")
	git.Env = env
	if c, err := git.Output(); err == nil {
		commit = strings.TrimSpace(string(c))
	}
	var sde int64
	for _, c := range getenv("SOURCE_DATE_EPOCH") {
		sde = sde*10 + int64(c-'0')
	}
	mode := manifest.ModeLocked // rootfs and container builds are identical
	if getenv("FLUID_TOOLCHAIN") == "host" {
		mode = "host"
	}
	srcSum, lockSum := sha256.Sum256(src), sha256.Sum256(lock)
	m := &manifest.Manifest{
		Project: "fluid-os", Version: getenv("FLUID_VERSION"), Commit: commit, SourceDateEpoch: sde, Variant: variant,
		Environment: manifest.Environment{Mode: mode, LockSHA256: hex.EncodeToString(lockSum[:]), LLVMVersion: "18.1.8"},
		Inputs:      []manifest.FileHash{{Path: "kernel/main.c", SHA256: hex.EncodeToString(srcSum[:])}},
	}
	if m.Environment.Mode == "host" {
		m.Environment = manifest.Environment{Mode: "host"}
	}
	man := filepath.Join(out, "manifest.json")
	if err := m.Write(man); err != nil {
		return err
	}
	stage1, stage2, kernel := filepath.Join(out, "stage1.bin"), filepath.Join(out, "stage2.bin"), filepath.Join(out, "kernel.elf")
	s2 := make([]byte, 512)
	binary.LittleEndian.PutUint32(s2[layout.Stage2MagicOffset:], layout.Stage2Magic)
	if err := os.WriteFile(stage1, make([]byte, image.Stage1Size), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(stage2, s2, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(kernel, tinyELF(append([]byte(variant+":"), src...)), 0o644); err != nil {
		return err
	}
	return image.Build(image.Spec{
		Out: filepath.Join(out, "fluid.img"), Size: 50 << 20, Stage1: stage1, Stage2: stage2, KernelELF: kernel,
		Files:           []image.File{{Path: "/KERNEL.ELF", Src: kernel}, {Path: "/manifest.json", Src: man}},
		SourceDateEpoch: time.Unix(sde, 0).UTC(),
	})
}

// tinyELF is a kernel ELF with one PT_LOAD segment at 1 MiB holding
// payload (imagetest.TinyKernelELF).
func tinyELF(payload []byte) []byte { return imagetest.TinyKernelELF(payload) }

// releaseRepo is a git repository with a kernel source and a toolchain lock.
func releaseRepo(t *testing.T) string {
	t.Helper()
	src := testutil.TempTree(t, map[string]string{
		"kernel/main.c": "const char banner[] = \"fluid\";\n",
		LockFile:        "{\"llvm_version\": \"18.1.8\"}\n",
	})
	gitIn(t, src, "init", "-q")
	commitAll(t, src, "release")
	return src
}

// gitDate is the author and committer date of every commit gitIn makes;
// gitEpoch is the same instant in Unix seconds.
const gitDate, gitEpoch = "2026-01-01T00:00:00Z", "1767225600"

// gitIn runs git in dir as a fixed user at gitDate, failing t on an error,
// and returns its output without surrounding space.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@fluid.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+gitDate, "GIT_COMMITTER_DATE="+gitDate)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitAll(t *testing.T, dir, msg string) {
	t.Helper()
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", msg)
}

// makeRelease builds a "release" image of variant from a copy of src the
// way the release does (its own SOURCE_DATE_EPOCH and version, not the
// rebuild's defaults) and returns the image and manifest paths.
// verifyBaseline verifies the baseline image img against the source tree
// source with the fake builder, failing t (saying what was verified) unless
// it is reproduced.
func verifyBaseline(t *testing.T, img, source, what string) *ReleaseResult {
	t.Helper()
	res, err := VerifyRelease(t.Context(), ReleaseOptions{Image: img, Source: source, Builder: fakeRelease{variant: "baseline"}})
	if err != nil {
		var notes []string
		var diff any
		if res != nil {
			notes, diff = res.Notes, res.ManifestDiff
		}
		t.Fatalf("%s: %v (notes %q, manifest diff %v)", what, err, notes, diff)
	}
	return res
}

func makeRelease(t *testing.T, src, variant, mode string) (img, man string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "release-build")
	if err := CopyTree(context.Background(), src, dir); err != nil {
		t.Fatal(err)
	}
	// Not the commit's time (2026-01-01): the rebuild must take the
	// manifest's SOURCE_DATE_EPOCH, not derive its own.
	env := map[string]string{"SOURCE_DATE_EPOCH": "1700000000", "FLUID_VERSION": "v0.1.0-test", "FLUID_TOOLCHAIN": mode}
	if err := fakeBuild(dir, func(k string) string { return env[k] }, variant, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, ImagePath), filepath.Join(dir, ManifestPath)
}

func TestVerifyReleaseIdenticalAndOneByte(t *testing.T) {
	ctx := context.Background()
	src := releaseRepo(t)
	img, man := makeRelease(t, src, "baseline", "")
	var saw Spec
	opts := ReleaseOptions{Image: img, Source: src, Builder: fakeRelease{variant: "baseline", saw: &saw},
		BaseEnv: append(os.Environ(), "TZ=Asia/Kathmandu", "SOURCE_DATE_EPOCH=1", "FLUID_VERSION=wrong", "FLUID_TOOLCHAIN=host")}
	res, err := VerifyRelease(ctx, opts)
	if err != nil {
		t.Fatalf("honest release: %v (notes %q)", err, res.Notes)
	}
	if !res.Identical() || strings.Join(res.Targets, " ") != "build" || !strings.Contains(res.ClaimFrom, "fluid.img's own /manifest.json") {
		t.Fatalf("result %+v", res)
	}
	if tz := saw.Getenv("TZ"); tz != "Asia/Kathmandu" || saw.Umask != InheritUmask {
		t.Errorf("the rebuild ran with TZ=%q umask %d, want the caller's", tz, saw.Umask)
	}
	if m := saw.Getenv("FLUID_TOOLCHAIN"); m != "rootfs" {
		t.Errorf("the rebuild ran with FLUID_TOOLCHAIN=%q, want rootfs (the caller's host mode overridden)", m)
	}
	// The release's manifest beside the image, same bytes: compared too.
	opts.Manifest, opts.ManifestExplicit = man, true
	if res, err = VerifyRelease(ctx, opts); err != nil || !strings.Contains(res.ClaimFrom, man) {
		t.Fatalf("with --manifest: %v, %+v", err, res)
	}

	// One changed source byte, uncommitted: the rebuild uses it and says so;
	// the difference names the input, the kernel payload and the files.
	p := filepath.Join(src, "kernel", "main.c")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(data, []byte("fluid"), []byte("Fluid"), 1), 0o644)
	res, err = VerifyRelease(ctx, opts)
	if !errors.Is(err, ErrNotReproducible) {
		t.Fatalf("changed byte: err %v", err)
	}
	all := strings.Join(res.ManifestDiff, "\n") + "\n" + res.ImageFirst + "\n" + strings.Join(res.ImageDiff, "\n") + "\n" + strings.Join(res.Notes, "\n")
	for _, want := range []string{
		`.inputs[0 path="kernel/main.c"].sha256`,
		"in the disk image: kernel header sector", // the payload's CRC moves first
		"kernel payload differs",
		"FAT32 partition 1 differs",
		"files /KERNEL.ELF, /manifest.json",
		"uncommitted changes, and the rebuild uses them: kernel/main.c",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("report lacks %q:\n%s", want, all)
		}
	}
	t.Logf("one byte:\n%s", all)

	// The same change committed: HEAD is no longer the manifest's commit,
	// so the manifest's commit is checked out from history: identical.
	commitAll(t, src, "change")
	res, err = VerifyRelease(ctx, opts)
	if err != nil || !strings.Contains(strings.Join(res.Notes, "\n"), "checks out commit") {
		t.Fatalf("moved HEAD: %v, notes %q", err, res.Notes)
	}
}

func TestVerifyReleaseManifestChoice(t *testing.T) {
	ctx := context.Background()
	src := releaseRepo(t)
	baseImg, _ := makeRelease(t, src, "baseline", "")
	pgoImg, pgoMan := makeRelease(t, src, "pgo", "container")

	// The PGO image (built in the container: "locked" all the same) with
	// the release's manifest.json, the PGO one; rebuilt in the container
	// when the caller asks for it.
	var saw Spec
	res, err := VerifyRelease(ctx, ReleaseOptions{Image: pgoImg, Manifest: pgoMan, Source: src, Builder: fakeRelease{variant: "pgo", saw: &saw},
		BaseEnv: append(os.Environ(), "FLUID_TOOLCHAIN=container")})
	if err != nil || strings.Join(res.Targets, " ") != "pgo" || !strings.Contains(res.ClaimFrom, pgoMan) {
		t.Fatalf("pgo: %v %+v", err, res)
	}
	if m := saw.Getenv("FLUID_TOOLCHAIN"); m != "container" {
		t.Errorf("FLUID_TOOLCHAIN=%q, want the caller's container", m)
	}
	// The baseline image with the PGO manifest beside it: compared against
	// its own, with a note; given explicitly: refused, naming both variants.
	res, err = VerifyRelease(ctx, ReleaseOptions{Image: baseImg, Manifest: pgoMan, Source: src, Builder: fakeRelease{variant: "baseline"}})
	if err != nil || !strings.Contains(strings.Join(res.Notes, "\n"), `is the pgo image's manifest (variant "pgo"); fluid.img is compared against its own /manifest.json`) {
		t.Fatalf("baseline beside the pgo manifest: %v, notes %q", err, res.Notes)
	}
	_, err = VerifyRelease(ctx, ReleaseOptions{Image: baseImg, Manifest: pgoMan, ManifestExplicit: true, Source: src, Builder: fakeRelease{variant: "baseline"}})
	if !errors.Is(err, ErrWrongManifest) || !strings.Contains(err.Error(), "leave out --manifest") {
		t.Fatalf("baseline with --manifest of the pgo image: %v", err)
	}
}

func TestVerifyReleaseCannotRebuild(t *testing.T) {
	ctx := context.Background()
	src := releaseRepo(t)
	fake := fakeRelease{variant: "baseline"}
	hostImg, _ := makeRelease(t, src, "baseline", "host")
	other := releaseRepo(t)
	os.WriteFile(filepath.Join(other, "kernel", "main.c"), []byte("other history\n"), 0o644)
	commitAll(t, other, "other")
	foreignImg, _ := makeRelease(t, other, "baseline", "")
	notImage := filepath.Join(t.TempDir(), "fluid-pgo.img")
	os.WriteFile(notImage, bytes.Repeat([]byte{0x28, 0xb5, 0x2f, 0xfd}, 1<<10), 0o644)
	failing := BuilderFunc(func(ctx context.Context, spec Spec, log io.Writer) error { return errors.New("clang: error") })
	okImg, _ := makeRelease(t, src, "baseline", "")

	for _, tt := range []struct {
		name    string
		img     string
		builder Builder
		want    string
	}{
		{"host toolchain", hostImg, fake, `built with the host's LLVM (toolchain_environment.mode is "host"`},
		{"commit not in the source", foreignImg, fake, "is not in " + src},
		{"not an image", notImage, fake, "not a Fluid OS disk image"},
		{"build fails", okImg, failing, "clang: error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyRelease(ctx, ReleaseOptions{Image: tt.img, Source: src, Builder: tt.builder})
			if !errors.Is(err, ErrCannotRebuild) || errors.Is(err, ErrNotReproducible) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrCannotRebuild with %q", err, tt.want)
			}
		})
	}
}

// A lock that is not the manifest's: the rebuild uses the source's and says
// so, and the manifests differ at lock_sha256.
func TestVerifyReleaseOtherLock(t *testing.T) {
	src := releaseRepo(t)
	img, _ := makeRelease(t, src, "baseline", "")
	os.WriteFile(filepath.Join(src, LockFile), []byte("{\"llvm_version\": \"18.1.9\"}\n"), 0o644)
	res, err := VerifyRelease(context.Background(), ReleaseOptions{Image: img, Source: src, Builder: fakeRelease{variant: "baseline"}})
	if !errors.Is(err, ErrNotReproducible) {
		t.Fatalf("err = %v", err)
	}
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "the rebuild uses the source's lock") {
		t.Errorf("notes %q", notes)
	}
	if d := strings.Join(res.ManifestDiff, "\n"); !strings.Contains(d, ".toolchain_environment.lock_sha256") {
		t.Errorf("manifest diff %q", d)
	}
}

func TestReleaseTargets(t *testing.T) {
	for v, want := range map[string]string{"baseline": "build", "pgo": "pgo", "pgo+light": "pgo light", "o3": "error"} {
		got := "error"
		if targets, light, err := ReleaseTargets(v); err == nil {
			got = strings.Join(targets, " ")
			if light {
				got += " light"
			}
		}
		if got != want {
			t.Errorf("ReleaseTargets(%q) = %s, want %s", v, got, want)
		}
	}
}
