// Package publish turns the locked toolchain rootfs into the OCI image of
// the same bytes (digest recorded in toolchain/lock.json), writes it as an
// OCI layout and a `docker load` tarball, pushes it, and regenerates the
// lock. It is kept out of internal/toolchain so that every build (which
// imports that package) does not carry go-containerregistry.
package publish

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/oci"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageConfig is the OCI configuration of the toolchain image: everything
// besides the one layer (the rootfs tarball). It depends on the definition
// only, so the image digest is a function of the lock.
func ImageConfig(d toolchain.Definition) oci.Config {
	return oci.Config{
		Created: time.Unix(d.SourceDateEpoch, 0).UTC(),
		Env: []string{
			fmt.Sprintf("PATH=/usr/lib/llvm-%d/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", d.LLVMMajor),
			"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC",
		},
		WorkingDir: "/src",
		Labels: map[string]string{
			"org.opencontainers.image.source":      "https://github.com/fluid-os/fluid",
			"org.opencontainers.image.description": fmt.Sprintf("Fluid OS release toolchain: Debian %s with LLVM %d, from toolchain/lock.json", d.Suite, d.LLVMMajor),
		},
		Architecture: d.Architecture,
		OS:           "linux",
	}
}

// ImageDigest is the OCI digest of the image made of a rootfs tarball.
func ImageDigest(d toolchain.Definition, t toolchain.TarballLock) (string, error) {
	return oci.Digest(oci.Layer{SHA256: t.SHA256, Size: t.Size}, ImageConfig(d))
}

// UpdateLock regenerates the lock of the tree at root and prints the diff.
func UpdateLock(ctx context.Context, root string, out io.Writer) error {
	return toolchain.UpdateLock(ctx, root, out, ImageDigest)
}

// Image is the OCI image of the tree's locked rootfs, from the cached
// tarball (created when missing); its digest must be the lock's.
func Image(ctx context.Context, lt *toolchain.LockedTree, log io.Writer) (*Built, error) {
	rf, err := toolchain.EnsureRootfs(ctx, lt, log)
	if err != nil {
		return nil, err
	}
	tarball := filepath.Join(rf.Dir, "rootfs.tar")
	layer := oci.Layer{SHA256: lt.Lock.Rootfs.SHA256, Size: lt.Lock.Rootfs.Size}
	img, err := oci.Image(tarball, layer, ImageConfig(lt.Definition))
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if d.String() != lt.Lock.OCI.Digest {
		return nil, fmt.Errorf("the toolchain image's digest is %s but %s records %s: the lock is stale; run `go tool mage toolchainLock`", d, toolchain.LockFile, lt.Lock.OCI.Digest)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	return &Built{Image: img, Digest: d.String(), ImageID: cfg.String()}, nil
}

// Built is the toolchain image with its two names: the manifest digest
// (registries, the lock) and the image ID, the config digest (what podman
// and docker call a loaded image by, since they rewrite the manifest).
type Built struct {
	Image   v1.Image
	Digest  string
	ImageID string
}

// WriteImage writes the locked rootfs as an OCI layout and a docker-load
// tarball under outDir (default root/build) and, with push, pushes it by
// digest to the lock's repository.
func WriteImage(ctx context.Context, root, outDir string, push bool, out io.Writer) error {
	lt, err := toolchain.ReadLock(root)
	if err != nil {
		return err
	}
	b, err := Image(ctx, lt, out)
	if err != nil {
		return err
	}
	if outDir == "" {
		outDir = filepath.Join(root, "build")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	ref := lt.Lock.OCI.Repository + ":" + lt.Lock.LLVMVersion + "-" + lt.LockSHA256[:12]
	layout := filepath.Join(outDir, "toolchain-oci")
	if err := oci.WriteLayout(layout, b.Image, ref); err != nil {
		return err
	}
	dtar := filepath.Join(outDir, "fluid-toolchain.tar")
	if err := oci.WriteDockerTar(dtar, b.Image, ref); err != nil {
		return err
	}
	fmt.Fprintf(out, "toolchainImage: %s@%s (image ID %s)\n  OCI layout: %s\n  tarball:    %s\n", lt.Lock.OCI.Repository, b.Digest, b.ImageID, layout, dtar)
	fmt.Fprintf(out, "  use it: podman load -i %s  (or docker load), then\n  FLUID_TOOLCHAIN=container FLUID_CONTAINER_ENGINE=podman FLUID_TOOLCHAIN_IMAGE=%s go tool mage build\n", dtar, b.ImageID)
	if push {
		repo, err := PushRepository(lt.Lock.OCI.Repository, os.Getenv)
		if err != nil {
			return err
		}
		auth, note := PushAuth(repo, os.Getenv)
		if note != "" {
			fmt.Fprintf(out, "toolchainImage: %s\n", note)
		}
		pushed, err := oci.Push(ctx, b.Image, repo, auth)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "toolchainImage: pushed %s\n", pushed)
	}
	return nil
}

// PushRepository is where the image is pushed: the lock's repository, or
// the same path on the registry FLUID_TOOLCHAIN_PUSH_REGISTRY names (a
// mirror, or the local registry of `go tool mage rehearse`). Credentials
// follow the registry actually pushed to (PushAuth).
func PushRepository(lockRepo string, getenv func(string) string) (string, error) {
	reg := getenv("FLUID_TOOLCHAIN_PUSH_REGISTRY")
	if reg == "" {
		return lockRepo, nil
	}
	r, err := name.NewRepository(lockRepo, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("toolchainImage: lock repository %q: %w", lockRepo, err)
	}
	out := strings.TrimSuffix(reg, "/") + "/" + r.RepositoryStr()
	if _, err := name.NewRepository(out, name.StrictValidation); err != nil {
		return "", fmt.Errorf("toolchainImage: FLUID_TOOLCHAIN_PUSH_REGISTRY=%q does not make a repository (%s): %w; give a registry host such as registry.example.com or 127.0.0.1:5000", reg, out, err)
	}
	return out, nil
}

// GitHubRegistry is the one registry GITHUB_TOKEN is a credential for.
const GitHubRegistry = "ghcr.io"

// PushAuth returns the credentials to push to repository: GITHUB_ACTOR and
// GITHUB_TOKEN when its registry is ghcr.io, else nil (the docker
// keychain). The repository comes from the lock, which a pull request can
// change: the workflow's token must never go to another registry. note
// says when a GITHUB_TOKEN was set aside.
func PushAuth(repository string, getenv func(string) string) (auth authn.Authenticator, note string) {
	token := getenv("GITHUB_TOKEN")
	if token == "" {
		return nil, ""
	}
	r, err := name.NewRepository(repository, name.StrictValidation)
	if err != nil || r.RegistryStr() != GitHubRegistry {
		return nil, fmt.Sprintf("GITHUB_TOKEN is not sent to %s (only to %s); using the docker credentials for it", repository, GitHubRegistry)
	}
	return oci.BasicAuth(getenv("GITHUB_ACTOR"), token), ""
}
