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
	"regexp"
	"sort"
	"strings"
	"time"
)

// The cache stand-ins keep entries in $FLUID_REHEARSAL_CACHE/<id>/, id the
// SHA-256 of key and version, each with meta.json and data.tar. As in
// actions/cache, an entry's version hashes its path patterns as written (not
// what they matched), so the same key with other paths is another entry; a
// key, once saved, is never overwritten. Patterns are @actions/glob's (the
// walk and globRegexp of upload-artifact: ** is a globstar; hidden files
// are cached).
//
// Outputs and state are restoreImpl.ts's (actions/cache v4.2.3): the
// primary and matched keys go to state (CACHE_KEY, CACHE_RESULT) in
// actions/cache and to the outputs cache-primary-key and cache-matched-key
// in actions/cache/restore; cache-hit is set only when an entry was found
// ("true" for the primary key, "false" for a restore key): on a miss it is
// intentionally left unset (actions/cache#1466), in both. A restore that
// fails (a bad archive, an entry that would land outside its root) is a
// warning and a miss, as @actions/cache's restoreCache turns any error but
// a validation error into core.warning.

type cacheMeta struct {
	Key     string   `json:"key"`
	Version string   `json:"version"`
	Paths   []string `json:"paths"`
	// Roots are the absolute paths outside the workspace the save
	// archived (its "a/" entries); a restore writes nowhere else outside
	// the workspace (empty: none). Entries saved before it was recorded
	// have no roots field: their roots are then the paths' search paths
	// (the part before any glob).
	Roots   []string `json:"roots"`
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

// cacheInputs is the cache directory and path input, and the check of key
// (actions/cache's validation errors fail the step).
func cacheInputs(e *Env, key string) (dir string, paths []string, err error) {
	if dir, err = e.Rehearsal("CACHE"); err != nil {
		return
	}
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

// cacheRestore is the main step of actions/cache: the keys go to state,
// for the post step.
func cacheRestore(e *Env) error { return restoreCache(e, false) }

// cacheRestoreOnly is actions/cache/restore: the keys are outputs.
func cacheRestoreOnly(e *Env) error { return restoreCache(e, true) }

func restoreCache(e *Env, restoreOnly bool) error {
	key := e.Input("key", "")
	dir, paths, err := cacheInputs(e, key)
	if err != nil {
		return err
	}
	version := cacheVersion(paths)
	lookup, err := e.Bool("lookup-only", false)
	if err != nil {
		return err
	}
	// restoreImpl's stateProvider.setState: state for actions/cache, an
	// output for actions/cache/restore (NullStateProvider).
	setState := func(state, output, value string) error {
		if restoreOnly {
			return e.Output(output, value)
		}
		return e.SaveState(state, value)
	}
	if err := setState("CACHE_KEY", "cache-primary-key", key); err != nil {
		return err
	}
	keys := append([]string{key}, e.Lines("restore-keys")...)
	meta, err := findCache(dir, version, keys)
	if err != nil {
		e.Warnf("Failed to restore: %v", err)
		meta = nil
	}
	if meta != nil && !lookup {
		n, err := extractCache(e, filepath.Join(dir, cacheID(meta.Key, meta.Version), "data.tar"), cacheRoots(e, meta))
		if err != nil {
			e.Warnf("Failed to restore: %s (entry %s)", err, meta.Key)
			meta = nil
		} else {
			e.Logf("Cache restored from key: %s (%d files)", meta.Key, n)
		}
	} else if meta != nil {
		e.Logf("Cache found and can be restored from key: %s (lookup-only)", meta.Key)
	}
	if meta == nil {
		// cache-hit is not set: restoreImpl.ts leaves it unset on a miss.
		if fail, _ := e.Bool("fail-on-cache-miss", false); fail {
			return fmt.Errorf("Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: %s", key)
		}
		e.Logf("Cache not found for input keys: %s", strings.Join(keys, ", "))
		return nil
	}
	if err := setState("CACHE_RESULT", "cache-matched-key", meta.Key); err != nil {
		return err
	}
	return e.Output("cache-hit", fmt.Sprint(meta.Key == key))
}

// cachePost is actions/cache's post step (saveImpl.ts with state): save
// under the primary key the main step computed and kept in state (the
// key input only when there is none), unless the main step hit it exactly.
func cachePost(e *Env) error {
	key := e.State("CACHE_KEY")
	if key == "" {
		key = e.Input("key", "")
	}
	if key == "" {
		e.Warnf("Key is not specified.")
		return nil
	}
	if e.State("CACHE_RESULT") == key {
		e.Logf("Cache hit occurred on the primary key %s, not saving cache.", key)
		return nil
	}
	return saveCache(e, key)
}

// cacheSave is actions/cache/save: the key input is the key.
func cacheSave(e *Env) error { return saveCache(e, e.Input("key", "")) }

func saveCache(e *Env, key string) error {
	dir, paths, err := cacheInputs(e, key)
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
	roots := []string{}
	for _, f := range files {
		if strings.HasPrefix(f.name, "a/") {
			roots = append(roots, f.abs)
		}
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
	meta, _ := json.MarshalIndent(cacheMeta{Key: key, Version: version, Paths: paths, Roots: roots, Created: time.Now().UnixNano()}, "", "  ")
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

// cacheFiles resolves the path patterns as @actions/cache does
// (@actions/glob, implicitDescendants false: a pattern matches files and
// directories, a matched directory is archived whole). A path under
// another match is left to that match's archive.
func cacheFiles(e *Env, paths []string) ([]cacheFile, error) {
	ws, err := e.Workspace()
	if err != nil {
		return nil, err
	}
	var matches []string
	for _, p := range paths {
		if strings.HasPrefix(p, "!") {
			return nil, fmt.Errorf("cache path %q: exclusions are not supported by the rehearsal's stand-in", p)
		}
		matches = append(matches, globCachePath(expandPath(e, ws, p))...)
	}
	sort.Slice(matches, func(i, j int) bool { return len(matches[i]) < len(matches[j]) })
	kept := map[string]bool{}
	var out []cacheFile
	for _, m := range matches {
		if under(kept, m) {
			continue
		}
		kept[m] = true
		out = append(out, cacheFile{abs: m, name: tarName(ws, m)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].abs < out[j].abs })
	return out, nil
}

// under: p or one of its parent directories is in set.
func under(set map[string]bool, p string) bool {
	for {
		if set[p] {
			return true
		}
		d := filepath.Dir(p)
		if d == p {
			return false
		}
		p = d
	}
}

// globCachePath is what one absolute pattern matches: itself when it has
// no glob, else every file or directory a walk (not following symbolic
// links) from its search path finds that globRegexp matches, a directory
// standing for what is under it. "dir/**" matches dir too (a globstar
// matches zero segments).
func globCachePath(abs string) []string {
	if !strings.ContainsAny(abs, "*?[") {
		if _, err := os.Lstat(abs); err != nil {
			return nil
		}
		return []string{abs}
	}
	res := []*regexp.Regexp{globRegexp(abs)}
	if base, ok := strings.CutSuffix(abs, "/**"); ok {
		res = append(res, globRegexp(base))
	}
	var out []string
	filepath.WalkDir(searchPath(abs), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if matchAny(res, p) {
			out = append(out, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out
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

// cacheRoots are the absolute paths outside the workspace an entry may
// restore (its "a/" entries): those its save recorded, or for an entry
// saved before they were recorded, its patterns' search paths.
func cacheRoots(e *Env, m *cacheMeta) []string {
	if m.Roots != nil {
		return m.Roots
	}
	ws, _ := e.Workspace()
	var roots []string
	for _, p := range m.Paths {
		roots = append(roots, searchPath(expandPath(e, ws, p)))
	}
	return roots
}

// extractCache unpacks data.tar over the workspace ("w/" entries) and the
// absolute paths it names ("a/" entries, each under one of roots), as tar
// does: existing files are replaced, others are left. It never writes
// through a symbolic link at or under an entry's root (the workspace, or
// the cached absolute path), whether an earlier entry made it or it was
// on disk: a directory on the way that is a link is an error, and a link
// in the destination's place is replaced, not followed. A path segment
// ".." is an error.
func extractCache(e *Env, path string, roots []string) (int, error) {
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
		for _, seg := range strings.Split(hdr.Name, "/") {
			if seg == ".." {
				return n, fmt.Errorf("entry %q climbs out of its root", hdr.Name)
			}
		}
		var root, rel string
		switch {
		case strings.HasPrefix(hdr.Name, "w/"):
			root, rel = ws, hdr.Name[2:]
		case strings.HasPrefix(hdr.Name, "a/"):
			abs := filepath.Clean(filepath.FromSlash(hdr.Name[1:]))
			if root = cacheRootOf(roots, abs); root == "" {
				return n, fmt.Errorf("entry %q is outside the paths the entry cached (%s)", hdr.Name, strings.Join(roots, ", "))
			}
			rel, _ = filepath.Rel(root, abs)
		default:
			return n, fmt.Errorf("entry %q is neither w/ nor a/", hdr.Name)
		}
		rel = strings.TrimPrefix(filepath.Clean("/"+filepath.FromSlash(rel)), "/")
		if rel == "" && root == ws {
			if hdr.Typeflag == tar.TypeDir {
				continue // the workspace itself
			}
			return n, fmt.Errorf("entry %q would replace the workspace", hdr.Name)
		}
		dst, err := cacheDest(root, root != ws, rel)
		if err != nil {
			return n, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(dst); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				if err := os.Remove(dst); err != nil {
					return n, err
				}
			}
			if err := os.Mkdir(dst, fs.FileMode(hdr.Mode)&fs.ModePerm); err != nil && !errors.Is(err, fs.ErrExist) {
				return n, err
			}
			if fi, err := os.Lstat(dst); err != nil || !fi.IsDir() {
				return n, fmt.Errorf("entry %q: %s is in the way of a directory", hdr.Name, dst)
			}
		case tar.TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(hdr.Linkname, dst); err != nil {
				return n, err
			}
		case tar.TypeReg:
			// A new file (O_EXCL: never one a link points at), renamed over
			// dst: a link there is replaced, not written through.
			out, err := os.CreateTemp(filepath.Dir(dst), ".fluid-standin-restore-*")
			if err != nil {
				return n, err
			}
			_, err = io.Copy(out, tr)
			if err == nil {
				err = out.Chmod(fs.FileMode(hdr.Mode) & fs.ModePerm)
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				os.Chtimes(out.Name(), hdr.ModTime, hdr.ModTime)
				err = os.Rename(out.Name(), dst)
			}
			if err != nil {
				os.Remove(out.Name())
				return n, err
			}
			n++
		}
	}
}

// cacheRootOf is the outermost of roots that abs is or is under, or "".
func cacheRootOf(roots []string, abs string) string {
	best := ""
	for _, r := range roots {
		r = filepath.Clean(r)
		if abs == r || strings.HasPrefix(abs, strings.TrimSuffix(r, "/")+"/") {
			if best == "" || len(r) < len(best) {
				best = r
			}
		}
	}
	return best
}

// cacheDest is root/rel with every directory from root (when checkRoot,
// root itself too) down to its parent made or checked to be a directory,
// not a symbolic link. Above root (an absolute entry's root) directories
// are made as needed.
func cacheDest(root string, checkRoot bool, rel string) (string, error) {
	if checkRoot {
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return "", err
		}
	}
	if rel == "" {
		return root, nil
	}
	var dirs []string
	if checkRoot {
		dirs = append(dirs, root)
	}
	segs := strings.Split(rel, string(filepath.Separator))
	for i := range segs[:len(segs)-1] {
		dirs = append(dirs, filepath.Join(root, filepath.Join(segs[:i+1]...)))
	}
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(d, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", fmt.Errorf("%s is a symbolic link: the cache is not restored through it", d)
		case !fi.IsDir():
			return "", fmt.Errorf("%s is not a directory", d)
		}
	}
	return filepath.Join(root, rel), nil
}
