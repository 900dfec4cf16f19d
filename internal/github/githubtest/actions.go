package githubtest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// This file serves GitHub Actions' workflow runs and their artifacts:
//
//	GET actions/runs[?branch=&event=&status=&head_sha=]
//	GET actions/runs/{id}
//	GET actions/runs/{id}/artifacts[?name=]
//	GET actions/workflows/{file or id}
//	GET actions/workflows/{file or id}/runs[?branch=&event=&status=&head_sha=]
//	GET actions/artifacts[?name=]
//	GET actions/artifacts/{id}
//	GET actions/artifacts/{id}/zip   302 to the pre-signed storage URL
//
// Runs are listed newest first. A workflow is known once a run of it is.

// Run is a workflow run.
type Run struct {
	ID           int64  // 0: the server picks one
	WorkflowFile string // the workflow's file in .github/workflows, e.g. "ci.yml"
	Event        string // "push", "pull_request", "workflow_run", "schedule", ...
	Branch       string // head_branch
	HeadSHA      string
	Status       string // "queued", "in_progress", ...; "" means "completed"
	Conclusion   string // of a completed run: "success", "failure", "cancelled", ...
	// Created orders the runs (newest first); zero means now on the
	// server's clock, so a run added later is newer.
	Created time.Time
}

type run struct {
	Run
	number    int
	artifacts []*artifact
}

type artifact struct {
	id      int64
	name    string
	data    []byte
	created time.Time
	run     *run
}

// AddRun stores a workflow run with its artifacts (name → the zip archive
// GitHub serves for it) and returns the run's ID. A run with the same ID is
// replaced, artifacts included.
func (s *Server) AddRun(r Run, artifacts map[string][]byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Status == "" {
		r.Status = "completed"
	}
	if r.Created.IsZero() {
		r.Created = s.now()
	}
	for r.ID == 0 {
		if id := s.id(); s.runByID(id) == nil {
			r.ID = id
		}
	}
	if _, ok := s.workflows[r.WorkflowFile]; !ok {
		s.workflows[r.WorkflowFile] = s.id()
	}
	nr := &run{Run: r, number: 1}
	for _, o := range s.runs {
		if o.WorkflowFile == r.WorkflowFile {
			nr.number++
		}
	}
	for _, name := range slices.Sorted(maps.Keys(artifacts)) {
		nr.artifacts = append(nr.artifacts, &artifact{id: s.id(), name: name, data: append([]byte(nil), artifacts[name]...), created: r.Created, run: nr})
	}
	for i, o := range s.runs {
		if o.ID == r.ID {
			nr.number = o.number
			s.runs[i] = nr
			return r.ID
		}
	}
	s.runs = append(s.runs, nr)
	return r.ID
}

func (s *Server) runByID(id int64) *run {
	for _, r := range s.runs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func (s *Server) artifactByID(idStr string) *artifact {
	for _, r := range s.runs {
		for _, a := range r.artifacts {
			if strconv.FormatInt(a.id, 10) == idStr {
				return a
			}
		}
	}
	return nil
}

// workflowFile finds the workflow a path names by file or by ID.
func (s *Server) workflowFile(name string) (string, bool) {
	if _, ok := s.workflows[name]; ok {
		return name, true
	}
	for file, id := range s.workflows {
		if strconv.FormatInt(id, 10) == name {
			return file, true
		}
	}
	return "", false
}

// matchStatus applies the status filter as GitHub documents it: a run
// status (completed, in_progress, queued, ...) matches the run's status,
// any other value (success, failure, ...) its conclusion.
func matchStatus(r *run, status string) bool {
	switch status {
	case "":
		return true
	case "completed", "in_progress", "queued", "requested", "waiting", "pending":
		return r.Status == status
	}
	return r.Status == "completed" && r.Conclusion == status
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, workflow string) {
	q := r.URL.Query()
	var match []*run
	for _, run := range s.runs {
		if (workflow == "" || run.WorkflowFile == workflow) &&
			(q.Get("branch") == "" || run.Branch == q.Get("branch")) &&
			(q.Get("event") == "" || run.Event == q.Get("event")) &&
			(q.Get("head_sha") == "" || run.HeadSHA == q.Get("head_sha")) &&
			matchStatus(run, q.Get("status")) {
			match = append(match, run)
		}
	}
	sort.SliceStable(match, func(i, j int) bool {
		if !match[i].Created.Equal(match[j].Created) {
			return match[i].Created.After(match[j].Created)
		}
		return match[i].ID > match[j].ID
	})
	lo, hi := s.page(w, r, len(match))
	out := []any{}
	for _, run := range match[lo:hi] {
		out = append(out, s.runJSON(run))
	}
	writeJSON(w, 200, map[string]any{"total_count": len(match), "workflow_runs": out})
}

func (s *Server) runJSON(r *run) map[string]any {
	id := strconv.FormatInt(r.ID, 10)
	base := "actions/runs/" + id
	var conclusion any
	if r.Conclusion != "" {
		conclusion = r.Conclusion
	}
	created := r.Created.UTC().Format(time.RFC3339)
	wf := strconv.FormatInt(s.workflows[r.WorkflowFile], 10)
	return map[string]any{
		"id": r.ID, "name": r.WorkflowFile, "node_id": nodeID("WorkflowRun", r.ID), "check_suite_id": r.ID + 1,
		"head_branch": r.Branch, "head_sha": r.HeadSHA, "path": ".github/workflows/" + r.WorkflowFile,
		"display_title": r.WorkflowFile, "run_number": r.number, "run_attempt": 1, "event": r.Event,
		"status": r.Status, "conclusion": conclusion, "workflow_id": s.workflows[r.WorkflowFile],
		"url": s.apiURL(base), "html_url": s.htmlURL(base), "jobs_url": s.apiURL(base + "/jobs"), "logs_url": s.apiURL(base + "/logs"),
		"artifacts_url": s.apiURL(base + "/artifacts"), "cancel_url": s.apiURL(base + "/cancel"), "rerun_url": s.apiURL(base + "/rerun"),
		"workflow_url": s.apiURL("actions/workflows/" + wf), "pull_requests": []any{},
		"created_at": created, "updated_at": created, "run_started_at": created,
		"actor": userJSON(s.Owner), "triggering_actor": userJSON(s.Owner),
		"repository": s.repoJSON(), "head_repository": s.repoJSON(),
	}
}

func (s *Server) artifactJSON(a *artifact) map[string]any {
	id := strconv.FormatInt(a.id, 10)
	return map[string]any{
		"id": a.id, "node_id": nodeID("Artifact", a.id), "name": a.name, "size_in_bytes": len(a.data),
		"url": s.apiURL("actions/artifacts/" + id), "archive_download_url": s.apiURL("actions/artifacts/" + id + "/zip"),
		"expired": false, "created_at": a.created.UTC().Format(time.RFC3339), "updated_at": a.created.UTC().Format(time.RFC3339),
		"expires_at":   a.created.Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"workflow_run": map[string]any{"id": a.run.ID, "repository_id": 1, "head_repository_id": 1, "head_branch": a.run.Branch, "head_sha": a.run.HeadSHA},
	}
}

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, arts []*artifact) {
	name := r.URL.Query().Get("name")
	var match []*artifact
	for _, a := range arts {
		if name == "" || a.name == name {
			match = append(match, a)
		}
	}
	lo, hi := s.page(w, r, len(match))
	out := []any{}
	for _, a := range match[lo:hi] {
		out = append(out, s.artifactJSON(a))
	}
	writeJSON(w, 200, map[string]any{"total_count": len(match), "artifacts": out})
}

// serveActions serves actions/...; false: no such endpoint.
func (s *Server) serveActions(w http.ResponseWriter, r *http.Request, parts []string) bool {
	if r.Method != http.MethodGet || len(parts) == 0 {
		return false
	}
	runOf := func(idStr string) *run {
		id, err := strconv.ParseInt(idStr, 10, 64)
		if err != nil {
			return nil
		}
		return s.runByID(id)
	}
	switch {
	case parts[0] == "runs" && len(parts) == 1:
		s.listRuns(w, r, "")
	case parts[0] == "runs" && len(parts) == 2:
		run := runOf(parts[1])
		if run == nil {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, s.runJSON(run))
	case parts[0] == "runs" && len(parts) == 3 && parts[2] == "artifacts":
		run := runOf(parts[1])
		if run == nil {
			s.notFound(w)
			return true
		}
		s.listArtifacts(w, r, run.artifacts)
	case parts[0] == "workflows" && len(parts) == 2:
		file, ok := s.workflowFile(parts[1])
		if !ok {
			s.notFound(w)
			return true
		}
		id := s.workflows[file]
		writeJSON(w, 200, map[string]any{"id": id, "node_id": nodeID("Workflow", id), "name": file, "path": ".github/workflows/" + file,
			"state": "active", "url": s.apiURL(fmt.Sprintf("actions/workflows/%d", id)), "html_url": s.htmlURL("actions/workflows/" + file)})
	case parts[0] == "workflows" && len(parts) == 3 && parts[2] == "runs":
		file, ok := s.workflowFile(parts[1])
		if !ok {
			s.notFound(w)
			return true
		}
		s.listRuns(w, r, file)
	case parts[0] == "artifacts" && len(parts) == 1:
		var all []*artifact
		for _, run := range s.runs {
			all = append(all, run.artifacts...)
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].id > all[j].id })
		s.listArtifacts(w, r, all)
	case parts[0] == "artifacts" && len(parts) == 2:
		a := s.artifactByID(parts[1])
		if a == nil {
			s.notFound(w)
			return true
		}
		writeJSON(w, 200, s.artifactJSON(a))
	case parts[0] == "artifacts" && len(parts) == 3 && parts[2] == "zip":
		if s.artifactByID(parts[1]) == nil {
			s.notFound(w)
			return true
		}
		// GitHub answers with a short-lived pre-signed URL of its blob store.
		http.Redirect(w, r, s.URL+"/storage/"+parts[1]+"?sv=2021-12-02&sig=test", http.StatusFound)
	default:
		return false
	}
	return true
}
