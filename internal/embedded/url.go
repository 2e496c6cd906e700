package embedded

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Register registers with strata.Register the opener of an embedded
// store's URL scheme: scheme:///absolute/path or scheme:relative/path,
// where the path names what ("file", "directory"), with the parameters
// that options reads from the query into the store's options, and open
// opening the store they name.
//
// An unknown parameter, a malformed value, a URL with a host or one
// without a path is an error matching strata.ErrInvalidConfig, before
// anything is opened.
func Register[O any, S strata.Store](scheme, what string, options func(q *storekit.Query) O, open func(path string, opts O) (S, error)) {
	strata.Register(scheme, func(_ context.Context, u *url.URL) (strata.Store, error) {
		q := storekit.NewQuery(u)
		opts := options(q)
		if err := q.Err(); err != nil {
			return nil, err
		}
		path, err := urlPath(u, what)
		if err != nil {
			return nil, err
		}
		return open(path, opts)
	})
}

// urlPath returns the path u names (see Register).
func urlPath(u *url.URL, what string) (string, error) {
	switch {
	case u.User != nil || hasUserInfo(u.Opaque):
		// A file has no user: this is a server URL given the wrong
		// scheme, and its password must not reach an error through the
		// path.
		return "", fmt.Errorf("%w: store URL %q: a %s URL names a %s and has no user or password (for a path with \"@\" before its first \"/\", write %s:./path)",
			strata.ErrInvalidConfig, storekit.RedactURL(u.String()), u.Scheme, what, u.Scheme)
	case u.Opaque != "":
		return u.Opaque, nil
	case u.Host != "":
		return "", fmt.Errorf("%w: store URL %q: a %s URL names a %s, not a host: write %s:///absolute/path or %s:relative/path",
			strata.ErrInvalidConfig, storekit.RedactURL(u.String()), u.Scheme, what, u.Scheme, u.Scheme)
	case u.Path == "":
		return "", fmt.Errorf("%w: store URL %q: no %s path (%s:///var/lib/app/state)", strata.ErrInvalidConfig, storekit.RedactURL(u.String()), what, u.Scheme)
	}
	return u.Path, nil
}

// hasUserInfo reports whether the opaque part of a URL reads as user
// information ("user:password@host..."): an "@" before the first "/".
func hasUserInfo(opaque string) bool {
	at := strings.Index(opaque, "@")
	slash := strings.Index(opaque, "/")
	return at >= 0 && (slash < 0 || at < slash)
}
