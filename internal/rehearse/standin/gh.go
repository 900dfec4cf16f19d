package standin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fluid-os/fluid/internal/github"
)

// ghCLI stands in for the GitHub CLI on the runner. Only what the
// workflows run is here, through the project's one GitHub client, against
// GITHUB_API_URL (the rehearsal's fake GitHub):
//
//	gh release download TAG [--repo OWNER/NAME] [--pattern GLOB]... [--dir DIR] [--skip-existing | --clobber]
//	gh attestation verify FILE (--repo OWNER/NAME | --owner OWNER) [--signer-workflow W] [--predicate-type URI] (ghattest.go)
//
// Flags and the tag come in any order, in gh's (cobra's) forms: --flag
// value, --flag=value, -f value, -fvalue, and -- ending the flags. gh's
// own rule for existing files holds: without --skip-existing or --clobber
// an existing file is an error.
func ghCLI(e *Env) error {
	if len(e.Args) >= 2 && e.Args[0] == "attestation" && e.Args[1] == "verify" {
		return ghAttestationVerify(e, e.Args[2:])
	}
	if len(e.Args) < 2 || e.Args[0] != "release" || e.Args[1] != "download" {
		return fmt.Errorf("gh stand-in: `gh %v` is not a command the rehearsal stands in for (only `gh release download` and `gh attestation verify`); add it to internal/rehearse/standin/gh.go and .github/rehearsal/README.md", e.Args)
	}
	o, err := parseReleaseDownload(e.Args[2:], e.Getenv("GITHUB_REPOSITORY"))
	if err != nil {
		return err
	}
	tok := e.Getenv("GH_TOKEN")
	if tok == "" {
		tok = e.Getenv("GITHUB_TOKEN")
	}
	c, err := github.New(o.repo, github.Options{Token: tok, APIURL: e.Getenv("GITHUB_API_URL"), Log: e.Stderr})
	if err != nil {
		return err
	}
	ctx := context.Background()
	rel, err := c.FindRelease(ctx, o.tag)
	if err != nil {
		return err
	}
	n := 0
	for _, a := range rel.Assets {
		if len(o.patterns) > 0 {
			ok := false
			for _, p := range o.patterns {
				if m, _ := filepath.Match(p, a.GetName()); m {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		dst := filepath.Join(o.dir, a.GetName())
		if _, err := os.Stat(dst); err == nil {
			if o.skip {
				continue
			}
			if !o.clobber {
				return fmt.Errorf("%s already exists (use `--clobber` to overwrite file or `--skip-existing` to skip file)", dst)
			}
		}
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(o.dir, ".gh-download-*")
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
	if n == 0 && len(o.patterns) > 0 && !o.skip {
		return fmt.Errorf("no assets match the file pattern")
	}
	e.Logf("gh stand-in: downloaded %d assets of %s %s into %s", n, o.repo, o.tag, o.dir)
	return nil
}

type releaseDownload struct {
	repo, dir, tag string
	patterns       []string
	skip, clobber  bool
}

// parseReleaseDownload reads `gh release download`'s arguments as gh does
// (pflag, interspersed: flags before and after the tag).
func parseReleaseDownload(args []string, repo string) (releaseDownload, error) {
	o := releaseDownload{repo: repo, dir: "."}
	str := map[string]func(string){
		"repo": func(v string) { o.repo = v }, "R": func(v string) { o.repo = v },
		"dir": func(v string) { o.dir = v }, "D": func(v string) { o.dir = v },
		"pattern": func(v string) { o.patterns = append(o.patterns, v) }, "p": func(v string) { o.patterns = append(o.patterns, v) },
	}
	boolean := map[string]*bool{"skip-existing": &o.skip, "clobber": &o.clobber}
	unsupported := map[string]bool{"archive": true, "A": true, "output": true, "O": true}
	pos, err := parsePflags(args, str, boolean, func(flag, name string, long bool) error {
		switch {
		case unsupported[name]:
			return fmt.Errorf("gh stand-in: release download %s is not supported by the rehearsal's stand-in (internal/rehearse/standin/gh.go)", flag)
		case long:
			return fmt.Errorf("unknown flag: %s", flag)
		default:
			return fmt.Errorf("unknown shorthand flag: %q in %s", name, flag)
		}
	})
	if err != nil {
		return o, err
	}
	if len(pos) > 1 {
		return o, fmt.Errorf("accepts at most 1 arg(s), received %d", len(pos))
	}
	if len(pos) == 1 {
		o.tag = pos[0]
	}
	if o.skip && o.clobber {
		return o, errors.New("specify only one of `--clobber` or `--skip-existing`")
	}
	if o.tag == "" {
		return o, errors.New("gh stand-in: release download needs a tag (gh would take the latest; the workflows always name one)")
	}
	return o, nil
}

// parsePflags reads arguments as gh's pflag does, interspersed: --name=value,
// --name value, -n value, -nvalue and -n=value for the flags in str; --name
// and --name=bool for those in boolean (long form only); "--" ends the
// flags. It returns the positional arguments. A flag in neither map goes to
// unknown, which returns the error to give.
func parsePflags(args []string, str map[string]func(string), boolean map[string]*bool, unknown func(flag, name string, long bool) error) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		var name, val string
		hasVal, long := false, strings.HasPrefix(a, "--")
		if long {
			name, val, hasVal = strings.Cut(a[2:], "=")
		} else {
			name = a[1:2]
			if len(a) > 2 {
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		}
		flag := "-" + name
		if long {
			flag = "--" + name
		}
		switch {
		case boolean[name] != nil && long:
			b := true
			if hasVal {
				var err error
				if b, err = strconv.ParseBool(val); err != nil {
					return nil, fmt.Errorf("invalid argument %q for %q flag: %v", val, flag, err)
				}
			}
			*boolean[name] = b
		case str[name] != nil:
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: %s", flag)
				}
				i++
				val = args[i]
			}
			str[name](val)
		default:
			return nil, unknown(flag, name, long)
		}
	}
	return pos, nil
}
