package strata

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata/internal/kit"
)

// Opener opens a store from a parsed URL. Store packages register theirs
// with [Register] in an init function.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var openers struct {
	sync.RWMutex
	m        map[string]Opener
	wrappers map[string]WrapOpener
}

// WrapOpener wraps the store a URL opened. params holds the URL's query
// parameters that began with the wrapper's name and a dot, without that
// prefix ("tier.max_bytes" reaches the tier as "max_bytes").
type WrapOpener func(ctx context.Context, inner Store, params url.Values) (Store, error)

// RegisterWrapper makes "name+scheme://..." URLs wrap the store that
// "scheme://..." opens: "tier+pebble:///var/lib/app?tier.max_bytes=1048576"
// puts a tier in front of a Pebble store. It panics on a duplicate or an
// empty name, or one with a "+".
func RegisterWrapper(name string, wrap WrapOpener) {
	openers.Lock()
	defer openers.Unlock()
	if name == "" || strings.Contains(name, "+") || wrap == nil {
		panic("strata: RegisterWrapper with an invalid name or nil opener")
	}
	if _, dup := openers.wrappers[name]; dup {
		panic("strata: RegisterWrapper called twice for " + name)
	}
	if openers.wrappers == nil {
		openers.wrappers = make(map[string]WrapOpener)
	}
	openers.wrappers[name] = wrap
}

// Register makes a store kind available to [Open] under the URL scheme. It
// panics if scheme is empty or already registered, as database/sql.Register
// does: both are programming errors found at init.
func Register(scheme string, open Opener) {
	openers.Lock()
	defer openers.Unlock()
	if scheme == "" || open == nil {
		panic("strata: Register with an empty scheme or nil opener")
	}
	if _, dup := openers.m[scheme]; dup {
		panic("strata: Register called twice for scheme " + scheme)
	}
	if openers.m == nil {
		openers.m = make(map[string]Opener)
	}
	openers.m[scheme] = open
}

// Schemes returns the registered URL schemes, sorted, with a wrapper as
// "name+".
func Schemes() []string {
	openers.RLock()
	defer openers.RUnlock()
	out := make([]string, 0, len(openers.m))
	for s := range openers.m {
		out = append(out, s)
	}
	for w := range openers.wrappers {
		out = append(out, w+"+")
	}
	slices.Sort(out)
	return out
}

// An OpenOption adjusts what [Open] does beyond what the URL says:
// [WithTracerProvider] here, and the options of store packages, such as
// redis.WithHooks (store authors make theirs with storekit.NewOpenOption).
// Options a store does not know are ignored.
type OpenOption struct{ key, value any }

// WithTracerProvider makes Open trace the store it opens: the store is
// wrapped by [WithTracing] with tp, a nil tp meaning the global provider
// (otel.GetTracerProvider()), and tp is handed to the store's opener,
// which may trace its own work (the Redis store traces each command, see
// stores/redis). The URL parameter trace=true does the same with the
// global provider.
func WithTracerProvider(tp trace.TracerProvider) OpenOption {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return OpenOption{kit.TracerKey{}, tp}
}

// openValues are the OpenOptions that reach openers through their
// context, by key; later options replace earlier ones.
type openValues map[any]any

type openValuesKey struct{}

// withOpenOptions returns ctx carrying the values of ctx's options (from an
// enclosing Open) and opts.
func withOpenOptions(ctx context.Context, opts []OpenOption) context.Context {
	if len(opts) == 0 {
		return ctx
	}
	old, _ := ctx.Value(openValuesKey{}).(openValues)
	vals := make(openValues, len(old)+len(opts))
	for k, v := range old {
		vals[k] = v
	}
	for _, o := range opts {
		if o.key != nil {
			vals[o.key] = o.value
		}
	}
	return context.WithValue(ctx, openValuesKey{}, vals)
}

// openValue returns the value of the OpenOption key that ctx carries
// (storekit.OpenValue).
func openValue(ctx context.Context, key any) (any, bool) {
	vals, _ := ctx.Value(openValuesKey{}).(openValues)
	v, ok := vals[key]
	return v, ok
}

// Open opens the store that rawURL names, such as "mem://",
// "pebble:///var/lib/app/state" or "redis://host:6379/0?prefix=app:". The
// store package must be linked in (import it, or
// github.com/strata-kv/strata/stores/all for every built-in kind).
//
// The URL parameter trace=true (any scheme), like the option
// [WithTracerProvider], returns the store wrapped by [WithTracing]; the
// parameter is not passed on to the store. Other options reach the store's
// opener.
//
// Errors match ErrInvalidConfig for a malformed URL, an unknown scheme or a
// bad parameter; passwords never appear in them.
func Open(ctx context.Context, rawURL string, opts ...OpenOption) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: store URL %q: %s", ErrInvalidConfig, redactURL(rawURL), urlErrReason(err))
	}
	return OpenURL(ctx, u, opts...)
}

// OpenURL opens the store that the parsed URL u names, as [Open] does. A
// URL is parsed once: wrappers and the store's opener all receive the
// parsed form. OpenURL does not modify u.
func OpenURL(ctx context.Context, u *url.URL, opts ...OpenOption) (Store, error) {
	if q := u.Query(); q.Has("trace") {
		on, err := strconv.ParseBool(q.Get("trace"))
		if err != nil {
			return nil, fmt.Errorf("%w: store URL %q: parameter \"trace\": want true or false", ErrInvalidConfig, redactedURL(u))
		}
		q.Del("trace")
		c := *u
		c.RawQuery = q.Encode()
		u = &c
		if _, given := openOptionsTracer(opts); on && !given {
			opts = append(opts, WithTracerProvider(nil))
		}
	}
	ctx = withOpenOptions(ctx, opts)
	s, err := open(ctx, u)
	if err != nil {
		return nil, err
	}
	if tp, ok := openOptionsTracer(opts); ok {
		s = WithTracing(s, tp)
	}
	return s, nil
}

// openOptionsTracer returns the last tracer provider of opts.
func openOptionsTracer(opts []OpenOption) (trace.TracerProvider, bool) {
	var tp trace.TracerProvider
	for _, o := range opts {
		if p, ok := o.value.(trace.TracerProvider); ok && o.key == (kit.TracerKey{}) {
			tp = p
		}
	}
	return tp, tp != nil
}

// open opens u, whose options are in ctx.
func open(ctx context.Context, u *url.URL) (Store, error) {
	scheme := strings.ToLower(u.Scheme)
	openers.RLock()
	opener := openers.m[scheme]
	name, inner, hasPlus := strings.Cut(scheme, "+")
	wrap := openers.wrappers[name]
	openers.RUnlock()
	if opener == nil && hasPlus && wrap != nil {
		return openWrapped(ctx, u, name, inner, wrap)
	}
	if opener == nil {
		return nil, fmt.Errorf("%w: store URL %q: unknown scheme %q (registered: %s)",
			ErrInvalidConfig, redactedURL(u), u.Scheme, strings.Join(Schemes(), ", "))
	}
	return opener(ctx, u)
}

// openWrapped opens u without its wrapper scheme and parameters, then
// wraps the store.
func openWrapped(ctx context.Context, u *url.URL, name, inner string, wrap WrapOpener) (Store, error) {
	q := u.Query()
	params := url.Values{}
	for k, v := range q {
		if rest, ok := strings.CutPrefix(k, name+"."); ok {
			params[rest] = v
			delete(q, k)
		}
	}
	iu := *u
	iu.Scheme, iu.RawQuery = inner, q.Encode()
	s, err := open(ctx, &iu)
	if err != nil {
		return nil, err
	}
	w, err := wrap(ctx, s, params)
	if err != nil {
		s.Close()
		if errors.Is(err, ErrInvalidConfig) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: store URL %q: %w", ErrInvalidConfig, redactedURL(u), err)
	}
	return w, nil
}

// redactURL (storekit.RedactURL) returns rawURL with every password replaced by "xxxxx": the
// password of the user information ("redis://user:secret@host"), the part
// before "@" of an opaque URL ("scheme:user:secret@host", which has no
// "//", so the parser sees no user information), and the value of every
// query parameter whose name says it holds a secret (password, passwd, pwd,
// pass, secret, token, auth, credential, api_key, private, signature, in
// any case, as part of a longer name too), the part of a path before its
// last "@", and any fragment. A string that does not parse as
// a URL is reduced to its scheme, since it may hold a secret in a form the
// parser does not recognize. Use it for every URL that goes into an error,
// a log line or printed output.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.Index(rawURL, "://"); i > 0 && isScheme(rawURL[:i]) {
			return rawURL[:i] + "://(unparsable)"
		}
		return "(unparsable)"
	}
	if s, changed := redactParsed(u); changed {
		return s
	}
	return rawURL
}

// redactParsed returns the parsed URL u as redactURL would print it, and
// whether it had a secret to hide. u is not modified.
func redactParsed(u *url.URL) (string, bool) {
	c := *u
	u = &c
	changed := false
	if i := strings.LastIndex(u.Opaque, "@"); i >= 0 {
		u.Opaque, changed = redacted+u.Opaque[i:], true
	}
	if _, has := u.User.Password(); has {
		u.User, changed = url.UserPassword(u.User.Username(), redacted), true
	}
	if i := strings.LastIndex(u.Path, "@"); i >= 0 {
		// User information where the parser saw a path: a URL without a
		// scheme ("0/:secret@host") or with a slash too many.
		lead := ""
		if strings.HasPrefix(u.Path, "/") {
			lead = "/"
		}
		u.Path, u.RawPath, changed = lead+redacted+u.Path[i:], "", true
	}
	if q, ok := redactQuery(u.RawQuery); ok {
		u.RawQuery, changed = q, true
	}
	if u.Fragment != "" {
		// No store URL uses a fragment: one may be a mistyped password
		// ("redis://h/0#:secret@").
		u.Fragment, u.RawFragment, changed = redacted, "", true
	}
	return u.String(), changed
}

// redactedURL returns u printed with its secrets hidden.
func redactedURL(u *url.URL) string {
	s, _ := redactParsed(u)
	return s
}

// redacted replaces a secret in printed URLs.
const redacted = "xxxxx"

// secretParams are the parts of query parameter names that mark a secret
// value, lower case.
var secretParams = []string{"pass", "pwd", "secret", "token", "auth", "credential", "apikey", "api_key", "private", "signature"}

// isSecretParam reports whether a query parameter named name (raw or
// unescaped) may hold a secret.
func isSecretParam(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	name = strings.ToLower(name)
	for _, s := range secretParams {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// redactQuery returns rawQuery with the values of secret parameters
// replaced, and whether it replaced any. It splits the query itself rather
// than through url.ParseQuery, which drops the pairs it cannot decode: a
// secret there must not survive either. ";" separates pairs too, as Go
// once accepted.
func redactQuery(rawQuery string) (string, bool) {
	var b strings.Builder
	changed := false
	for rest := rawQuery; rest != ""; {
		pair, sep := rest, ""
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			pair, sep, rest = rest[:i], rest[i:i+1], rest[i+1:]
		} else {
			rest = ""
		}
		if name, _, ok := strings.Cut(pair, "="); ok && isSecretParam(name) {
			pair, changed = name+"="+redacted, true
		}
		b.WriteString(pair)
		b.WriteString(sep)
	}
	return b.String(), changed
}

// urlErrReason returns the reason of a url.Parse error without the parts
// of the URL it quotes ("invalid port \":secret\" after host" reads
// "invalid port"): what the parser rejects may be a password.
func urlErrReason(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "malformed URL"
	}
	reason, _, _ := strings.Cut(ue.Err.Error(), `"`)
	if reason = strings.TrimSpace(reason); reason == "" {
		return "malformed URL"
	}
	return reason
}

// isScheme reports whether s has the form of a URL scheme (RFC 3986).
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}
