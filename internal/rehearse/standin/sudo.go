package standin

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// sudo is the rehearsal's sudo. GitHub's runner user has password-less
// sudo; a developer's machine must not be changed by a rehearsal. So it
// never elevates: each command a workflow runs with sudo is listed here
// with what it becomes, and anything else fails naming it.
//
//	apt-get update             skipped (no network; packages come from the host)
//	apt-get install PKG...     each PKG must already be installed (dpkg), else
//	                           fails with the apt-get line to run
//	sysctl [-q] -w K=V         the host's value must already be V
//	usermod --add-sub[ug]ids   skipped: the runner user's subordinate ids
//	cp X /etc/udev/rules.d/    skipped: the host's udev rules are not changed
//	udevadm ...                skipped (with the udev rule above)
//
// VAR=value arguments before the command are accepted as sudo passes them.
func sudo(e *Env) error {
	args := e.Args
	for len(args) > 0 && strings.Contains(args[0], "=") && !strings.HasPrefix(args[0], "-") {
		args = args[1:]
	}
	if len(args) == 0 {
		return fmt.Errorf("sudo: no command")
	}
	cmd, rest := args[0], args[1:]
	switch {
	case cmd == "apt-get" && hasWord(rest, "update"):
		e.Logf("sudo stand-in: skipped `apt-get update` (the rehearsal installs nothing)")
		return nil
	case cmd == "apt-get" && hasWord(rest, "install"):
		var pkgs, missing []string
		after, skipNext := false, false
		for _, a := range rest {
			switch {
			case skipNext:
				skipNext = false
			case a == "-o" || a == "-t" || a == "-c" || a == "--option" || a == "--target-release" || a == "--config-file":
				skipNext = true // the option's argument
			case a == "install":
				after = true
			case !after || strings.HasPrefix(a, "-"):
			default:
				pkgs = append(pkgs, a)
			}
		}
		for _, p := range pkgs {
			out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
			if err != nil || !strings.Contains(string(out), "install ok installed") {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("sudo stand-in: the job installs %s, which this machine does not have; the rehearsal installs nothing: run `apt-get install %s` (as root), then rehearse again", strings.Join(missing, " "), strings.Join(missing, " "))
		}
		e.Logf("sudo stand-in: apt-get install: all %d packages are installed on this machine (%s)", len(pkgs), strings.Join(pkgs, " "))
		return nil
	case cmd == "sysctl":
		for _, a := range rest {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				continue
			}
			b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
			if err != nil {
				return fmt.Errorf("sudo stand-in: sysctl %s: %v", k, err)
			}
			if strings.TrimSpace(string(b)) != v {
				return fmt.Errorf("sudo stand-in: the job sets sysctl %s=%s and this machine has %s; the rehearsal does not change the host: run `sysctl -w %s=%s` (as root) if you accept it", k, v, strings.TrimSpace(string(b)), k, v)
			}
			e.Logf("sudo stand-in: sysctl %s is already %s", k, v)
		}
		return nil
	case cmd == "usermod" && (hasPrefixWord(rest, "--add-subuids") || hasPrefixWord(rest, "--add-subgids")):
		e.Logf("sudo stand-in: skipped `usermod %s` (subordinate ids are the runner user's; this machine's are its own)", strings.Join(rest, " "))
		return nil
	case cmd == "cp" && len(rest) > 0 && strings.HasPrefix(rest[len(rest)-1], "/etc/udev/rules.d"):
		e.Logf("sudo stand-in: skipped installing %s as a udev rule (the host's udev rules are not changed)", strings.Join(rest[:len(rest)-1], " "))
		return nil
	case cmd == "udevadm":
		e.Logf("sudo stand-in: skipped `udevadm %s`", strings.Join(rest, " "))
		return nil
	}
	return fmt.Errorf("sudo stand-in: `sudo %s` is not a command the rehearsal knows how to stand in for; add it to internal/rehearse/standin/sudo.go (and .github/rehearsal/README.md), saying what it becomes on a developer's machine", strings.Join(args, " "))
}

func hasWord(args []string, w string) bool {
	for _, a := range args {
		if a == w {
			return true
		}
	}
	return false
}

func hasPrefixWord(args []string, w string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, w) {
			return true
		}
	}
	return false
}
