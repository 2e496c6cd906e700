package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
)

// The exit codes, documented in the root command's help and the README.
const (
	exitOK            = 0
	exitFailure       = 1   // any failure the codes below do not name
	exitUsage         = 2   // bad flags, arguments, configuration or input; nothing was done
	exitNotFound      = 3   // a key, a checkpoint or a checkpoint directory does not exist
	exitUnavailable   = 4   // the store could not be reached, or did not answer within --timeout
	exitIndeterminate = 5   // a write may or may not have been applied
	exitInterrupted   = 130 // Ctrl-C or SIGTERM (128 + SIGINT, as shells report it); a write in flight may or may not have been applied
)

// execute runs root, prints its error, if any, to root's stderr, and
// returns the exit code.
func execute(ctx context.Context, root *cobra.Command) int {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	fmt.Fprintln(root.ErrOrStderr(), "strata: "+message(err))
	var ran *ranError
	if !errors.As(err, &ran) && cmd != nil {
		fmt.Fprintf(root.ErrOrStderr(), "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// ranError marks an error that a command's own code returned, as opposed
// to one cobra found in the command line (an unknown flag or command, a
// missing argument or required flag): those are usage errors.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }
func (e *ranError) Unwrap() error { return e.err }

// usageError is a command line that the command refuses as it stands: flags
// that do not go together, a missing store, a restore that needs --yes.
// It matches strata.ErrInvalidConfig.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return "usage: " + e.msg }
func (e *usageError) Is(target error) bool { return target == strata.ErrInvalidConfig }

// usageErr returns a usageError.
func usageErr(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps err to the exit code that tells its kind. ctx is the
// command's context before any --timeout: done means a signal stopped it.
func exitCode(ctx context.Context, err error) int {
	var ran *ranError
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, strata.ErrIndeterminate):
		return exitIndeterminate
	case !errors.As(err, &ran),
		errors.Is(err, strata.ErrInvalidConfig), errors.Is(err, strata.ErrInvalidKey),
		errors.Is(err, strata.ErrInvalidTTL), errors.Is(err, strata.ErrValueTooLarge):
		return exitUsage
	case errors.Is(err, strata.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return exitNotFound
	case errors.Is(err, strata.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable
	}
	return exitFailure
}

// sentinels are the errors whose text begins with "strata: ".
var sentinels = []error{
	strata.ErrNotFound, strata.ErrClosed, strata.ErrInvalidKey, strata.ErrInvalidTTL,
	strata.ErrValueTooLarge, strata.ErrUnsupported, strata.ErrUnavailable, strata.ErrIndeterminate,
	strata.ErrCorrupt, strata.ErrConflict, strata.ErrFenced, strata.ErrInvalidConfig, strata.ErrMismatch,
}

// message returns err's text for "strata: " to precede: without the
// "strata: " that the library's sentinel errors begin with, so that a
// message reads "strata: get \"k\": not found", not
// "strata: strata: not found".
func message(err error) string {
	s := err.Error()
	for _, e := range sentinels {
		s = strings.ReplaceAll(s, e.Error(), strings.TrimPrefix(e.Error(), "strata: "))
	}
	return s
}
