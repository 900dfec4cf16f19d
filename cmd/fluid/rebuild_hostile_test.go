package main

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
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/image/imagetest"
	"github.com/fluid-os/fluid/internal/layout"
	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/repro"
)

// rebuildFixture is a clone of a tiny "project" (the go.mod fluid looks
// for, a toolchain lock, one source file, one commit) and release images of
// its commit, whose rebuild (rebuildBuilder) copies the chosen bytes into
// build/ instead of running mage.
type rebuildFixture struct {
	src, commit, lockSum string
}

func newRebuildFixture(t *testing.T, dir, kernel string) *rebuildFixture {
	t.Helper()
	files := map[string]string{
		"go.mod":              "module github.com/fluid-os/fluid\n\ngo 1.24\n",
		"toolchain/lock.json": "{\"llvm_version\": \"18.1.8\"}\n",
		"kernel/main.c":       kernel,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@fluid.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "release")
	sum := sha256.Sum256([]byte(files["toolchain/lock.json"]))
	return &rebuildFixture{src: dir, commit: git("rev-parse", "HEAD"), lockSum: hex.EncodeToString(sum[:])}
}

// manifest is the manifest of a release image of the fixture's commit.
func (f *rebuildFixture) manifest(t *testing.T, variant string) []byte {
	t.Helper()
	m := &manifest.Manifest{Project: "fluid-os", Version: "v0.1.0", Commit: f.commit, SourceDateEpoch: 1700000000, Variant: variant,
		Environment: manifest.Environment{Mode: manifest.ModeLocked, LockSHA256: f.lockSum}}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeImage builds a disk image in dir holding files.
func writeTestImage(t *testing.T, dir string, files []image.File) string {
	t.Helper()
	tmp := t.TempDir()
	stage1, stage2, kernel := filepath.Join(tmp, "stage1.bin"), filepath.Join(tmp, "stage2.bin"), filepath.Join(tmp, "kernel.elf")
	s2 := make([]byte, 512)
	binary.LittleEndian.PutUint32(s2[layout.Stage2MagicOffset:], layout.Stage2Magic)
	os.WriteFile(stage1, make([]byte, image.Stage1Size), 0o644)
	os.WriteFile(stage2, s2, 0o644)
	os.WriteFile(kernel, tinyKernel(), 0o644)
	out := filepath.Join(dir, "fluid-baseline.img")
	if err := image.Build(image.Spec{Out: out, Size: 50 << 20, Stage1: stage1, Stage2: stage2, KernelELF: kernel, Files: files,
		SourceDateEpoch: time.Unix(1700000000, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	return out
}

// tinyKernel is a kernel ELF with one PT_LOAD segment at 1 MiB.
func tinyKernel() []byte { return imagetest.TinyKernelELF([]byte("kernel")) }

// copyBuild is a Builder that "rebuilds" by copying img and man into build/.
func copyBuild(img, man string) repro.Builder {
	return repro.BuilderFunc(func(ctx context.Context, spec repro.Spec, log io.Writer) error {
		os.MkdirAll(filepath.Join(spec.Root, "build"), 0o755)
		for src, dst := range map[string]string{img: repro.ImagePath, man: repro.ManifestPath} {
			data, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(spec.Root, dst), data, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

func zstdFile(t *testing.T, dst string, r io.Reader) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if _, err := io.Copy(enc, r); err != nil {
		t.Fatal(err)
	}
	enc.Close()
	f.Close()
}

// `fluid verify --rebuild` on honest, dishonest and hostile inputs: the
// exit status is the documented one (never a panic's 2), and the temporary
// directories are gone afterwards.
func TestRebuildHostileInputs(t *testing.T) {
	base := t.TempDir()
	fx := newRebuildFixture(t, filepath.Join(base, "a clone with spaces"), "int x;\n")
	dl := filepath.Join(base, "download")
	os.MkdirAll(dl, 0o755)
	man := filepath.Join(base, "manifest-baseline.json")
	os.WriteFile(man, fx.manifest(t, "baseline"), 0o644)
	img := writeTestImage(t, dl, []image.File{{Path: "/manifest.json", Src: man}})
	raw, _ := os.ReadFile(img)
	zst := img + release.CompressedExt
	if err := release.CompressFile(img, zst); err != nil {
		t.Fatal(err)
	}
	// The rebuild's image, one byte different.
	otherImg := filepath.Join(base, "other.img")
	changed := append([]byte(nil), raw...)
	changed[layout.KernelHdrLBA*layout.SectorSize+600] ^= 1
	os.WriteFile(otherImg, changed, 0o644)
	pgoMan := filepath.Join(base, "manifest-pgo.json")
	os.WriteFile(pgoMan, fx.manifest(t, "pgo"), 0o644)
	noManifest := writeTestImage(t, t.TempDir(), []image.File{{Path: "/KERNEL.ELF", Data: []byte("k")}})

	// A cluster chain that loops (go-diskfs read it forever), and one file
	// larger than its chain (go-diskfs panicked: exit 2, a goroutine dump).
	broken := func(name string, edit func(img []byte, fat, root, dirEntry int64)) string {
		b := append([]byte(nil), raw...)
		p := int64(layout.Part1LBA * layout.SectorSize)
		bps, reserved, spf := int64(binary.LittleEndian.Uint16(b[p+11:])), int64(binary.LittleEndian.Uint16(b[p+14:])), int64(binary.LittleEndian.Uint32(b[p+36:]))
		fat := p + reserved*bps
		root := fat + 2*spf*bps
		i := bytes.Index(b[root:root+bps], []byte("MANIFESTJSO"))
		edit(b, fat, root, root+int64(i))
		out := filepath.Join(base, name)
		os.WriteFile(out, b, 0o644)
		return out
	}
	loop := broken("loop.img", func(b []byte, fat, root, e int64) {
		binary.LittleEndian.PutUint32(b[fat+2*4:], 2)              // FAT 1: root -> root
		binary.LittleEndian.PutUint32(b[fat+(root-fat)/2+2*4:], 2) // FAT 2
	})
	short := broken("short.img", func(b []byte, fat, root, e int64) { binary.LittleEndian.PutUint32(b[e+28:], 1<<20) })

	notImageZst := filepath.Join(base, "fluid-pgo.img.zst")
	zstdFile(t, notImageZst, bytes.NewReader(bytes.Repeat([]byte("not an image "), 1<<20)))
	truncated := filepath.Join(base, "truncated.img.zst")
	zdata, _ := os.ReadFile(zst)
	os.WriteFile(truncated, zdata[:len(zdata)/2], 0o644)
	// An image followed by zeros, past the (lowered) bound.
	bomb := filepath.Join(base, "bomb.img.zst")
	zstdFile(t, bomb, io.MultiReader(bytes.NewReader(raw), io.LimitReader(zeros{}, 64<<20)))
	defer func(n int64) { maxImageSize = n }(maxImageSize)
	maxImageSize = 100 << 20
	fifo := filepath.Join(base, "fifo.img")
	syscall.Mkfifo(fifo, 0o644)
	notGit := filepath.Join(base, "not-git")
	os.MkdirAll(notGit, 0o755)
	os.WriteFile(filepath.Join(notGit, "go.mod"), []byte("module github.com/fluid-os/fluid\n"), 0o644)
	otherRepo := newRebuildFixture(t, filepath.Join(base, "other-repo"), "other history\n")

	same := copyBuild(img, man)
	for _, tt := range []struct {
		name    string
		args    []string
		builder repro.Builder
		code    int
		want    string
	}{
		{"identical", []string{img}, same, exitOK, "identical: " + img},
		{"identical compressed", []string{zst}, same, exitOK, "identical: " + zst},
		{"different", []string{img}, copyBuild(otherImg, man), exitDifferent, "kernel payload differs"},
		{"the pgo manifest for the baseline image", []string{"--manifest", pgoMan, img}, same, exitUsage, "leave out --manifest"},
		{"no manifest in the image", []string{noManifest}, same, exitNoRebuild, "partition 1 has no /manifest.json"},
		{"cluster chain loop", []string{loop}, same, exitNoRebuild, "malformed FAT32 file system"},
		{"file larger than its chain", []string{short}, same, exitNoRebuild, "its cluster chain holds"},
		{"zst of something else", []string{notImageZst}, same, exitNoRebuild, "without the Fluid OS MBR"},
		{"truncated zst", []string{truncated}, same, exitNoRebuild, "decompress"},
		{"zst bomb", []string{bomb}, same, exitNoRebuild, "expands past 100 MiB"},
		{"fifo", []string{fifo}, same, exitNoRebuild, "not a regular file"},
		{"source is not a git checkout", []string{"--source", notGit, img}, same, exitNoRebuild, "is not a git checkout"},
		{"commit not in the source", []string{"--source", otherRepo.src, img}, same, exitNoRebuild, "is not in " + otherRepo.src},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			rebuildBuilder = tt.builder
			defer func() { rebuildBuilder = nil }()
			args := append([]string{"verify", "--rebuild", "--source", fx.src}, tt.args...)
			done := make(chan struct{})
			var code int
			var out, errOut string
			go func() {
				defer close(done)
				code, out, errOut = runCLI(t, "", args...)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("fluid verify --rebuild still running after 60s")
			}
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, tt.code, tt.want, out, errOut)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Ctrl-C during the rebuild: exit 3 naming the interruption, the work
// directories removed.
func TestRebuildInterrupted(t *testing.T) {
	base := t.TempDir()
	fx := newRebuildFixture(t, filepath.Join(base, "src"), "int x;\n")
	man := filepath.Join(base, "manifest.json")
	os.WriteFile(man, fx.manifest(t, "baseline"), 0o644)
	img := writeTestImage(t, base, []image.File{{Path: "/manifest.json", Src: man}})
	zst := img + release.CompressedExt
	release.CompressFile(img, zst)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(context.Background())
	rebuildBuilder = repro.BuilderFunc(func(bctx context.Context, spec repro.Spec, log io.Writer) error {
		os.MkdirAll(filepath.Join(spec.Root, "build"), 0o755)
		cancel()
		<-bctx.Done()
		return bctx.Err()
	})
	defer func() { rebuildBuilder = nil }()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"verify", "--rebuild", "--source", fx.src, zst}, env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errb})
	if code != exitNoRebuild || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("exit %d, want %d, interrupted:\n%s%s", code, exitNoRebuild, out.String(), errb.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
	// Decompressing stops at once too.
	err := decompressImage(ctx, zst, filepath.Join(t.TempDir(), "x.img"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("decompress after cancel: %v", err)
	}
}
