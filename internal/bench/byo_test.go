package bench

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// TestBenchRefusesUsersModel: the PGO variant is built from profiles/, the
// generated test model's run, so `mage bench` with FLUID_LLAMA_MODEL set is
// refused before anything is built or booted, naming the knob.
func TestBenchRefusesUsersModel(t *testing.T) {
	root := t.TempDir()
	b, err := build.New(build.Options{Root: root, Toolchain: &toolchain.Toolchain{}, Log: io.Discard,
		Llama: &build.LlamaFiles{Model: "/models/tinyllama.gguf"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(t.Context(), Options{B: b, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), build.EnvLlamaModel) || !strings.Contains(err.Error(), "/models/tinyllama.gguf") {
		t.Errorf("bench with a user's model: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "build")); err == nil {
		t.Errorf("it built something before refusing")
	}
}
