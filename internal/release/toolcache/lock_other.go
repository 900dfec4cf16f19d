//go:build !unix

package toolcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// lockStale is how old a lock file may get before it is considered left
// behind by a killed process (a cold build of the tools takes minutes).
const lockStale = 30 * time.Minute

// lock takes an exclusive lock file, waiting for other holders; a lock older
// than lockStale is broken. (Unix uses flock instead: lock_unix.go.)
func lock(ctx context.Context, path string) (func(), error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("tool cache: lock %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > lockStale {
			os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tool cache: waiting for %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
