package storekit

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-kv/strata"
)

// Query reads a store's options from its URL's query string, strictly: a
// malformed value or an unknown parameter is an error matching
// strata.ErrInvalidConfig that names the parameter and what it accepts.
// Read every parameter the store knows, then call Err.
type Query struct {
	u     *url.URL
	v     url.Values
	known []string
	errs  []error
}

// NewQuery returns a Query over u's parameters.
func NewQuery(u *url.URL) *Query {
	return &Query{u: u, v: u.Query()}
}

func (q *Query) get(name string) (string, bool) {
	q.known = append(q.known, name)
	vs, ok := q.v[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		q.fail(name, "given more than once")
	}
	return vs[len(vs)-1], true
}

func (q *Query) fail(name, format string, args ...any) {
	q.errs = append(q.errs, fmt.Errorf("parameter %q: "+format, append([]any{name}, args...)...))
}

// String returns the parameter, or def when absent.
func (q *Query) String(name, def string) string {
	if s, ok := q.get(name); ok {
		return s
	}
	return def
}

// Duration returns the parameter parsed by time.ParseDuration ("250ms",
// "1h"), or def when absent.
func (q *Query) Duration(name string, def time.Duration) time.Duration {
	s, ok := q.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		q.fail(name, "%q is not a non-negative duration such as 500ms or 1h", s)
		return def
	}
	return d
}

// Int returns the parameter as a non-negative integer, or def when absent.
func (q *Query) Int(name string, def int) int {
	s, ok := q.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		q.fail(name, "%q is not a non-negative integer", s)
		return def
	}
	return n
}

// Bool returns the parameter as a boolean (true/false/1/0), or def when
// absent.
func (q *Query) Bool(name string, def bool) bool {
	s, ok := q.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		q.fail(name, "%q is not true or false", s)
		return def
	}
	return b
}

// Uint32 returns the parameter as an octal or decimal number that fits 32
// bits (for file modes such as 0600), or def when absent.
func (q *Query) Uint32(name string, def uint32) uint32 {
	s, ok := q.get(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		q.fail(name, "%q is not a number such as 0600", s)
		return def
	}
	return uint32(n)
}

// Err reports malformed values and parameters that were never read, naming
// the accepted ones. The URL in the message has its password redacted.
func (q *Query) Err() error {
	var unknown []string
	for name := range q.v {
		if !slices.Contains(q.known, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		accepted := slices.Clone(q.known)
		slices.Sort(accepted)
		q.errs = append(q.errs, fmt.Errorf("unknown parameter %q (accepted: %s)", name, strings.Join(accepted, ", ")))
	}
	if len(q.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: store URL %q: %w", strata.ErrInvalidConfig, RedactURL(q.u.String()), errors.Join(q.errs...))
}
