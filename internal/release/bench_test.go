package release

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// BenchmarkVerifyImage measures what `fluid verify` does for an image: the
// signature over checksums.txt, the SHA-256 of the compressed image, and the
// decompression. It uses build/fluid.img when the lead's build made one.
func BenchmarkVerifyImage(b *testing.B) {
	dir := b.TempDir()
	img := "../../build/fluid.img"
	source := "REAL build/fluid.img"
	if _, err := os.Stat(img); err != nil {
		source = "GENERATED 64 MiB image"
		img = filepath.Join(dir, "fluid.img")
		data := make([]byte, 64<<20)
		for i := 0; i < 1<<20; i++ {
			data[1<<20+i] = byte(i * 31)
		}
		os.WriteFile(img, data, 0o644)
	}
	zst := filepath.Join(dir, "fluid-pgo.img.zst")
	if err := CompressFile(img, zst); err != nil {
		b.Fatal(err)
	}
	sums, err := ComputeChecksums([]string{zst})
	if err != nil {
		b.Fatal(err)
	}
	sumData := sums.Marshal()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256(sumData)
	sig, _ := key.Sign(rand.Reader, d[:], crypto.SHA256)
	bundle, _ := protojson.Marshal(&protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: "k"}}},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: d[:]}, Signature: sig}},
	})
	os.WriteFile(filepath.Join(dir, ChecksumsName), sumData, 0o644)
	os.WriteFile(filepath.Join(dir, BundleName), bundle, 0o644)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	v, err := NewKeyVerifier(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "bench")
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := os.Stat(img)
	comp, _ := os.Stat(zst)
	b.Logf("%s: %d bytes raw, %d bytes zstd (%.2f%%)", source, raw.Size(), comp.Size(), 100*float64(comp.Size())/float64(raw.Size()))
	out := filepath.Join(dir, "out.img")
	b.SetBytes(raw.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.VerifyFiles(filepath.Join(dir, ChecksumsName), filepath.Join(dir, BundleName), []string{zst}); err != nil {
			b.Fatal(err)
		}
		if err := DecompressFile(zst, out); err != nil {
			b.Fatal(err)
		}
	}
}
