// Package release builds, signs and verifies Fluid OS release assets:
// compressed images, the SHA-256 checksums file, the Sigstore bundle over it
// and the CLI's SBOM. It verifies in-process with sigstore-go; it never
// shells out to cosign to decide whether something is trusted.
package release

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluid-os/fluid/internal/fileutil"
	"github.com/fluid-os/fluid/internal/verdict"
)

// ChecksumsName is the name of the checksums asset of every release.
const ChecksumsName = "checksums.txt"

// BundleName is the name of the Sigstore bundle that signs ChecksumsName.
const BundleName = ChecksumsName + ".sigstore.json"

// Checksums maps an asset's file name to its lowercase hex SHA-256.
type Checksums map[string]string

// ComputeChecksums hashes every file in paths, keyed by base name. Two paths
// with the same base name are an error: the checksums file could not tell
// them apart.
func ComputeChecksums(paths []string) (Checksums, error) {
	sums := Checksums{}
	for _, p := range paths {
		name := filepath.Base(p)
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("checksums: two assets are named %s; rename one", name)
		}
		sum, err := fileutil.SHA256(p)
		if err != nil {
			return nil, err
		}
		sums[name] = sum
	}
	return sums, nil
}

// Marshal renders the checksums in the format of sha256sum(1) and goreleaser:
// "<hex>  <name>\n", sorted by name so that the file — and therefore its
// signature — is the same for the same assets, whatever order they came in.
func (c Checksums) Marshal() []byte {
	names := slices.Sorted(maps.Keys(c))
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", c[n], n)
	}
	return b.Bytes()
}

// ParseChecksums reads a checksums file in sha256sum(1) format. Blank lines
// are ignored; any other malformed line is an error naming the line.
func ParseChecksums(data []byte) (Checksums, error) {
	sums := Checksums{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		sum, name, ok := strings.Cut(text, " ")
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		if !ok || len(sum) != sha256.Size*2 || name == "" {
			return nil, fmt.Errorf("checksums line %d: want \"<sha256 hex>  <file name>\", got %q", line, text)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("checksums line %d: %q is not hex", line, sum)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("checksums line %d: %s is listed twice", line, name)
		}
		sums[name] = strings.ToLower(sum)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("checksums file lists no assets")
	}
	return sums, nil
}

// VerifyFile checks the file at path against the entry for name. The error
// is a *verdict.CheckError with Check == verdict.CheckChecksum when the file is not listed or
// its digest differs.
func (c Checksums) VerifyFile(path, name string) error {
	want, ok := c[name]
	if !ok {
		return &verdict.CheckError{Check: verdict.CheckChecksum, Subject: name,
			Err:     fmt.Errorf("%s is not listed in %s", name, ChecksumsName),
			Meaning: "the signed checksums file does not vouch for this file; it is not part of this release"}
	}
	got, err := fileutil.SHA256(path)
	if err != nil {
		return err
	}
	if got != want {
		return &verdict.CheckError{Check: verdict.CheckChecksum, Subject: name,
			Err:     fmt.Errorf("SHA-256 is %s, %s says %s", got, ChecksumsName, want),
			Meaning: "the file was altered or corrupted after it was released; do not use it, download it again"}
	}
	return nil
}
