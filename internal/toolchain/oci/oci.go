// Package oci publishes the pinned toolchain rootfs tarball as a one-layer OCI image
// whose digest is a pure function of the lock (tarball SHA-256 and size plus a fixed config).
//
// The layer is the tarball itself, uncompressed
// (application/vnd.oci.image.layer.v1.tar), so its digest equals its diffID
// equals the tarball's SHA-256, and [Digest] can compute the image digest
// without reading the tarball. [Image] builds the same image from the file;
// [WriteLayout], [WriteDockerTar] and [Push] publish it.
package oci

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types used throughout: OCI manifest, OCI config, uncompressed OCI layer.
const (
	ManifestMediaType = types.OCIManifestSchema1   // application/vnd.oci.image.manifest.v1+json
	ConfigMediaType   = types.OCIConfigJSON        // application/vnd.oci.image.config.v1+json
	LayerMediaType    = types.OCIUncompressedLayer // application/vnd.oci.image.layer.v1.tar
)

// ErrMismatch is wrapped by errors reporting a tarball whose size or SHA-256
// differs from the [Layer] recorded in the lock.
var ErrMismatch = errors.New("tarball does not match the lock")

// Config is everything besides the layer that goes into the image. Every
// field ends up in the config blob, so the image digest depends on all of them.
type Config struct {
	// Created is the fixed creation time, normally the lock's
	// SOURCE_DATE_EPOCH. It is stored in UTC whatever its location, and
	// must not be zero.
	Created time.Time
	// CreatedBy, if set, is the created_by of the single history entry
	// (whose created time is Created).
	CreatedBy string
	// Env holds KEY=value entries in order, e.g. PATH=..., LANG=C.UTF-8.
	Env []string
	// WorkingDir is the default working directory; empty means unset.
	WorkingDir string
	// Labels are config labels, e.g. org.opencontainers.image.source.
	Labels map[string]string
	// Architecture and OS are the platform, e.g. "amd64" and "linux".
	Architecture, OS string
}

// Layer describes the tarball from the lock, without reading it.
type Layer struct {
	SHA256 string // lower-case hex, no "sha256:" prefix
	Size   int64  // bytes
}

// Digest computes the manifest digest "sha256:<hex>" of the image that
// [Image] builds, from the layer description and config only.
func Digest(l Layer, c Config) (string, error) {
	b, err := build(l, c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b.manifest)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Image builds the image whose one layer streams the tarball at path. It
// checks the file's size and SHA-256 against l up front (reading the whole
// file once), and again while streaming the layer, so a file changed after
// Image returns makes the read fail at its end instead of publishing other
// bytes. Mismatches wrap [ErrMismatch].
func Image(tarball string, l Layer, c Config) (v1.Image, error) {
	b, err := build(l, c)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(tarball)
	if err != nil {
		return nil, fmt.Errorf("oci: checking tarball: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("oci: tarball %s is not a regular file", tarball)
	}
	if fi.Size() != l.Size {
		return nil, fmt.Errorf("oci: tarball %s is %d bytes, the lock says %d: %w", tarball, fi.Size(), l.Size, ErrMismatch)
	}
	f, err := os.Open(tarball)
	if err != nil {
		return nil, fmt.Errorf("oci: hashing tarball: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("oci: hashing tarball %s: %w", tarball, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.SHA256 {
		return nil, fmt.Errorf("oci: tarball %s has sha256 %s, the lock says %s: %w", tarball, got, l.SHA256, ErrMismatch)
	}
	b.layer.path = tarball
	img, err := partial.CompressedToImage(b)
	if err != nil {
		return nil, fmt.Errorf("oci: building image: %w", err)
	}
	return img, nil
}

// built is the image as bytes: it implements partial.CompressedImageCore.
type built struct {
	config, manifest []byte
	layer            *fileLayer
}

func (b *built) RawConfigFile() ([]byte, error)      { return b.config, nil }
func (b *built) RawManifest() ([]byte, error)        { return b.manifest, nil }
func (b *built) MediaType() (types.MediaType, error) { return ManifestMediaType, nil }
func (b *built) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h != b.layer.hash {
		return nil, fmt.Errorf("oci: image has no layer %s", h)
	}
	return b.layer, nil
}

// build validates l and c and serialises the config and manifest. It is the
// only place either is made, so Digest and Image cannot disagree.
func build(l Layer, c Config) (*built, error) {
	if len(l.SHA256) != sha256.Size*2 || strings.Trim(l.SHA256, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("oci: layer sha256 %q is not 64 lower-case hex digits", l.SHA256)
	}
	if l.Size <= 0 {
		return nil, fmt.Errorf("oci: layer size %d is not positive", l.Size)
	}
	if c.Created.IsZero() {
		return nil, errors.New("oci: config has no creation time")
	}
	if c.Architecture == "" || c.OS == "" {
		return nil, fmt.Errorf("oci: config needs both architecture and OS, got %q and %q", c.Architecture, c.OS)
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil, fmt.Errorf("oci: config env entry %q is not KEY=value", e)
		}
	}
	layer := &fileLayer{hash: v1.Hash{Algorithm: "sha256", Hex: l.SHA256}, size: l.Size}

	// The time is put in UTC: a time.Time in another location would
	// marshal with that offset and make the digest depend on TZ.
	created := v1.Time{Time: c.Created.UTC()}
	cf := v1.ConfigFile{
		Architecture: c.Architecture,
		OS:           c.OS,
		Created:      created,
		History:      []v1.History{{Created: created, CreatedBy: c.CreatedBy}},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{layer.hash}},
		Config: v1.Config{
			Env:        c.Env,
			WorkingDir: c.WorkingDir,
			Labels:     c.Labels,
		},
	}
	config, err := json.Marshal(cf)
	if err != nil {
		return nil, fmt.Errorf("oci: encoding config: %w", err)
	}
	cfgHash, cfgSize, err := v1.SHA256(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("oci: hashing config: %w", err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     ManifestMediaType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Size: cfgSize, Digest: cfgHash},
		Layers:        []v1.Descriptor{{MediaType: LayerMediaType, Size: l.Size, Digest: layer.hash}},
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("oci: encoding manifest: %w", err)
	}
	return &built{config: config, manifest: manifest, layer: layer}, nil
}

// fileLayer is the tarball as an uncompressed layer: Compressed and
// Uncompressed both stream the file as it is, so Digest == DiffID.
type fileLayer struct {
	path string // empty when built by Digest, which never reads the layer
	hash v1.Hash
	size int64
}

var _ v1.Layer = (*fileLayer)(nil)

func (f *fileLayer) Digest() (v1.Hash, error)             { return f.hash, nil }
func (f *fileLayer) DiffID() (v1.Hash, error)             { return f.hash, nil }
func (f *fileLayer) Size() (int64, error)                 { return f.size, nil }
func (f *fileLayer) MediaType() (types.MediaType, error)  { return LayerMediaType, nil }
func (f *fileLayer) Uncompressed() (io.ReadCloser, error) { return f.Compressed() }

// Compressed returns the tarball's bytes; reading to the end fails if they
// no longer have the recorded size and SHA-256.
func (f *fileLayer) Compressed() (io.ReadCloser, error) {
	if f.path == "" {
		return nil, errors.New("oci: layer has no tarball to read")
	}
	file, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("oci: opening layer: %w", err)
	}
	return &verifyingReader{file: file, f: f, h: sha256.New()}, nil
}

// verifyingReader reads a layer's file and checks its size and hash at EOF.
type verifyingReader struct {
	file *os.File
	f    *fileLayer
	h    hash.Hash
	n    int64
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.file.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.n > r.f.size {
		return n, fmt.Errorf("oci: tarball %s grew past the %d bytes the lock records: %w", r.f.path, r.f.size, ErrMismatch)
	}
	if err == io.EOF {
		if r.n != r.f.size {
			return n, fmt.Errorf("oci: tarball %s is now %d bytes, the lock says %d: %w", r.f.path, r.n, r.f.size, ErrMismatch)
		}
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.f.hash.Hex {
			return n, fmt.Errorf("oci: tarball %s now has sha256 %s, the lock says %s: %w", r.f.path, got, r.f.hash.Hex, ErrMismatch)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.file.Close() }
