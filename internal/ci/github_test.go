package ci

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fluid-os/fluid/internal/bench"
)

// fakeGitHub serves the part of GitHub's REST API that fluid-ci uses, with
// the documented paths, methods, status codes and JSON shapes, and keeps
// state in memory so a second run sees what the first one did.
type fakeGitHub struct {
	t   *testing.T
	mu  sync.Mutex
	srv *httptest.Server

	artifacts map[int64][]byte             // run id -> ci-results zip
	prHead    map[int]string               // PR number -> head SHA
	mainRun   int64                        // latest successful push run on main (0: none)
	comments  map[int][]map[string]any     // PR number -> comments
	trees     map[string]map[string]string // tree sha -> path -> content
	commits   map[string]string            // commit sha -> tree sha
	refs      map[string]string            // "heads/x" -> commit sha
	pulls     []map[string]any
	nextID    int64
	calls     []string
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{
		t: t, artifacts: map[int64][]byte{}, prHead: map[int]string{}, comments: map[int][]map[string]any{},
		trees: map[string]map[string]string{}, commits: map[string]string{}, refs: map[string]string{}, nextID: 1000,
	}
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls = append(f.calls, r.Method+" "+r.URL.Path)
			if !strings.HasPrefix(r.URL.Path, "/blob/") && r.Header.Get("Authorization") != "Bearer test-token" {
				http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
				return
			}
			fn(w, r)
		})
	}
	h("GET /repos/o/r/actions/runs/{id}/artifacts", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		var arts []map[string]any
		if _, ok := f.artifacts[id]; ok {
			arts = append(arts, map[string]any{"id": id*10 + 1, "name": "toolchain-image", "expired": false},
				map[string]any{"id": id * 10, "name": ResultsArtifact, "expired": false})
		}
		writeJSON(w, 200, map[string]any{"total_count": len(arts), "artifacts": arts})
	})
	h("GET /repos/o/r/actions/artifacts/{id}/zip", func(w http.ResponseWriter, r *http.Request) {
		// GitHub answers with a redirect to a short-lived signed URL.
		http.Redirect(w, r, f.srv.URL+"/blob/"+r.PathValue("id"), http.StatusFound)
	})
	h("GET /blob/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "token sent to the blob store", http.StatusBadRequest)
			return
		}
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		z, ok := f.artifacts[id/10]
		if !ok || id%10 != 0 {
			http.NotFound(w, r)
			return
		}
		w.Write(z)
	})
	h("GET /repos/o/r/pulls/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		sha, ok := f.prHead[n]
		if !ok {
			writeJSON(w, 404, map[string]any{"message": "Not Found"})
			return
		}
		writeJSON(w, 200, map[string]any{"number": n, "head": map[string]any{"sha": sha}})
	})
	h("GET /repos/o/r/actions/workflows/{file}/runs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.PathValue("file") != "ci.yml" || q.Get("branch") != "main" || q.Get("event") != "push" || q.Get("status") != "success" {
			f.t.Errorf("unexpected runs query %s %v", r.PathValue("file"), q)
		}
		var runs []map[string]any
		if f.mainRun != 0 {
			runs = append(runs, map[string]any{"id": f.mainRun, "head_sha": "feedface00000000"})
		}
		writeJSON(w, 200, map[string]any{"total_count": len(runs), "workflow_runs": runs})
	})
	h("GET /repos/o/r/issues/{n}/comments", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		writeJSON(w, 200, f.comments[n])
	})
	h("POST /repos/o/r/issues/{n}/comments", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		f.nextID++
		c := map[string]any{"id": f.nextID, "body": in["body"], "user": map[string]any{"login": "github-actions[bot]", "type": "Bot"},
			"html_url": fmt.Sprintf("https://github.com/o/r/pull/%d#issuecomment-%d", n, f.nextID)}
		f.comments[n] = append(f.comments[n], c)
		writeJSON(w, 201, c)
	})
	h("PATCH /repos/o/r/issues/comments/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		for _, cs := range f.comments {
			for _, c := range cs {
				if c["id"] == id {
					c["body"] = in["body"]
					writeJSON(w, 200, c)
					return
				}
			}
		}
		writeJSON(w, 404, map[string]any{"message": "Not Found"})
	})
	h("GET /repos/o/r/git/commits/{sha}", func(w http.ResponseWriter, r *http.Request) {
		tree, ok := f.commits[r.PathValue("sha")]
		if !ok {
			writeJSON(w, 404, map[string]any{"message": "Not Found"})
			return
		}
		writeJSON(w, 200, map[string]any{"sha": r.PathValue("sha"), "tree": map[string]any{"sha": tree}})
	})
	h("GET /repos/o/r/git/trees/{sha}", func(w http.ResponseWriter, r *http.Request) {
		files, ok := f.trees[r.PathValue("sha")]
		if !ok || r.URL.Query().Get("recursive") == "" {
			writeJSON(w, 404, map[string]any{"message": "Not Found"})
			return
		}
		var entries []map[string]any
		for _, p := range sortedKeys(files) {
			entries = append(entries, map[string]any{"path": p, "type": "blob", "mode": "100644", "sha": gitSHA(files[p])})
		}
		writeJSON(w, 200, map[string]any{"sha": r.PathValue("sha"), "tree": entries, "truncated": false})
	})
	h("POST /repos/o/r/git/trees", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			BaseTree string            `json:"base_tree"`
			Tree     []json.RawMessage `json:"tree"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		files := map[string]string{}
		for k, v := range f.trees[in.BaseTree] {
			files[k] = v
		}
		for _, raw := range in.Tree {
			var e map[string]any
			json.Unmarshal(raw, &e)
			sha, hasSHA := e["sha"]
			switch {
			case e["content"] != nil:
				files[e["path"].(string)] = e["content"].(string)
			case hasSHA && sha == nil:
				delete(files, e["path"].(string)) // "sha": null deletes
			default:
				f.t.Errorf("tree entry neither content nor deletion: %s", raw)
			}
		}
		sha := treeSHA(files)
		f.trees[sha] = files
		writeJSON(w, 201, map[string]any{"sha": sha})
	})
	h("POST /repos/o/r/git/commits", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Message string   `json:"message"`
			Tree    string   `json:"tree"`
			Parents []string `json:"parents"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		if len(in.Parents) != 1 || f.commits[in.Parents[0]] == "" {
			writeJSON(w, 422, map[string]any{"message": "bad parents"})
			return
		}
		sha := gitSHA(in.Tree + in.Parents[0] + in.Message)
		f.commits[sha] = in.Tree
		writeJSON(w, 201, map[string]any{"sha": sha, "tree": map[string]any{"sha": in.Tree}})
	})
	h("GET /repos/o/r/git/ref/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		sha, ok := f.refs[r.PathValue("ref")]
		if !ok {
			writeJSON(w, 404, map[string]any{"message": "Not Found"})
			return
		}
		writeJSON(w, 200, map[string]any{"ref": "refs/" + r.PathValue("ref"), "object": map[string]any{"sha": sha}})
	})
	h("POST /repos/o/r/git/refs", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Ref, SHA string }
		json.NewDecoder(r.Body).Decode(&in)
		name := strings.TrimPrefix(in.Ref, "refs/")
		if _, exists := f.refs[name]; exists || !strings.HasPrefix(in.Ref, "refs/heads/") {
			writeJSON(w, 422, map[string]any{"message": "Reference already exists"})
			return
		}
		f.refs[name] = in.SHA
		writeJSON(w, 201, map[string]any{"ref": in.Ref, "object": map[string]any{"sha": in.SHA}})
	})
	h("PATCH /repos/o/r/git/refs/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			SHA   string `json:"sha"`
			Force bool   `json:"force"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		if _, ok := f.refs[r.PathValue("ref")]; !ok || !in.Force {
			writeJSON(w, 422, map[string]any{"message": "Update is not a fast forward"})
			return
		}
		f.refs[r.PathValue("ref")] = in.SHA
		writeJSON(w, 200, map[string]any{"ref": "refs/" + r.PathValue("ref"), "object": map[string]any{"sha": in.SHA}})
	})
	h("GET /repos/o/r/pulls", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var out []map[string]any
		for _, p := range f.pulls {
			if "o:"+p["head"].(map[string]any)["ref"].(string) == q.Get("head") && p["base"].(map[string]any)["ref"] == q.Get("base") && p["state"] == q.Get("state") {
				out = append(out, p)
			}
		}
		writeJSON(w, 200, out)
	})
	h("POST /repos/o/r/pulls", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		n := len(f.pulls) + 1
		p := map[string]any{"number": n, "state": "open", "title": in["title"], "body": in["body"],
			"head": map[string]any{"ref": in["head"]}, "base": map[string]any{"ref": in["base"]},
			"html_url": fmt.Sprintf("https://github.com/o/r/pull/%d", n)}
		f.pulls = append(f.pulls, p)
		writeJSON(w, 201, p)
	})
	h("PATCH /repos/o/r/pulls/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		p := f.pulls[n-1]
		p["title"], p["body"] = in["title"], in["body"]
		writeJSON(w, 200, p)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		writeJSON(w, 404, map[string]any{"message": "Not Found"})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) client(t *testing.T) *GitHub {
	g, err := NewGitHub("o/r", "test-token", f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	g.HTTP = f.srv.Client()
	return g
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func gitSHA(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func treeSHA(files map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(files) {
		b.WriteString(k + "\x00" + gitSHA(files[k]) + "\n")
	}
	return gitSHA(b.String())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func zipOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[name]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func benchJSON(t *testing.T, pgo map[string]uint64) string {
	r := bench.Report{Metric: "guest instructions", Variants: []string{bench.Baseline, bench.O3, bench.PGO}, Geomean: map[string]float64{}}
	logSum := 0.0
	for _, name := range sortedKeys(pgo) {
		m := bench.ModuleResult{Module: name, Instructions: map[string]uint64{bench.Baseline: 1000, bench.O3: 950, bench.PGO: pgo[name]},
			Ratio: map[string]float64{bench.Baseline: 1, bench.O3: 0.95, bench.PGO: float64(pgo[name]) / 1000}}
		r.Modules = append(r.Modules, m)
		logSum += float64(pgo[name]) / 1000
	}
	r.Geomean[bench.Baseline], r.Geomean[bench.O3] = 1, 0.95
	r.Geomean[bench.PGO] = bench.Geomean(r.Modules, bench.PGO)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestComment(t *testing.T) {
	f := newFakeGitHub(t)
	const head = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	outcome, _ := json.Marshal(Outcome{
		Steps: []Step{{"test", "success"}, {"bench", "success"}},
		Boots: []Boot{{Log: "serial/boot.log", End: "FLUID-END pass", Passed: true}},
	})
	f.artifacts[77] = zipOf(t, map[string]string{
		"ci/pr.json":      `{"number":5,"head_sha":"` + head + `"}`,
		"ci/outcome.json": string(outcome),
		"bench.json":      benchJSON(t, map[string]uint64{"fib": 800, "sort": 900}),
		"serial/boot.log": "Fluid OS dev\nFLUID-END pass\n",
	})
	f.artifacts[50] = zipOf(t, map[string]string{"bench.json": benchJSON(t, map[string]uint64{"fib": 1000, "sort": 900})})
	f.prHead[5] = head
	f.mainRun = 50
	g := f.client(t)
	opts := CommentOptions{RunID: 77, HeadSHA: head, Conclusion: "success", RunURL: "https://github.com/o/r/actions/runs/77", Workflow: "ci.yml", Base: "main"}

	url, err := g.Comment(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.comments[5]) != 1 || !strings.Contains(url, "#issuecomment-") {
		t.Fatalf("comments = %v, url %s", f.comments[5], url)
	}
	body := f.comments[5][0]["body"].(string)
	for _, want := range []string{CommentMarker, "✅ passed", "FLUID-END pass", "| fib | 1000 | 950 | 800 |", "-20.0% 🟢", "±0.0%", "Compared with main"} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}

	// A second run updates the same comment instead of adding one.
	f.artifacts[78] = f.artifacts[77]
	opts.RunID = 78
	if _, err := g.Comment(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if len(f.comments[5]) != 1 || !strings.Contains(f.comments[5][0]["body"].(string), "ci run [78]") {
		t.Errorf("second run did not update the one comment: %v", f.comments[5])
	}

	// A pr.json naming a pull request whose head is not what the run built
	// (a forged or stale artifact) is refused, and nothing is posted.
	f.prHead[6] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	f.artifacts[79] = zipOf(t, map[string]string{"ci/pr.json": `{"number":6}`})
	opts.RunID = 79
	if _, err := g.Comment(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "refusing to comment") {
		t.Errorf("forged pr.json: err = %v", err)
	}
	if len(f.comments[6]) != 0 {
		t.Errorf("commented on #6 anyway")
	}

	// No artifact at all: a clear error.
	opts.RunID = 80
	if _, err := g.Comment(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "has no ci-results artifact") {
		t.Errorf("missing artifact: err = %v", err)
	}

	// Without a main run, the comment says there is no comparison.
	f.mainRun = 0
	opts.RunID = 77
	if _, err := g.Comment(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if body := f.comments[5][0]["body"].(string); !strings.Contains(body, "no bench comparison") || strings.Contains(body, "vs main") {
		t.Errorf("comment without a main run:\n%s", body)
	}
}

func TestProfilesPR(t *testing.T) {
	f := newFakeGitHub(t)
	const base = "cccccccccccccccccccccccccccccccccccccccc"
	f.trees["t0"] = map[string]string{"README.md": "hi", "profiles/fib.proftext": "old", "profiles/gone.proftext": "x"}
	f.commits[base] = "t0"
	root := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(root, "profiles", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fib.proftext", "new")
	write("summary.json", "{}")
	before := bench.Report{}
	json.Unmarshal([]byte(benchJSON(t, map[string]uint64{"fib": 900})), &before)
	after := bench.Report{}
	json.Unmarshal([]byte(benchJSON(t, map[string]uint64{"fib": 810})), &after)
	g := f.client(t)
	opts := ProfilesPROptions{Base: "main", HeadSHA: base, Branch: "profiles/refresh", Root: root, Dir: "profiles",
		Before: &before, After: &after, RunURL: "https://github.com/o/r/actions/runs/9"}

	res, err := g.ProfilesPR(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.Created || res.URL != "https://github.com/o/r/pull/1" {
		t.Fatalf("first run: %+v", res)
	}
	got := f.trees[f.commits[f.refs["heads/profiles/refresh"]]]
	want := map[string]string{"README.md": "hi", "profiles/fib.proftext": "new", "profiles/summary.json": "{}"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("branch tree = %v, want %v", got, want)
	}
	if body := f.pulls[0]["body"].(string); !strings.Contains(body, "| fib | 900 | 810 | -10.0% 🟢 |") {
		t.Errorf("PR body lacks the bench change:\n%s", body)
	}

	// Second run with other profiles: the branch is force-updated and the
	// same pull request edited; no second pull request.
	write("fib.proftext", "newer")
	res, err = g.ProfilesPR(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || len(f.pulls) != 1 || f.trees[f.commits[f.refs["heads/profiles/refresh"]]]["profiles/fib.proftext"] != "newer" {
		t.Errorf("second run: %+v, pulls %d", res, len(f.pulls))
	}

	// Profiles identical to the base commit: nothing is pushed.
	same := map[string]string{"profiles/fib.proftext": "newer", "profiles/summary.json": "{}"}
	f.trees[treeSHA(same)] = same
	f.commits["dddddddddddddddddddddddddddddddddddddddd"] = treeSHA(same)
	opts.HeadSHA = "dddddddddddddddddddddddddddddddddddddddd"
	n := len(f.calls)
	res, err = g.ProfilesPR(context.Background(), opts)
	if err != nil || res.Changed {
		t.Errorf("unchanged profiles: %+v, %v", res, err)
	}
	for _, c := range f.calls[n:] {
		if strings.HasPrefix(c, "PATCH") || strings.Contains(c, "/pulls") || strings.HasSuffix(c, "/git/commits") {
			t.Errorf("unchanged profiles still called %s", c)
		}
	}

	// Bad token: the API's 401 comes back as an error naming the step.
	bad, _ := NewGitHub("o/r", "wrong", f.srv.URL)
	if _, err := bad.ProfilesPR(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "get commit") {
		t.Errorf("bad token: err = %v", err)
	}
}
