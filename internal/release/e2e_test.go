package release_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/build/recipe"
	"github.com/fluid-os/fluid/internal/profile/committed"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/release/toolcache"
	"github.com/fluid-os/fluid/internal/testutil"
)

// TestSnapshotReleaseOffline runs the whole release the way `mage release`
// does, in release.yml's two steps — `mage releaseBuild` (compress the
// images, goreleaser: 6 CLI builds, archives, SBOMs, checksums; no
// signature) and `mage sign` (release.Sign: check the handed-over SHA-256
// of checksums.txt and every file, cosign sign-blob with a throwaway key) —
// offline, in a throwaway git copy of the repository. Then the real cosign CLI and
// `fluid verify` (the goreleaser-built binary) must accept the result, and
// both must refuse it after one byte of the image, the checksums file or the
// bundle is flipped.
func TestSnapshotReleaseOffline(t *testing.T) {
	ctx, root := longTest(t, "builds goreleaser, cosign and six CLI binaries", 25*time.Minute)
	bins, err := toolcache.EnsureAll(ctx, root, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	cosign, goreleaser := bins[toolcache.Cosign], bins[toolcache.Goreleaser]

	work := t.TempDir()
	repo := filepath.Join(work, "repo")
	copyRepo(t, root, repo)
	gitCommit(t, repo)

	check := exec.CommandContext(ctx, goreleaser, "check")
	check.Dir = repo
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("goreleaser check rejects .goreleaser.yaml: %v\n%s", err, out)
	}

	// Inputs: the real release images, built the way `mage release` builds
	// them (baseline and PGO from the committed profiles) under the build lock.
	bld := buildtest.Builder(t)
	pair := buildtest.Locked(t, bld, "release images", func() ([2]*build.Artifacts, error) {
		imgs, err := bld.Release(ctx, committed.Dir{Root: bld.Root()})
		return [2]*build.Artifacts{imgs[recipe.Baseline.Name], imgs[recipe.PGO.Name]}, err
	})
	in := release.Inputs{PGOImage: pair[1].Image, BaselineImage: pair[0].Image, Manifest: pair[1].Manifest}
	t.Logf("inputs: REAL images %s, %s", in.PGOImage, in.BaselineImage)
	assetsDir := filepath.Join(repo, "build", "release-assets")
	prepared, err := release.PrepareAssets(in, assetsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range prepared {
		t.Logf("asset %-26s raw %9d bytes -> %8d bytes", a.Name, a.RawSize, a.Size)
	}

	// A throwaway key pair, outside the repository.
	keyDir := filepath.Join(work, "keys")
	os.MkdirAll(keyDir, 0o700)
	gen := exec.CommandContext(ctx, cosign, "generate-key-pair")
	gen.Dir = keyDir
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=throwaway")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	env := map[string]string{"COSIGN_KEY_FILE": filepath.Join(keyDir, "cosign.key"), "COSIGN_PASSWORD": "throwaway"}
	signEnv, mode, err := release.SigningEnv(func(k string) string { return env[k] },
		func(k string) (string, bool) { v, ok := env[k]; return v, ok }, repo)
	if err != nil {
		t.Fatal(err)
	}
	var glog bytes.Buffer
	build := func(what string) {
		t.Helper()
		glog.Reset()
		start := time.Now()
		err := release.RunGoreleaser(ctx, release.GoreleaserOptions{
			Root: repo, Goreleaser: goreleaser, Snapshot: true, Offline: true,
			Env: []string{"SOURCE_DATE_EPOCH=1767225600"}, Stdout: &glog, Stderr: &glog,
		})
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, tailLines(glog.String(), 60))
		}
		t.Logf("%s (goreleaser snapshot, unsigned) took %s", what, time.Since(start).Round(time.Second))
	}
	build("first build")
	dist := filepath.Join(repo, "build", "dist")
	if _, err := os.Stat(filepath.Join(dist, release.BundleName)); err == nil {
		t.Fatal("goreleaser signed: the build step must leave signing to release.Sign")
	}
	firstSums, _ := os.ReadFile(filepath.Join(dist, release.ChecksumsName))

	// Reproducible: a second run from the same commit gives the same
	// checksums for every asset (binaries, archives, SBOMs, images).
	build("second build (warm)")
	secondSums, _ := os.ReadFile(filepath.Join(dist, release.ChecksumsName))
	if !bytes.Equal(firstSums, secondSums) {
		t.Fatalf("two release runs from one commit differ:\nfirst:\n%s\nsecond:\n%s", firstSums, secondSums)
	}

	// Sign what the build handed over, by its digest, as release.yml's sign
	// job does.
	digest := sha256.Sum256(secondSums)
	var slog bytes.Buffer
	start := time.Now()
	if _, err := release.Sign(ctx, release.SignOptions{
		DistDir: dist, AssetsDir: assetsDir, Cosign: cosign, WantSHA256: hex.EncodeToString(digest[:]),
		Env: append(signEnv, "COSIGN_PASSWORD=throwaway"), Stdout: &slog, Stderr: &slog,
	}); err != nil {
		t.Fatalf("sign: %v\n%s", err, tailLines(slog.String(), 30))
	}
	t.Logf("release.Sign (%s signing) took %s", mode, time.Since(start).Round(time.Second))
	if bytes.Contains(glog.Bytes(), []byte("BEGIN ENCRYPTED")) || bytes.Contains(slog.Bytes(), []byte("BEGIN ENCRYPTED")) {
		t.Fatal("the private key appeared in goreleaser's or cosign's output")
	}

	files, err := release.ReleaseFiles(dist, assetsDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	sort.Strings(names)
	t.Logf("release assets: %s", strings.Join(names, " "))
	want := []string{"checksums.txt", "checksums.txt.sigstore.json", "fluid-baseline.img.zst", "fluid-pgo.img.zst", "manifest.json"}
	for _, osn := range []string{"linux", "darwin", "windows"} {
		for _, arch := range []string{"amd64", "arm64"} {
			ext := ".tar.gz"
			if osn == "windows" {
				ext = ".zip"
			}
			want = append(want, "fluid_0.0.1-snapshot_"+osn+"_"+arch+ext, "fluid_0.0.1-snapshot_"+osn+"_"+arch+".sbom.json")
		}
	}
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("release assets:\n got %v\nwant %v", names, want)
	}
	sums, _ := os.ReadFile(filepath.Join(dist, release.ChecksumsName))
	if bytes.Contains(sums, []byte(release.BundleName)) {
		t.Fatal("checksums.txt lists its own signature bundle (goreleaser refreshed it after signing)")
	}
	var b map[string]any
	bundleData, _ := os.ReadFile(filepath.Join(dist, release.BundleName))
	if err := json.Unmarshal(bundleData, &b); err != nil || !strings.HasPrefix(b["mediaType"].(string), "application/vnd.dev.sigstore.bundle.v0.3") {
		t.Fatalf("bundle is not a protobuf Sigstore bundle v0.3: %v %.200s", err, bundleData)
	}

	// The goreleaser-built fluid for this machine verifies the release.
	fluidBin := ""
	matches, _ := filepath.Glob(filepath.Join(dist, "fluid_"+runtime.GOOS+"_"+runtime.GOARCH+"*", "fluid"))
	if len(matches) == 1 {
		fluidBin = matches[0]
		if fi, err := os.Stat(fluidBin); err == nil {
			t.Logf("fluid CLI binary (%s/%s, -trimpath -s -w): %d bytes", runtime.GOOS, runtime.GOARCH, fi.Size())
		}
	} else {
		t.Fatalf("no goreleaser-built fluid for %s/%s in %s", runtime.GOOS, runtime.GOARCH, dist)
	}
	pub := filepath.Join(keyDir, "cosign.pub")

	// Each case: a fresh copy of the verified set, one byte flipped.
	tests := []struct {
		name   string
		mutate string // file to flip a byte in, "" for none
	}{
		{name: "untouched release"},
		{name: "image flipped", mutate: "fluid-pgo.img.zst"},
		{name: "checksums flipped", mutate: release.ChecksumsName},
		{name: "bundle flipped", mutate: release.BundleName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range files {
				testutil.CopyFile(t, f, filepath.Join(dir, filepath.Base(f)))
			}
			if tt.mutate != "" {
				flipByte(t, filepath.Join(dir, tt.mutate))
			}
			cosignErr := cosignVerify(ctx, t, cosign, pub, dir)
			fluidOut, fluidErr := runFluid(ctx, fluidBin, "verify", "--key", pub,
				filepath.Join(dir, "fluid-pgo.img.zst"), filepath.Join(dir, "fluid-baseline.img.zst"), filepath.Join(dir, "manifest.json"))
			if tt.mutate == "" {
				if cosignErr != nil {
					t.Fatalf("cosign CLI refused the release: %v", cosignErr)
				}
				if fluidErr != nil {
					t.Fatalf("fluid verify refused the release: %v\n%s", fluidErr, fluidOut)
				}
				return
			}
			if cosignErr == nil {
				t.Errorf("cosign verify-blob + sha256sum accepted a flipped %s", tt.mutate)
			} else {
				t.Logf("cosign path refused: %v", firstLine(cosignErr.Error()))
			}
			if fluidErr == nil {
				t.Errorf("fluid verify accepted a flipped %s:\n%s", tt.mutate, fluidOut)
			} else {
				t.Logf("fluid verify refused: %s", firstLine(fluidOut))
			}
			if !strings.Contains(fluidOut, "REFUSED") {
				t.Errorf("fluid verify did not say which check failed:\n%s", fluidOut)
			}
		})
	}
}

// cosignVerify runs the documented cosign CLI steps from SECURITY.md:
// verify-blob on checksums.txt, then sha256sum -c for the assets.
func cosignVerify(ctx context.Context, t *testing.T, cosign, pub, dir string) error {
	empty := filepath.Join(dir, "..", "empty-root.json")
	os.WriteFile(empty, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
	cmd := exec.CommandContext(ctx, cosign, "verify-blob", "--key", pub,
		"--bundle", release.BundleName, "--new-bundle-format", "--insecure-ignore-tlog", "--trusted-root", empty, release.ChecksumsName)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return &cmdErr{err, out}
	}
	cmd = exec.CommandContext(ctx, "sha256sum", "--ignore-missing", "-c", release.ChecksumsName)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return &cmdErr{err, out}
	}
	return nil
}

type cmdErr struct {
	err error
	out []byte
}

func (c *cmdErr) Error() string {
	return c.err.Error() + ": " + strings.TrimSpace(lastLine(string(c.out)))
}

func runFluid(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// copyRepo copies what a release build needs (sources, modules, configs) —
// not build/ — into dst.
func copyRepo(t *testing.T, src, dst string) {
	t.Helper()
	for _, name := range []string{"go.mod", "go.sum", ".goreleaser.yaml", "SECURITY.md", "cmd", "internal", "release"} {
		base := filepath.Join(src, name)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			testutil.CopyFile(t, p, filepath.Join(dst, rel))
			return nil
		})
		if err != nil {
			t.Fatalf("copy %s: %v", name, err)
		}
	}
	os.WriteFile(filepath.Join(dst, ".gitignore"), []byte("/build/\n"), 0o644)
}

func gitCommit(t *testing.T, dir string) {
	t.Helper()
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "-A"},
		{"-c", "user.name=fluid test", "-c", "user.email=test@fluid.invalid", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "snapshot"},
		// goreleaser fills .CommitTimestamp (mod_timestamp, archive times)
		// only when the repository has a remote; a real clone has one.
		{"remote", "add", "origin", "https://github.com/fluid-os/fluid.git"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// longTest skips t under -short (testutil.Long, saying why) and returns a
// context that ends after timeout, and the repository root.
func longTest(t *testing.T, why string, timeout time.Duration) (context.Context, string) {
	t.Helper()
	testutil.Long(t, why)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx, testutil.Root(t)
}

// flipByte changes one byte in the middle of a file. In the bundle it hits the
// base64 signature, so the JSON stays well-formed and only the signature is wrong.
func flipByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := len(data) / 2
	if j := bytes.Index(data, []byte(`"signature":"`)); j >= 0 && strings.HasSuffix(path, ".sigstore.json") {
		i = j + len(`"signature":"`) + 12
		if data[i] == 'A' {
			data[i] = 'B'
		} else {
			data[i] = 'A'
		}
	} else {
		data[i] ^= 0x01
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}
