package modfmt_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluid-os/fluid/internal/build"
	"github.com/fluid-os/fluid/internal/build/buildtest"
	"github.com/fluid-os/fluid/internal/image"
	"github.com/fluid-os/fluid/internal/qemu"
	"github.com/fluid-os/fluid/internal/qemu/qemutest"
)

// bootAttack boots an image holding the modules testdata/<mods> (each
// "sub/name"), next to the seven normal modules if normal is set.
func bootAttack(t *testing.T, tag string, normal bool, timeout time.Duration, mods ...string) (*qemu.Result, []string) {
	t.Helper()
	qemutest.Need(t)
	b := buildtest.Builder(t)
	unlock := buildtest.Lock(t, b)
	spec := build.ImageSpec{Name: "fluid-modfmt-attack-" + tag + ".img"}
	var err error
	if normal {
		var arts *build.Artifacts
		arts, err = b.All(t.Context())
		if err == nil {
			spec.Kernel, spec.Modules = arts.Kernel, arts.Modules
		}
	} else {
		spec.Kernel, err = b.Kernel(t.Context(), build.KernelNormal)
	}
	if err != nil {
		unlock()
		t.Fatalf("build: %v", err)
	}
	for _, m := range mods {
		sub, name, _ := strings.Cut(m, "/")
		spec.Extra = append(spec.Extra, image.File{Path: "/modules/" + name + ".mod", Data: buildTestModule(t, b.Root(), sub, name)})
	}
	img, err := b.Image(t.Context(), spec)
	unlock()
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	return qemutest.Boot(t, qemu.Options{Image: img, Timeout: timeout})
}

// TestAttackExplore boots ATTACK=mod,mod,... (testdata/attack or
// sub/name) and logs the run; for a reviewer, skipped without ATTACK.
func TestAttackExplore(t *testing.T) {
	list := os.Getenv("ATTACK")
	if list == "" {
		t.Skip("ATTACK not set")
	}
	var mods []string
	for _, m := range strings.Split(list, ",") {
		if !strings.Contains(m, "/") {
			m = "attack/" + m
		}
		mods = append(mods, m)
	}
	res, lines := bootAttack(t, "explore", os.Getenv("NORMAL") != "", time.Minute, mods...)
	t.Logf("outcome %v exit %d in %v: %s", res.Outcome, res.ExitStatus, res.Duration.Round(time.Millisecond), res.Reason)
	for _, l := range lines {
		if !strings.HasPrefix(l, "@@FLUID-FRAME ") {
			t.Log(l)
		}
	}
}
