package toolchain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fluid-os/fluid/internal/atomicfile"
)

// probeCache remembers what each tool binary said about itself, keyed by
// the resolved binary's path, size and modification time, so a no-op build
// does not start clang (100 ms) and gdb just to ask their versions. A
// replaced binary has another size or mtime and is probed again.
type probeCache struct {
	mu      sync.Mutex
	path    string
	entries map[string]probeEntry
	dirty   bool
}

type probeEntry struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256,omitempty"`
}

// cacheFile is $FLUID_CACHE_DIR/toolchain.json, else the user cache dir.
func cacheFile() string {
	dir := os.Getenv("FLUID_CACHE_DIR")
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(d, "fluid-os")
	}
	return filepath.Join(dir, "toolchain.json")
}

func loadProbeCache() *probeCache {
	c := &probeCache{path: cacheFile(), entries: map[string]probeEntry{}}
	if c.path == "" {
		return c
	}
	if data, err := os.ReadFile(c.path); err == nil {
		_ = json.Unmarshal(data, &c.entries) // a damaged cache is just empty
	}
	return c
}

// key identifies the binary behind path; "" if it cannot be stat'ed.
func (c *probeCache) key(path string, args []string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	st, err := os.Stat(real)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s|%d|%d|%v", real, st.Size(), st.ModTime().UnixNano(), args)
}

func (c *probeCache) get(k string) (probeEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, ok && k != ""
}

func (c *probeCache) put(k string, e probeEntry) {
	if k == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[k] != e {
		c.entries[k] = e
		c.dirty = true
	}
}

// save writes the cache back when it changed; failing to is harmless.
func (c *probeCache) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty || c.path == "" {
		return
	}
	data, err := json.MarshalIndent(c.entries, "", "  ")
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(c.path), 0o755) == nil {
		_ = atomicfile.WriteFile(c.path, data, 0o644)
	}
	c.dirty = false
}
