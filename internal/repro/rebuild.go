package repro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"github.com/fluid-os/fluid/internal/build/recipe"
)

// ImagePath and ManifestPath are the working image and its manifest
// (recipe.WorkingImage, recipe.WorkingManifest), where a build (`mage
// build`, `mage pgo`) leaves them, relative to the tree; the rebuild of a
// release image (VerifyRelease) compares these.
const (
	ImagePath    = "build/" + recipe.WorkingImage
	ManifestPath = "build/" + recipe.WorkingManifest
)

// CompareImage compares a disk image with a rebuilt one. It returns nil when
// they are byte-identical, else an error wrapping ErrNotReproducible that
// gives the first differing offset and the disk region (stage 1, stage 2,
// kernel header, kernel payload, FAT32 partition) holding it.
func CompareImage(image, rebuilt string) error {
	d, same, err := CompareFiles(image, rebuilt)
	if err != nil {
		return err
	}
	if same != nil {
		return nil
	}
	d.Path = image
	return fmt.Errorf("%w: %s does not match the rebuild %s: %s", ErrNotReproducible, image, rebuilt, d.String())
}

// CompareManifest compares two manifest.json files. Identical bytes pass.
// Otherwise both are decoded and the error lists up to ten JSON paths whose
// values differ (e.g. `outputs["build/kernel.elf"].sha256: "ab.." vs "cd.."`),
// so a person sees which input or output changed.
func CompareManifest(want, got string) error {
	a, err := os.ReadFile(want)
	if err != nil {
		return fmt.Errorf("compare manifests: %w", err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		return fmt.Errorf("compare manifests: %w", err)
	}
	if bytes.Equal(a, b) {
		return nil
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return fmt.Errorf("compare manifests: %s is not JSON: %w", want, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return fmt.Errorf("compare manifests: %s is not JSON: %w", got, err)
	}
	diffs := JSONDiff(va, vb, "")
	if len(diffs) == 0 {
		diffs = []string{"same content, different bytes (key order or formatting): the manifest writer is not canonical"}
	}
	more := ""
	if len(diffs) > 10 {
		more = fmt.Sprintf("\n  ... and %d more", len(diffs)-10)
		diffs = diffs[:10]
	}
	return fmt.Errorf("%w: manifest %s differs from %s:\n  %s%s", ErrNotReproducible, got, want, strings.Join(diffs, "\n  "), more)
}

// JSONDiff lists the paths at which two decoded JSON values differ.
func JSONDiff(a, b any, path string) []string {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	ma, okA := a.(map[string]any)
	mb, okB := b.(map[string]any)
	if okA && okB {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			p := path + "." + k
			if strings.ContainsAny(k, "./[] ") || printable(k) != k {
				p = fmt.Sprintf("%s[%q]", path, k) // %q: no control characters reach the terminal
			}
			va, inA := ma[k]
			vb, inB := mb[k]
			switch {
			case !inA:
				out = append(out, p+": only in the second")
			case !inB:
				out = append(out, p+": only in the first")
			default:
				out = append(out, JSONDiff(va, vb, p)...)
			}
		}
		return out
	}
	la, okA := a.([]any)
	lb, okB := b.([]any)
	if okA && okB && len(la) == len(lb) {
		var out []string
		for i := range la {
			out = append(out, JSONDiff(la[i], lb[i], fmt.Sprintf("%s[%s]", path, elemLabel(la[i], i)))...)
		}
		return out
	}
	if path == "" {
		path = "."
	}
	return []string{fmt.Sprintf("%s: %s vs %s", path, short(a), short(b))}
}

// elemLabel names a list element by its "path" or "name" field when it
// has one (manifest entries do), else by its index.
func elemLabel(v any, i int) string {
	if m, ok := v.(map[string]any); ok {
		for _, k := range []string{"path", "name", "module"} {
			if s, ok := m[k].(string); ok && s != "" {
				return fmt.Sprintf("%d %s=%q", i, k, s)
			}
		}
	}
	return fmt.Sprint(i)
}

func short(v any) string {
	b, _ := json.Marshal(v)
	// JSON escapes the control characters, not the other characters that do
	// not print (bidirectional overrides, ...): those are escaped here.
	var sb strings.Builder
	for _, r := range string(b) {
		if r > 0x7E && !unicode.IsPrint(r) {
			fmt.Fprintf(&sb, `\u%04x`, r)
		} else {
			sb.WriteRune(r)
		}
	}
	s := sb.String()
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
