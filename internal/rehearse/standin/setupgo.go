package standin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// setupGo stands in for actions/setup-go with the host's Go, which must be
// at least the version the workflow asks for (go-version, or the toolchain
// or go line of go-version-file): setup-go would install exactly that one,
// and an older local Go would rehearse a different build. Like setup-go
// with caching on, it fails when a cache-dependency-path file is missing.
func setupGo(e *Env, ws string) error {
	want := e.Input("go-version", "")
	if f := e.Input("go-version-file", ""); f != "" {
		if want != "" {
			e.Warnf("Both go-version and go-version-file inputs are specified, only go-version will be used")
		} else {
			b, err := os.ReadFile(filepath.Join(ws, f))
			if err != nil {
				return fmt.Errorf("setup-go: go-version-file: %w", err)
			}
			want = goFileVersion(string(b))
			if want == "" {
				return fmt.Errorf("setup-go: no go or toolchain line in %s", f)
			}
		}
	}
	out, err := exec.Command("go", "env", "GOVERSION", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("setup-go: the host has no working go on PATH: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 {
		return fmt.Errorf("setup-go: go env printed %q", out)
	}
	have := strings.TrimPrefix(fields[0], "go")
	if want != "" && versionLess(have, want) {
		return fmt.Errorf("setup-go: the workflow asks for Go %s, the host has %s: install Go %s or newer on this machine", want, have, want)
	}
	if c, err := e.Bool("cache", true); err != nil {
		return err
	} else if c {
		deps := e.Lines("cache-dependency-path")
		if len(deps) == 0 {
			deps = []string{"go.sum"}
		}
		for _, d := range deps {
			m, _ := filepath.Glob(filepath.Join(ws, d))
			if len(m) == 0 {
				return fmt.Errorf("setup-go: Some specified paths were not resolved, unable to cache dependencies. (cache-dependency-path %s has no file in the checkout)", d)
			}
		}
	}
	e.Logf("setup-go: host Go %s (%s) for requested %q", have, fields[1], want)
	if err := e.Output("go-version", have); err != nil {
		return err
	}
	// Dependencies come from the host's module and build caches.
	return e.Output("cache-hit", "true")
}

var goLine = regexp.MustCompile(`(?m)^(go|toolchain)\s+(?:go)?([0-9][0-9.a-z]*)\s*$`)

// goFileVersion is the version a go.mod asks for: its toolchain line, else
// its go line (setup-go's rule).
func goFileVersion(mod string) string {
	v := ""
	for _, m := range goLine.FindAllStringSubmatch(mod, -1) {
		if m[1] == "toolchain" || v == "" {
			v = m[2]
		}
	}
	return v
}

// versionLess compares dotted Go versions numerically (1.26.8 < 1.26.10);
// pre-release suffixes count as lower.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := 0, 0
		if i < len(pa) {
			x, _ = strconv.Atoi(strings.TrimRightFunc(pa[i], func(r rune) bool { return r < '0' || r > '9' }))
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(strings.TrimRightFunc(pb[i], func(r rune) bool { return r < '0' || r > '9' }))
		}
		if x != y {
			return x < y
		}
	}
	return false
}
