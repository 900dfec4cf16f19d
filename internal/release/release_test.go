package release

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/release/releasetest"
	"github.com/fluid-os/fluid/internal/testutil"
	"github.com/fluid-os/fluid/internal/verdict"
	releasefiles "github.com/fluid-os/fluid/release"
)

func TestChecksumsRoundTripAndVerify(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "b.img.zst")
	b := filepath.Join(dir, "a.json")
	os.WriteFile(a, []byte("image"), 0o644)
	os.WriteFile(b, []byte("{}"), 0o644)
	sums, err := ComputeChecksums([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	data := sums.Marshal()
	if !strings.HasSuffix(strings.Split(string(data), "\n")[0], "  a.json") {
		t.Fatalf("not sorted by name:\n%s", data)
	}
	// The same format as sha256sum(1): it must accept our file.
	if _, err := exec.LookPath("sha256sum"); err == nil {
		os.WriteFile(filepath.Join(dir, ChecksumsName), data, 0o644)
		cmd := exec.Command("sha256sum", "-c", ChecksumsName)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c rejects our checksums file: %v\n%s", err, out)
		}
	}
	parsed, err := ParseChecksums(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.VerifyFile(a, "b.img.zst"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(a, []byte("imagE"), 0o644)
	var ce *verdict.CheckError
	if err := parsed.VerifyFile(a, "b.img.zst"); !errors.As(err, &ce) || ce.Check != verdict.CheckChecksum {
		t.Fatalf("changed file accepted: %v", err)
	}
	if err := parsed.VerifyFile(a, "unlisted"); !errors.As(err, &ce) || !strings.Contains(err.Error(), "not listed") {
		t.Fatalf("unlisted file: %v", err)
	}
}

func TestParseChecksumsRejects(t *testing.T) {
	tests := map[string]string{
		"empty":      "",
		"short hash": "abcd  x\n",
		"no name":    strings.Repeat("a", 64) + "\n",
		"not hex":    strings.Repeat("z", 64) + "  x\n",
		"duplicate":  strings.Repeat("a", 64) + "  x\n" + strings.Repeat("b", 64) + "  x\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseChecksums([]byte(in)); err == nil {
				t.Fatalf("accepted %q", in)
			}
		})
	}
}

func TestCompressRoundTripDeterministic(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "fluid.img")
	// Mostly zeros with a little data, like a disk image.
	data := make([]byte, 8<<20)
	copy(data[512:], bytes.Repeat([]byte("FLUD kernel "), 5000))
	os.WriteFile(img, data, 0o644)
	z1, z2 := filepath.Join(dir, "1.zst"), filepath.Join(dir, "2.zst")
	if err := CompressFile(img, z1); err != nil {
		t.Fatal(err)
	}
	if err := CompressFile(img, z2); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(z1)
	b2, _ := os.ReadFile(z2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("compressing the same image twice gave different bytes")
	}
	if len(b1) > len(data)/50 {
		t.Fatalf("compressed %d -> %d bytes: not worth downloading", len(data), len(b1))
	}
	out := filepath.Join(dir, "out.img")
	if err := DecompressFile(z1, out); err != nil {
		t.Fatal(err)
	}
	back, _ := os.ReadFile(out)
	if !bytes.Equal(back, data) {
		t.Fatal("round trip changed the image")
	}
	// A corrupt stream leaves nothing behind.
	b1[len(b1)/2] ^= 0xff
	os.WriteFile(z1, b1, 0o644)
	bad := filepath.Join(dir, "bad.img")
	if err := DecompressFile(z1, bad); err == nil {
		t.Fatal("corrupt stream decompressed")
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatal("failed decompression left a file")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// release/policy.json is what SECURITY.md tells cosign users to type and what
// fluid enforces: it must parse, be the project's default policy (IDs apart),
// and its regexp must accept the release workflow on a release tag only.
func TestProjectPolicyFile(t *testing.T) {
	p, err := ParsePolicy(releasefiles.PolicyJSON())
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicy(p.Repository)
	want.RepositoryID, want.OwnerID = p.RepositoryID, p.OwnerID
	if p != want {
		t.Fatalf("release/policy.json = %+v, want %+v", p, want)
	}
	if canon, _ := p.Marshal(); !bytes.Equal(canon, releasefiles.PolicyJSON()) {
		t.Fatalf("release/policy.json is not in the form `go tool mage pinPolicy` writes:\n%s", canon)
	}
	re := regexp.MustCompile(p.IdentityRegexp)
	for tag, ok := range map[string]bool{"v0.1.0": true, "v10.20.30": true, "v1.0.0-rc.1": true, "v1": false, "vfoo": false,
		"v1.2.3.4": false, "v01.2.3": false, "v1.2.3+build": false, "v1.2.3-": false, "nightly": false} {
		if got := re.MatchString(p.IdentityFor(tag)); got != ok {
			t.Errorf("identity for tag %s: match %v, want %v", tag, got, ok)
		}
		if got := verdict.IsReleaseTag(tag); got != ok {
			t.Errorf("verdict.IsReleaseTag(%s) = %v, want %v", tag, got, ok)
		}
	}
	broken := p
	broken.IdentityRegexp = "^.*$"
	if err := broken.Validate(); err == nil {
		t.Fatal("a policy whose regexp disagrees with its fields validated")
	}
	half := p
	half.RepositoryID, half.OwnerID = "123", ""
	if err := half.Validate(); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("a policy pinning only the repository ID validated: %v", err)
	}
	half.OwnerID = "12x"
	if err := half.Validate(); err == nil || !strings.Contains(err.Error(), "not a GitHub ID") {
		t.Fatalf("a non-numeric owner ID validated: %v", err)
	}
	sec, err := os.ReadFile("../../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sec), p.IdentityRegexp) || !strings.Contains(string(sec), p.Issuer) {
		t.Fatalf("SECURITY.md does not show the policy's identity regexp %s and issuer %s", p.IdentityRegexp, p.Issuer)
	}
}

// The SBOM generator, built and run as goreleaser runs it, on its own binary.
func TestSBOMDeterministic(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fluid-sbom")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/fluid-sbom").CombinedOutput(); err != nil {
		t.Fatalf("build fluid-sbom: %v\n%s", err, out)
	}
	var docs [2][]byte
	for i := range docs {
		doc := filepath.Join(dir, "sbom.json")
		cmd := exec.Command(bin, "-o", doc, bin)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fluid-sbom: %v\n%s", err, out)
		}
		docs[i], _ = os.ReadFile(doc)
	}
	if !bytes.Equal(docs[0], docs[1]) {
		t.Fatal("SBOM differs between two runs")
	}
	for _, want := range []string{`"bomFormat": "CycloneDX"`, `"specVersion": "1.5"`,
		"pkg:golang/github.com/klauspost/compress@v", `"timestamp": "2023-11-14T22:13:20Z"`, `"alg": "SHA-256"`} {
		if !bytes.Contains(docs[0], []byte(want)) {
			t.Errorf("SBOM lacks %s", want)
		}
	}
	if _, err := GenerateSBOM(filepath.Join(dir, "missing"), 0); err == nil {
		t.Fatal("SBOM of a missing file")
	}
	if _, err := GenerateSBOM(filepath.Join(dir, "sbom.json"), 0); err == nil {
		t.Fatal("SBOM of a file that is not a Go binary")
	}
}

func TestSigningEnv(t *testing.T) {
	repo := t.TempDir()
	outside := t.TempDir()
	keyOut := filepath.Join(outside, "cosign.key")
	os.WriteFile(keyOut, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), 0o600)
	keyIn := filepath.Join(repo, "cosign.key")
	os.WriteFile(keyIn, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), 0o600)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		wantKey bool
	}{
		{name: "key file outside the repo", env: map[string]string{"COSIGN_KEY_FILE": keyOut, "COSIGN_PASSWORD": ""}, wantKey: true},
		{name: "key file inside the repo", env: map[string]string{"COSIGN_KEY_FILE": keyIn, "COSIGN_PASSWORD": "x"}, wantErr: "inside the repository"},
		{name: "no password", env: map[string]string{"COSIGN_KEY_FILE": keyOut}, wantErr: "COSIGN_PASSWORD"},
		{name: "key in env", env: map[string]string{"COSIGN_KEY": "pem", "COSIGN_PASSWORD": "x"}},
		{name: "github actions", env: map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "https://x"}},
		{name: "nothing", env: map[string]string{}, wantErr: "no key and no OIDC token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := func(k string) string { return tt.env[k] }
			look := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			env, mode, err := SigningEnv(get, look, repo)
			if testutil.WantErr(t, err, tt.wantErr) {
				return
			}
			if mode == "" {
				t.Fatal("no mode")
			}
			if tt.wantKey && (len(env) != 1 || !strings.HasPrefix(env[0], "COSIGN_KEY=-----BEGIN")) {
				t.Fatalf("env = %q", env)
			}
			if strings.Contains(mode, "BEGIN") {
				t.Fatal("mode description leaks the key")
			}
		})
	}
}

// The notes show the commands that verify what was actually made: a
// key-signed release's notes the key commands and no keyless identity, a
// keyless one's the exact certificate identity of its tag.
func TestRenderNotes(t *testing.T) {
	p := DefaultPolicy("fluid-os/fluid")
	ca, key := releasetest.NewCA(t), releasetest.NewKey(t)
	for _, tt := range []struct {
		name          string
		bundle        []byte
		want, wantNot []string
	}{
		{name: "keyless", bundle: ca.Sign(t, releasetest.Workflow("fluid-os/fluid", "v1.2.3", testCommit, "", ""), []byte("x")),
			want:    []string{"release workflow (keyless", "--certificate-identity " + p.IdentityFor("v1.2.3"), "--certificate-oidc-issuer " + p.Issuer},
			wantNot: []string{"--key", "cosign.pub"}},
		{name: "key", bundle: key.Sign(t, []byte("x")),
			want:    []string{"cosign key", "fluid download --version v1.2.3 --key cosign.pub", "cosign verify-blob --key cosign.pub", "--insecure-ignore-tlog"},
			wantNot: []string{"--certificate-identity", p.Issuer}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keyless, err := BundleIsKeyless(tt.bundle)
			if err != nil {
				t.Fatal(err)
			}
			out, err := RenderNotes(releasefiles.NotesTemplate(), NotesData{Tag: "v1.2.3", Commit: "abc", Keyless: keyless, Identity: p.IdentityFor("v1.2.3"), Issuer: p.Issuer})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range append(tt.want, "## Fluid OS v1.2.3", "`abc`", "sha256sum --strict -c -", `grep -Fx '  "version": "v1.2.3",' manifest.json`) {
				if !strings.Contains(out, w) {
					t.Errorf("notes lack %q:\n%s", w, out)
				}
			}
			for _, w := range append(tt.wantNot, "--ignore-missing") {
				if strings.Contains(out, w) {
					t.Errorf("notes hold %q:\n%s", w, out)
				}
			}
		})
	}
	if _, err := RenderNotes([]byte("{{ .Nope }}"), NotesData{}); err == nil {
		t.Fatal("unknown field rendered")
	}
	if _, err := BundleIsKeyless([]byte("{}")); err == nil {
		t.Fatal("an empty bundle has a signing mode")
	}
}
