package toolchain

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// BenchReport holds the toolchain's figures.
type BenchReport struct {
	Cold      time.Duration // mmdebstrap + tarball check + unpack + record + probe, empty cache
	CacheSize int64         // bytes under the lock's cache directory (tarball + rootfs + records)
	TarSize   int64         // the tarball alone
	Warm      time.Duration // median FindIn with the cache in place (the check before every build)
	Runs      int
}

// Bench creates the rootfs of the tree at root in a fresh cache directory
// (next to the real one, removed afterwards), as on a machine that never
// had it, and times the check every build makes once it exists.
func Bench(ctx context.Context, root string, runs int, log io.Writer) (*BenchReport, error) {
	if runs <= 0 {
		runs = 5
	}
	lt, err := ReadLock(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(CacheRoot(), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(CacheRoot(), "bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cold := *lt
	cold.cacheRoot = tmp
	fmt.Fprintf(log, "toolchainBench: creating the rootfs from %s in an empty cache (%s)\n", LockFile, tmp)
	start := time.Now()
	if _, err := EnsureRootfs(ctx, &cold, log); err != nil {
		return nil, err
	}
	r := &BenchReport{Cold: time.Since(start), Runs: runs}
	_ = filepath.WalkDir(cold.CacheDir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				r.CacheSize += info.Size()
			}
		}
		return nil
	})
	if st, err := os.Stat(filepath.Join(cold.CacheDir(), "rootfs.tar")); err == nil {
		r.TarSize = st.Size()
	}
	var warm []time.Duration
	for i := 0; i < runs; i++ {
		start := time.Now()
		rf, err := EnsureRootfs(ctx, &cold, io.Discard)
		if err != nil {
			return nil, err
		}
		if _, err := rf.Toolchain(root); err != nil {
			return nil, err
		}
		warm = append(warm, time.Since(start))
	}
	sort.Slice(warm, func(i, j int) bool { return warm[i] < warm[j] })
	r.Warm = warm[len(warm)/2]
	return r, nil
}

// Table renders the report.
func (r *BenchReport) Table() string {
	return fmt.Sprintf("%-52s %10.1f s\n%-52s %10.0f MB   (tarball %d MB)\n%-52s %10.1f ms   (median of %d)\n",
		"cold toolchain creation (mmdebstrap → checked cache)", r.Cold.Seconds(),
		"toolchain cache size", float64(r.CacheSize)/1e6, r.TarSize/1000000,
		"check of the cached toolchain before a build", float64(r.Warm.Microseconds())/1000, r.Runs)
}
