package profile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/toolchain"
)

// TestProfileRefusesUsersModel: profiles/ records the generated test
// model's run, the one every image (and a release's "profiles are
// current" check) runs; `mage profile` with FLUID_LLAMA_MODEL set is
// refused before anything is built or booted, naming the knob, as
// `mage release` is (a user's model would replace the llama profile with
// one of another workload, or, timing out under the boot's default
// timeout, drop it from profiles/).
func TestProfileRefusesUsersModel(t *testing.T) {
	root := t.TempDir()
	b, err := build.New(build.Options{Root: root, Toolchain: &toolchain.Toolchain{}, Log: io.Discard,
		Llama: &build.LlamaFiles{Model: "/models/tinyllama.gguf"}})
	if err != nil {
		t.Fatal(err)
	}
	err = (&Pipeline{B: b, Log: io.Discard}).Profile(t.Context())
	if err == nil || !strings.Contains(err.Error(), build.EnvLlamaModel) || !strings.Contains(err.Error(), "/models/tinyllama.gguf") {
		t.Errorf("profile with a user's model: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "build")); err == nil {
		t.Errorf("it built something before refusing")
	}
}
