package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// writers are the two ways to write a file; each test runs for both.
var writers = []struct {
	name  string
	write func(path string, perm os.FileMode, write func(io.Writer) error) error
}{{"Write", Write}, {"WriteSync", WriteSync}}

func bytesOf(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestWriteReplacesWhole(t *testing.T) {
	for _, wr := range writers {
		t.Run(wr.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if err := wr.write(p, 0o644, bytesOf("old")); err != nil {
				t.Fatal(err)
			}
			if err := wr.write(p, 0o600, bytesOf("new")); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p)
			st, _ := os.Stat(p)
			if string(got) != "new" || st.Mode().Perm() != 0o600 {
				t.Fatalf("got %q mode %v", got, st.Mode())
			}
		})
	}
}

func TestFailedWriteKeepsOldAndLeavesNothing(t *testing.T) {
	for _, wr := range writers {
		t.Run(wr.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := wr.write(p, 0o644, bytesOf("old")); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("disk on fire")
			err := wr.write(p, 0o644, func(w io.Writer) error {
				w.Write([]byte("half"))
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v", err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != "old" {
				t.Fatalf("old contents lost: %q", got)
			}
			// Onto a directory: the rename fails, the directory stays.
			sub := filepath.Join(dir, "sub")
			os.Mkdir(sub, 0o755)
			if err := wr.write(sub, 0o644, bytesOf("x")); err == nil {
				t.Fatal("writing over a directory succeeded")
			}
			if st, err := os.Stat(sub); err != nil || !st.IsDir() {
				t.Fatalf("the directory is gone: %v", err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 2 {
				t.Fatalf("temporary file left behind: %v", ents)
			}
		})
	}
}
