// Package githubtest is an in-memory GitHub for one repository: an HTTP
// server (httptest, usable outside of go test too) that serves the
// documented REST endpoints, paths, methods, status codes and JSON shapes
// the project's clients call:
//
//   - releases and release assets: get by tag, latest, list, create, update,
//     list/upload/delete assets, and asset download with Accept:
//     application/octet-stream answered by a 302 to a storage URL, as GitHub
//     does; with faults to inject: 5xx answers, rate limits, uploads that
//     fail and leave a half-uploaded asset, truncated downloads, and asset
//     bodies that stream forever, stall mid-body or trickle (Asset fields);
//   - git data (repo.go): commits, trees, blobs and refs, content-addressed
//     with git's own object hashing, seeded with SeedCommit or SeedFromGit;
//   - pull requests and their issue comments (repo.go);
//   - GitHub Actions (actions.go): workflow runs, filtered as GitHub filters
//     them, and their artifacts, served as zip archives through a 302 to the
//     storage URL.
//
// Storage URLs are pre-signed, as GitHub's are: they reject a request that
// carries an Authorization header. When Token is set, every API request must
// carry it. A request for an endpoint the server does not know is answered
// 404 with GitHub's JSON error and recorded (Unexpected), so a test can fail
// on it. Every method is safe for concurrent use.
package githubtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a fake GitHub for one repository.
type Server struct {
	*httptest.Server
	Owner, Repo string
	// OmitDigest leaves out the assets' "digest" field, like older GitHub
	// Enterprise servers, so clients must compare contents another way.
	OmitDigest bool
	// Token, when not empty, is the only credential the API accepts: every
	// request but those to the storage URLs must carry "Authorization:
	// Bearer <Token>" or "Authorization: token <Token>", else it is answered
	// 401 Bad credentials. Set it before the first request.
	Token string

	mu          sync.Mutex
	storageAuth []string
	nextID      int64
	releases    []*Release
	faults      []*Fault
	log         []string
	unexpected  []string

	// git data and pull requests (repo.go)
	blobs    map[string][]byte
	trees    map[string][]gitEntry
	commits  map[string]*gitCommit
	refs     map[string]string // "heads/main" -> sha
	pulls    []*Pull
	comments map[int][]*Comment

	// GitHub Actions (actions.go)
	runs      []*run
	workflows map[string]int64 // workflow file -> workflow id
}

// Release is a stored release.
type Release struct {
	ID         int64
	Tag        string
	Name       string
	Body       string
	Draft      bool
	Prerelease bool
	Created    time.Time
	// MakeLatest marks the release as the repository's latest whatever its
	// date, as the API's make_latest: "true" does.
	MakeLatest bool
	Assets     []*Asset
}

// Asset is a stored release asset.
type Asset struct {
	ID    int64
	Name  string
	Data  []byte
	State string // "uploaded" or "starter" (an upload that broke off)
	// Tamper, when set, is served instead of Data (the API still reports
	// Data's size and digest): a storage server handing out altered bytes.
	Tamper []byte
	// Truncate, when > 0, serves only that many bytes while announcing the
	// full Content-Length, then drops the connection.
	Truncate int
	// Endless serves Data and then more bytes without end (no
	// Content-Length) until the client goes away: a storage server that
	// sends more than the API declared.
	Endless bool
	// StallAfter, when > 0, serves that many bytes of the body (announcing
	// the full Content-Length) and then sends nothing more until the client
	// goes away: a server that stalls mid-body.
	StallAfter int
	// Trickle, when > 0, serves the body in ten pieces with this pause
	// before each: a slow server that never stalls for longer than Trickle.
	Trickle time.Duration
}

// Fault makes matching requests fail.
type Fault struct {
	Method string // "" matches any
	Path   string // prefix of the URL path after /repos/{owner}/{repo}/ ("" matches any), or "/storage/"
	After  int    // how many matching requests pass before the fault starts
	Times  int    // how many requests fail; then the fault is spent
	Status int    // HTTP status to answer (e.g. 502, 403, 429)
	// RateLimit answers as GitHub's primary rate limit does: 403 with
	// X-RateLimit-Remaining: 0 and X-RateLimit-Reset ResetIn from now.
	RateLimit bool
	ResetIn   time.Duration
	// RetryAfter, when set with Status 429 or a secondary-limit 403, is sent as Retry-After seconds.
	RetryAfter int
	// LeaveStarter makes a failing upload leave a half-uploaded asset behind.
	LeaveStarter bool
}

// New starts a server for owner/repo; Close it when done.
func New(owner, repo string) *Server {
	s := &Server{
		Owner: owner, Repo: repo, nextID: 100,
		blobs: map[string][]byte{}, trees: map[string][]gitEntry{}, commits: map[string]*gitCommit{},
		refs: map[string]string{}, comments: map[int][]*Comment{}, workflows: map[string]int64{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIURL is the base URL to give the client (GITHUB_API_URL).
func (s *Server) APIURL() string { return s.URL + "/" }

// AddRelease stores a published release with the given assets (name → bytes).
func (s *Server) AddRelease(tag string, assets map[string][]byte) *Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Release{ID: s.id(), Tag: tag, Name: tag, Created: time.Unix(1700000000+s.nextID, 0)}
	names := make([]string, 0, len(assets))
	for n := range assets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.Assets = append(r.Assets, &Asset{ID: s.id(), Name: n, Data: assets[n], State: "uploaded"})
	}
	s.releases = append(s.releases, r)
	return r
}

// Release returns the stored release for tag (drafts included), or nil.
func (s *Server) Release(tag string) *Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.releases {
		if r.Tag == tag {
			return r
		}
	}
	return nil
}

// Releases returns how many releases exist.
func (s *Server) Releases() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.releases)
}

// AddFault registers a fault.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Log returns "METHOD path" for every request served so far.
func (s *Server) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Unexpected returns "METHOD path?query" for every request the server has
// no endpoint for (each was answered 404 Not Found, as GitHub answers).
func (s *Server) Unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unexpected...)
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, r.Method+" "+r.URL.Path)
	if strings.HasPrefix(r.URL.Path, "/storage/") {
		if s.fault(w, r, r.URL.Path) {
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) != 2 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			s.notServed(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		s.storageAuth = append(s.storageAuth, auth)
		if auth != "" {
			// A pre-signed URL already carries its credentials; storage
			// services refuse a second authentication mechanism.
			http.Error(w, "InvalidArgument: only one auth mechanism allowed; the URL is pre-signed, no Authorization header may be sent", http.StatusBadRequest)
			return
		}
		s.storage(w, r, parts[1])
		return
	}
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	prefix := "/repos/" + s.Owner + "/" + s.Repo + "/"
	if r.URL.Path == strings.TrimSuffix(prefix, "/") && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, s.repoJSON()) // GET /repos/{owner}/{repo}
		return
	}
	if !strings.HasPrefix(r.URL.Path, prefix) {
		s.notServed(w, r)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	if s.fault(w, r, rest) {
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	served := false
	switch parts[0] {
	case "releases":
		served = s.serveReleases(w, r, parts)
	case "git":
		served = s.serveGit(w, r, parts[1:])
	case "pulls":
		served = s.servePulls(w, r, parts[1:])
	case "issues":
		served = s.serveIssues(w, r, parts[1:])
	case "actions":
		served = s.serveActions(w, r, parts[1:])
	}
	if !served {
		s.notServed(w, r)
	}
}

// authorized says whether r carries the token, when one is required.
func (s *Server) authorized(r *http.Request) bool {
	if s.Token == "" {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "token")) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.Token)) == 1
}

// notServed answers a request for an endpoint the server does not have as
// GitHub does, and records it.
func (s *Server) notServed(w http.ResponseWriter, r *http.Request) {
	s.unexpected = append(s.unexpected, r.Method+" "+r.URL.RequestURI())
	s.notFound(w)
}

// serveReleases serves releases/...; false: no such endpoint.
func (s *Server) serveReleases(w http.ResponseWriter, r *http.Request, parts []string) bool {
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		// Newest first, paged as GitHub pages it (per_page, Link).
		out := []any{}
		for i := len(s.releases) - 1; i >= 0; i-- {
			out = append(out, s.releaseJSON(s.releases[i]))
		}
		lo, hi := s.page(w, r, len(out))
		writeJSON(w, 200, out[lo:hi])
	case len(parts) == 1 && r.Method == http.MethodPost:
		s.create(w, r)
	case len(parts) == 2 && parts[1] == "latest" && r.Method == http.MethodGet:
		var best *Release
		for _, rel := range s.releases {
			if !rel.Draft && !rel.Prerelease && (best == nil || rel.Created.After(best.Created)) {
				best = rel
			}
		}
		for _, rel := range s.releases {
			if rel.MakeLatest && !rel.Draft && !rel.Prerelease {
				best = rel
			}
		}
		if best == nil {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, s.releaseJSON(best))
	case len(parts) == 3 && parts[1] == "tags" && r.Method == http.MethodGet:
		for _, rel := range s.releases {
			if rel.Tag == parts[2] && !rel.Draft {
				writeJSON(w, 200, s.releaseJSON(rel))
				return true
			}
		}
		s.notFound(w)
	case len(parts) == 3 && parts[1] == "assets":
		s.asset(w, r, parts[2])
	case len(parts) == 2 && r.Method == http.MethodPatch:
		rel := s.byID(parts[1])
		if rel == nil {
			s.notFound(w)
			return true
		}
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		if v, ok := in["name"].(string); ok {
			rel.Name = v
		}
		if v, ok := in["body"].(string); ok {
			rel.Body = v
		}
		if v, ok := in["prerelease"].(bool); ok {
			rel.Prerelease = v
		}
		writeJSON(w, 200, s.releaseJSON(rel))
	case len(parts) == 3 && parts[2] == "assets" && r.Method == http.MethodGet:
		rel := s.byID(parts[1])
		if rel == nil {
			s.notFound(w)
			return true
		}
		out := []any{}
		for _, a := range rel.Assets {
			out = append(out, s.assetJSON(a))
		}
		lo, hi := s.page(w, r, len(out))
		writeJSON(w, 200, out[lo:hi])
	case len(parts) == 3 && parts[2] == "assets" && r.Method == http.MethodPost:
		s.upload(w, r, parts[1], nil)
	default:
		return false
	}
	return true
}

// fault answers r with a matching fault, if any is left.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, rest string) bool {
	for _, f := range s.faults {
		if f.Times <= 0 || (f.Method != "" && f.Method != r.Method) || !strings.HasPrefix(rest, f.Path) {
			continue
		}
		if f.After > 0 {
			f.After--
			continue
		}
		f.Times--
		if f.LeaveStarter && r.Method == http.MethodPost {
			parts := strings.Split(strings.Trim(rest, "/"), "/")
			if len(parts) == 3 && parts[2] == "assets" {
				if rel := s.byID(parts[1]); rel != nil {
					body, _ := io.ReadAll(r.Body)
					half := body[:len(body)/2]
					rel.Assets = append(rel.Assets, &Asset{ID: s.id(), Name: r.URL.Query().Get("name"), Data: half, State: "starter"})
				}
			}
		}
		if f.RateLimit {
			w.Header().Set("X-RateLimit-Limit", "60")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(f.ResetIn).Unix(), 10))
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"})
			return true
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		writeJSON(w, f.Status, map[string]string{"message": fmt.Sprintf("injected fault %d", f.Status)})
		return true
	}
	return false
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TagName    string `json:"tag_name"`
		Name       string `json:"name"`
		Body       string `json:"body"`
		Draft      bool   `json:"draft"`
		Prerelease bool   `json:"prerelease"`
		Target     string `json:"target_commitish"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.TagName == "" {
		writeJSON(w, 422, map[string]string{"message": "Validation Failed"})
		return
	}
	for _, rel := range s.releases {
		if rel.Tag == in.TagName {
			writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []map[string]string{{"resource": "Release", "code": "already_exists", "field": "tag_name"}}})
			return
		}
	}
	// As GitHub does: a tag that does not exist yet is created at
	// target_commitish (a branch or a commit; default: the default branch).
	if _, ok := s.refs["tags/"+in.TagName]; !ok && !in.Draft {
		target := in.Target
		if target == "" {
			target = "main"
		}
		if sha, ok := s.refs["heads/"+target]; ok {
			s.refs["tags/"+in.TagName] = sha
		} else if s.objectExists(target) {
			s.refs["tags/"+in.TagName] = target
		}
	}
	rel := &Release{ID: s.id(), Tag: in.TagName, Name: in.Name, Body: in.Body, Draft: in.Draft, Prerelease: in.Prerelease, Created: time.Unix(1700000000+s.nextID, 0)}
	s.releases = append(s.releases, rel)
	writeJSON(w, 201, s.releaseJSON(rel))
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, relID string, _ any) {
	rel := s.byID(relID)
	if rel == nil {
		s.notFound(w)
		return
	}
	name := r.URL.Query().Get("name")
	for _, a := range rel.Assets {
		if a.Name == name {
			writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []map[string]string{{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}}})
			return
		}
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, 400, map[string]string{"message": "bad body"})
		return
	}
	a := &Asset{ID: s.id(), Name: name, Data: data, State: "uploaded"}
	rel.Assets = append(rel.Assets, a)
	writeJSON(w, 201, s.assetJSON(a))
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request, idStr string) {
	for _, rel := range s.releases {
		for i, a := range rel.Assets {
			if strconv.FormatInt(a.ID, 10) != idStr {
				continue
			}
			switch r.Method {
			case http.MethodDelete:
				rel.Assets = append(rel.Assets[:i], rel.Assets[i+1:]...)
				w.WriteHeader(http.StatusNoContent)
			case http.MethodGet:
				if r.Header.Get("Accept") == "application/octet-stream" {
					// GitHub redirects to a pre-signed storage URL.
					http.Redirect(w, r, s.URL+"/storage/"+idStr+"?X-Amz-Signature=test", http.StatusFound)
					return
				}
				writeJSON(w, 200, s.assetJSON(a))
			default:
				writeJSON(w, 405, map[string]string{"message": "method not allowed"})
			}
			return
		}
	}
	s.notFound(w)
}

func (s *Server) storage(w http.ResponseWriter, r *http.Request, idStr string) {
	for _, rel := range s.releases {
		for _, a := range rel.Assets {
			if strconv.FormatInt(a.ID, 10) != idStr {
				continue
			}
			data := a.Data
			if a.Tamper != nil {
				data = a.Tamper
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			if a.Endless {
				w.WriteHeader(200)
				s.endless(w, r, data)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(200)
			if a.Trickle > 0 {
				s.trickle(w, r, data, a.Trickle)
				return
			}
			if a.StallAfter > 0 && a.StallAfter < len(data) {
				s.stall(w, r, data[:a.StallAfter])
				return
			}
			if a.Truncate > 0 && a.Truncate < len(data) {
				w.Write(data[:a.Truncate])
				// Returning with fewer bytes than announced makes the server
				// close the connection: the client sees an unexpected EOF.
				return
			}
			w.Write(data)
			return
		}
	}
	if a := s.artifactByID(idStr); a != nil {
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Length", strconv.Itoa(len(a.data)))
		w.WriteHeader(200)
		w.Write(a.data)
		return
	}
	http.Error(w, "no such object", 404)
}

// endless writes data and then filler bytes until the client goes away. It
// lets go of the server's lock while it streams (serve holds it).
func (s *Server) endless(w http.ResponseWriter, r *http.Request, data []byte) {
	s.mu.Unlock()
	defer s.mu.Lock()
	filler := []byte(strings.Repeat("endless ", 4096))
	for chunk := data; r.Context().Err() == nil; chunk = filler {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// stall writes head, flushes it and then sends nothing until the client
// goes away. It lets go of the server's lock while it waits.
func (s *Server) stall(w http.ResponseWriter, r *http.Request, head []byte) {
	s.mu.Unlock()
	defer s.mu.Lock()
	w.Write(head)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	<-r.Context().Done()
}

// trickle writes data in ten pieces, flushing each, with pause before each.
// It lets go of the server's lock while it writes.
func (s *Server) trickle(w http.ResponseWriter, r *http.Request, data []byte, pause time.Duration) {
	s.mu.Unlock()
	defer s.mu.Lock()
	step := (len(data) + 9) / 10
	for len(data) > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(pause):
		}
		k := min(step, len(data))
		if _, err := w.Write(data[:k]); err != nil {
			return
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		data = data[k:]
	}
}

func (s *Server) byID(idStr string) *Release {
	for _, rel := range s.releases {
		if strconv.FormatInt(rel.ID, 10) == idStr {
			return rel
		}
	}
	return nil
}

func (s *Server) releaseJSON(r *Release) map[string]any {
	assets := []any{}
	for _, a := range r.Assets {
		assets = append(assets, s.assetJSON(a))
	}
	base := s.URL + "/repos/" + s.Owner + "/" + s.Repo + "/releases/" + strconv.FormatInt(r.ID, 10)
	return map[string]any{
		"id": r.ID, "tag_name": r.Tag, "name": r.Name, "body": r.Body, "draft": r.Draft, "prerelease": r.Prerelease,
		"url": base, "upload_url": base + "/assets{?name,label}", "assets": assets,
		"created_at": r.Created.UTC().Format(time.RFC3339),
	}
}

func (s *Server) assetJSON(a *Asset) map[string]any {
	m := map[string]any{
		"id": a.ID, "name": a.Name, "size": len(a.Data), "state": a.State,
		"content_type":         "application/octet-stream",
		"url":                  s.URL + "/repos/" + s.Owner + "/" + s.Repo + "/releases/assets/" + strconv.FormatInt(a.ID, 10),
		"browser_download_url": s.URL + "/download/" + a.Name,
	}
	if !s.OmitDigest && a.State == "uploaded" {
		sum := sha256.Sum256(a.Data)
		m["digest"] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return m
}

func (s *Server) notFound(w http.ResponseWriter) {
	writeJSON(w, 404, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// StorageAuthHeaders returns the Authorization header of every request to
// the storage URL ("" when none was sent). GitHub's storage URLs are
// pre-signed: the API token must not travel there.
func (s *Server) StorageAuthHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.storageAuth...)
}

// ClearFaults removes every fault: the server behaves again.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}
