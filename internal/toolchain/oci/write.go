package oci

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Annotations put on the image's descriptor in an OCI layout's index.json.
const (
	// AnnotationRefName holds the tag, e.g. "llvm18" (OCI image-spec).
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImageName holds the full reference, e.g.
	// "ghcr.io/fluid-os/fluid-toolchain:llvm18" (containerd, docker load).
	AnnotationImageName = "io.containerd.image.name"
)

// parseTag parses a full reference with an explicit registry and tag.
func parseTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("oci: reference %q needs a registry, repository and tag: %w", ref, err)
	}
	return t, nil
}

// WriteLayout writes img as an OCI image layout directory at dir, its
// index.json descriptor annotated with the tag of ref (a full reference such
// as ghcr.io/fluid-os/fluid-toolchain:llvm18) under [AnnotationRefName] and the
// full reference under [AnnotationImageName].
//
// The layout is written to a temporary directory beside dir, synced, and
// renamed into place, so dir is never a half-written layout; a failed write
// leaves nothing behind. An existing dir is replaced only if it is an OCI
// layout (has an oci-layout file) or empty.
func WriteLayout(dir string, img v1.Image, ref string) (err error) {
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("oci: writing layout %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("oci: writing layout %s: %w", dir, err)
	}
	anns := map[string]string{AnnotationRefName: tag.TagStr(), AnnotationImageName: tag.Name()}
	if err := p.AppendImage(img, layout.WithAnnotations(anns)); err != nil {
		return fmt.Errorf("oci: writing image to layout %s: %w", dir, err)
	}
	if err := syncTree(tmp); err != nil {
		return fmt.Errorf("oci: syncing layout %s: %w", dir, err)
	}
	if err := replaceDir(tmp, dir); err != nil {
		return fmt.Errorf("oci: moving layout into place at %s: %w", dir, err)
	}
	return nil
}

// checkReplaceable refuses a dir that exists and is neither empty nor an
// OCI layout as WriteLayout writes one (oci-layout, index.json and blobs/,
// nothing else), so a wrong argument cannot remove unrelated files: a
// directory that merely holds an oci-layout file among others is refused.
func checkReplaceable(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("oci: checking layout target: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("oci: layout target %s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("oci: checking layout target: %w", err)
	}
	layout := false
	for _, e := range entries {
		switch {
		case e.Name() == "oci-layout" && e.Type().IsRegular():
			layout = true
		case e.Name() == "index.json" && e.Type().IsRegular(), e.Name() == "blobs" && e.IsDir():
		default:
			return fmt.Errorf("oci: layout target %s is neither empty nor an OCI layout (it holds %s); not replacing it", dir, e.Name())
		}
	}
	if len(entries) > 0 && !layout {
		return fmt.Errorf("oci: layout target %s is neither empty nor an OCI layout (no oci-layout file); not replacing it", dir)
	}
	return nil
}

// replaceDir renames tmp to dir, first moving an existing dir aside (and
// back if the second rename fails) and removing it afterwards.
func replaceDir(tmp, dir string) error {
	err := os.Rename(tmp, dir)
	if err == nil {
		return atomicfile.SyncDir(filepath.Dir(dir))
	}
	if _, statErr := os.Lstat(dir); statErr != nil {
		return err // dir does not exist: the rename failed for another reason
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("%w (and restoring the old layout from %s: %v)", err, old, rerr)
		}
		return err
	}
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// syncTree gives every directory mode 0755 and every file mode 0644
// (ggcr creates them 0777 less umask), and fsyncs them all.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// WriteDockerTar writes img as a `docker load` / `podman load` tarball
// tagged ref (a full reference such as ghcr.io/fluid-os/fluid-toolchain:llvm18)
// at path, through a temporary file beside it that is synced and renamed into
// place; a failed write leaves nothing behind.
//
// The docker format has no manifest of its own: a loader sees the same
// config (image ID) and layer, but not the OCI manifest digest.
func WriteDockerTar(path string, img v1.Image, ref string) error {
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteSync(path, 0o644, func(w io.Writer) error { return tarball.Write(tag, img, w) }); err != nil {
		return fmt.Errorf("oci: docker tarball: %w", err)
	}
	return nil
}
