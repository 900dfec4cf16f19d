package bench

import (
	"io"
	"testing"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
)

// TestBenchRefusesUsersModel: the PGO variant is built from profiles/, the
// generated test model's run, so `mage bench` with FLUID_LLAMA_MODEL set is
// refused before anything is built or booted, naming the knob.
func TestBenchRefusesUsersModel(t *testing.T) {
	buildtest.WantRefusesUsersModel(t, "bench", func(b *build.Builder) error {
		_, err := Run(t.Context(), Options{B: b, Log: io.Discard})
		return err
	})
}
