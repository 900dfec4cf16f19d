package release

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fluid-os/fluid/internal/atomicfile"

	"github.com/klauspost/compress/zstd"
)

// CompressedExt is the extension of compressed image assets (zstd: fast,
// streaming, and a 64 MiB image of mostly zeros shrinks to a few hundred KiB).
const CompressedExt = ".zst"

// MaxImageSize bounds how much a compressed image may expand to, so a hostile
// asset cannot fill the disk. Fluid OS images are tens of MiB.
const MaxImageSize = 4 << 30

// CompressFile writes a zstd-compressed copy of src to dst through a temporary
// file and a rename. The encoder runs single-threaded at a fixed level, so the
// same input always gives the same bytes (the checksums depend on it).
func CompressFile(src, dst string) error {
	return transformFile("compress", src, dst, func(in io.Reader, w io.Writer) error {
		enc, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true))
		if err != nil {
			return err
		}
		if _, err := io.Copy(enc, in); err != nil {
			enc.Close()
			return fmt.Errorf("compress %s: %w", src, err)
		}
		return enc.Close()
	})
}

// DecompressFile expands the zstd file src into dst (temporary file, then
// rename). A corrupt stream or one that expands past MaxImageSize is an error
// and leaves nothing at dst.
func DecompressFile(src, dst string) error {
	return transformFile("decompress", src, dst, func(in io.Reader, w io.Writer) error {
		dec, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("decompress %s: %w", src, err)
		}
		defer dec.Close()
		n, err := io.Copy(w, io.LimitReader(dec, MaxImageSize+1))
		if err != nil {
			return fmt.Errorf("decompress %s: %w", src, err)
		}
		if n > MaxImageSize {
			return fmt.Errorf("decompress %s: expands past %d bytes; refusing", src, int64(MaxImageSize))
		}
		return nil
	})
}

// transformFile writes what f makes of src's bytes to dst with
// atomicfile.Write (so a failing f leaves nothing at dst); verb names the
// operation in the error when src cannot be opened.
func transformFile(verb, src, dst string, f func(in io.Reader, w io.Writer) error) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, src, err)
	}
	defer in.Close()
	return atomicfile.Write(dst, 0o644, func(w io.Writer) error { return f(in, w) })
}

// errIsNotExist reports whether err says a file does not exist.
func errIsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
