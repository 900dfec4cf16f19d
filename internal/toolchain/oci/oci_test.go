package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // the helper process sets TZ to zones the host may lack

	"github.com/fluid-os/fluid/internal/testutil"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	testRef   = "ghcr.io/fluid-os/fluid-toolchain:llvm18"
	helperEnv = "FLUID_OCI_TEST_HELPER"
)

// testConfig returns a config like the real one. Created is in the local
// zone on purpose: the package must not let TZ leak into the digest.
func testConfig() Config {
	return Config{
		Created:   time.Unix(1717171717, 0),
		CreatedBy: "mmdebstrap trixie rootfs (test)",
		Env: []string{
			"PATH=/usr/lib/llvm-18/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC",
		},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.source": "https://github.com/fluid-os/fluid",
			"dev.fluid-os.toolchain.lock":     "sha256:0123",
		},
		Architecture: "amd64",
		OS:           "linux",
	}
}

// writeTar writes a small deterministic tar into dir and describes it.
func writeTar(dir string) (string, Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, f := range []struct{ name, body string }{
		{"etc/os-release", "ID=debian\nVERSION_CODENAME=trixie\n"},
		{"usr/lib/llvm-18/bin/clang", "#!/bin/sh\necho clang 18\n"},
		{"usr/share/doc/README", strings.Repeat("fluid ", 500)},
	} {
		hdr := &tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), ModTime: mtime, Typeflag: tar.TypeReg, Uname: "root", Gname: "root"}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", Layer{}, err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return "", Layer{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", Layer{}, err
	}
	path := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", Layer{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return path, Layer{SHA256: hex.EncodeToString(sum[:]), Size: int64(buf.Len())}, nil
}

func makeTar(t *testing.T) (string, Layer) {
	t.Helper()
	path, l, err := writeTar(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path, l
}

// onlyLayer is img's layer, failing t unless it has exactly one.
func onlyLayer(t *testing.T, img v1.Image) v1.Layer {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %v", layers, err)
	}
	return layers[0]
}

// testImage is the image of a new test tarball (makeTar) with testConfig.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	path, l := makeTar(t)
	return mustImage(t, path, l, testConfig())
}

func mustImage(t *testing.T, path string, l Layer, c Config) v1.Image {
	t.Helper()
	img, err := Image(path, l, c)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDigest(t *testing.T, l Layer, c Config) string {
	t.Helper()
	d, err := Digest(l, c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func imageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestMain doubles as the helper process of TestDigestSameInOtherProcess.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain builds the test image under a changed umask in a fresh temp
// dir and prints Digest() and the built image's digest.
func helperMain() int {
	syscall.Umask(0o077)
	dir, err := os.MkdirTemp("", "oci-helper-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	path, l, err := writeTar(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := Digest(l, testConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	img, err := Image(path, l, testConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id, err := img.Digest()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(d, id)
	return 0
}

func TestDigestMatchesImage(t *testing.T) {
	path, l := makeTar(t)
	c := testConfig()
	want := mustDigest(t, l, c)
	img := mustImage(t, path, l, c)
	if got := imageDigest(t, img); got != want {
		t.Fatalf("Image() digest %s, Digest() %s", got, want)
	}

	// ggcr's own way of building the image from the real bytes, with
	// OCI media types and an uncompressed static layer, gives the same digest.
	tarBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ref := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: c.Created.UTC()}
	ref, err = mutate.Append(ref, mutate.Addendum{
		Layer:   static.NewLayer(tarBytes, types.OCIUncompressedLayer),
		History: v1.History{Created: created, CreatedBy: c.CreatedBy},
	})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := ref.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.Architecture, cf.OS, cf.Created = c.Architecture, c.OS, created
	cf.Config = v1.Config{Env: c.Env, WorkingDir: c.WorkingDir, Labels: c.Labels}
	if ref, err = mutate.ConfigFile(ref, cf); err != nil {
		t.Fatal(err)
	}
	if got := imageDigest(t, ref); got != want {
		t.Fatalf("ggcr mutate-built image digest %s, Digest() %s", got, want)
	}

	// The layer is the tarball: uncompressed media type, digest == diffID
	// == sha256 of the file, and its blob is the file's bytes.
	layer := onlyLayer(t, img)
	mt, _ := layer.MediaType()
	dg, _ := layer.Digest()
	di, _ := layer.DiffID()
	if mt != types.OCIUncompressedLayer || dg.Hex != l.SHA256 || di.Hex != l.SHA256 {
		t.Fatalf("layer media type %s digest %s diffID %s, want %s and %s", mt, dg, di, types.OCIUncompressedLayer, l.SHA256)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(blob, tarBytes) {
		t.Fatalf("layer blob differs from the tarball (len %d vs %d, err %v)", len(blob), len(tarBytes), err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Fatalf("manifest media types %s / %s", m.MediaType, m.Config.MediaType)
	}
}

// TestDigestGolden pins the digest of a fixed lock, so an upgrade of ggcr
// or Go that changes the JSON (and so every published digest) is noticed.
func TestDigestGolden(t *testing.T) {
	l := Layer{SHA256: strings.Repeat("ab", 32), Size: 730 << 20}
	const want = "sha256:ba3a0e6f6232d34cf5460ab490d8839e1331ef10d77bf2fecb80d5eef448de7e"
	if got := mustDigest(t, l, testConfig()); got != want {
		t.Fatalf("Digest() = %s, pinned %s", got, want)
	}
}

// TestDigestSameInOtherProcess builds the image in other processes with
// other TZ, umask, temp dir and time, and expects the same digest.
func TestDigestSameInOtherProcess(t *testing.T) {
	path, l := makeTar(t)
	want := mustDigest(t, l, testConfig())
	if got := imageDigest(t, mustImage(t, path, l, testConfig())); got != want {
		t.Fatalf("Image() digest %s, Digest() %s", got, want)
	}
	for _, tz := range []string{"Asia/Kathmandu", "America/St_Johns"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "TZ="+tz)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper with TZ=%s: %v\n%s", tz, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want+" "+want {
			t.Errorf("helper with TZ=%s printed %q, want Digest() and image digest %s", tz, got, want)
		}
	}
}

func TestDigestChanges(t *testing.T) {
	path, l := makeTar(t)
	c := testConfig()
	base := mustDigest(t, l, c)

	c2 := testConfig()
	c2.Created = c2.Created.Add(time.Second)
	if mustDigest(t, l, c2) == base {
		t.Error("changing Created did not change the digest")
	}

	// One byte of the tar changed, same size.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	l2 := Layer{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
	if l2.Size != l.Size {
		t.Fatal("size changed")
	}
	d2 := mustDigest(t, l2, c)
	if d2 == base {
		t.Error("changing one byte of the tar did not change the digest")
	}
	if got := imageDigest(t, mustImage(t, path, l2, c)); got != d2 {
		t.Errorf("Image() digest %s, Digest() %s", got, d2)
	}
}

func TestDigestRejectsBadInput(t *testing.T) {
	_, l := makeTar(t)
	for name, mod := range map[string]func(*Layer, *Config){
		"short sha":    func(l *Layer, _ *Config) { l.SHA256 = l.SHA256[1:] },
		"upper sha":    func(l *Layer, _ *Config) { l.SHA256 = strings.ToUpper(l.SHA256) },
		"prefixed sha": func(l *Layer, _ *Config) { l.SHA256 = "sha256:" + l.SHA256[7:] },
		"zero size":    func(l *Layer, _ *Config) { l.Size = 0 },
		"no created":   func(_ *Layer, c *Config) { c.Created = time.Time{} },
		"no os":        func(_ *Layer, c *Config) { c.OS = "" },
		"bad env":      func(_ *Layer, c *Config) { c.Env = append(c.Env, "NOEQUALS") },
	} {
		l2, c := l, testConfig()
		mod(&l2, &c)
		if d, err := Digest(l2, c); err == nil {
			t.Errorf("%s: Digest() = %s, want an error", name, d)
		}
	}
}

func TestImageRefusesMismatch(t *testing.T) {
	path, l := makeTar(t)
	c := testConfig()

	bad := l
	bad.Size++
	_, err := Image(path, bad, c)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong size: got %v, want ErrMismatch", err)
	}
	for _, s := range []string{path, fmt.Sprint(l.Size), fmt.Sprint(bad.Size)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("wrong size error %q does not name %s", err, s)
		}
	}

	bad = l
	bad.SHA256 = strings.Repeat("0", 64)
	_, err = Image(path, bad, c)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong sha256: got %v, want ErrMismatch", err)
	}
	for _, s := range []string{path, l.SHA256, bad.SHA256} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("wrong sha256 error %q does not name %s", err, s)
		}
	}

	if _, err := Image(filepath.Join(t.TempDir(), "missing.tar"), l, c); err == nil {
		t.Error("Image() of a missing file succeeded")
	}
}

func TestLayerStreamChecksFile(t *testing.T) {
	path, l := makeTar(t)
	img := mustImage(t, path, l, testConfig())
	testutil.FlipMiddleByte(t, path) // changed after Image() checked it
	rc, err := onlyLayer(t, img).Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), l.SHA256) {
		t.Fatalf("reading a layer whose file changed: got %v, want ErrMismatch naming %s", err, l.SHA256)
	}
}

func TestWriteLayout(t *testing.T) {
	path, l := makeTar(t)
	c := testConfig()
	img := mustImage(t, path, l, c)
	want := mustDigest(t, l, c)
	parent := t.TempDir()
	dir := filepath.Join(parent, "layout")
	// Twice: the second replaces the first.
	for range 2 {
		if err := WriteLayout(dir, img, testRef); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("parent holds %v, want only the layout", entries)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("layout dir: %v, %v", fi, err)
	}

	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Digest.String() != want || desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("index.json descriptor %s %s, want %s %s", desc.MediaType, desc.Digest, types.OCIManifestSchema1, want)
	}
	if got := desc.Annotations[AnnotationRefName]; got != "llvm18" {
		t.Errorf("ref.name annotation %q, want llvm18", got)
	}
	if got := desc.Annotations[AnnotationImageName]; got != testRef {
		t.Errorf("image.name annotation %q, want %s", got, testRef)
	}

	back, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got := imageDigest(t, back); got != want {
		t.Errorf("layout image digest %s, want %s", got, want)
	}
	layer := onlyLayer(t, back)
	if mt, _ := layer.MediaType(); mt != "application/vnd.oci.image.layer.v1.tar" {
		t.Errorf("layer media type %s", mt)
	}
	if d, _ := layer.Digest(); d.Hex != l.SHA256 {
		t.Errorf("layer digest %s, want %s", d, l.SHA256)
	}
	blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", l.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(blob); hex.EncodeToString(sum[:]) != l.SHA256 {
		t.Error("layer blob in the layout is not the tarball")
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config.Env, c.Env) || !cf.Created.Time.Equal(c.Created) || cf.Created.Location() != time.UTC {
		t.Errorf("config Env %q Created %v, want %q %v UTC", cf.Config.Env, cf.Created, c.Env, c.Created)
	}
	if cf.Config.Labels["org.opencontainers.image.source"] != c.Labels["org.opencontainers.image.source"] {
		t.Errorf("config labels %v", cf.Config.Labels)
	}
}

func TestWriteLayoutRefusals(t *testing.T) {
	img := testImage(t)
	dir := t.TempDir()
	for _, ref := range []string{"fluid-toolchain", "ghcr.io/fluid-os/fluid-toolchain", "fluid-toolchain:llvm18"} {
		if err := WriteLayout(filepath.Join(dir, "x"), img, ref); err == nil {
			t.Errorf("WriteLayout with ref %q succeeded", ref)
		}
	}
	other := filepath.Join(dir, "precious")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(other, img, testRef); err == nil || !strings.Contains(err.Error(), "not replacing") {
		t.Errorf("WriteLayout over a non-layout dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "notes.txt")); err != nil {
		t.Errorf("non-layout dir was touched: %v", err)
	}
}

func TestWriteDockerTar(t *testing.T) {
	path, l := makeTar(t)
	img := mustImage(t, path, l, testConfig())
	parent := t.TempDir()
	out := filepath.Join(parent, "image.tar")
	if err := WriteDockerTar(out, img, testRef); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("parent holds %v, want only the tarball", entries)
	}
	back, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	layer := onlyLayer(t, back)
	if d, _ := layer.DiffID(); d.Hex != l.SHA256 {
		t.Errorf("layer diffID %s, want %s", d, l.SHA256)
	}
	wantCfg, _ := img.ConfigName()
	if got, _ := back.ConfigName(); got != wantCfg {
		t.Errorf("config (image ID) %s, want %s", got, wantCfg)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(out) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !reflect.DeepEqual(m[0].RepoTags, []string{testRef}) {
		t.Errorf("manifest.json %+v, want RepoTags [%s]", m, testRef)
	}
}

// TestFailedWritesLeaveNothing covers a parent that is a file, and a
// tarball that changes between Image() and the write (the layer stream
// fails at its end, after most bytes are written).
func TestFailedWritesLeaveNothing(t *testing.T) {
	path, l := makeTar(t)
	img := mustImage(t, path, l, testConfig())
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(filepath.Join(file, "layout"), img, testRef); err == nil {
		t.Error("WriteLayout under a file succeeded")
	}
	if err := WriteDockerTar(filepath.Join(file, "image.tar"), img, testRef); err == nil {
		t.Error("WriteDockerTar under a file succeeded")
	}
	// An existing good layout must survive a failed rewrite.
	good := filepath.Join(parent, "layout")
	if err := WriteLayout(good, img, testRef); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(good, "index.json"))
	if err != nil {
		t.Fatal(err)
	}

	testutil.FlipMiddleByte(t, path)
	if err := WriteLayout(filepath.Join(parent, "new-layout"), img, testRef); !errors.Is(err, ErrMismatch) {
		t.Errorf("WriteLayout of a changed tarball: got %v, want ErrMismatch", err)
	}
	if err := WriteLayout(good, img, testRef); !errors.Is(err, ErrMismatch) {
		t.Errorf("rewriting a layout from a changed tarball: got %v, want ErrMismatch", err)
	}
	if err := WriteDockerTar(filepath.Join(parent, "image.tar"), img, testRef); !errors.Is(err, ErrMismatch) {
		t.Errorf("WriteDockerTar of a changed tarball: got %v, want ErrMismatch", err)
	}
	if names := testutil.DirNames(t, parent); !reflect.DeepEqual(names, []string{"file", "layout"}) {
		t.Errorf("after failed writes the directory holds %v, want [file layout]", names)
	}
	if after, err := os.ReadFile(filepath.Join(good, "index.json")); err != nil || !bytes.Equal(after, index) {
		t.Errorf("the existing layout changed: %v", err)
	}
}

// serve starts an in-process registry behind wrap and returns the repo
// name to push to.
func serve(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(wrap(h))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/fluid-os/fluid-toolchain"
}

func noWrap(h http.Handler) http.Handler { return h }

func parseRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPush(t *testing.T) {
	path, l := makeTar(t)
	img := mustImage(t, path, l, testConfig())
	want := mustDigest(t, l, testConfig())
	repo := serve(t, noWrap)

	got, err := Push(context.Background(), img, repo, authn.Anonymous, "llvm18")
	if err != nil {
		t.Fatal(err)
	}
	if got != repo+"@"+want {
		t.Fatalf("Push() = %s, want %s@%s", got, repo, want)
	}
	back, err := remote.Image(parseRef(t, got))
	if err != nil {
		t.Fatal(err)
	}
	if d := imageDigest(t, back); d != want {
		t.Errorf("pulled digest %s, want %s", d, want)
	}
	layer := onlyLayer(t, back)
	if mt, _ := layer.MediaType(); mt != types.OCIUncompressedLayer {
		t.Errorf("pulled layer media type %s", mt)
	}
	tagged, err := remote.Head(parseRef(t, repo+":llvm18"))
	if err != nil || tagged.Digest.String() != want {
		t.Errorf("tag llvm18 resolves to %v (%v), want %s", tagged, err, want)
	}
	// Pushing again is a no-op that succeeds.
	if _, err := Push(context.Background(), img, repo, authn.Anonymous, "llvm18"); err != nil {
		t.Errorf("second push: %v", err)
	}
}

func TestPushBasicAuth(t *testing.T) {
	img := testImage(t)
	repo := serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "actor" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	if _, err := Push(context.Background(), img, repo, BasicAuth("actor", "s3cret")); err != nil {
		t.Fatalf("push with the right token: %v", err)
	}
	_, err := Push(context.Background(), img, repo, BasicAuth("actor", "wrong"))
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "oci: pushing") {
		t.Fatalf("push with a wrong token: %v", err)
	}
	if BasicAuth("actor", "") != nil {
		t.Error("BasicAuth without a token should defer to the keychain")
	}
}

// headerRewriter rewrites Docker-Content-Digest before the status goes out.
type headerRewriter struct {
	http.ResponseWriter
	digest string
}

func (w headerRewriter) WriteHeader(code int) {
	if w.Header().Get("Docker-Content-Digest") != "" {
		w.Header().Set("Docker-Content-Digest", w.digest)
	}
	w.ResponseWriter.WriteHeader(code)
}

func TestPushHostileRegistry(t *testing.T) {
	path, l := makeTar(t)
	img := mustImage(t, path, l, testConfig())
	want := mustDigest(t, l, testConfig())
	lie := "sha256:" + strings.Repeat("e", 64)
	isManifest := func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }

	for _, tc := range []struct {
		name  string
		tags  []string
		wrap  func(http.Handler) http.Handler
		wants []string
	}{{
		name: "lying manifest PUT digest",
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && isManifest(r) {
					w = headerRewriter{w, lie}
				}
				h.ServeHTTP(w, r)
			})
		},
		wants: []string{"reported digest", lie, want},
	}, {
		name: "serves other manifest bytes",
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || !isManifest(r) {
					h.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := append(rec.Body.Bytes(), ' ')
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.WriteHeader(rec.Code)
				w.Write(body)
			})
		},
		wants: []string{"reading back", "does not match requested digest", want},
	}, {
		name: "tag resolves elsewhere",
		tags: []string{"llvm18"},
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/manifests/llvm18") {
					w = headerRewriter{w, lie}
				}
				h.ServeHTTP(w, r)
			})
		},
		wants: []string{"resolves", "llvm18", lie, want},
	}, {
		name: "500 on blob upload",
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/blobs/uploads/") {
					http.Error(w, "storage on fire", http.StatusInternalServerError)
					return
				}
				h.ServeHTTP(w, r)
			})
		},
		wants: []string{"oci: pushing", "500"},
	}, {
		name: "401 everywhere",
		wrap: func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}`, http.StatusUnauthorized)
			})
		},
		wants: []string{"oci: pushing", "401 Unauthorized"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			repo := serve(t, tc.wrap)
			got, err := Push(context.Background(), img, repo, authn.Anonymous, tc.tags...)
			if err == nil {
				t.Fatalf("Push() = %s, want an error", got)
			}
			t.Logf("error: %v", err)
			for _, s := range tc.wants {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}
