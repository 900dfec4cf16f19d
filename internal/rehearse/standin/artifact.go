package standin

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The artifact stand-ins speak the v4 artifact protocol of
// actions/upload-artifact and actions/download-artifact (twirp JSON at
// $ACTIONS_RESULTS_URL, the run and job ids from the runtime token) to the
// artifact server act starts, so that jobs of one rehearsed run hand each
// other artifacts the way they do on GitHub.

const artifactService = "twirp/github.actions.results.api.v1.ArtifactService/"

// maxArtifactBytes bounds one artifact read back from the server.
const maxArtifactBytes = 4 << 30

type results struct {
	base, token, runID, jobID string
	http                      *http.Client
}

func newResults(e *Env) (*results, error) {
	base := e.Getenv("ACTIONS_RESULTS_URL")
	tok := e.Getenv("ACTIONS_RUNTIME_TOKEN")
	if base == "" || tok == "" {
		return nil, errors.New("ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN are not set: act starts its artifact server only with --artifact-server-path (the rehearsal passes it)")
	}
	// The runtime token is a JWT whose scp claim names the run and job:
	// "Actions.Results:<run backend id>:<job backend id>".
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("ACTIONS_RUNTIME_TOKEN is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("ACTIONS_RUNTIME_TOKEN payload: %w", err)
	}
	var claims struct {
		Scp string `json:"scp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("ACTIONS_RUNTIME_TOKEN claims: %w", err)
	}
	r := &results{base: strings.TrimSuffix(base, "/") + "/", token: tok, http: &http.Client{Timeout: 10 * time.Minute}}
	for _, s := range strings.Fields(claims.Scp) {
		if f := strings.Split(s, ":"); len(f) == 3 && f[0] == "Actions.Results" {
			r.runID, r.jobID = f[1], f[2]
		}
	}
	if r.runID == "" {
		return nil, fmt.Errorf("ACTIONS_RUNTIME_TOKEN has no Actions.Results scope (scp %q)", claims.Scp)
	}
	return r, nil
}

// call posts a twirp JSON request and decodes the answer into out.
func (r *results) call(method string, in map[string]any, out any) error {
	in["workflow_run_backend_id"], in["workflow_job_run_backend_id"] = r.runID, r.jobID
	body, _ := json.Marshal(in)
	req, err := http.NewRequest(http.MethodPost, r.base+artifactService+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", method, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: answer %q: %w", method, b, err)
		}
	}
	return nil
}

// int64 fields arrive as JSON strings (protojson).
type pbInt int64

func (p *pbInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	*p = pbInt(n)
	return err
}

type listed struct {
	Name string `json:"name"`
	ID   pbInt  `json:"databaseId"`
	Size pbInt  `json:"size"`
}

// list returns the run's artifacts (name filter optional). act's server
// drops the connection (a panic reading the run's missing directory) while
// the run has no artifact at all: that answer is an empty list.
func (r *results) list(name string) ([]listed, error) {
	in := map[string]any{}
	if name != "" {
		in["name_filter"] = name
	}
	var out struct {
		Artifacts []listed `json:"artifacts"`
	}
	if err := r.call("ListArtifacts", in, &out); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil
		}
		return nil, err
	}
	var got []listed
	for _, a := range out.Artifacts {
		if name == "" || a.Name == name {
			got = append(got, a)
		}
	}
	return got, nil
}

var badArtifactName = regexp.MustCompile(`["\:<>|*?\r\n\\/]`)

// artifactEnv is what both artifact stand-ins start from: act's artifact
// server and the workspace.
func artifactEnv(e *Env) (*results, string, error) {
	r, err := newResults(e)
	if err != nil {
		return nil, "", err
	}
	ws, err := e.Workspace()
	return r, ws, err
}

func uploadArtifact(e *Env) error {
	r, ws, err := artifactEnv(e)
	if err != nil {
		return err
	}
	name := e.Input("name", "artifact")
	if badArtifactName.MatchString(name) {
		return fmt.Errorf("The artifact name is not valid: %s. Contains the following character: one of \" : < > | * ? \\r \\n \\ /", name)
	}
	hidden, err := e.Bool("include-hidden-files", false)
	if err != nil {
		return err
	}
	overwrite, err := e.Bool("overwrite", false)
	if err != nil {
		return err
	}
	root, files, err := artifactFiles(e, ws, e.Lines("path"), hidden)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		msg := fmt.Sprintf("No files were found with the provided path: %s. No artifacts will be uploaded.", strings.Join(e.Lines("path"), "\n"))
		switch e.Input("if-no-files-found", "warn") {
		case "error":
			return errors.New(msg)
		case "ignore":
			e.Logf("%s", msg)
		default:
			e.Warnf("%s", msg)
		}
		return nil
	}
	existing, err := r.list(name)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		if !overwrite {
			return fmt.Errorf("Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: an artifact with this name already exists on the workflow run (artifact %q; another job or step uploads the same name: rename one, or set overwrite: true)", name)
		}
		if err := r.call("DeleteArtifact", map[string]any{"name": name}, nil); err != nil {
			return err
		}
	}
	zipFile, size, sum, err := writeArtifactZip(e, root, files)
	if err != nil {
		return fmt.Errorf("upload artifact %s: %w", name, err)
	}
	defer os.Remove(zipFile.Name())
	defer zipFile.Close()
	var created struct {
		Ok  bool   `json:"ok"`
		URL string `json:"signedUploadUrl"`
	}
	if err := r.call("CreateArtifact", map[string]any{"name": name, "version": 4}, &created); err != nil {
		return fmt.Errorf("Failed to CreateArtifact: %w", err)
	}
	if !created.Ok || created.URL == "" {
		return errors.New("Failed to CreateArtifact: the server answered without an upload URL")
	}
	// The zip streams from its file; NopCloser: the file is closed here.
	req, err := http.NewRequest(http.MethodPut, created.URL+"&comp=block", io.NopCloser(zipFile))
	if err != nil {
		return err
	}
	req.ContentLength = size
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("upload artifact %s: %w", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload artifact %s: blob store answered %s", name, resp.Status)
	}
	var fin struct {
		Ok bool  `json:"ok"`
		ID pbInt `json:"artifactId"`
	}
	if err := r.call("FinalizeArtifact", map[string]any{"name": name, "size": strconv.FormatInt(size, 10), "hash": "sha256:" + sum}, &fin); err != nil {
		return fmt.Errorf("Failed to FinalizeArtifact: %w", err)
	}
	e.Logf("Artifact %s has been successfully uploaded! Final size is %d bytes. Artifact ID is %d (%d files from %s)", name, size, fin.ID, len(files), root)
	for k, v := range map[string]string{
		"artifact-id":     strconv.FormatInt(int64(fin.ID), 10),
		"artifact-digest": sum,
		"artifact-url":    fmt.Sprintf("%s/%s/actions/runs/%s/artifacts/%d", e.Getenv("GITHUB_SERVER_URL"), e.Getenv("GITHUB_REPOSITORY"), e.Getenv("GITHUB_RUN_ID"), fin.ID),
	} {
		if err := e.Output(k, v); err != nil {
			return err
		}
	}
	return nil
}

// writeArtifactZip zips files (named by their path under root) into a new
// file under $RUNNER_TEMP, rewound for reading; it returns the zip's size
// and SHA-256. The caller closes and removes the file.
func writeArtifactZip(e *Env, root string, files []string) (*os.File, int64, string, error) {
	dir := e.Getenv("RUNNER_TEMP")
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "fluid-artifact-*.zip")
	if err != nil {
		return nil, 0, "", err
	}
	fail := func(err error) (*os.File, int64, string, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, "", err
	}
	h := sha256.New()
	zw := zip.NewWriter(io.MultiWriter(f, h))
	for _, p := range files {
		rel, _ := filepath.Rel(root, p)
		info, err := os.Stat(p) // a symlink uploads its target's content
		if err != nil {
			return fail(err)
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return fail(err)
		}
		hdr.Name, hdr.Method = filepath.ToSlash(rel), zip.Deflate
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return fail(err)
		}
		src, err := os.Open(p)
		if err != nil {
			return fail(err)
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			return fail(err)
		}
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fail(err)
	}
	return f, size, hex.EncodeToString(h.Sum(nil)), nil
}

// artifactFiles resolves upload-artifact's path input as @actions/glob
// (followSymbolicLinks, implicitDescendants, omitBrokenSymbolicLinks,
// excludeHiddenFiles unless include-hidden-files) and @actions/artifact do:
// one pattern per line, `!` lines exclude, a directory stands for every
// file under it. Symbolic links are followed, to files and to directories
// (a link back to a directory it is inside is skipped). Without hidden, an
// item whose base name starts with a dot is left out together with what
// is under it, the search path itself included (`.out/` and `build/.env`
// upload nothing); a hidden directory above the search path does not count
// (the glob starts at the search path). The root is the least common
// ancestor of the patterns' search paths, as in upload-artifact; a file
// name under it with a character @actions/artifact refuses is an error.
func artifactFiles(e *Env, ws string, patterns []string, hidden bool) (string, []string, error) {
	var include, exclude []*regexp.Regexp
	var searches []string
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		abs := expandPath(e, ws, p)
		if strings.HasSuffix(p, "/") {
			abs += "/"
		}
		re := globRegexp(abs)
		if neg {
			exclude = append(exclude, re)
			continue
		}
		include = append(include, re)
		searches = append(searches, searchPath(abs))
	}
	if len(include) == 0 {
		return "", nil, errors.New("upload-artifact: the path input has no pattern to include")
	}
	seen := map[string]bool{}
	var files []string
	for _, s := range searches {
		walkFollow(s, hidden, nil, func(p string) {
			if seen[p] || matchAny(exclude, p) {
				return
			}
			if matchAny(include, p) || matchDirPrefix(include, p) {
				seen[p] = true
				files = append(files, p)
			}
		})
	}
	sort.Strings(files)
	root := lca(searches)
	if len(searches) == 1 {
		if info, err := os.Stat(root); err == nil && !info.IsDir() {
			root = filepath.Dir(root)
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if err := validateArtifactPath("/" + filepath.ToSlash(rel)); err != nil {
			return "", nil, err
		}
	}
	return root, files, nil
}

// walkFollow calls file for every file at or under p, following symbolic
// links; chain holds the real paths of the directories p is inside, so
// that a link back to one of them ends the walk there (@actions/glob's
// symlink cycle check). Broken links and unreadable entries are skipped.
func walkFollow(p string, hidden bool, chain []string, file func(string)) {
	if !hidden && strings.HasPrefix(filepath.Base(p), ".") {
		return
	}
	info, err := os.Stat(p)
	if err != nil {
		return
	}
	if !info.IsDir() {
		file(p)
		return
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return
	}
	for _, c := range chain {
		if c == real {
			return
		}
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return
	}
	chain = append(chain, real)
	for _, en := range ents {
		walkFollow(filepath.Join(p, en.Name()), hidden, chain, file)
	}
}

// artifactPathCharacters are the characters @actions/artifact refuses in
// the path of an uploaded file (validateFilePath), as it names them.
var artifactPathCharacters = []struct{ c, name string }{
	{`"`, `Double quote "`}, {":", "Colon :"}, {"<", "Less than <"}, {">", "Greater than >"},
	{"|", "Vertical bar |"}, {"*", "Asterisk *"}, {"?", "Question mark ?"},
	{"\r", "Carriage return \\r"}, {"\n", "Line feed \\n"},
}

// validateArtifactPath is @actions/artifact's check of a file's path in
// the artifact ("/" + its path under the root).
func validateArtifactPath(p string) error {
	for _, c := range artifactPathCharacters {
		if strings.Contains(p, c.c) {
			return fmt.Errorf("The path for one of the files in artifact is not valid: %s. Contains the following character: %s\nInvalid characters include: \" : < > | * ? \\r \\n\nThe following characters are not allowed in files that are uploaded due to limitations with certain file systems such as NTFS.", p, c.name)
		}
	}
	return nil
}

// globRegexp turns a glob (**, *, ?, [...] with ! or ^ negating) over an
// absolute path into an anchored regexp; a pattern naming a directory
// (trailing /) matches what is under it.
func globRegexp(g string) *regexp.Regexp {
	dir := strings.HasSuffix(g, "/")
	g = strings.TrimSuffix(g, "/")
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case strings.HasPrefix(g[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(g[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[' && classEnd(g, i) > 0:
			j := classEnd(g, i)
			cls := g[i+1 : j]
			b.WriteString("[")
			if cls[0] == '!' || cls[0] == '^' {
				b.WriteString("^/")
				cls = cls[1:]
			}
			for _, r := range cls {
				if strings.ContainsRune(`\[]^`, r) {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
			b.WriteString("]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if dir {
		b.WriteString("(?:/.*)?")
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// classEnd is the index of the ] closing the character class that opens
// at g[i], or -1 (a ] right after the [ or its negation is a member).
func classEnd(g string, i int) int {
	k := i + 1
	if k < len(g) && (g[k] == '!' || g[k] == '^') {
		k++
	}
	if k < len(g) && g[k] == ']' {
		k++
	}
	if j := strings.IndexByte(g[k:], ']'); j >= 0 {
		return k + j
	}
	return -1
}

func matchAny(res []*regexp.Regexp, p string) bool {
	for _, re := range res {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// matchDirPrefix: a pattern that matched a directory takes its files.
func matchDirPrefix(res []*regexp.Regexp, p string) bool {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		if matchAny(res, d) {
			return true
		}
	}
	return false
}

// searchPath is the part of a pattern before its first glob segment.
func searchPath(abs string) string {
	abs = strings.TrimSuffix(abs, "/")
	segs := strings.Split(abs, "/")
	for i, s := range segs {
		if strings.ContainsAny(s, "*?[") {
			return strings.Join(segs[:i], "/")
		}
	}
	return abs
}

func lca(paths []string) string {
	common := strings.Split(paths[0], "/")
	for _, p := range paths[1:] {
		segs := strings.Split(p, "/")
		n := 0
		for n < len(common) && n < len(segs) && common[n] == segs[n] {
			n++
		}
		common = common[:n]
	}
	if len(common) <= 1 {
		return "/"
	}
	return strings.Join(common, "/")
}

func downloadArtifact(e *Env) error {
	r, ws, err := artifactEnv(e)
	if err != nil {
		return err
	}
	if e.Input("run-id", "") != "" {
		return errors.New("download-artifact: run-id (another run's artifacts through the REST API) is not supported by the rehearsal's stand-in")
	}
	dest := expandPath(e, ws, e.Input("path", ws))
	name, pattern := e.Input("name", ""), e.Input("pattern", "")
	merge, err := e.Bool("merge-multiple", false)
	if err != nil {
		return err
	}
	arts, err := r.list(name)
	if err != nil {
		return err
	}
	if name != "" && len(arts) == 0 {
		return fmt.Errorf("Unable to download artifact(s): Artifact not found for name: %s\n        Please ensure that your artifact is not expired and the artifact was uploaded using a compatible version of toolkit/upload-artifact.\n        (No earlier job of this run uploaded an artifact named %q; check the uploading job's name: input and that this job needs: it.)", name, name)
	}
	if pattern != "" {
		re := globRegexp(pattern)
		var keep []listed
		for _, a := range arts {
			if re.MatchString(a.Name) {
				keep = append(keep, a)
			}
		}
		arts = keep
	}
	for _, a := range arts {
		var signed struct {
			URL string `json:"signedUrl"`
		}
		if err := r.call("GetSignedArtifactURL", map[string]any{"name": a.Name}, &signed); err != nil {
			return err
		}
		to := dest
		if name == "" && !merge {
			to = filepath.Join(dest, a.Name)
		}
		n, err := fetchArtifact(r, signed.URL, to)
		if err != nil {
			return fmt.Errorf("download artifact %s: %w", a.Name, err)
		}
		e.Logf("Artifact %s (%d files) downloaded to %s", a.Name, n, to)
	}
	if name == "" && len(arts) == 0 {
		e.Logf("No artifacts to download")
	}
	return e.Output("download-path", dest)
}

// fetchArtifact streams the zip at url to a temporary file in dest (at
// most maxArtifactBytes), unpacks it there and removes it.
func fetchArtifact(r *results, url, dest string) (int, error) {
	resp, err := r.http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return 0, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(dest, ".fluid-artifact-*.zip")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	size, err := io.Copy(tmp, io.LimitReader(resp.Body, maxArtifactBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if size > maxArtifactBytes {
		return 0, fmt.Errorf("the artifact is larger than %d bytes", int64(maxArtifactBytes))
	}
	return unzipFile(tmp.Name(), dest)
}

// unzipFile unpacks the zip file zipPath into dest.
func unzipFile(zipPath, dest string) (int, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	n := 0
	for _, f := range zr.File {
		clean := path.Clean(f.Name)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return n, fmt.Errorf("zip entry %q climbs out of %s", f.Name, dest)
		}
		dst := filepath.Join(dest, filepath.FromSlash(clean))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return n, err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return n, err
		}
		rc, err := f.Open()
		if err != nil {
			return n, err
		}
		out, err := os.Create(dst)
		if err != nil {
			rc.Close()
			return n, err
		}
		_, err = io.Copy(out, io.LimitReader(rc, maxArtifactBytes))
		rc.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
