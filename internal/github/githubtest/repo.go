package githubtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/gitenv"
)

// This file serves the repository's git data (commits, trees, blobs, refs),
// its pull requests and their issue comments:
//
//	GET    git/commits/{sha}             POST  git/commits
//	GET    git/trees/{sha}[?recursive=1] POST  git/trees
//	GET    git/blobs/{sha}
//	GET    git/ref/{ref}                 GET   git/matching-refs/{ref}
//	POST   git/refs                      PATCH git/refs/{ref}   DELETE git/refs/{ref}
//	GET    pulls[?state=&head=&base=]    POST  pulls
//	GET    pulls/{n}                     PATCH pulls/{n}
//	GET    issues/{n}/comments           POST  issues/{n}/comments
//	GET    issues/comments/{id}          PATCH issues/comments/{id}  DELETE issues/comments/{id}
//
// Objects are content-addressed as git addresses them (SHA-1 of "blob 12\0…",
// of the tree object, of the commit object), so a tree seeded from a git
// repository has the SHA git gives it, and the same files give the same tree.

// botLogin is who creates pull requests and comments through the API: the
// GITHUB_TOKEN of a workflow acts as github-actions[bot].
const (
	botLogin = "github-actions[bot]"
	botEmail = "41898282+github-actions[bot]@users.noreply.github.com"
	botID    = 41898282
)

// gitEntry is one entry of a stored tree.
type gitEntry struct {
	name string
	mode string // as the API spells it: "100644", "100755", "120000", "160000", "040000"
	sha  string
}

func (e gitEntry) kind() string {
	switch e.mode {
	case "040000":
		return "tree"
	case "160000":
		return "commit"
	}
	return "blob"
}

// gitCommit is a stored commit.
type gitCommit struct {
	tree              string
	parents           []string
	message           string
	author, committer gitSig
}

type gitSig struct {
	name, email string
	date        time.Time
}

// leaf is a file of a flattened tree: a blob, or a submodule's commit.
type leaf struct{ mode, sha string }

// Pull is a stored pull request.
type Pull struct {
	Number  int
	Title   string
	Body    string
	State   string // "open" or "closed"
	User    string // the author's login
	HeadRef string // the head branch, e.g. "profiles/refresh"
	HeadSHA string // follows the head branch when it is updated
	BaseRef string // the branch it targets, e.g. "main"
	HTMLURL string
	created time.Time
}

// Comment is a stored issue (pull request) comment.
type Comment struct {
	ID   int64
	Body string
	User string // login; a login ending in "[bot]" is of type "Bot"

	issue            int
	created, updated time.Time
}

// SeedCommit stores a commit whose tree holds files (slash-separated path
// → contents, mode 100644) under sha, as if it had been pushed. It has no
// parents. It panics on a malformed path, or one that is both a file and a
// directory.
func (s *Server) SeedCommit(sha string, files map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	leaves := map[string]leaf{}
	for p, data := range files {
		leaves[p] = leaf{"100644", s.putBlob(data)}
	}
	if err := s.seed(sha, leaves); err != nil {
		panic("githubtest: SeedCommit: " + err.Error())
	}
}

func (s *Server) seed(sha string, leaves map[string]leaf) error {
	if sha == "" || strings.ContainsAny(sha, "/ \t\n") {
		return fmt.Errorf("bad commit SHA %q", sha)
	}
	for p := range leaves {
		if !validPath(p) {
			return fmt.Errorf("bad path %q", p)
		}
	}
	tree, err := s.writeTree(leaves)
	if err != nil {
		return err
	}
	sig := gitSig{"githubtest", "githubtest@example.com", s.now()}
	s.commits[sha] = &gitCommit{tree: tree, message: "seeded commit\n", author: sig, committer: sig}
	return nil
}

// SeedFromGit seeds the commit rev of the git repository at repoDir (read
// with git rev-parse, ls-tree and cat-file, GIT_* variables of the
// environment ignored) under its own SHA, which it returns. Files keep their
// modes (100644, 100755, 120000 for symbolic links, whose contents are their
// targets); submodules are kept as commit entries. For a SHA-1 repository
// the tree has the SHA git gives it.
func (s *Server) SeedFromGit(ctx context.Context, repoDir, rev string) (string, error) {
	git := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repoDir}, args...)...)
		cmd.Env = gitenv.Environ()
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	out, err := git(nil, "rev-parse", "--verify", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("seed %s from %s: %w", rev, repoDir, err)
	}
	sha := strings.TrimSpace(string(out))
	out, err = git(nil, "ls-tree", "-r", "-z", "--full-tree", sha)
	if err != nil {
		return "", fmt.Errorf("seed %s from %s: %w", rev, repoDir, err)
	}
	type file struct{ path, mode, sha string }
	var files []file
	var want bytes.Buffer
	seen := map[string]bool{}
	for _, rec := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if rec == "" {
			continue
		}
		meta, path, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return "", fmt.Errorf("seed %s from %s: unexpected ls-tree line %q", rev, repoDir, rec)
		}
		files = append(files, file{path, f[0], f[2]})
		if f[1] == "blob" && !seen[f[2]] {
			seen[f[2]] = true
			want.WriteString(f[2] + "\n")
		}
	}
	blobs := map[string][]byte{}
	if want.Len() > 0 {
		out, err = git(want.Bytes(), "cat-file", "--batch")
		if err != nil {
			return "", fmt.Errorf("seed %s from %s: %w", rev, repoDir, err)
		}
		if blobs, err = parseBatch(out); err != nil {
			return "", fmt.Errorf("seed %s from %s: git cat-file: %w", rev, repoDir, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	leaves := map[string]leaf{}
	for _, f := range files {
		switch f.mode {
		case "100644", "100755", "120000":
			data, ok := blobs[f.sha]
			if !ok {
				return "", fmt.Errorf("seed %s from %s: git cat-file did not return blob %s (%s)", rev, repoDir, f.sha, f.path)
			}
			leaves[f.path] = leaf{f.mode, s.putBlob(data)}
		case "160000":
			leaves[f.path] = leaf{f.mode, f.sha}
		default:
			return "", fmt.Errorf("seed %s from %s: %s has mode %s", rev, repoDir, f.path, f.mode)
		}
	}
	if err := s.seed(sha, leaves); err != nil {
		return "", fmt.Errorf("seed %s from %s: %w", rev, repoDir, err)
	}
	return sha, nil
}

// parseBatch reads git cat-file --batch output: "<sha> <type> <size>\n",
// the contents, "\n", per object.
func parseBatch(out []byte) (map[string][]byte, error) {
	objs := map[string][]byte{}
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		header, err := r.ReadString('\n')
		if err == io.EOF && header == "" {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		f := strings.Fields(header)
		if len(f) != 3 {
			return nil, fmt.Errorf("unexpected header %q", strings.TrimSpace(header))
		}
		size, err := strconv.Atoi(f[2])
		if err != nil || size < 0 {
			return nil, fmt.Errorf("unexpected header %q", strings.TrimSpace(header))
		}
		data := make([]byte, size+1)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("object %s: %w", f[0], err)
		}
		objs[f[0]] = data[:size]
	}
}

// SetRef points ref ("heads/main", or "refs/heads/main") at sha, creating
// it if needed. Open pull requests from that branch follow it.
func (s *Server) SetRef(ref, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRef(strings.TrimPrefix(ref, "refs/"), sha)
}

func (s *Server) setRef(name, sha string) {
	s.refs[name] = sha
	if branch, ok := strings.CutPrefix(name, "heads/"); ok {
		for _, p := range s.pulls {
			if p.HeadRef == branch && p.State == "open" {
				p.HeadSHA = sha
			}
		}
	}
}

// Ref returns the SHA ref ("heads/main", or "refs/heads/main") points at.
func (s *Server) Ref(ref string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.refs[strings.TrimPrefix(ref, "refs/")]
	return sha, ok
}

// Parents returns the parents of commit sha; false if the server does not
// know the commit.
func (s *Server) Parents(sha string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commits[sha]
	if !ok {
		return nil, false
	}
	return append([]string(nil), c.parents...), true
}

// Tree returns the files of commit commitSHA (path → contents), seeded or
// created through the API; false if the server does not know the commit.
// Submodule entries are left out.
func (s *Server) Tree(commitSHA string) (map[string][]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commits[commitSHA]
	if !ok {
		return nil, false
	}
	leaves := map[string]leaf{}
	s.flatten(c.tree, "", leaves)
	files := map[string][]byte{}
	for p, l := range leaves {
		if l.mode != "160000" {
			files[p] = bytes.Clone(s.blobs[l.sha])
		}
	}
	return files, true
}

// AddPull stores an open pull request number from branch headRef (at
// headSHA) into baseRef, replacing one with that number. It does not touch
// the refs.
func (s *Server) AddPull(number int, headSHA, headRef, baseRef string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Pull{Number: number, Title: headRef, State: "open", User: s.Owner, HeadRef: headRef, HeadSHA: headSHA, BaseRef: baseRef,
		HTMLURL: s.htmlURL(fmt.Sprintf("pull/%d", number)), created: s.now()}
	for i, q := range s.pulls {
		if q.Number == number {
			s.pulls[i] = p
			return
		}
	}
	s.pulls = append(s.pulls, p)
}

// Pulls returns the pull requests, by number.
func (s *Server) Pulls() []Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pull
	for _, p := range s.pulls {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// Comments returns the comments on pull request number, oldest first.
func (s *Server) Comments(number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments[number] {
		out = append(out, *c)
	}
	return out
}

// AddComment stores a comment by user on pull request number and returns
// its ID.
func (s *Server) AddComment(number int, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addComment(number, user, body).ID
}

func (s *Server) addComment(number int, user, body string) *Comment {
	now := s.now()
	c := &Comment{ID: s.id(), Body: body, User: user, issue: number, created: now, updated: now}
	s.comments[number] = append(s.comments[number], c)
	return c
}

// now is the server's clock: it moves one second per call, so what is
// created later is newer, and the same calls give the same times.
func (s *Server) now() time.Time { return time.Unix(1700000000+s.id(), 0).UTC() }

func hashObject(kind string, data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", kind, len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) putBlob(data []byte) string {
	sha := hashObject("blob", data)
	if _, ok := s.blobs[sha]; !ok {
		s.blobs[sha] = bytes.Clone(data)
	}
	return sha
}

// writeTree stores the tree holding leaves (path → leaf) and its subtrees,
// and returns its SHA.
func (s *Server) writeTree(leaves map[string]leaf) (string, error) {
	files := map[string]leaf{}
	dirs := map[string]map[string]leaf{}
	for p, l := range leaves {
		if name, rest, nested := strings.Cut(p, "/"); nested {
			if dirs[name] == nil {
				dirs[name] = map[string]leaf{}
			}
			dirs[name][rest] = l
		} else {
			files[name] = l
		}
	}
	entries := []gitEntry{}
	for name, l := range files {
		if _, clash := dirs[name]; clash {
			return "", fmt.Errorf("%q is both a file and a directory", name)
		}
		entries = append(entries, gitEntry{name, l.mode, l.sha})
	}
	for name, sub := range dirs {
		sha, err := s.writeTree(sub)
		if err != nil {
			return "", fmt.Errorf("%s/: %w", name, err)
		}
		entries = append(entries, gitEntry{name, "040000", sha})
	}
	// git orders a tree's entries by name, a directory's name ending in "/".
	key := func(e gitEntry) string {
		if e.mode == "040000" {
			return e.name + "/"
		}
		return e.name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	var obj bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&obj, "%s %s\x00", strings.TrimPrefix(e.mode, "0"), e.name)
		raw, err := hex.DecodeString(e.sha)
		if err != nil {
			raw = []byte(e.sha) // a seeded commit named by something else than hex
		}
		obj.Write(raw)
	}
	sha := hashObject("tree", obj.Bytes())
	s.trees[sha] = entries
	return sha, nil
}

// flatten adds the leaves of tree sha to out, their paths prefixed.
func (s *Server) flatten(sha, prefix string, out map[string]leaf) {
	for _, e := range s.trees[sha] {
		if e.mode == "040000" {
			s.flatten(e.sha, prefix+e.name+"/", out)
			continue
		}
		out[prefix+e.name] = leaf{e.mode, e.sha}
	}
}

func validPath(p string) bool {
	if p == "" || strings.ContainsRune(p, 0) {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || c == ".git" {
			return false
		}
	}
	return true
}

// removeAt deletes the leaf at path p and everything under p/.
func removeAt(leaves map[string]leaf, p string) {
	delete(leaves, p)
	for q := range leaves {
		if strings.HasPrefix(q, p+"/") {
			delete(leaves, q)
		}
	}
}

// isAncestor says whether commit a is b or one of b's ancestors.
func (s *Server) isAncestor(a, b string) bool {
	seen := map[string]bool{}
	todo := []string{b}
	for len(todo) > 0 {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if c == a {
			return true
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		if commit, ok := s.commits[c]; ok {
			todo = append(todo, commit.parents...)
		}
	}
	return false
}

func (s *Server) apiURL(path string) string {
	return s.URL + "/repos/" + s.Owner + "/" + s.Repo + "/" + path
}

// htmlURL is where GitHub shows path: html_url fields point at github.com,
// as they do on GitHub.
func (s *Server) htmlURL(path string) string {
	return "https://github.com/" + s.Owner + "/" + s.Repo + "/" + path
}

func nodeID(kind string, id any) string {
	return base64.RawStdEncoding.EncodeToString(fmt.Appendf(nil, "%s:%v", kind, id))
}

func (s *Server) repoJSON() map[string]any {
	return map[string]any{
		"id": s.RepositoryID(), "node_id": nodeID("Repository", s.Owner+"/"+s.Repo), "name": s.Repo, "full_name": s.Owner + "/" + s.Repo,
		"owner": userJSON(s.Owner), "private": false, "html_url": "https://github.com/" + s.Owner + "/" + s.Repo,
		"url": s.URL + "/repos/" + s.Owner + "/" + s.Repo, "default_branch": "main",
	}
}

// RepositoryID is the repository's numeric ID (as GET /repos/{owner}/{repo}
// and a workflow's GITHUB_REPOSITORY_ID give it): derived from owner/name, so
// a server for another name has another ID. The owner's ID is its user ID.
func (s *Server) RepositoryID() int64 {
	h := fnv.New32a()
	h.Write([]byte("repository " + s.Owner + "/" + s.Repo))
	return int64(h.Sum32())
}

// OwnerID is the owner's numeric ID (GITHUB_REPOSITORY_OWNER_ID).
func (s *Server) OwnerID() int64 { return userJSON(s.Owner)["id"].(int64) }

func userJSON(login string) map[string]any {
	if login == botLogin {
		return map[string]any{"login": login, "id": botID, "type": "Bot"}
	}
	h := fnv.New32a()
	h.Write([]byte(login))
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{"login": login, "id": int64(h.Sum32()), "type": typ}
}

func sigJSON(g gitSig) map[string]any {
	return map[string]any{"name": g.name, "email": g.email, "date": g.date.UTC().Format(time.RFC3339)}
}

func validationFailed(w http.ResponseWriter, message string, errs ...map[string]string) {
	body := map[string]any{"message": message, "documentation_url": "https://docs.github.com/rest"}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	writeJSON(w, http.StatusUnprocessableEntity, body)
}

// decode reads the JSON body into v; false (answered 400) when it is not JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/rest"})
		return false
	}
	return true
}

// serveGit serves git/...; false: no such endpoint.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request, parts []string) bool {
	if len(parts) == 0 {
		return false
	}
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case parts[0] == "commits" && len(parts) == 2 && get:
		c, ok := s.commits[parts[1]]
		if !ok {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, s.commitJSON(parts[1], c))
	case parts[0] == "commits" && len(parts) == 1 && post:
		s.createCommit(w, r)
	case parts[0] == "trees" && len(parts) == 2 && get:
		sha := s.resolveTree(parts[1])
		if sha == "" {
			s.notFound(w)
			return true
		}
		// Any value of recursive, even 0 or false, asks for the whole tree.
		_, recursive := r.URL.Query()["recursive"]
		writeJSON(w, 200, s.treeJSON(sha, recursive))
	case parts[0] == "trees" && len(parts) == 1 && post:
		s.createTree(w, r)
	case parts[0] == "blobs" && len(parts) == 2 && get:
		data, ok := s.blobs[parts[1]]
		if !ok {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, map[string]any{"sha": parts[1], "node_id": nodeID("Blob", parts[1]), "size": len(data),
			"url": s.apiURL("git/blobs/" + parts[1]), "content": base64.StdEncoding.EncodeToString(data), "encoding": "base64"})
	case parts[0] == "ref" && len(parts) >= 2 && get:
		name := strings.Join(parts[1:], "/")
		if _, ok := s.refs[name]; !ok {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, s.refJSON(name))
	case parts[0] == "matching-refs" && get:
		prefix := "refs/" + strings.Join(parts[1:], "/")
		out := []any{}
		for _, name := range slices.Sorted(maps.Keys(s.refs)) {
			if strings.HasPrefix("refs/"+name, prefix) {
				out = append(out, s.refJSON(name))
			}
		}
		writeJSON(w, 200, out)
	case parts[0] == "refs" && len(parts) == 1 && post:
		var in struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		}
		if !decode(w, r, &in) {
			return true
		}
		name, ok := strings.CutPrefix(in.Ref, "refs/")
		switch {
		case !ok || strings.Count(in.Ref, "/") < 2 || !validPath(name):
			validationFailed(w, "Reference name must start with 'refs/' and have at least two slashes.")
		case !s.objectExists(in.SHA):
			validationFailed(w, "Object does not exist")
		case s.refs[name] != "":
			validationFailed(w, "Reference already exists")
		default:
			s.setRef(name, in.SHA)
			writeJSON(w, 201, s.refJSON(name))
		}
	case parts[0] == "refs" && len(parts) >= 2 && r.Method == http.MethodPatch:
		name := strings.Join(parts[1:], "/")
		var in struct {
			SHA   string `json:"sha"`
			Force bool   `json:"force"`
		}
		if !decode(w, r, &in) {
			return true
		}
		old, exists := s.refs[name]
		switch {
		case !exists:
			validationFailed(w, "Reference does not exist")
		case !s.objectExists(in.SHA):
			validationFailed(w, "Object does not exist")
		case !in.Force && !s.isAncestor(old, in.SHA):
			validationFailed(w, "Update is not a fast forward")
		default:
			s.setRef(name, in.SHA)
			writeJSON(w, 200, s.refJSON(name))
		}
	case parts[0] == "refs" && len(parts) >= 2 && r.Method == http.MethodDelete:
		name := strings.Join(parts[1:], "/")
		if _, ok := s.refs[name]; !ok {
			validationFailed(w, "Reference does not exist")
			return true
		}
		delete(s.refs, name)
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}

func (s *Server) objectExists(sha string) bool {
	_, c := s.commits[sha]
	_, t := s.trees[sha]
	_, b := s.blobs[sha]
	return sha != "" && (c || t || b)
}

// resolveTree finds the tree a GET git/trees names: a tree SHA, a commit
// SHA, or a branch or tag name.
func (s *Server) resolveTree(name string) string {
	if _, ok := s.trees[name]; ok {
		return name
	}
	if c, ok := s.commits[name]; ok {
		return c.tree
	}
	for _, ref := range []string{"heads/" + name, "tags/" + name} {
		if c, ok := s.commits[s.refs[ref]]; ok {
			return c.tree
		}
	}
	return ""
}

func (s *Server) treeJSON(sha string, recursive bool) map[string]any {
	entries := []any{}
	var walk func(tree, prefix string)
	walk = func(tree, prefix string) {
		for _, e := range s.trees[tree] {
			m := map[string]any{"path": prefix + e.name, "mode": e.mode, "type": e.kind(), "sha": e.sha}
			switch e.kind() {
			case "blob":
				m["size"] = len(s.blobs[e.sha])
				m["url"] = s.apiURL("git/blobs/" + e.sha)
			case "tree":
				m["url"] = s.apiURL("git/trees/" + e.sha)
			}
			entries = append(entries, m)
			if recursive && e.kind() == "tree" {
				walk(e.sha, prefix+e.name+"/")
			}
		}
	}
	walk(sha, "")
	return map[string]any{"sha": sha, "url": s.apiURL("git/trees/" + sha), "tree": entries, "truncated": false}
}

func (s *Server) createTree(w http.ResponseWriter, r *http.Request) {
	var in struct {
		BaseTree string                       `json:"base_tree"`
		Tree     []map[string]json.RawMessage `json:"tree"`
	}
	if !decode(w, r, &in) {
		return
	}
	leaves := map[string]leaf{}
	if in.BaseTree != "" {
		if _, ok := s.trees[in.BaseTree]; !ok {
			validationFailed(w, "base_tree "+in.BaseTree+" is not a valid tree")
			return
		}
		s.flatten(in.BaseTree, "", leaves)
	}
	str := func(e map[string]json.RawMessage, key string) string {
		var v string
		json.Unmarshal(e[key], &v)
		return v
	}
	isSet := func(e map[string]json.RawMessage, key string) (present, null bool) {
		raw, ok := e[key]
		return ok, ok && string(bytes.TrimSpace(raw)) == "null"
	}
	for _, e := range in.Tree {
		path, mode, typ := str(e, "path"), str(e, "mode"), str(e, "type")
		if !validPath(path) {
			validationFailed(w, fmt.Sprintf("tree.path %q contains a malformed path component", path))
			return
		}
		hasContent, nullContent := isSet(e, "content")
		hasSHA, nullSHA := isSet(e, "sha")
		hasContent = hasContent && !nullContent
		switch {
		case hasContent && hasSHA && !nullSHA:
			validationFailed(w, "Only one of tree.sha or tree.content may be supplied")
			return
		case hasContent:
			if (typ != "" && typ != "blob") || !blobMode(mode) {
				validationFailed(w, fmt.Sprintf("tree entry %s: content needs type blob and mode 100644, 100755 or 120000", path))
				return
			}
			removeAt(leaves, path)
			leaves[path] = leaf{mode, s.putBlob([]byte(str(e, "content")))}
		case hasSHA && nullSHA:
			// "sha": null deletes the path from the base tree.
			removeAt(leaves, path)
		case hasSHA:
			sha := str(e, "sha")
			switch {
			case typ == "blob" && blobMode(mode) && s.blobs[sha] != nil:
				removeAt(leaves, path)
				leaves[path] = leaf{mode, sha}
			case typ == "tree" && (mode == "040000" || mode == "40000") && s.trees[sha] != nil:
				removeAt(leaves, path)
				s.flatten(sha, path+"/", leaves)
			case typ == "commit" && mode == "160000":
				removeAt(leaves, path)
				leaves[path] = leaf{mode, sha}
			default:
				validationFailed(w, fmt.Sprintf("tree.sha %s is not a valid %s", sha, typ))
				return
			}
		default:
			validationFailed(w, "Must supply either tree.sha or tree.content")
			return
		}
	}
	sha, err := s.writeTree(leaves)
	if err != nil {
		validationFailed(w, "Invalid tree info: "+err.Error())
		return
	}
	writeJSON(w, 201, s.treeJSON(sha, false))
}

func blobMode(m string) bool { return m == "100644" || m == "100755" || m == "120000" }

func (s *Server) createCommit(w http.ResponseWriter, r *http.Request) {
	type sigIn struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		Date  string `json:"date"`
	}
	var in struct {
		Message   string   `json:"message"`
		Tree      string   `json:"tree"`
		Parents   []string `json:"parents"`
		Author    *sigIn   `json:"author"`
		Committer *sigIn   `json:"committer"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Message == "" {
		validationFailed(w, "Invalid request.\n\n\"message\" wasn't supplied.")
		return
	}
	if _, ok := s.trees[in.Tree]; !ok {
		validationFailed(w, "Tree SHA does not exist")
		return
	}
	for _, p := range in.Parents {
		if _, ok := s.commits[p]; !ok {
			validationFailed(w, "Parent SHA does not exist or is not a commit object")
			return
		}
	}
	now := s.now()
	sig := func(in *sigIn, def gitSig) gitSig {
		if in == nil || in.Name == "" || in.Email == "" {
			return def
		}
		g := gitSig{in.Name, in.Email, def.date}
		if t, err := time.Parse(time.RFC3339, in.Date); err == nil {
			g.date = t
		}
		return g
	}
	c := &gitCommit{tree: in.Tree, parents: in.Parents, message: in.Message}
	c.author = sig(in.Author, gitSig{botLogin, botEmail, now})
	c.committer = sig(in.Committer, c.author)
	var obj strings.Builder
	fmt.Fprintf(&obj, "tree %s\n", c.tree)
	for _, p := range c.parents {
		fmt.Fprintf(&obj, "parent %s\n", p)
	}
	line := func(g gitSig) string { return fmt.Sprintf("%s <%s> %d +0000", g.name, g.email, g.date.Unix()) }
	fmt.Fprintf(&obj, "author %s\ncommitter %s\n\n%s", line(c.author), line(c.committer), c.message)
	sha := hashObject("commit", []byte(obj.String()))
	s.commits[sha] = c
	writeJSON(w, 201, s.commitJSON(sha, c))
}

func (s *Server) commitJSON(sha string, c *gitCommit) map[string]any {
	parents := []any{}
	for _, p := range c.parents {
		parents = append(parents, map[string]any{"sha": p, "url": s.apiURL("git/commits/" + p), "html_url": s.htmlURL("commit/" + p)})
	}
	return map[string]any{
		"sha": sha, "node_id": nodeID("Commit", sha), "url": s.apiURL("git/commits/" + sha), "html_url": s.htmlURL("commit/" + sha),
		"author": sigJSON(c.author), "committer": sigJSON(c.committer), "message": c.message,
		"tree":         map[string]any{"sha": c.tree, "url": s.apiURL("git/trees/" + c.tree)},
		"parents":      parents,
		"verification": map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil},
	}
}

func (s *Server) refJSON(name string) map[string]any {
	sha := s.refs[name]
	typ, path := "commit", "git/commits/"
	if _, ok := s.trees[sha]; ok {
		typ, path = "tree", "git/trees/"
	} else if _, ok := s.blobs[sha]; ok {
		typ, path = "blob", "git/blobs/"
	}
	return map[string]any{
		"ref": "refs/" + name, "node_id": nodeID("Ref", name), "url": s.apiURL("git/refs/" + name),
		"object": map[string]any{"type": typ, "sha": sha, "url": s.apiURL(path + sha)},
	}
}

func (s *Server) pull(n string) *Pull {
	for _, p := range s.pulls {
		if strconv.Itoa(p.Number) == n {
			return p
		}
	}
	return nil
}

func (s *Server) pullJSON(p *Pull) map[string]any {
	n := strconv.Itoa(p.Number)
	side := func(ref, sha string) map[string]any {
		return map[string]any{"label": s.Owner + ":" + ref, "ref": ref, "sha": sha, "user": userJSON(s.Owner), "repo": s.repoJSON()}
	}
	var closed any
	if p.State == "closed" {
		closed = p.created.Format(time.RFC3339)
	}
	return map[string]any{
		"url": s.apiURL("pulls/" + n), "id": 1000000 + p.Number, "node_id": nodeID("PullRequest", p.Number), "html_url": p.HTMLURL,
		"diff_url": p.HTMLURL + ".diff", "patch_url": p.HTMLURL + ".patch", "issue_url": s.apiURL("issues/" + n),
		"comments_url": s.apiURL("issues/" + n + "/comments"),
		"number":       p.Number, "state": p.State, "locked": false, "title": p.Title, "body": p.Body, "user": userJSON(p.User),
		"created_at": p.created.Format(time.RFC3339), "updated_at": p.created.Format(time.RFC3339), "closed_at": closed, "merged_at": nil,
		"head": side(p.HeadRef, p.HeadSHA), "base": side(p.BaseRef, s.refs["heads/"+p.BaseRef]),
		"draft": false, "merged": false, "maintainer_can_modify": false,
	}
}

// servePulls serves pulls/...; false: no such endpoint.
func (s *Server) servePulls(w http.ResponseWriter, r *http.Request, parts []string) bool {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		q := r.URL.Query()
		state := q.Get("state")
		if state == "" {
			state = "open"
		}
		head := q.Get("head")
		if owner, ref, ok := strings.Cut(head, ":"); ok {
			if owner != s.Owner {
				ref = "\x00" // another owner's fork: none here
			}
			head = ref
		}
		var match []*Pull
		for _, p := range s.pulls {
			if (state == "all" || p.State == state) && (head == "" || p.HeadRef == head) && (q.Get("base") == "" || p.BaseRef == q.Get("base")) {
				match = append(match, p)
			}
		}
		asc := q.Get("direction") == "asc"
		sort.Slice(match, func(i, j int) bool { return (match[i].Number < match[j].Number) == asc })
		lo, hi := s.page(w, r, len(match))
		out := []any{}
		for _, p := range match[lo:hi] {
			out = append(out, s.pullJSON(p))
		}
		writeJSON(w, 200, out)
	case len(parts) == 0 && r.Method == http.MethodPost:
		s.createPull(w, r)
	case len(parts) == 1 && r.Method == http.MethodGet:
		p := s.pull(parts[0])
		if p == nil {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, s.pullJSON(p))
	case len(parts) == 1 && r.Method == http.MethodPatch:
		p := s.pull(parts[0])
		if p == nil {
			s.notFound(w)
			return true
		}
		var in struct {
			Title *string `json:"title"`
			Body  *string `json:"body"`
			State *string `json:"state"`
			Base  *string `json:"base"`
		}
		if !decode(w, r, &in) {
			return true
		}
		if in.State != nil && *in.State != "open" && *in.State != "closed" {
			validationFailed(w, "Validation Failed", map[string]string{"resource": "PullRequest", "field": "state", "code": "invalid"})
			return true
		}
		if in.Base != nil {
			if _, ok := s.refs["heads/"+*in.Base]; !ok {
				validationFailed(w, "Validation Failed", map[string]string{"resource": "PullRequest", "field": "base", "code": "invalid"})
				return true
			}
			p.BaseRef = *in.Base
		}
		if in.Title != nil {
			p.Title = *in.Title
		}
		if in.Body != nil {
			p.Body = *in.Body
		}
		if in.State != nil {
			p.State = *in.State
		}
		writeJSON(w, 200, s.pullJSON(p))
	default:
		return false
	}
	return true
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
	}
	if !decode(w, r, &in) {
		return
	}
	head := in.Head
	if owner, ref, ok := strings.Cut(head, ":"); ok && owner == s.Owner {
		head = ref
	}
	invalid := func(field, code string) {
		validationFailed(w, "Validation Failed", map[string]string{"resource": "PullRequest", "field": field, "code": code})
	}
	headSHA, okHead := s.refs["heads/"+head]
	baseSHA, okBase := s.refs["heads/"+in.Base]
	switch {
	case in.Title == "":
		invalid("title", "missing_field")
		return
	case !okHead:
		invalid("head", "invalid")
		return
	case !okBase:
		invalid("base", "invalid")
		return
	}
	for _, p := range s.pulls {
		if p.State == "open" && p.HeadRef == head && p.BaseRef == in.Base {
			validationFailed(w, "Validation Failed", map[string]string{"resource": "PullRequest", "code": "custom",
				"message": fmt.Sprintf("A pull request already exists for %s:%s.", s.Owner, head)})
			return
		}
	}
	if s.isAncestor(headSHA, baseSHA) {
		validationFailed(w, "Validation Failed", map[string]string{"resource": "PullRequest", "code": "custom",
			"message": fmt.Sprintf("No commits between %s and %s", in.Base, head)})
		return
	}
	n := 1
	for _, p := range s.pulls {
		n = max(n, p.Number+1)
	}
	p := &Pull{Number: n, Title: in.Title, Body: in.Body, State: "open", User: botLogin, HeadRef: head, HeadSHA: headSHA, BaseRef: in.Base,
		HTMLURL: s.htmlURL(fmt.Sprintf("pull/%d", n)), created: s.now()}
	s.pulls = append(s.pulls, p)
	writeJSON(w, 201, s.pullJSON(p))
}

func (s *Server) commentJSON(c *Comment) map[string]any {
	return map[string]any{
		"id": c.ID, "node_id": nodeID("IssueComment", c.ID), "url": s.apiURL(fmt.Sprintf("issues/comments/%d", c.ID)),
		"html_url":  s.htmlURL(fmt.Sprintf("pull/%d#issuecomment-%d", c.issue, c.ID)),
		"issue_url": s.apiURL(fmt.Sprintf("issues/%d", c.issue)),
		"body":      c.Body, "user": userJSON(c.User), "author_association": "NONE",
		"created_at": c.created.Format(time.RFC3339), "updated_at": c.updated.Format(time.RFC3339),
	}
}

func (s *Server) comment(idStr string) *Comment {
	for _, cs := range s.comments {
		for _, c := range cs {
			if strconv.FormatInt(c.ID, 10) == idStr {
				return c
			}
		}
	}
	return nil
}

// serveIssues serves issues/...: the comments of pull requests (the
// server has no other issues); false: no such endpoint.
func (s *Server) serveIssues(w http.ResponseWriter, r *http.Request, parts []string) bool {
	switch {
	case len(parts) == 2 && parts[0] != "comments" && parts[1] == "comments" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		p := s.pull(parts[0])
		if p == nil {
			s.notFound(w)
			return true
		}
		if r.Method == http.MethodGet {
			cs := s.comments[p.Number]
			lo, hi := s.page(w, r, len(cs))
			out := []any{}
			for _, c := range cs[lo:hi] {
				out = append(out, s.commentJSON(c))
			}
			writeJSON(w, 200, out)
			return true
		}
		body, ok := commentBody(w, r)
		if !ok {
			return true
		}
		writeJSON(w, 201, s.commentJSON(s.addComment(p.Number, botLogin, body)))
	case len(parts) == 2 && parts[0] == "comments":
		c := s.comment(parts[1])
		if c == nil {
			s.notFound(w)
			return true
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, s.commentJSON(c))
		case http.MethodPatch:
			body, ok := commentBody(w, r)
			if !ok {
				return true
			}
			c.Body, c.updated = body, s.now()
			writeJSON(w, 200, s.commentJSON(c))
		case http.MethodDelete:
			cs := s.comments[c.issue]
			for i := range cs {
				if cs[i] == c {
					s.comments[c.issue] = append(cs[:i:i], cs[i+1:]...)
					break
				}
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			return false
		}
	default:
		return false
	}
	return true
}

// page picks the items of the page the request asks for (per_page, 30 by
// default and 100 at most; page, from 1) out of n, and sets the Link header
// GitHub sends for the other pages.
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	p, err := strconv.Atoi(q.Get("page"))
	if err != nil || p <= 0 {
		p = 1
	}
	last := max(1, (n+per-1)/per)
	var links []string
	link := func(page int, rel string) {
		q.Set("page", strconv.Itoa(page))
		links = append(links, fmt.Sprintf("<%s%s?%s>; rel=%q", s.URL, r.URL.Path, q.Encode(), rel))
	}
	if p < last {
		link(p+1, "next")
		link(last, "last")
	}
	if p > 1 {
		link(1, "first")
		link(min(p-1, last), "prev")
	}
	if links != nil {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min((p-1)*per, n)
	return lo, min(lo+per, n)
}

// commentBody decodes a comment's {"body": ...} as GitHub validates it
// (required, not empty); on a bad request it has answered and returns false.
func commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if !decode(w, r, &in) {
		return "", false
	}
	if in.Body == nil || *in.Body == "" {
		validationFailed(w, "Validation Failed", map[string]string{"resource": "IssueComment", "field": "body", "code": "missing_field"})
		return "", false
	}
	return *in.Body, true
}
