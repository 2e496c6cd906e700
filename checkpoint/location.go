package checkpoint

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Location is where checkpoints are kept: a directory ([DirLocation],
// file:// URLs and plain paths) or a prefix of an object storage bucket
// ([BucketLocation], s3:// URLs, and gs:// or azblob:// URLs when their
// gocloud.dev/blob drivers are linked in). [OpenLocation] opens one from a
// URL. A [Coordinator] schedules checkpoints and decides what to keep; the
// Location stores them, publishes each atomically, lists them, and deletes
// them.
//
// Publication is atomic: a checkpoint is visible under its id whole, or not
// at all, whatever crashes. It is also exclusive: publishing an id that
// already exists fails with ErrExist and leaves the existing checkpoint
// untouched, so two writers of one location never overwrite each other.
// What a crashed writer leaves behind is not a checkpoint: List reports it
// as garbage, which Collect removes.
//
// Implementations are safe for concurrent use. Several processes may use
// one location at once.
type Location interface {
	// List returns the published checkpoints, sorted by id, and the
	// garbage: what writers that died left (a directory's temporary files
	// of processes that no longer run; a bucket's data objects that no
	// manifest names, once they are older than the bucket's orphan age).
	// It reads the location's index once (one directory read, or one
	// paginated bucket listing) plus the manifests it has not read before.
	// An Info whose manifest cannot be read has Err set (matching
	// strata.ErrCorrupt).
	List(ctx context.Context) (Listing, error)

	// Create starts writing checkpoint id, which must pass ValidateID.
	// The caller writes the whole file to the Pending and then publishes
	// or aborts it.
	Create(ctx context.Context, id string) (Pending, error)

	// Open opens published checkpoint id for reading, from its first
	// byte. A missing checkpoint fails with ErrNoCheckpoint; a bucket
	// manifest that names a missing or different data object fails (at
	// Open or at the end of the data) with strata.ErrCorrupt.
	Open(ctx context.Context, id string) (io.ReadCloser, error)

	// Delete deletes checkpoint id. A missing one is not an error.
	Delete(ctx context.Context, id string) error

	// Collect deletes garbage that List returned.
	Collect(ctx context.Context, garbage []string) error

	// String returns the location's URL, without secrets.
	String() string

	// Close releases what the Location holds (connections). A Location
	// given to a Coordinator must outlive it.
	Close() error
}

// Pending is a checkpoint being written to a Location: the file's bytes go
// to Write, front to back; Publish then makes it visible, or Abort discards
// it. A Pending must end with one of them.
type Pending interface {
	io.Writer

	// Publish makes the checkpoint visible under its id, atomically and
	// durably, after checking what was written against m, its manifest
	// as the Writer returned it (m.ID must be the id given to Create). It
	// fails with ErrExist, publishing nothing, when a checkpoint with that
	// id exists.
	Publish(ctx context.Context, m Manifest) (Info, error)

	// Abort discards the checkpoint. Abort after Publish does nothing.
	Abort()
}

// Listing is what Location.List found.
type Listing struct {
	// Checkpoints are the published checkpoints, sorted by id.
	Checkpoints []Info
	// Garbage names what crashed writers left, for Location.Collect.
	Garbage []string
}

// ErrExist: a checkpoint with the id being published already exists in the
// location (another writer published it first). Nothing was published. It
// matches strata.ErrConflict as well.
var ErrExist = fmt.Errorf("%w: checkpoint exists", strata.ErrConflict)

// DefaultOrphanAge is how old a bucket's data object that no manifest
// names must be before List reports it as garbage: a writer still
// uploading it publishes its manifest well within this time.
const DefaultOrphanAge = time.Hour

// locationURL is a parsed location URL.
type locationURL struct {
	scheme string // "file" for a directory, else the bucket's scheme
	dir    string // file: the directory
	bucket string // the bucket
	prefix string // key prefix inside the bucket, "" or ending with "/"
	query  url.Values
	// orphanAge is the orphan_age query parameter (0: the default).
	orphanAge time.Duration
}

// parseLocation parses a location: a directory path, a file:// URL, or a
// bucket URL (scheme://bucket/prefix?driver-parameters). It does no I/O.
func parseLocation(raw string) (locationURL, error) {
	bad := func(format string, args ...any) (locationURL, error) {
		return locationURL{}, fmt.Errorf("%w: checkpoint location %s: %s", strata.ErrInvalidConfig, showLocation(raw), fmt.Sprintf(format, args...))
	}
	if raw == "" {
		return bad("empty (want a directory, file:///path or s3://bucket/prefix)")
	}
	if strings.ContainsRune(raw, 0) {
		return bad("contains a NUL byte")
	}
	if !strings.Contains(raw, "://") {
		return locationURL{scheme: "file", dir: filepath.Clean(raw)}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%s", storekit.URLErrorReason(err))
	}
	if u.User != nil {
		return bad("credentials do not belong in the URL (use the environment or the driver's configuration)")
	}
	if u.Fragment != "" || u.Opaque != "" {
		return bad("unexpected fragment or opaque part")
	}
	q := u.Query()
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("file URLs name a local directory: file:///path (host %q)", u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return bad("file URLs need an absolute path: file:///path")
		}
		if len(q) > 0 {
			return bad("file URLs take no parameters")
		}
		return locationURL{scheme: "file", dir: filepath.Clean(u.Path)}, nil
	case "":
		return bad("no scheme")
	}
	if u.Host == "" {
		return bad("no bucket: %s://bucket/prefix", u.Scheme)
	}
	if q.Has("prefix") {
		return bad("give the prefix as the URL's path (%s://%s/prefix), not as a parameter", u.Scheme, u.Host)
	}
	l := locationURL{scheme: u.Scheme, bucket: u.Host, query: q}
	if p := strings.Trim(u.Path, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return bad("prefix %q has an empty, . or .. segment", p)
			}
		}
		l.prefix = p + "/"
	}
	if v := q.Get("orphan_age"); q.Has("orphan_age") {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad("orphan_age %q is not a positive duration such as \"1h\"", v)
		}
		l.orphanAge = d
		q.Del("orphan_age")
	}
	return l, nil
}

// showLocation returns raw for messages, with any user information (a key
// or a password) replaced.
func showLocation(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User("xxxxx")
		return u.String()
	}
	return storekit.RedactURL(raw)
}

// OpenLocation opens the checkpoint location raw names:
//
//   - a directory: a path ("/var/lib/app/ckpt", "ckpt") or a file:// URL
//     ("file:///var/lib/app/ckpt"), created if missing (see DirLocation);
//   - an S3 bucket or a prefix in it, on AWS or any S3-compatible store:
//     "s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1&use_path_style=true".
//     Parameters are those of gocloud.dev/blob/s3blob (region, endpoint,
//     profile, use_path_style, disable_https, anonymous, ssetype,
//     kmskeyid, request_checksum_calculation, response_checksum_validation
//     (default when_required: checkpoints carry their own SHA-256 sums),
//     ...); credentials come from the
//     AWS environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
//     profile, an instance role), never from the URL;
//   - any other bucket URL registered with gocloud.dev/blob's default URL
//     mux, such as gs://bucket/prefix or azblob://container/prefix once the
//     program imports gocloud.dev/blob/gcsblob or azureblob (not tested
//     here).
//
// Bucket URLs also take orphan_age (default DefaultOrphanAge; see
// BucketOptions.OrphanAge). A bad URL fails with strata.ErrInvalidConfig.
// The caller closes the Location.
func OpenLocation(ctx context.Context, raw string) (Location, error) {
	l, err := parseLocation(raw)
	if err != nil {
		return nil, err
	}
	if l.scheme == "file" {
		return DirLocation(l.dir)
	}
	return openBucketURL(ctx, l, raw)
}
