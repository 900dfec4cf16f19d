package modfmt_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/modfmt"
	"github.com/fluid-os/fluid/internal/qemu"
)

// bootOutput boots img under QEMU (TCG) and returns the result and every
// serial line.
func bootOutput(t *testing.T, img string) (*qemu.Result, []string) {
	t.Helper()
	if err := func() error { _, err := os.Stat(img); return err }(); err != nil {
		t.Fatalf("image: %v", err)
	}
	var mu sync.Mutex
	var lines []string
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := qemu.Run(ctx, qemu.Options{
		Image:   img,
		Timeout: 2 * time.Minute,
		OnLine: func(l string) {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, append([]string(nil), lines...)
}

func newBuilder(t *testing.T) *build.Builder {
	t.Helper()
	b, err := build.New(build.Options{Log: testWriter{t}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var resultRE = regexp.MustCompile(`^module (\S+): result (ok|FAIL) calls=(\d+) cycles total=(\d+) min=(\d+) max=(\d+)`)

// corrupt returns a copy of mod changed by f, with the checksum recomputed
// when fixCRC is set (so the loader's later checks are the ones that fire).
func corrupt(mod []byte, fixCRC bool, f func(b []byte)) []byte {
	b := append([]byte(nil), mod...)
	f(b)
	if fixCRC {
		binary.LittleEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[modfmt.CRCStart:]))
	}
	return b
}

// TestBootModules builds the kernel and the baseline modules, boots the
// image, and checks every module was loaded from FAT32, ran and passed; a
// second image carries corrupted modules next to the good ones, which the
// loader must refuse with one line each while the rest still run.
func TestBootModules(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	b := newBuilder(t)
	unlock, err := b.Lock()
	if err != nil {
		t.Fatal(err)
	}
	arts, err := b.All()
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	good, err := os.ReadFile(arts.Modules[0].Path)
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	var relocMod []byte
	for _, m := range arts.Modules {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			unlock()
			t.Fatal(err)
		}
		if pm, err := modfmt.Parse(data); err == nil && len(pm.Relocs) > 0 {
			relocMod = data
			break
		}
	}
	if relocMod == nil {
		unlock()
		t.Fatal("no built module has relocations to corrupt")
	}
	le := binary.LittleEndian
	bad := []struct {
		file, want string
		data       []byte
	}{
		{"bad-magic.mod", "refused: bad magic", corrupt(good, true, func(b []byte) { b[0] = 'X' })},
		{"bad-crc.mod", "refused: checksum mismatch", corrupt(good, false, func(b []byte) { b[len(b)/2] ^= 0x40 })},
		{"bad-reloc.mod", "refused: relocation 0: unsupported type R_386_PC32", corrupt(relocMod, true, func(b []byte) {
			off := le.Uint32(b[88:])
			le.PutUint32(b[off+4:], 2)
		})},
		{"bad-entry.mod", "refused: entry offset", corrupt(good, true, func(b []byte) { le.PutUint32(b[84:], 0xFFFFFF) })},
		{"truncated.mod", "refused: file size field", good[:len(good)-7]},
	}
	var extra []image.File
	for _, c := range bad {
		extra = append(extra, image.File{Path: "/modules/" + c.file, Data: c.data})
	}
	badImg, err := b.Image(build.ImageSpec{Name: "fluid-modfmt-corrupt.img", Kernel: arts.Kernel, Modules: arts.Modules, Extra: extra})
	unlock()
	if err != nil {
		t.Fatalf("corrupt image: %v", err)
	}

	t.Run("all ok", func(t *testing.T) {
		res, lines := bootOutput(t, arts.Image)
		if res.Outcome != qemu.Passed {
			t.Fatalf("boot did not pass: %s\n%s", res, strings.Join(res.Tail, "\n"))
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if m := resultRE.FindStringSubmatch(l); m != nil {
				t.Log(l)
				if m[2] != "ok" {
					t.Errorf("module %s failed: %s", m[1], l)
				}
				seen[m[1]] = true
			}
		}
		for _, m := range arts.Modules {
			if !seen[m.Name] {
				t.Errorf("no result line for module %s", m.Name)
			}
		}
	})

	t.Run("corrupted refused, others run", func(t *testing.T) {
		res, lines := bootOutput(t, badImg)
		if res.Outcome != qemu.Failed || !strings.HasPrefix(res.EndLine, "FLUID-END fail module") {
			t.Errorf("want a module failure, got %s (end line %q)", res.Outcome, res.EndLine)
		}
		log := strings.Join(lines, "\n")
		for _, c := range bad {
			if !strings.Contains(log, "module "+c.file+": "+c.want) {
				t.Errorf("no %q line for %s", c.want, c.file)
			}
			if strings.Contains(log, "module "+c.file+": loaded") {
				t.Errorf("%s was loaded", c.file)
			}
		}
		ok := 0
		for _, l := range lines {
			if m := resultRE.FindStringSubmatch(l); m != nil && m[2] == "ok" {
				ok++
			}
		}
		if ok != len(arts.Modules) {
			t.Errorf("%d modules passed next to the corrupted ones, want %d\n%s", ok, len(arts.Modules), log)
		}
	})
}
