package standin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	ghc "github.com/fluid-os/fluid/internal/github"
)

// ghCLI stands in for the GitHub CLI on the runner. Only what the
// workflows run is here, through the project's one GitHub client, against
// GITHUB_API_URL (the rehearsal's fake GitHub):
//
//	gh release download TAG --repo OWNER/NAME [--pattern GLOB]... [--dir DIR] [--skip-existing | --clobber]
//
// gh's own rule for existing files holds: without --skip-existing or
// --clobber an existing file is an error.
func ghCLI(e *Env) error {
	if len(e.Args) < 2 || e.Args[0] != "release" || e.Args[1] != "download" {
		return fmt.Errorf("gh stand-in: `gh %v` is not a command the rehearsal stands in for (only `gh release download`); add it to internal/rehearse/standin/gh.go and .github/rehearsal/README.md", e.Args)
	}
	fs := flag.NewFlagSet("gh release download", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	repo := fs.String("repo", e.Getenv("GITHUB_REPOSITORY"), "")
	fs.StringVar(repo, "R", *repo, "")
	dir := fs.String("dir", ".", "")
	fs.StringVar(dir, "D", ".", "")
	skip := fs.Bool("skip-existing", false, "")
	clobber := fs.Bool("clobber", false, "")
	var patterns multi
	fs.Var(&patterns, "pattern", "")
	fs.Var(&patterns, "p", "")
	args := e.Args[2:]
	var tag string
	if len(args) > 0 && args[0][0] != '-' {
		tag, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if tag == "" && fs.NArg() > 0 {
		tag = fs.Arg(0)
	}
	if tag == "" {
		return errors.New("gh stand-in: release download needs a tag (gh would take the latest; the workflows always name one)")
	}
	tok := e.Getenv("GH_TOKEN")
	if tok == "" {
		tok = e.Getenv("GITHUB_TOKEN")
	}
	c, err := ghc.New(*repo, ghc.Options{Token: tok, APIURL: e.Getenv("GITHUB_API_URL"), Log: e.Stderr})
	if err != nil {
		return err
	}
	ctx := context.Background()
	rel, err := c.FindRelease(ctx, tag)
	if err != nil {
		return err
	}
	n := 0
	for _, a := range rel.Assets {
		if len(patterns) > 0 {
			ok := false
			for _, p := range patterns {
				if m, _ := filepath.Match(p, a.GetName()); m {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		dst := filepath.Join(*dir, a.GetName())
		if _, err := os.Stat(dst); err == nil {
			if *skip {
				continue
			}
			if !*clobber {
				return fmt.Errorf("%s already exists (use `--clobber` to overwrite file or `--skip-existing` to skip file)", dst)
			}
		}
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(*dir, ".gh-download-*")
		if err != nil {
			return err
		}
		err = c.DownloadAsset(ctx, a, tmp, nil)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), dst)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return err
		}
		n++
	}
	if n == 0 && len(patterns) > 0 && !*skip {
		return fmt.Errorf("no assets match the file pattern")
	}
	e.Logf("gh stand-in: downloaded %d assets of %s %s into %s", n, *repo, tag, *dir)
	return nil
}

type multi []string

func (m *multi) String() string     { return fmt.Sprint(*m) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
