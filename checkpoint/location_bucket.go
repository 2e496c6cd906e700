package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/strata-kv/strata"
)

// BucketOptions configure a BucketLocation. The zero value (or nil) gives
// the defaults.
type BucketOptions struct {
	// OrphanAge is how old a data object that no manifest names must be
	// before List reports it as garbage (a writer that crashed between
	// uploading a checkpoint's data and publishing its manifest). It must
	// exceed the time a checkpoint takes to upload, or a slow writer's
	// data could be collected under it. Default DefaultOrphanAge (1h).
	OrphanAge time.Duration

	// Now tells the time that OrphanAge is measured against, compared with
	// the objects' modification times. Default time.Now.
	Now func() time.Time
}

// bucketLocation keeps checkpoints in a gocloud.dev/blob bucket: for a
// checkpoint with id ID, the data object data/ID.NONCE.ckpt (the checkpoint
// file, as a directory would hold it) and, published last with a
// conditional write, the manifest object ID.json that names it.
type bucketLocation struct {
	b         *blob.Bucket
	name      string // URL, for messages
	orphanAge time.Duration
	now       func() time.Time
	close     func() error // what OpenLocation opened; nil for a caller's bucket

	mu       sync.Mutex
	pointers map[string]pointerEntry // by manifest key
}

type pointerEntry struct {
	size    int64
	modTime time.Time
	p       pointer
	err     error
}

var _ Location = (*bucketLocation)(nil)

// BucketLocation returns the Location of checkpoints in bucket b (use
// blob.PrefixedBucket for a prefix). The caller keeps ownership of b:
// closing the Location does not close it. name is the location's URL for
// messages (String), such as "s3://bucket/prefix".
//
// A checkpoint with id ID is two objects: the checkpoint file, uploaded
// first as data/ID.NONCE.ckpt (NONCE is random, so that two writers never
// write the same data object), and then its manifest ID.json, written with
// a conditional write (If-None-Match: *) that fails if ID.json exists. The
// manifest names the data object with its size and SHA-256, and holds the
// checkpoint's Manifest, so that listing a location reads only the small
// manifests. A reader never sees a manifest before its data is complete;
// a writer that crashes before its manifest leaves a data object that no
// manifest names, which List reports as garbage once it is older than
// OrphanAge. Deleting a checkpoint deletes its manifest first, then its
// data.
//
// The bucket must honour conditional writes (AWS S3 and most
// S3-compatible stores do; see the checkpoint documentation for the
// stores tested).
func BucketLocation(b *blob.Bucket, name string, opts *BucketOptions) (Location, error) {
	var o BucketOptions
	if opts != nil {
		o = *opts
	}
	if b == nil {
		return nil, invalid("nil bucket")
	}
	if o.OrphanAge < 0 {
		return nil, invalid("orphan age %v is negative", o.OrphanAge)
	}
	if o.OrphanAge == 0 {
		o.OrphanAge = DefaultOrphanAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &bucketLocation{b: b, name: name, orphanAge: o.OrphanAge, now: o.Now, pointers: map[string]pointerEntry{}}, nil
}

// openBucketURL opens the bucket of a parsed bucket URL.
func openBucketURL(ctx context.Context, l locationURL, raw string) (Location, error) {
	name := (&url.URL{Scheme: l.scheme, Host: l.bucket, Path: "/" + l.prefix}).String()
	var (
		b       *blob.Bucket
		release = func() {}
		err     error
	)
	if l.scheme == s3blob.Scheme {
		b, release, err = openS3(ctx, l)
	} else {
		u := url.URL{Scheme: l.scheme, Host: l.bucket, RawQuery: l.query.Encode()}
		b, err = blob.OpenBucket(ctx, u.String())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint location %s: %w", strata.ErrInvalidConfig, showLocation(raw), err)
	}
	if l.prefix != "" {
		// The prefixed bucket wraps the same driver: closing it closes
		// the driver.
		b = blob.PrefixedBucket(b, l.prefix)
	}
	loc, err := BucketLocation(b, name, &BucketOptions{OrphanAge: l.orphanAge})
	if err != nil {
		b.Close()
		release()
		return nil, err
	}
	loc.(*bucketLocation).close = func() error {
		err := b.Close()
		release()
		return err
	}
	return loc, nil
}

// openS3 opens an S3 bucket as gocloud.dev/blob/s3blob's URL opener does,
// with an HTTP transport of its own, which release shuts, so that a closed
// Location leaves no idle connection behind.
func openS3(ctx context.Context, l locationURL) (b *blob.Bucket, release func(), err error) {
	q := url.Values{}
	for k, v := range l.query {
		q[k] = slices.Clone(v)
	}
	var so s3blob.Options
	var s3opts []func(*s3.Options)
	pop := func(key string) (string, bool) {
		v, ok := q.Get(key), q.Has(key)
		q.Del(key)
		return v, ok
	}
	boolParam := func(key string) (bool, bool, error) {
		v, ok := pop(key)
		if !ok {
			return false, false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, false, fmt.Errorf("%s=%q is not a boolean", key, v)
		}
		return b, true, nil
	}
	if v, ok := pop("ssetype"); ok {
		found := false
		for _, t := range s3types.ServerSideEncryptionAes256.Values() {
			if strings.EqualFold(string(t), v) {
				so.EncryptionType, found = t, true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("ssetype=%q is not a server-side encryption type", v)
		}
	}
	if v, ok := pop("kmskeyid"); ok {
		so.KMSEncryptionID = v
	}
	if v, ok, err := boolParam("accelerate"); err != nil {
		return nil, nil, err
	} else if ok {
		s3opts = append(s3opts, func(o *s3.Options) { o.UseAccelerate = v })
	}
	if v, ok, err := boolParam("disable_https"); err != nil {
		return nil, nil, err
	} else if ok {
		s3opts = append(s3opts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = v })
	}
	for _, key := range []string{"use_path_style", "s3ForcePathStyle"} {
		if v, ok, err := boolParam(key); err != nil {
			return nil, nil, err
		} else if ok {
			s3opts = append(s3opts, func(o *s3.Options) { o.UsePathStyle = v })
		}
	}
	// Every checkpoint carries its own SHA-256 sums, which a restore
	// verifies: the SDK's response checksums (which S3-compatible stores
	// often lack, and which it warns about) add nothing unless asked for.
	if !q.Has("response_checksum_validation") {
		q.Set("response_checksum_validation", "when_required")
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg.HTTPClient = &http.Client{Transport: tr}
	so.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	b, err = s3blob.OpenBucketV2(ctx, s3.NewFromConfig(cfg, s3opts...), l.bucket, &so)
	if err != nil {
		return nil, nil, err
	}
	return b, tr.CloseIdleConnections, nil
}

func (l *bucketLocation) String() string { return l.name }

func (l *bucketLocation) Close() error {
	if l.close != nil {
		return l.close()
	}
	return nil
}

// Object names. Ids never contain '/', so manifests and data never clash.
const (
	manifestSuffix = ".json"
	dataPrefix     = "data/"
	nonceLen       = 16 // hex digits
	// maxPointerSize bounds a manifest object.
	maxPointerSize = MaxManifestSize + 4096
)

func manifestKey(id string) string { return id + manifestSuffix }

// parseDataKey splits "data/ID.NONCE.ckpt" into its id and nonce.
func parseDataKey(key string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(key, dataPrefix)
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, Ext)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || len(rest)-i-1 != nonceLen {
		return "", false
	}
	for _, c := range rest[i+1:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	id = rest[:i]
	return id, ValidateID(id) == nil
}

// pointer is the content of a manifest object: where the checkpoint's data
// is, how large it is, its SHA-256, and its Manifest.
type pointer struct {
	// Format is the manifest object's format, pointerFormat.
	Format int `json:"format"`
	// ID is the checkpoint's id: the object is ID.json.
	ID string `json:"id"`
	// Data is the key of the data object, data/ID.NONCE.ckpt.
	Data string `json:"data"`
	// Size is the data object's size in bytes.
	Size int64 `json:"size"`
	// SHA256 is "sha256:" and the hex SHA-256 of the whole data object.
	SHA256 string `json:"sha256"`
	// Manifest is the checkpoint's manifest, as its file's footer holds it.
	Manifest Manifest `json:"manifest"`
}

const pointerFormat = 1

// parsePointer decodes and checks the manifest object of checkpoint id.
// Every defect is an error matching strata.ErrCorrupt.
func parsePointer(id string, data []byte) (pointer, error) {
	if len(data) > maxPointerSize {
		return pointer{}, corrupt("manifest object %s of %d bytes exceeds %d", manifestKey(id), len(data), maxPointerSize)
	}
	var p pointer
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return pointer{}, corrupt("manifest object %s: %v", manifestKey(id), err)
	}
	if dec.More() {
		return pointer{}, corrupt("manifest object %s: trailing data", manifestKey(id))
	}
	m := &p.Manifest
	did, ok := parseDataKey(p.Data)
	switch {
	case p.Format != pointerFormat:
		return pointer{}, corrupt("manifest object %s: format %d (this build reads %d)", manifestKey(id), p.Format, pointerFormat)
	case p.ID != id || m.ID != id:
		return pointer{}, corrupt("manifest object %s names checkpoint %q (manifest %q)", manifestKey(id), p.ID, m.ID)
	case !ok || did != id:
		return pointer{}, corrupt("manifest object %s names data object %q, not data/%s.<nonce>%s", manifestKey(id), p.Data, id, Ext)
	case p.Size < headerLen+blockHdrLen+trailerLen:
		return pointer{}, corrupt("manifest object %s: data size %d is too small", manifestKey(id), p.Size)
	case !validChecksum(p.SHA256):
		return pointer{}, corrupt("manifest object %s: sha256 %q is not sha256:<64 hex digits>", manifestKey(id), p.SHA256)
	case m.FormatVersion != FormatVersion && m.FormatVersion != DeltaFormatVersion:
		return pointer{}, corrupt("manifest object %s: format version %d", manifestKey(id), m.FormatVersion)
	case m.CompressedBytes < headerLen+blockHdrLen || m.CompressedBytes > p.Size-trailerLen:
		return pointer{}, corrupt("manifest object %s: %d data bytes in an object of %d", manifestKey(id), m.CompressedBytes, p.Size)
	case m.Entries < 0 || m.RawBytes < 0:
		return pointer{}, corrupt("manifest object %s: negative counts", manifestKey(id))
	}
	if err := m.checkChain(m.FormatVersion); err != nil {
		return pointer{}, err
	}
	return p, nil
}

// readPointer reads and parses the manifest object of id.
func (l *bucketLocation) readPointer(ctx context.Context, id string) (pointer, error) {
	r, err := l.b.NewReader(ctx, manifestKey(id), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return pointer{}, fmt.Errorf("%w: %s in %s", ErrNoCheckpoint, id, l.name)
		}
		return pointer{}, fmt.Errorf("checkpoint: %s: %w", l.name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxPointerSize+1))
	if err != nil {
		return pointer{}, fmt.Errorf("checkpoint: %s: %w", l.name, err)
	}
	return parsePointer(id, data)
}

func (l *bucketLocation) List(ctx context.Context) (Listing, error) {
	type manifestObj struct {
		size    int64
		modTime time.Time
	}
	manifests := map[string]manifestObj{}
	type dataObj struct {
		id      string
		modTime time.Time
	}
	var data []dataObj
	dataKeys := map[string]dataObj{}
	it := l.b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Listing{}, fmt.Errorf("checkpoint: list %s: %w", l.name, err)
		}
		if id, ok := strings.CutSuffix(obj.Key, manifestSuffix); ok && !strings.Contains(id, "/") && ValidateID(id) == nil {
			manifests[id] = manifestObj{obj.Size, obj.ModTime}
			continue
		}
		if id, ok := parseDataKey(obj.Key); ok {
			d := dataObj{id, obj.ModTime}
			data = append(data, d)
			dataKeys[obj.Key] = d
		}
	}
	var out Listing
	live := map[string]string{} // id -> the data key its manifest names
	seen := map[string]bool{}
	for id, mo := range manifests {
		key := manifestKey(id)
		seen[key] = true
		in := Info{ID: id, ModTime: mo.modTime}
		l.mu.Lock()
		e, ok := l.pointers[key]
		l.mu.Unlock()
		if !ok || e.size != mo.size || !e.modTime.Equal(mo.modTime) {
			p, err := l.readPointer(ctx, id)
			if errors.Is(err, ErrNoCheckpoint) {
				continue // deleted since the listing
			}
			if err != nil && !errors.Is(err, strata.ErrCorrupt) {
				return Listing{}, err
			}
			e = pointerEntry{size: mo.size, modTime: mo.modTime, p: p, err: err}
			l.mu.Lock()
			l.pointers[key] = e
			l.mu.Unlock()
		}
		if e.err != nil {
			in.Err = e.err
			live[id] = "" // keep its data: it may be readable again
		} else {
			in.Path, in.Size, in.Manifest = l.name+e.p.Data, e.p.Size, e.p.Manifest
			live[id] = e.p.Data
		}
		out.Checkpoints = append(out.Checkpoints, in)
	}
	l.mu.Lock()
	for key := range l.pointers {
		if !seen[key] {
			delete(l.pointers, key)
		}
	}
	l.mu.Unlock()
	now := l.now()
	for key, d := range dataKeys {
		named, hasManifest := live[d.id]
		switch {
		case hasManifest && named == "":
		case hasManifest && named != key:
			// The manifest names another data object: this one lost a
			// race for the id, or was re-uploaded; no manifest can ever
			// name it.
			out.Garbage = append(out.Garbage, key)
		case !hasManifest && now.Sub(d.modTime) > l.orphanAge:
			out.Garbage = append(out.Garbage, key)
		}
	}
	slices.Sort(out.Garbage)
	slices.SortFunc(out.Checkpoints, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (l *bucketLocation) Collect(ctx context.Context, garbage []string) error {
	var errs []error
	for _, key := range garbage {
		if _, ok := parseDataKey(key); !ok {
			continue // only data objects are ever garbage
		}
		if err := l.b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			errs = append(errs, fmt.Errorf("checkpoint: delete %s%s: %w", l.name, key, err))
		}
	}
	return errors.Join(errs...)
}

func (l *bucketLocation) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	p, err := l.readPointer(ctx, id)
	if err != nil {
		return nil, err
	}
	r, err := l.b.NewReader(ctx, p.Data, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, corrupt("%s: manifest %s names the data object %s, which is missing", l.name, manifestKey(id), p.Data)
		}
		return nil, fmt.Errorf("checkpoint: %s: %w", l.name, err)
	}
	if r.Size() != p.Size {
		r.Close()
		return nil, corrupt("%s: data object %s holds %d bytes, its manifest says %d", l.name, p.Data, r.Size(), p.Size)
	}
	return &checkedReader{r: r, h: sha256.New(), want: p.SHA256, size: p.Size, what: l.name + p.Data}, nil
}

// checkedReader checks, when it reaches the end, that the bytes it read
// are the size and SHA-256 a manifest object recorded.
type checkedReader struct {
	r    io.ReadCloser
	h    hash.Hash
	n    int64
	size int64
	want string
	what string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.size {
		return n, corrupt("%s is longer than its manifest says (%d bytes)", c.what, c.size)
	}
	if err == io.EOF {
		if c.n != c.size {
			return n, corrupt("%s: read %d bytes, its manifest says %d", c.what, c.n, c.size)
		}
		if "sha256:"+hex.EncodeToString(c.h.Sum(nil)) != c.want {
			return n, corrupt("%s does not match the SHA-256 its manifest records", c.what)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.r.Close() }

func (l *bucketLocation) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	p, perr := l.readPointer(ctx, id)
	if errors.Is(perr, ErrNoCheckpoint) {
		return nil
	}
	if perr != nil && !errors.Is(perr, strata.ErrCorrupt) {
		return perr
	}
	// The manifest first: a crash before the data is deleted leaves an
	// orphan that List reports as garbage, never a manifest without data.
	if err := l.b.Delete(ctx, manifestKey(id)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("checkpoint: delete %s%s: %w", l.name, manifestKey(id), err)
	}
	if perr != nil {
		return nil
	}
	if err := l.b.Delete(ctx, p.Data); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("checkpoint: delete %s%s: %w", l.name, p.Data, err)
	}
	return nil
}

func (l *bucketLocation) Create(ctx context.Context, id string) (Pending, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	var nonce [nonceLen / 2]byte
	rand.Read(nonce[:])
	key := dataPrefix + id + "." + hex.EncodeToString(nonce[:]) + Ext
	wctx, cancel := context.WithCancel(ctx)
	w, err := l.b.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("checkpoint: %s: %w", l.name, err)
	}
	return &bucketPending{l: l, id: id, key: key, w: w, cancel: cancel, h: sha256.New()}, nil
}

// bucketPending is a checkpoint's data object being uploaded.
type bucketPending struct {
	l      *bucketLocation
	id     string
	key    string
	w      *blob.Writer
	cancel context.CancelFunc
	h      hash.Hash
	n      int64
	done   bool
}

func (p *bucketPending) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("checkpoint: upload %s%s: %w", p.l.name, p.key, err)
	}
	return n, nil
}

func (p *bucketPending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.cancel() // a blob.Writer whose context ends before Close writes nothing
	p.w.Close()
}

func (p *bucketPending) Publish(ctx context.Context, m Manifest) (Info, error) {
	if p.done {
		return Info{}, fmt.Errorf("checkpoint: publish: %w", errDone)
	}
	if m.ID != p.id {
		p.Abort()
		return Info{}, invalid("publishing checkpoint %s under id %s", m.ID, p.id)
	}
	p.done = true
	err := p.w.Close()
	p.cancel()
	if err != nil {
		return Info{}, fmt.Errorf("checkpoint: upload %s%s: %w", p.l.name, p.key, err)
	}
	ptr := pointer{Format: pointerFormat, ID: p.id, Data: p.key, Size: p.n, SHA256: "sha256:" + hex.EncodeToString(p.h.Sum(nil)), Manifest: m}
	js, err := json.Marshal(ptr)
	if err != nil {
		return Info{}, fmt.Errorf("checkpoint: manifest: %w", err)
	}
	// The conditional write publishes: it fails if the id exists, so a
	// checkpoint is never replaced, whoever else writes here.
	err = p.l.b.WriteAll(ctx, manifestKey(p.id), js, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	switch {
	case err == nil:
	case gcerrors.Code(err) == gcerrors.FailedPrecondition:
		p.l.b.Delete(context.WithoutCancel(ctx), p.key)
		return Info{}, fmt.Errorf("%w: %s in %s", ErrExist, p.id, p.l.name)
	default:
		// The write may have been applied: leave the data, which is
		// either named by the manifest or collected as an orphan.
		return Info{}, fmt.Errorf("checkpoint: publish %s%s: %w", p.l.name, manifestKey(p.id), err)
	}
	return Info{ID: p.id, Path: p.l.name + p.key, Size: p.n, ModTime: p.l.now(), Manifest: m}, nil
}
