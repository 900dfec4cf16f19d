package profile

import (
	"io"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
)

// TestProfileRefusesUsersModel: profiles/ records the generated test
// model's run, the one every image (and a release's "profiles are
// current" check) runs; `mage profile` with FLUID_LLAMA_MODEL set is
// refused before anything is built or booted, naming the knob, as
// `mage release` is (a user's model would replace the llama profile with
// one of another workload, or, timing out under the boot's default
// timeout, drop it from profiles/).
func TestProfileRefusesUsersModel(t *testing.T) {
	buildtest.WantRefusesUsersModel(t, "profile", func(b *build.Builder) error {
		return (&Pipeline{B: b, Log: io.Discard}).Profile(t.Context())
	})
}
