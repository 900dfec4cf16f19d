package toolchain

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// DepsPlan is what `mage deps` would do on this machine.
type DepsPlan struct {
	LLVMMajor int      // the LLVM major apt offers (18 preferred, else the lowest newer one)
	Packages  []string // every package the build and tests need
	Missing   []string // those not installed yet
	Root      bool     // whether we may run apt-get ourselves
}

// Command is the exact shell command that installs the missing packages.
func (p DepsPlan) Command() string {
	if len(p.Missing) == 0 {
		return ""
	}
	sudo := "sudo "
	if p.Root {
		sudo = ""
	}
	return fmt.Sprintf("%sapt-get update && %sapt-get install -y --no-install-recommends %s", sudo, sudo, strings.Join(p.Missing, " "))
}

// HostPackages are the Debian/Ubuntu packages the host needs in rootfs
// mode: mmdebstrap and bubblewrap to create and enter the locked LLVM
// rootfs, and the tools that run on the host (QEMU, FAT tools, gdb). No
// LLVM: it comes from the rootfs.
//
// It also holds what the CI workflows' runner setup installs or finds on
// GitHub's runners, so that `go tool mage rehearse` (whose sudo stand-in
// installs nothing) finds it here too: uidmap (mmdebstrap's unshare mode as
// a user) and jq (.github/actions/toolchain reads toolchain/lock.json with
// it); that action installs exactly this list (a test checks).
func HostPackages() []string {
	pkgs := []string{"mmdebstrap", "bubblewrap", "ca-certificates", "uidmap", "jq"}
	seen := map[string]bool{}
	for _, r := range Requirements {
		if r.Optional && !seen[r.Package] {
			seen[r.Package] = true
			pkgs = append(pkgs, r.Package)
		}
	}
	return pkgs
}

// PlanDeps works out which packages are missing. In host mode
// (FLUID_TOOLCHAIN=host) that includes an LLVM from apt (18, else the
// lowest newer major); otherwise only HostPackages. It needs dpkg/apt
// (Debian, Ubuntu); elsewhere it returns an error that says what to install
// by hand.
func PlanDeps() (DepsPlan, error) {
	var p DepsPlan
	mode, err := Mode(os.Getenv)
	if err != nil {
		return p, err
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return p, fmt.Errorf("mage deps knows Debian and Ubuntu (apt); on this system install by hand: %s (and for %s=host: LLVM %d+ with the x86_64 profile runtime, nasm)", strings.Join(HostPackages(), " "), EnvMode, MinLLVMMajor)
	}
	p.Root = os.Geteuid() == 0
	p.Packages = HostPackages()
	if mode == ModeHost {
		p.LLVMMajor = installedOrAvailableLLVM()
		if p.LLVMMajor == 0 && p.Root {
			// A fresh machine has empty package lists: refresh them once.
			_ = exec.Command("apt-get", "update", "-qq").Run()
			p.LLVMMajor = installedOrAvailableLLVM()
		}
		if p.LLVMMajor == 0 {
			return p, fmt.Errorf("apt offers no clang-N with N >= %d; run `apt-get update` first, or add apt.llvm.org, or set %s to an LLVM directory", MinLLVMMajor, EnvLLVM)
		}
		p.Packages = append(p.Packages, Packages(p.LLVMMajor)...)
	}
	for _, pkg := range p.Packages {
		if !dpkgInstalled(pkg) {
			p.Missing = append(p.Missing, pkg)
		}
	}
	return p, nil
}

// InstallDeps installs the missing packages with apt-get when running as
// root; otherwise it returns an error carrying the command to run.
func InstallDeps(p DepsPlan, out io.Writer) error {
	if len(p.Missing) == 0 {
		fmt.Fprintf(out, "deps: all %d host packages present\n", len(p.Packages))
		return nil
	}
	if !p.Root {
		return fmt.Errorf("missing packages: %s; not root, so run this yourself:\n  %s", strings.Join(p.Missing, " "), p.Command())
	}
	fmt.Fprintf(out, "deps: installing %s\n", strings.Join(p.Missing, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, argv := range [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, p.Missing...),
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s failed: %w; rerun it by hand to see why: %s", strings.Join(argv[:2], " "), err, p.Command())
		}
	}
	return nil
}

func dpkgInstalled(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

// installedOrAvailableLLVM prefers an installed LLVM (pin first), then what
// apt can install (pin first, then the lowest newer major).
func installedOrAvailableLLVM() int {
	if v := os.Getenv(EnvLLVM); v != "" {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err == nil && n >= MinLLVMMajor {
			return n
		}
	}
	for n := PinnedLLVMMajor; n <= 30; n++ {
		if dpkgInstalled(fmt.Sprintf("clang-%d", n)) {
			return n
		}
	}
	for n := PinnedLLVMMajor; n <= 30; n++ {
		out, err := exec.Command("apt-cache", "policy", fmt.Sprintf("clang-%d", n)).Output()
		if err == nil && strings.Contains(string(out), "Candidate:") && !strings.Contains(string(out), "Candidate: (none)") {
			return n
		}
	}
	return 0
}
