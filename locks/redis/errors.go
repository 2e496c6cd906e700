package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
)

// opError wraps a go-redis error once, classified: context errors as they
// are; a closed client as strata.ErrClosed; requests that cannot have been
// applied as strata.ErrUnavailable; other Redis error replies as they are;
// everything else (timeouts, broken connections after the request was
// written) as strata.ErrIndeterminate.
func opError(op, name string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var cause error
	var re goredis.Error
	switch {
	case errors.Is(err, goredis.ErrClosed):
		cause = fmt.Errorf("%w: %w", strata.ErrClosed, err)
	case notApplied(err):
		cause = fmt.Errorf("%w: %w", strata.ErrUnavailable, err)
	case errors.As(err, &re):
		cause = err
	default:
		cause = fmt.Errorf("%w: %w", strata.ErrIndeterminate, err)
	}
	return &strata.OpError{Op: op, Backend: backend, Key: []byte(name), Err: cause}
}

// notApplied reports errors after which the request was certainly not
// executed: no connection could be made, or the server refused it before
// running it.
func notApplied(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, goredis.ErrPoolTimeout) {
		return true
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"CLUSTERDOWN", "LOADING", "TRYAGAIN", "MASTERDOWN", "READONLY", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}
