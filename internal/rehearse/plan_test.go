package rehearse

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"
)

// artifactFiles unzips the named artifact, and a missing or broken one is
// an error naming the job, the artifact and what there is.
func TestArtifactFiles(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("dist/checksums.txt")
	w.Write([]byte("sums"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	all := map[string][]byte{"release-build": b.Bytes(), "broken": []byte("not a zip")}
	files, err := artifactFiles(all, "release-build", "build")
	if err != nil || string(files["dist/checksums.txt"]) != "sums" || len(files) != 1 {
		t.Errorf("release-build: %v, %v", files, err)
	}
	_, err = artifactFiles(all, "release-signature", "sign")
	if err == nil || !strings.Contains(err.Error(), "the sign job uploaded no release-signature artifact (artifacts: [broken release-build])") {
		t.Errorf("missing artifact: %v", err)
	}
	if _, err := artifactFiles(all, "broken", "test"); err == nil || !strings.HasPrefix(err.Error(), "broken: ") {
		t.Errorf("broken artifact: %v", err)
	}
}
