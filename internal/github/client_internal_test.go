package github

import "testing"

// GitHub Actions sets GITHUB_API_URL=https://api.github.com without the
// slash: that is still github.com, whose uploads go to uploads.github.com.
func TestGitHubComAPIURL(t *testing.T) {
	for _, u := range []string{"", "https://api.github.com", "https://api.github.com/"} {
		c, err := New("o/r", Options{APIURL: u})
		if err != nil {
			t.Fatalf("APIURL %q: %v", u, err)
		}
		if got := c.gh.UploadURL.String(); got != "https://uploads.github.com/" {
			t.Errorf("APIURL %q: upload URL %s", u, got)
		}
	}
}
