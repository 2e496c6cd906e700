package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-kv/strata"
)

// opError wraps a pgx error once, classified: context errors as they are;
// failures before the request left (no connection) and the server's
// refusals to start (too many connections, shutting down, starting up) as
// strata.ErrUnavailable; other server errors as they are; everything else
// (timeouts, broken connections) as strata.ErrIndeterminate.
func opError(op, name string, err error) error {
	if err == nil || isContextErr(err) {
		return err
	}
	var cause error
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce) || pgconn.SafeToRetry(err):
		cause = fmt.Errorf("%w: %w", strata.ErrUnavailable, err)
	case errors.As(err, &pe):
		if pe.Code == "53300" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08") {
			cause = fmt.Errorf("%w: %w", strata.ErrUnavailable, err)
		} else {
			cause = err
		}
	case strings.Contains(err.Error(), "closed pool"):
		cause = fmt.Errorf("%w: %w", strata.ErrClosed, err)
	default:
		cause = fmt.Errorf("%w: %w", strata.ErrIndeterminate, err)
	}
	var key []byte
	if name != "" {
		key = []byte(name)
	}
	return &strata.OpError{Op: op, Backend: backend, Key: key, Err: cause}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
