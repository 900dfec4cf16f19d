// Command fluid downloads and verifies Fluid OS release images.
//
//	fluid download [--version vX.Y.Z|latest] [--repo owner/name] [-o DIR] [--key cosign.pub] [--image pgo|baseline] [--timeout D] [--stall-timeout D]
//	fluid verify [--version vX.Y.Z] [--key cosign.pub] [--repo owner/name] [--checksums FILE] [--bundle FILE] FILE...
//	fluid verify --rebuild [--source DIR] [--manifest FILE] [--keep] IMAGE
//	fluid version
//
// Every file is checked before it is kept: the Sigstore bundle must sign
// checksums.txt (keyless: by the repository's release workflow on a v* tag;
// or by the key given with --key), each asset must match its SHA-256 there,
// and only then are the files moved into place.
//
// Environment: GITHUB_TOKEN (optional; raises the API rate limit),
// GITHUB_API_URL (GitHub Enterprise Server or a test server).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/fluid-os/fluid/internal/verdict"
)

// Set by the linker (see .goreleaser.yaml).
var (
	version = "dev"
	commit  = "none"
)

func main() {
	// The first Ctrl-C (or SIGTERM, SIGHUP) cancels: downloads stop and
	// their staging directory is removed, a rebuild's build is killed and its
	// temporary directories are removed before fluid exits. A second one
	// stops fluid at once, after removing a download's staging directory
	// (systemd, for one, sends SIGTERM and SIGHUP together).
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		cancel(signalCause{s})
		s = <-sigs
		runEmergencyCleanups()
		fmt.Fprintf(os.Stderr, "fluid: %v again: stopped at once\n", s)
		os.Exit(signalExitCode(s))
	}()
	code := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr)})
	// Cleanups are done: hold off a late second signal while exiting.
	emergency.Lock()
	os.Exit(code)
}

// signalCause is the cause of ctx's cancellation when a signal stopped fluid.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return s.sig.String() + " signal received" }

// signalExitCode is the shell's convention for a command stopped by sig:
// 128 + the signal's number (130 for Ctrl-C).
func signalExitCode(sig os.Signal) int {
	if n, ok := sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return exitRefused
}

// interruptedCode returns the exit code for a command that ctx's signal
// stopped, and false when no signal stopped it.
func interruptedCode(ctx context.Context) (int, bool) {
	var sc signalCause
	if ctx.Err() == nil || !errors.As(context.Cause(ctx), &sc) {
		return 0, false
	}
	return signalExitCode(sc.sig), true
}

// emergency holds the cleanups to run when a second signal stops fluid at
// once. Holding its lock keeps that from happening: a critical section (the
// final moves into place) runs to its end first.
var emergency struct {
	sync.Mutex
	next     int
	cleanups map[int]func()
}

// onEmergency registers fn to run if a second signal stops fluid at once; the
// returned function unregisters it.
func onEmergency(fn func()) (unregister func()) {
	emergency.Lock()
	defer emergency.Unlock()
	if emergency.cleanups == nil {
		emergency.cleanups = map[int]func(){}
	}
	id := emergency.next
	emergency.next++
	emergency.cleanups[id] = fn
	return func() {
		emergency.Lock()
		defer emergency.Unlock()
		delete(emergency.cleanups, id)
	}
}

// runEmergencyCleanups runs the registered cleanups and keeps the lock, so
// nothing else starts before the process exits.
func runEmergencyCleanups() {
	emergency.Lock()
	for _, fn := range emergency.cleanups {
		fn()
	}
}

// env is what run needs from the process, so tests can supply their own.
type env struct {
	getenv    func(string) string
	stdout    io.Writer
	stderr    io.Writer
	stderrTTY bool
}

const usage = `usage:
  fluid download [--version vX.Y.Z|latest] [--repo owner/name] [-o DIR] [--key cosign.pub] [--image pgo|baseline] [--timeout D] [--stall-timeout D]
  fluid verify [--version vX.Y.Z] [--key cosign.pub] [--repo owner/name] [--checksums FILE] [--bundle FILE] FILE...
  fluid verify --rebuild [--source DIR] [--manifest FILE] [--keep] IMAGE
  fluid version

exit codes:
  0    OK: every file verified (download: verified and written to -o)
  1    REFUSED: a check on the files failed (signature, signer identity or
       policy, checksum, image), a file to verify is missing, or the release
       or asset does not exist; do not use the files
       --rebuild: the image or its manifest differs from the rebuild
  2    usage error (bad flag or arguments); nothing was checked
  3    --rebuild only: could not rebuild (says nothing about the image)
  4    network/IO error: GitHub or Sigstore could not be reached, or a download
       broke off, stalled or timed out; nothing was verified or kept, try again
  128+N  stopped by signal N (130 for Ctrl-C, 143 for SIGTERM); fluid download
       then leaves nothing behind in the destination
`

// Exit codes.
const (
	exitOK        = 0
	exitRefused   = 1 // a check on the files failed, a file is missing, or another failure that is not usage or network
	exitDifferent = 1 // --rebuild: the image or its manifest is not what its source builds to
	exitUsage     = 2
	exitNoRebuild = 3 // --rebuild: could not rebuild (says nothing about the image)
	exitNetwork   = 4 // network or download I/O failed: nothing was verified or kept
)

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "download":
		err = cmdDownload(ctx, args[1:], e)
	case "verify":
		err = cmdVerify(ctx, args[1:], e)
	case "version", "--version":
		fmt.Fprintf(e.stdout, "fluid %s (commit %s)\n", version, commit)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "fluid: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var xe *exitError
	if errors.As(err, &xe) {
		fmt.Fprintf(e.stderr, "fluid %s: %v\n", args[0], xe.err)
		return xe.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "fluid %s: %v\n%s", args[0], err, usage)
		return exitUsage
	}
	var me *missingError
	if errors.As(err, &me) {
		fmt.Fprintf(e.stderr, "fluid %s: REFUSED: %v\n", args[0], err)
		return exitRefused
	}
	var ce *verdict.CheckError
	if errors.As(err, &ce) {
		if ce.Check == verdict.CheckNetwork || ce.Check == verdict.CheckDownload {
			fmt.Fprintf(e.stderr, "fluid %s: NETWORK ERROR (not a verdict on the files): %v\n", args[0], err)
			return exitNetwork
		}
		fmt.Fprintf(e.stderr, "fluid %s: REFUSED: %v\n", args[0], err)
		return exitRefused
	}
	fmt.Fprintf(e.stderr, "fluid %s: %v\n", args[0], err)
	return exitRefused
}

// exitError ends the command with its own exit status.
type exitError struct {
	code int
	err  error
}

func (x *exitError) Error() string { return x.err.Error() }
func (x *exitError) Unwrap() error { return x.err }

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// newFlagSet returns a flag set that reports errors as usageError.
func newFlagSet(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	// Allow flags after positional arguments (fluid verify FILE --key k).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// defaultRepo is the repository releases come from unless --repo says
// otherwise; it is the one release/policy.json names.
func defaultRepo() string {
	p, err := projectPolicy()
	if err != nil {
		return "fluid-os/fluid"
	}
	return p.Repository
}
