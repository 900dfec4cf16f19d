package standin

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The cache stand-ins keep entries in $FLUID_REHEARSAL_CACHE/<id>/, id the
// SHA-256 of key and version, each with meta.json and data.tar. As in
// actions/cache, an entry's version hashes its paths, so the same key with
// other paths is another entry; a key, once saved, is never overwritten.

type cacheMeta struct {
	Key     string   `json:"key"`
	Version string   `json:"version"`
	Paths   []string `json:"paths"`
	Created int64    `json:"created_unix_nano"`
}

func cacheVersion(paths []string) string {
	h := sha256.Sum256([]byte(strings.Join(paths, "|") + "|tar|fluid-standin"))
	return hex.EncodeToString(h[:])
}

func cacheID(key, version string) string {
	h := sha256.Sum256([]byte(key + "\x00" + version))
	return hex.EncodeToString(h[:16])
}

func cacheInputs(e *Env) (dir, key string, paths []string, err error) {
	if dir, err = e.Rehearsal("CACHE"); err != nil {
		return
	}
	key = e.Input("key", "")
	paths = e.Lines("path")
	if key == "" || len(paths) == 0 {
		err = errors.New("Input required and not supplied: key and path") // actions/cache's wording
		return
	}
	if len(key) > 512 || strings.Contains(key, ",") {
		err = fmt.Errorf("Key Validation Error: %s cannot be larger than 512 characters or contain commas", key)
	}
	return
}

// cacheRestore is the main step of actions/cache and actions/cache/restore.
func cacheRestore(e *Env) error {
	dir, key, paths, err := cacheInputs(e)
	if err != nil {
		return err
	}
	version := cacheVersion(paths)
	lookup, err := e.Bool("lookup-only", false)
	if err != nil {
		return err
	}
	if err := e.SaveState("CACHE_KEY", key); err != nil {
		return err
	}
	meta, err := findCache(dir, version, append([]string{key}, e.Lines("restore-keys")...))
	if err != nil {
		return err
	}
	if meta == nil {
		if fail, _ := e.Bool("fail-on-cache-miss", false); fail {
			return fmt.Errorf("Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: %s", key)
		}
		e.Logf("Cache not found for input keys: %s", strings.Join(append([]string{key}, e.Lines("restore-keys")...), ", "))
		if err := e.Output("cache-primary-key", key); err != nil {
			return err
		}
		return e.Output("cache-hit", "false")
	}
	if !lookup {
		n, err := extractCache(e, filepath.Join(dir, cacheID(meta.Key, meta.Version), "data.tar"))
		if err != nil {
			return fmt.Errorf("restore cache %s: %w", meta.Key, err)
		}
		e.Logf("Cache restored from key: %s (%d files)", meta.Key, n)
	} else {
		e.Logf("Cache found and can be restored from key: %s (lookup-only)", meta.Key)
	}
	if err := e.SaveState("CACHE_RESULT", meta.Key); err != nil {
		return err
	}
	for k, v := range map[string]string{"cache-primary-key": key, "cache-matched-key": meta.Key, "cache-hit": fmt.Sprint(meta.Key == key)} {
		if err := e.Output(k, v); err != nil {
			return err
		}
	}
	return nil
}

// cachePost is actions/cache's post step: save, unless the main step hit
// the primary key exactly.
func cachePost(e *Env) error {
	key := e.State("CACHE_KEY")
	if key == "" {
		e.Warnf("Error retrieving key from state.")
		return nil
	}
	if e.State("CACHE_RESULT") == key {
		e.Logf("Cache hit occurred on the primary key %s, not saving cache.", key)
		return nil
	}
	return cacheSave(e)
}

// cacheSave is actions/cache/save (and the post step of actions/cache).
func cacheSave(e *Env) error {
	dir, key, paths, err := cacheInputs(e)
	if err != nil {
		return err
	}
	version := cacheVersion(paths)
	final := filepath.Join(dir, cacheID(key, version))
	if _, err := os.Stat(final); err == nil {
		e.Warnf("Failed to save: Unable to reserve cache with key %s, another job may be creating this cache.", key)
		return nil
	}
	files, err := cacheFiles(e, paths)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		e.Warnf("Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.")
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".saving-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	size, err := writeCacheTar(filepath.Join(tmp, "data.tar"), files)
	if err != nil {
		return fmt.Errorf("save cache %s: %w", key, err)
	}
	meta, _ := json.MarshalIndent(cacheMeta{Key: key, Version: version, Paths: paths, Created: time.Now().UnixNano()}, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), meta, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			e.Warnf("Failed to save: Unable to reserve cache with key %s, another job may be creating this cache.", key)
			return nil
		}
		return err
	}
	e.Logf("Cache saved with key: %s (%d paths, %d bytes)", key, len(files), size)
	return nil
}

// findCache returns the entry for the first key that matches exactly, or
// else the newest entry whose key it prefixes (actions/cache's lookup).
func findCache(dir, version string, keys []string) (*cacheMeta, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var all []cacheMeta
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, en.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var m cacheMeta
		if json.Unmarshal(b, &m) == nil && m.Version == version {
			all = append(all, m)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created > all[j].Created })
	for _, k := range keys {
		for i := range all {
			if all[i].Key == k {
				return &all[i], nil
			}
		}
		for i := range all {
			if strings.HasPrefix(all[i].Key, k) {
				return &all[i], nil
			}
		}
	}
	return nil, nil
}

// cacheFile is one path to archive: where it is, and its name in the tar
// ("w/<path in the workspace>" or "a/<absolute path>").
type cacheFile struct{ abs, name string }

func cacheFiles(e *Env, paths []string) ([]cacheFile, error) {
	ws, err := e.Workspace()
	if err != nil {
		return nil, err
	}
	var out []cacheFile
	for _, p := range paths {
		if strings.HasPrefix(p, "!") {
			return nil, fmt.Errorf("cache path %q: exclusions are not supported by the rehearsal's stand-in", p)
		}
		abs := expandPath(e, ws, p)
		matches := []string{abs}
		if strings.ContainsAny(abs, "*?[") {
			matches, _ = filepath.Glob(abs)
		}
		for _, m := range matches {
			if _, err := os.Lstat(m); err != nil {
				continue
			}
			out = append(out, cacheFile{abs: m, name: tarName(ws, m)})
		}
	}
	return out, nil
}

func expandPath(e *Env, ws, p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = filepath.Join(e.Getenv("HOME"), strings.TrimPrefix(p, "~"))
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(ws, p)
	}
	return filepath.Clean(p)
}

func tarName(ws, abs string) string {
	if rel, err := filepath.Rel(ws, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return "w/" + filepath.ToSlash(rel)
	}
	return "a" + filepath.ToSlash(abs)
}

func writeCacheTar(path string, files []cacheFile) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(f)
	for _, cf := range files {
		err := filepath.WalkDir(cf.abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(cf.abs, p)
			hdr.Name = cf.name
			if rel != "." {
				hdr.Name = cf.name + "/" + filepath.ToSlash(rel)
			}
			hdr.Uname, hdr.Gname = "", ""
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				src, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, src)
				src.Close()
				return err
			}
			return nil
		})
		if err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return 0, err
	}
	st, _ := f.Stat()
	return st.Size(), f.Close()
}

// extractCache unpacks data.tar over the workspace and the absolute paths
// it names (existing files are replaced, others are left, as tar does).
func extractCache(e *Env, path string) (int, error) {
	ws, err := e.Workspace()
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		var dst string
		switch {
		case strings.HasPrefix(hdr.Name, "w/"):
			dst = filepath.Join(ws, filepath.FromSlash(hdr.Name[2:]))
		case strings.HasPrefix(hdr.Name, "a/"):
			dst = filepath.FromSlash(hdr.Name[1:])
		default:
			return n, fmt.Errorf("entry %q is neither w/ nor a/", hdr.Name)
		}
		if strings.Contains(hdr.Name, "..") {
			return n, fmt.Errorf("entry %q climbs out of its root", hdr.Name)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return n, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, fs.FileMode(hdr.Mode)&fs.ModePerm); err != nil {
				return n, err
			}
		case tar.TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(hdr.Linkname, dst); err != nil {
				return n, err
			}
		case tar.TypeReg:
			tmp := dst + ".fluid-standin-restore"
			out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fs.FileMode(hdr.Mode)&fs.ModePerm)
			if err != nil {
				return n, err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				os.Remove(tmp)
				return n, err
			}
			if err := out.Close(); err != nil {
				return n, err
			}
			os.Chtimes(tmp, hdr.ModTime, hdr.ModTime)
			if err := os.Rename(tmp, dst); err != nil {
				return n, err
			}
			n++
		}
	}
}
