package build

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

func testBuilder(t *testing.T) (*Builder, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	var log bytes.Buffer
	b := &Builder{root: root, out: filepath.Join(root, "build"), log: &log, jobs: 2,
		tcKey: "test", tc: &toolchain.Toolchain{}, hash: &hasher{sums: map[string]string{}}}
	return b, &log
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// catStep concatenates in.txt and the header it "includes" into out.txt and
// writes a depfile naming the header, like clang -MD does.
func catStep() *step {
	return &step{tag: "CAT", name: "in.txt",
		argv:    []string{"sh", "-c", "cat in.txt hdr.h > build/out.txt && echo 'build/out.txt: in.txt hdr.h' > build/out.d"},
		inputs:  []string{"in.txt"},
		outputs: []string{"build/out.txt"}, depfile: "build/out.d"}
}

func TestStepSkipsWhenNothingChanged(t *testing.T) {
	b, log := testBuilder(t)
	write(t, filepath.Join(b.root, "in.txt"), "a\n")
	write(t, filepath.Join(b.root, "hdr.h"), "h1\n")
	os.MkdirAll(b.out, 0o755)

	steps := []struct {
		name   string
		change func()
		want   bool
	}{
		{"first build runs", func() {}, true},
		{"no-op rebuild skips", func() {}, false},
		{"changed input reruns", func() { write(t, filepath.Join(b.root, "in.txt"), "b\n") }, true},
		{"changed depfile header reruns", func() { write(t, filepath.Join(b.root, "hdr.h"), "h2\n") }, true},
		{"same content rewritten skips", func() { write(t, filepath.Join(b.root, "hdr.h"), "h2\n") }, false},
		{"deleted output reruns", func() { os.Remove(filepath.Join(b.out, "out.txt")) }, true},
		{"output edited by hand reruns", func() { write(t, filepath.Join(b.out, "out.txt"), "b\nh3\n") }, true},
		{"no-op rebuild after the repair skips", func() {}, false},
		{"output replaced by same bytes skips", func() { write(t, filepath.Join(b.out, "out.txt"), "b\nh2\n") }, false},
		{"stamp without output hashes reruns", func() {
			p := b.stampPath(catStep())
			data, _ := os.ReadFile(p)
			var st stamp
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatal(err)
			}
			st.Outs = nil
			data, _ = json.Marshal(st)
			write(t, p, string(data))
		}, true},
	}
	for _, s := range steps {
		s.change()
		b.hash = &hasher{sums: map[string]string{}} // a new build run
		ran, err := b.run(t.Context(), catStep())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if ran != s.want {
			t.Fatalf("%s: ran=%v, want %v (log:\n%s)", s.name, ran, s.want, log)
		}
	}
	got, _ := os.ReadFile(filepath.Join(b.out, "out.txt"))
	if string(got) != "b\nh2\n" {
		t.Fatalf("out.txt = %q", got)
	}
}

func TestFailedStepLeavesNoOutput(t *testing.T) {
	b, _ := testBuilder(t)
	write(t, filepath.Join(b.root, "in.txt"), "a\n")
	s := &step{tag: "BAD", name: "in.txt", argv: []string{"sh", "-c", "echo partial > build/out.txt; echo 'boom: bad input' >&2; exit 3"},
		inputs: []string{"in.txt"}, outputs: []string{"build/out.txt"}}
	_, err := b.run(t.Context(), s)
	if err == nil {
		t.Fatal("failing command reported success")
	}
	if !strings.Contains(err.Error(), "boom: bad input") || !strings.Contains(err.Error(), "BAD in.txt") {
		t.Fatalf("error does not carry the tool output and step name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.out, "out.txt")); !os.IsNotExist(err) {
		t.Fatalf("half-written output left behind: %v", err)
	}
}

func TestParseDepfile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.d")
	write(t, p, "build/x.o: kernel/a.c \\\n  kernel/include/a.h boot/bootinfo.h\n")
	deps, err := parseDepfile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/a.c", "kernel/include/a.h", "boot/bootinfo.h"}
	if strings.Join(deps, ",") != strings.Join(want, ",") {
		t.Fatalf("deps = %v, want %v", deps, want)
	}
}

// TestEditedImageIsRebuilt builds the working image (into its own build
// directory, so no other test boots the edited image), edits fluid.img by
// hand and builds again: the image step reruns and restores the image's
// bytes; a third build runs no step at all.
func TestEditedImageIsRebuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image")
	}
	tc := toolchaintest.Find(t)
	out := t.TempDir()
	var log bytes.Buffer
	build := func() (*Builder, *Artifacts) {
		t.Helper()
		log.Reset()
		b, err := New(Options{Root: toolchaintest.Root(t), Out: out, Toolchain: tc, Light: true, Jobs: 2,
			Version: "test", Commit: "test", SourceDateEpoch: 1, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		a, err := b.All(t.Context())
		if err != nil {
			t.Fatalf("build: %v\n%s", err, log.String())
		}
		return b, a
	}
	_, a := build()
	want, err := os.ReadFile(a.Image)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Clone(want)
	edited[len(edited)/2] ^= 0xff // somewhere in partition 1
	if err := os.WriteFile(a.Image, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := build()
	if !strings.Contains(log.String(), "IMG   "+b.Rel(a.Image)) {
		t.Errorf("the edited image was not rebuilt; build log:\n%s", log.String())
	}
	got, err := os.ReadFile(a.Image)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the rebuilt image differs from the first build's")
	}
	build()
	if log.Len() != 0 {
		t.Errorf("a no-op build ran steps:\n%s", log.String())
	}
}
