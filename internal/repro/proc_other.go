//go:build !unix

package repro

import "os/exec"

// ownProcessGroup leaves cmd as it is: there are no process groups here.
func ownProcessGroup(cmd *exec.Cmd) (killRest func()) { return func() {} }
