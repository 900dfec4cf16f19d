package release_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/manifest"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/release/releasetest"
	"github.com/fluid-os/fluid/internal/release/toolcache"
)

// securityBlock returns the sh block that follows `<!-- verify-by-hand: name -->`
// in SECURITY.md, as written there.
func securityBlock(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- verify-by-hand: " + regexp.QuoteMeta(name) + " -->\n```sh\n(.*?)```")
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("SECURITY.md has no sh block after <!-- verify-by-hand: %s -->", name)
	}
	return string(m[1])
}

// TestSecurityCosignCommands runs SECURITY.md's verify-by-hand blocks as
// written — the real cosign CLI (pinned in tools/go.mod), sha256sum, grep —
// with bash -e, in a directory holding a release's files, the version typed
// being the one the user wants. They must accept the genuine release and
// refuse a tampered image or checksums file, a missing image, another
// release's genuine files published under the tag (replay, downgrade), and
// the files of another version than the one asked for.
//
// Key-signed: a real cosign key pair and cosign sign-blob. Keyless: the test
// CA (releasetest) with its CT log, which has no Rekor, so the keyless block
// gets `--trusted-root <the test CA's> --insecure-ignore-tlog` added to its
// cosign line and is otherwise as written.
func TestSecurityCosignCommands(t *testing.T) {
	ctx, root := longTest(t, "needs the cosign binary from tools/go.mod", 10*time.Minute)
	cosign, err := toolcache.Ensure(ctx, root, toolcache.Cosign, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	if err := os.Symlink(cosign, filepath.Join(binDir, "cosign")); err != nil {
		t.Fatal(err)
	}

	keyDir := t.TempDir()
	gen := exec.CommandContext(ctx, cosign, "generate-key-pair")
	gen.Dir = keyDir
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=throwaway")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	ca := releasetest.NewCA(t)
	trustedRoot := ca.WriteTrustedRoot(t, t.TempDir())

	commits := map[string]string{
		"v0.0.9": "0909090909090909090909090909090909090909",
		"v0.1.0": "0101010101010101010101010101010101010101",
		"v0.2.0": "0202020202020202020202020202020202020202",
	}
	signers := map[string]func(t *testing.T, dir, tag string){
		"key": func(t *testing.T, dir, _ string) {
			cmd := exec.CommandContext(ctx, cosign, "sign-blob", "--yes", "--key", filepath.Join(keyDir, "cosign.key"),
				"--new-bundle-format", "--bundle", release.BundleName, "--tlog-upload=false", release.ChecksumsName)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=throwaway")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cosign sign-blob: %v\n%s", err, out)
			}
		},
		"keyless": func(t *testing.T, dir, tag string) {
			sums, _ := os.ReadFile(filepath.Join(dir, release.ChecksumsName))
			b := ca.Sign(t, releasetest.Workflow("fluid-os/fluid", tag, commits[tag], "1", "2"), sums)
			os.WriteFile(filepath.Join(dir, release.BundleName), b, 0o644)
		},
	}
	// makeRelease writes release tag's files into dir, signed as mode signs.
	makeRelease := func(t *testing.T, mode, dir, tag string, unlistManifest bool) {
		raw := filepath.Join(t.TempDir(), "fluid-pgo.img")
		os.WriteFile(raw, bytes.Repeat([]byte("fluid "+tag+" "), 3000), 0o644)
		if err := release.CompressFile(raw, filepath.Join(dir, "fluid-pgo.img.zst")); err != nil {
			t.Fatal(err)
		}
		m := &manifest.Manifest{Project: "fluid-os", Version: tag, Commit: commits[tag], Variant: "pgo", Environment: manifest.Environment{Mode: manifest.ModeLocked}}
		if err := m.Write(filepath.Join(dir, "manifest.json")); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "fluid_0.1.0_linux_amd64.tar.gz"), []byte("an archive the user did not download"), 0o644)
		listed := []string{filepath.Join(dir, "fluid-pgo.img.zst"), filepath.Join(dir, "manifest.json"), filepath.Join(dir, "fluid_0.1.0_linux_amd64.tar.gz")}
		if unlistManifest {
			listed = append(listed[:1], listed[2:]...)
		}
		sums, err := release.ComputeChecksums(listed)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, release.ChecksumsName), sums.Marshal(), 0o644)
		os.Remove(filepath.Join(dir, "fluid_0.1.0_linux_amd64.tar.gz"))
		signers[mode](t, dir, tag)
	}
	flip := func(t *testing.T, p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x20
		os.WriteFile(p, b, 0o644)
	}

	cases := []struct {
		name   string
		files  string // the release whose files are in the directory
		mutate func(t *testing.T, dir string)
		ok     bool
		// unlisted: the signed checksums.txt does not list manifest.json, so
		// the manifest beside it is anyone's.
		unlisted bool
	}{
		{name: "genuine", files: "v0.1.0", ok: true},
		{name: "image tampered", files: "v0.1.0", mutate: func(t *testing.T, d string) { flip(t, filepath.Join(d, "fluid-pgo.img.zst")) }},
		{name: "checksums tampered", files: "v0.1.0", mutate: func(t *testing.T, d string) { flip(t, filepath.Join(d, release.ChecksumsName)) }},
		{name: "image missing", files: "v0.1.0", mutate: func(t *testing.T, d string) { os.Remove(filepath.Join(d, "fluid-pgo.img.zst")) }},
		{name: "manifest missing", files: "v0.1.0", mutate: func(t *testing.T, d string) { os.Remove(filepath.Join(d, "manifest.json")) }},
		{name: "replayed: v0.0.9's genuine files as v0.1.0", files: "v0.0.9"},
		{name: "wrong version: v0.2.0's files", files: "v0.2.0"},
		{name: "manifest not listed in the signed checksums", files: "v0.1.0", unlisted: true},
	}
	for _, mode := range []string{"key", "keyless"} {
		block := securityBlock(t, mode)
		if !strings.Contains(block, "v0.1.0") && mode == "keyless" {
			t.Fatalf("the keyless block names no version:\n%s", block)
		}
		if mode == "keyless" {
			block = strings.Replace(block, "cosign verify-blob", "cosign verify-blob --trusted-root "+trustedRoot+" --insecure-ignore-tlog", 1)
		}
		for _, tt := range cases {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				makeRelease(t, mode, dir, tt.files, tt.unlisted)
				if mode == "key" {
					data, _ := os.ReadFile(filepath.Join(keyDir, "cosign.pub"))
					os.WriteFile(filepath.Join(dir, "cosign.pub"), data, 0o644)
				}
				if tt.mutate != nil {
					tt.mutate(t, dir)
				}
				cmd := exec.CommandContext(ctx, "bash", "-e", "-c", block)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
				out, err := cmd.CombinedOutput()
				if tt.ok && err != nil {
					t.Fatalf("SECURITY.md's %s commands refused the genuine release: %v\n%s", mode, err, out)
				}
				if !tt.ok && err == nil {
					t.Fatalf("SECURITY.md's %s commands accepted %s:\n%s", mode, tt.name, out)
				}
				t.Logf("%v: %s", err, lastLines(string(out), 2))
			})
		}
	}
}
