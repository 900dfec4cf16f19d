//go:build unix

package repro

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup runs cmd in a process group of its own, and cancelling
// its context stops that whole group: `go tool mage` runs mage as a child
// of its own, which runs the build steps, and killing only the go command
// (exec.CommandContext's default) left them building on in a directory
// that was being removed. SIGTERM first, so go removes its own temporary
// build directory; the returned func, called once the command has
// returned, kills whatever of the group is left.
func ownProcessGroup(cmd *exec.Cmd) (killRest func()) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	return func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
}
