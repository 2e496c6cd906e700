package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// kind classifies the failure of one attempt of a command.
type kind int

const (
	// kindReply: the server answered with an error; retrying will not help.
	kindReply kind = iota
	// kindTransient: the server refused the command without running it
	// (LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, max clients,
	// NOREPLICAS); it may work later.
	kindTransient
	// kindNotSent: the command never left the client: no connection could
	// be made (dial, TLS handshake, the sentinels' lookup of the master,
	// pool timeout).
	kindNotSent
	// kindMaybeSent: the connection failed (timeout, reset, EOF) after the
	// command may have reached the server.
	kindMaybeSent
	// kindClosed: the client was closed.
	kindClosed
	// kindContext: the caller's context ended.
	kindContext
)

func classify(err error) kind {
	var re goredis.Error
	var de *dialError
	switch {
	case errors.Is(err, goredis.ErrClosed):
		return kindClosed
	case errors.As(err, &de):
		// Before the reply errors: a sentinel that refused the lookup of
		// the master (NOAUTH, say) sent nothing to the master either.
		return kindNotSent
	case errors.As(err, &re):
		if isTransientReply(err) {
			return kindTransient
		}
		return kindReply
	case notSent(err):
		return kindNotSent
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return kindContext
	}
	return kindMaybeSent
}

func isTransientReply(err error) bool {
	if _, ok := goredis.IsMovedError(err); ok {
		return true
	}
	if _, ok := goredis.IsAskError(err); ok {
		return true
	}
	return goredis.IsLoadingError(err) || goredis.IsReadOnlyError(err) || goredis.IsClusterDownError(err) ||
		goredis.IsTryAgainError(err) || goredis.IsMasterDownError(err) || goredis.IsMaxClientsError(err) ||
		goredis.IsNoReplicasError(err)
}

// notSent reports whether err proves the command was never written: the
// connection it needed could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, goredis.ErrPoolTimeout) {
		return true
	}
	// A handshake that failed: the server's certificate was refused, or
	// its first record was not TLS (RecordHeaderError.Conn is set only
	// then; a garbled record read later, after a command was written,
	// proves nothing).
	var (
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		inv x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || (errors.As(err, &rh) && rh.Conn != nil) ||
		errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &inv)
}

// permissionError explains an ACL refusal.
type permissionError struct {
	prefix string
	err    error
}

func (e *permissionError) Error() string {
	return fmt.Sprintf("permission denied by the server's ACL (the user's key patterns must cover the key prefix %q, and its commands what the store sends): %v", e.prefix, e.err)
}

func (e *permissionError) Unwrap() error { return e.err }

// fail turns the error of an operation into what the store returns: the
// sentinel in the chain tells the caller what it may assume. write says
// whether the operation changes data; st records whether an earlier attempt
// may have reached the server.
func (s *Store) fail(ctx context.Context, op string, key []byte, st *opState, err error, write bool) error {
	s.stats.Error()
	k := classify(err)
	sentBefore := write && st != nil && st.sent.Load()
	maybeApplied := sentBefore || (write && k == kindMaybeSent)
	indeterminate := func(cause error) error {
		return &strata.OpError{Op: op, Backend: backend, Key: clone(key), Err: fmt.Errorf("%w: %w", strata.ErrIndeterminate, cause)}
	}
	if s.closed.Load() || k == kindClosed {
		if maybeApplied {
			return indeterminate(strata.ErrClosed)
		}
		return strata.ErrClosed
	}
	if cerr := ctxErr(ctx); cerr != nil {
		if maybeApplied {
			return indeterminate(cerr)
		}
		return cerr
	}
	var out error
	switch k {
	case kindContext:
		// Not the caller's context (it is live): an internal timeout of
		// go-redis. Keep it out of the chain, so that callers do not take
		// it for their own deadline.
		sentinel := strata.ErrUnavailable
		if write {
			sentinel = strata.ErrIndeterminate
		}
		return &strata.OpError{Op: op, Backend: backend, Key: clone(key), Err: fmt.Errorf("%w: %v", sentinel, err)}
	case kindReply:
		out = err
		if goredis.IsPermissionError(err) {
			out = &permissionError{prefix: string(s.prefix), err: err}
		}
		if sentBefore {
			out = fmt.Errorf("%w: an earlier attempt may have been applied: %w", strata.ErrIndeterminate, err)
		}
	case kindTransient, kindNotSent:
		if sentBefore {
			out = fmt.Errorf("%w: an earlier attempt may have been applied; then: %w", strata.ErrIndeterminate, err)
		} else {
			out = fmt.Errorf("%w: %w", strata.ErrUnavailable, err)
		}
	default: // kindMaybeSent
		if write {
			out = fmt.Errorf("%w: %w", strata.ErrIndeterminate, err)
		} else {
			out = fmt.Errorf("%w: %w", strata.ErrUnavailable, err)
		}
	}
	return storekit.NewOpError(op, backend, key, out)
}

// ctxErr returns ctx.Err(), or context.DeadlineExceeded once ctx's
// deadline has passed: a socket deadline set from it may fire a moment
// before the context's own timer does.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
