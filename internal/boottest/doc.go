// Package boottest holds the end-to-end boot tests of the real Fluid OS
// image: it builds the boot stages, kernel variants and images with
// internal/build (under the build lock), boots them with internal/qemu and
// checks the outcome, the serial lines, the VGA screen (over QMP) and a gdb
// session. It has no non-test code.
//
//	go test ./internal/boottest            # all boot tests (a few minutes under TCG)
//	go test ./internal/boottest -run Fault # the fault kernels only
package boottest
