// Package atomicfile writes files so that a reader only ever
// sees the old contents or the complete new ones: the data goes to a
// temporary file in the same directory and is renamed over the
// destination; on any error the temporary file is removed. Write does not
// fsync (the guarantee is against readers and failed writes, and builds
// stay fast); WriteSync does, for what must also survive a crash.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates path through write. perm is applied to the new file.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	return create(path, perm, false, write)
}

// WriteSync is Write that also syncs the new file to disk before the
// rename and its directory after it, so that after a crash path holds the
// old contents or the whole new ones.
func WriteSync(path string, perm os.FileMode, write func(io.Writer) error) error {
	return create(path, perm, true, write)
}

func create(path string, perm os.FileMode, sync bool, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if sync {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Chmod(tmp, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if sync {
		return SyncDir(filepath.Dir(path))
	}
	return nil
}

// SyncDir syncs the directory dir, so that a rename or creation in it is
// on disk. Its errors name dir.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFile is Write for a byte slice.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFile0644 is WriteFile with mode 0644, the mode of every artifact.
func WriteFile0644(path string, data []byte) error { return WriteFile(path, data, 0o644) }
