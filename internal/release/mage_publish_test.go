package release_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/github/githubtest"
	"github.com/fluid-os/fluid/internal/release"
	"github.com/fluid-os/fluid/internal/release/releasetest"
	"github.com/fluid-os/fluid/internal/testutil"
	releasefiles "github.com/fluid-os/fluid/release"
)

// TestMagePublish runs the real `go tool mage publish` against the fake
// GitHub: the first run dies half-way (uploads start failing and leave
// half-uploaded assets behind), the rerun finishes with exactly one copy of
// every asset, and a third run changes nothing.
func TestMagePublish(t *testing.T) {
	root, work := mageWork(t)
	dist := filepath.Join(work, "build", "dist")
	assets := filepath.Join(work, "build", "release-assets")
	os.MkdirAll(dist, 0o755)
	os.MkdirAll(assets, 0o755)
	files := map[string]string{
		filepath.Join(assets, "fluid-pgo.img.zst"):               strings.Repeat("pgo image ", 3000),
		filepath.Join(assets, "manifest.json"):                   `{"commit":"x"}`,
		filepath.Join(dist, "fluid_1.0.0_linux_amd64.tar.gz"):    strings.Repeat("cli ", 5000),
		filepath.Join(dist, "fluid_1.0.0_linux_amd64.sbom.json"): `{"bomFormat":"CycloneDX"}`,
	}
	var paths []string
	for p, c := range files {
		os.WriteFile(p, []byte(c), 0o644)
		paths = append(paths, p)
	}
	sums, err := release.ComputeChecksums(paths)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dist, release.ChecksumsName), sums.Marshal(), 0o644)
	// A key-signed bundle: the notes must show the key commands.
	os.WriteFile(filepath.Join(dist, release.BundleName), releasetest.NewKey(t).Sign(t, sums.Marshal()), 0o644)

	srv := githubtest.New("fluid-os", "fluid")
	defer srv.Close()
	// Two uploads succeed, then every upload fails and leaves a broken asset.
	srv.AddFault(githubtest.Fault{Method: http.MethodPost, Path: "releases/", After: 2, Times: 1000, Status: 502, LeaveStarter: true})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mage := func() (string, error) {
		cmd := exec.CommandContext(ctx, "go", "tool", "mage", "-d", "magefiles", "-w", work, "publish")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GITHUB_API_URL="+srv.APIURL(), "GITHUB_TOKEN=test-token",
			"GITHUB_REPOSITORY=fluid-os/fluid", "TAG=v1.0.0", "FLUID_RETRY_BASE_DELAY=5ms", "DRY_RUN=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := mage()
	if err == nil || !strings.Contains(out, "run publish again") {
		t.Fatalf("first run should fail on the broken uploads and say to rerun; err=%v\n%s", err, out)
	}
	t.Logf("first run (failed as planned):\n%s", lastLines(out, 6))
	rel := srv.Release("v1.0.0")
	if rel == nil {
		t.Fatal("first run created no release")
	}

	srv.ClearFaults()
	out, err = mage()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	t.Logf("rerun:\n%s", out)
	rel = srv.Release("v1.0.0")
	seen := map[string]int{}
	for _, a := range rel.Assets {
		seen[a.Name]++
		if a.State != "uploaded" {
			t.Errorf("asset %s left in state %s", a.Name, a.State)
		}
	}
	if len(seen) != len(files)+2 {
		t.Errorf("release has %d distinct assets, want %d: %v", len(seen), len(files)+2, seen)
	}
	for n, c := range seen {
		if c != 1 {
			t.Errorf("asset %s appears %d times", n, c)
		}
	}
	if srv.Releases() != 1 {
		t.Errorf("%d releases", srv.Releases())
	}
	if !strings.Contains(rel.Body, "## Fluid OS v1.0.0") {
		t.Errorf("release notes not rendered: %.200s", rel.Body)
	}
	if !strings.Contains(rel.Body, "cosign verify-blob --key cosign.pub") || strings.Contains(rel.Body, "--certificate-identity") {
		t.Errorf("a key-signed release's notes do not show the key command (or show the keyless one):\n%s", rel.Body)
	}

	out, err = mage()
	if err != nil || !strings.Contains(out, "0 uploaded, 0 replaced, 6 already there") {
		t.Fatalf("third run should change nothing: %v\n%s", err, out)
	}
}

// TestMagePinPolicy runs the real `go tool mage pinPolicy` against the fake
// GitHub: it writes the repository's IDs into release/policy.json, a rerun
// keeps them, and IDs pinned to other values are not overwritten.
func TestMagePinPolicy(t *testing.T) {
	root, work := mageWork(t)
	os.MkdirAll(filepath.Join(work, "release"), 0o755)
	policy := filepath.Join(work, "release", "policy.json")
	os.WriteFile(policy, releasefiles.PolicyJSON(), 0o644)
	srv := githubtest.New("fluid-os", "fluid")
	defer srv.Close()
	mage := func() (string, error) {
		cmd := exec.Command("go", "tool", "mage", "-d", "magefiles", "-w", work, "pinPolicy")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GITHUB_API_URL="+srv.APIURL(), "GITHUB_TOKEN=test-token", "GITHUB_REPOSITORY=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for run := 1; run <= 2; run++ {
		out, err := mage()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		p, err := release.ParsePolicy(mustRead(t, policy))
		if err != nil || p.RepositoryID != fmt.Sprint(srv.RepositoryID()) || p.OwnerID != fmt.Sprint(srv.OwnerID()) {
			t.Fatalf("run %d: policy %+v, %v; want IDs %d, %d\n%s", run, p, err, srv.RepositoryID(), srv.OwnerID(), out)
		}
	}
	p, _ := release.ParsePolicy(mustRead(t, policy))
	p.RepositoryID = "1"
	data, _ := p.Marshal()
	os.WriteFile(policy, data, 0o644)
	if out, err := mage(); err == nil || !strings.Contains(out, "re-created") {
		t.Fatalf("IDs pinned to other values were overwritten: %v\n%s", err, out)
	}
	if got := mustRead(t, policy); string(got) != string(data) {
		t.Fatal("a refused pin changed the file")
	}
}

// mageWork skips under -short (the test compiles the mage binary) and
// returns the repository root and a workRoot.
func mageWork(t *testing.T) (root, work string) {
	t.Helper()
	testutil.Long(t, "compiles the mage binary")
	root, err := fileutil.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root, workRoot(t)
}

// workRoot is an empty directory that fileutil.FindRoot takes for a
// repository root (go.mod and tools/go.mod): where a mage target run with -w
// reads and writes.
func workRoot(t *testing.T) string {
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "tools"), 0o755)
	os.WriteFile(filepath.Join(work, "go.mod"), []byte("module example.com/work\n"), 0o644)
	os.WriteFile(filepath.Join(work, "tools", "go.mod"), []byte("module example.com/work/tools\n"), 0o644)
	return work
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
