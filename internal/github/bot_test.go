package github_test

import (
	"archive/zip"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/github/githubtest"
)

// The bot's calls retry like the release calls: a 502 from the API and one
// from the storage URL an artifact redirects to are both tried again.
func TestArtifactFilesRetries(t *testing.T) {
	srv := githubtest.New("o", "r")
	defer srv.Close()
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("ci/pr.json")
	w.Write([]byte(`{"number":5}`))
	zw.Close()
	srv.AddRun(githubtest.Run{ID: 7, WorkflowFile: "ci.yml", Event: "pull_request", Branch: "f", HeadSHA: "abc", Conclusion: "success"},
		map[string][]byte{"ci-results": zbuf.Bytes()})
	srv.AddFault(githubtest.Fault{Path: "actions/runs/", Status: 502, Times: 1})
	srv.AddFault(githubtest.Fault{Path: "/storage/", Status: 502, Times: 1})
	var log bytes.Buffer
	c := newClient(t, srv, &noSleep{}, &log)
	files, err := c.ArtifactFiles(context.Background(), 7, "ci-results")
	if err != nil {
		t.Fatal(err)
	}
	if string(files["ci/pr.json"]) != `{"number":5}` {
		t.Errorf("files = %q", files)
	}
	if n := strings.Count(log.String(), "retry 1/"); n != 2 {
		t.Errorf("want 2 retries, log:\n%s", log.String())
	}
	if none, err := c.ArtifactFiles(context.Background(), 7, "other"); none != nil || err != nil {
		t.Errorf("missing artifact: %v, %v", none, err)
	}
	for _, u := range srv.Unexpected() {
		t.Errorf("unexpected request %s", u)
	}
}
