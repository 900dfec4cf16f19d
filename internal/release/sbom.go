package release

import (
	"bytes"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fluid-os/fluid/internal/fileutil"
)

// SBOM generation: a CycloneDX 1.5 JSON document for one Go binary, built
// from the module information the Go linker embeds (debug/buildinfo, the
// same data `go version -m` prints). It needs no external tool (goreleaser's
// default, syft, is not available here) and is deterministic: the serial
// number derives from the binary's hash and the timestamp from
// SOURCE_DATE_EPOCH (omitted when that is unset).

type cdxDoc struct {
	BOMFormat    string         `json:"bomFormat"`
	SpecVersion  string         `json:"specVersion"`
	SerialNumber string         `json:"serialNumber"`
	Version      int            `json:"version"`
	Metadata     cdxMetadata    `json:"metadata"`
	Components   []cdxComponent `json:"components"`
	Dependencies []cdxDep       `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp  string        `json:"timestamp,omitempty"`
	Tools      cdxTools      `json:"tools"`
	Component  cdxComponent  `json:"component"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type       string        `json:"type"`
	BOMRef     string        `json:"bom-ref,omitempty"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDep struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// GenerateSBOM returns a CycloneDX JSON SBOM for the Go binary at path.
// sourceDateEpoch, when non-zero, becomes the document's timestamp.
func GenerateSBOM(path string, sourceDateEpoch int64) ([]byte, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sbom for %s: read Go build info: %w (is it a Go binary?)", path, err)
	}
	hexSum, err := fileutil.SHA256(path)
	if err != nil {
		return nil, fmt.Errorf("sbom for %s: %w", path, err)
	}
	sum, _ := hex.DecodeString(hexSum)

	version := info.Main.Version
	mainPath := info.Main.Path
	if mainPath == "" {
		mainPath = info.Path
	}
	mainRef := purl(mainPath, version)
	doc := cdxDoc{
		BOMFormat:   "CycloneDX",
		SpecVersion: "1.5",
		// A name-based UUID (version 5 layout) from the binary's digest: the
		// same binary always gets the same serial number.
		SerialNumber: "urn:uuid:" + uuidFromHash(sum),
		Version:      1,
	}
	if sourceDateEpoch != 0 {
		doc.Metadata.Timestamp = time.Unix(sourceDateEpoch, 0).UTC().Format(time.RFC3339)
	}
	doc.Metadata.Tools.Components = []cdxComponent{{Type: "application", Name: "fluid-sbom (internal/release)"}}
	doc.Metadata.Component = cdxComponent{
		Type:    "application",
		BOMRef:  mainRef,
		Name:    filepath.Base(path),
		Version: version,
		PURL:    mainRef,
		Hashes:  []cdxHash{{Alg: "SHA-256", Content: hex.EncodeToString(sum)}},
	}
	doc.Metadata.Properties = append(doc.Metadata.Properties, cdxProperty{Name: "go:toolchain", Value: info.GoVersion})
	for _, s := range info.Settings {
		doc.Metadata.Properties = append(doc.Metadata.Properties, cdxProperty{Name: "go:build:" + s.Key, Value: s.Value})
	}
	dep := cdxDep{Ref: mainRef, DependsOn: []string{}}
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		ref := purl(m.Path, m.Version)
		c := cdxComponent{Type: "library", BOMRef: ref, Name: m.Path, Version: m.Version, PURL: ref}
		if m.Sum != "" {
			c.Properties = []cdxProperty{{Name: "go:sum", Value: m.Sum}}
		}
		doc.Components = append(doc.Components, c)
		dep.DependsOn = append(dep.DependsOn, ref)
	}
	sort.Slice(doc.Components, func(i, j int) bool { return doc.Components[i].BOMRef < doc.Components[j].BOMRef })
	sort.Strings(dep.DependsOn)
	doc.Dependencies = []cdxDep{dep}
	if doc.Components == nil {
		doc.Components = []cdxComponent{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("sbom for %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// purl is the package URL of a Go module version.
func purl(path, version string) string {
	p := "pkg:golang/" + strings.ToLower(path)
	if version != "" {
		p += "@" + version
	}
	return p
}

// uuidFromHash formats the first 16 bytes of sum as a version-5-style UUID.
func uuidFromHash(sum []byte) string {
	var u [16]byte
	copy(u[:], sum)
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	x := hex.EncodeToString(u[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
