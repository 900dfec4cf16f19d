package repro

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/testutil"
)

// TestVerifyCatchesPlantedStampInRealBuild runs the real build (`go tool
// mage build` in two copies of this repository) with one planted
// nondeterminism: a kernel assembly file that stores NASM's __?DATE?__ and
// __?TIME?__. NASM 2.16 ignores SOURCE_DATE_EPOCH for them, so the wall
// clock reaches the kernel, and verify must fail naming the planted object,
// its section, and the kernel ELF it ends up in.
func TestVerifyCatchesPlantedStampInRealBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tree twice (about 30 s); run without -short")
	}
	root := testutil.Root(t)
	testutil.NeedTools(t, "git")
	src := filepath.Join(t.TempDir(), "src")
	if err := CopyTree(context.Background(), root, src); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(src, "kernel", "lib", "zz_planted_stamp.asm")
	if err := os.WriteFile(planted, []byte(`; planted by internal/repro's test: NASM's build time leaks into the kernel
section .rodata
global fluid_planted_stamp
fluid_planted_stamp: db __?DATE?__, " ", __?TIME?__, 0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	_, err := Verify(context.Background(), Options{
		Source: src, WorkDir: filepath.Join(t.TempDir(), "work"),
		Builder: MageBuilder{Targets: []string{"build"}}, MinGap: 1100 * time.Millisecond, Log: &log,
	})
	if err == nil {
		t.Fatalf("verify passed a kernel carrying NASM's build time\n%s", log.String())
	}
	if !errors.Is(err, ErrNotReproducible) {
		t.Fatalf("verify failed for another reason: %v\n%s", err, tail(log.String(), 40))
	}
	for _, want := range []string{
		"build/obj/kernel/kernel/lib/zz_planted_stamp.o: first difference at offset",
		"in ELF section .rodata",
		"build/kernel.elf: first difference",
		"build/fluid.img: first difference",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("verify's error lacks %q:\n%v", want, err)
		}
	}
	t.Logf("verify failed as it should:\n%v", err)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
