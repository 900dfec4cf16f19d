package toolchain_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fluid-os/fluid/internal/container"
	"github.com/fluid-os/fluid/internal/toolchain"
	"github.com/fluid-os/fluid/internal/toolchain/toolchaintest"
)

// TestSandboxConfinesSteps runs probes as a build step in the locked rootfs
// (the tree's toolchain, as every build gets it) and checks what a step
// can reach: no capabilities (run as root, bwrap would otherwise keep them
// all, and a step could remount / read-write), no writable sysctl (uid 0
// could set core_pattern), no network interface but lo, no host variable
// beyond the passed ones, a read-only root, and no host file outside the
// binds (the cache's own files at their host path).
// Nothing is written: a broken sandbox is seen, not exercised.
func TestSandboxConfinesSteps(t *testing.T) {
	root := toolchaintest.Root(t)
	tc, err := toolchain.FindIn(root)
	if err != nil {
		t.Fatalf("toolchain: %v", err)
	}
	if tc.Container == nil || tc.Container.Engine != container.Bwrap || tc.Rootfs == nil {
		t.Skipf("%s=%s: the steps do not run through bubblewrap", toolchain.EnvMode, os.Getenv(toolchain.EnvMode))
	}
	t.Setenv("FLUID_PROBE_SECRET", "hunter2")
	script := `
echo "caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"
echo "secret=${FLUID_PROBE_SECRET:-unset}"
echo "remount=$(perl -e 'my ($s, $t, $f) = ("none", "/", ""); print syscall(165, $s, $t, $f, 32|4096|16384, 0)')"
[ -w /usr ] && echo usrwritable=yes || echo usrwritable=no
[ -w /proc/sys/kernel/core_pattern ] && echo sysctlwritable=yes || echo sysctlwritable=no
[ -e "${1#cache=}/ready" ] && echo hostcache=yes || echo hostcache=no
`
	cmd, err := tc.Command(context.Background(), []string{"/bin/sh", "-c", script, "probe", "cache=" + tc.Rootfs.Dir}, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			got[k] = v
		}
	}
	for k, want := range map[string]string{
		"caps":           "0000000000000000",
		"ifaces":         "lo,",
		"secret":         "unset",
		"remount":        "-1",
		"usrwritable":    "no",
		"sysctlwritable": "no",
		"hostcache":      "no",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q (the step escapes its sandbox)", k, got[k], want)
		}
	}
	if t.Failed() {
		t.Logf("probe output:\n%s\nbwrap: %q", out, cmd.Args)
	}
}
