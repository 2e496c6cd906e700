// Package ycsb is a go-ycsb binding for any strata store: importing it
// registers the database "strata" with go-ycsb (github.com/pingcap/go-ycsb),
// which then runs the YCSB core workloads against the store a URL opens,
// alone or behind the tier.
//
// Properties:
//
//	strata.url             the store, as strata.Open takes it (required):
//	                       redis://host:6379/0, redis+cluster://h1:p1,h2:p2/,
//	                       pebble:///path, bolt:///path/file, mem://
//	strata.tier            true: put the tier (tier.New) in front of it
//	strata.tier.max_bytes  the tier's L1 bound in bytes (tier.Options.MaxBytes);
//	                       default the tier's
//	strata.layout          how a YCSB record is kept: "record" (the default)
//	                       or "field"
//
// In the record layout a record is one strata value under the key "t/k",
// its fields encoded together (as go-ycsb's bindings for other key-value
// stores keep them): Read is one Get, Insert one Put, and an Update of
// some of the fields a Get and a Put (not atomic; go-ycsb's Redis
// binding does the same with its string data type).
//
// In the field layout a record is one strata key per field: field f of
// record k in table t is the key "{t/k}/f" (the hash tag keeps a record's
// fields in one Redis Cluster slot). Read is one GetMany of the fields
// asked for, Insert and Update one PutMany of the fields given (an update
// of one field writes one key, without reading), Delete one DeleteMany.
//
// A record that does not exist reads as no fields, without an error, as
// with go-ycsb's Redis binding: go-ycsb's zipfian key chooser asks for one
// record past the last one loaded.
//
// Scan is not supported (workloads A, B, C, D and F do not scan).
package ycsb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/prop"
	goycsb "github.com/pingcap/go-ycsb/pkg/ycsb"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
	_ "github.com/strata-kv/strata/stores/all" // every built-in store's URL scheme
	"github.com/strata-kv/strata/tier"
)

// The binding's property names.
const (
	PropURL          = "strata.url"
	PropTier         = "strata.tier"
	PropTierMaxBytes = "strata.tier.max_bytes"
	PropLayout       = "strata.layout"
)

func init() {
	goycsb.RegisterDBCreator("strata", creator{})
}

type creator struct{}

// Create opens the store the properties name.
func (creator) Create(p *properties.Properties) (goycsb.DB, error) {
	url := p.GetString(PropURL, "")
	if url == "" {
		return nil, fmt.Errorf("ycsb: property %s is required (a strata store URL)", PropURL)
	}
	ctx := context.Background()
	s, err := strata.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("ycsb: opening %s: %w", storekit.RedactURL(url), err)
	}
	if p.GetBool(PropTier, false) {
		o := &tier.Options{MaxBytes: p.GetInt64(PropTierMaxBytes, 0)}
		t, err := tier.New(s, o)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("ycsb: tier over %s: %w", storekit.RedactURL(url), err)
		}
		s = t
	}
	n := p.GetInt64(prop.FieldCount, prop.FieldCountDefault)
	d := &db{s: s, fields: make([]string, n), names: make(map[string]string, n)}
	for i := range d.fields {
		d.fields[i] = "field" + strconv.Itoa(i)
		d.names[d.fields[i]] = d.fields[i]
	}
	switch layout := p.GetString(PropLayout, "record"); layout {
	case "record":
		d.record = true
	case "field":
	default:
		s.Close()
		return nil, fmt.Errorf("ycsb: %s %q: want field or record", PropLayout, layout)
	}
	return d, nil
}

// db is a strata store seen as a YCSB database.
type db struct {
	s      strata.Store
	fields []string          // every field of a record, in order
	names  map[string]string // the same, by themselves
	record bool              // the record layout
}

var _ goycsb.DB = (*db)(nil)

// key returns the strata key of field f of record key in table.
func key(table, rec, f string) []byte {
	b := make([]byte, 0, len(table)+len(rec)+len(f)+4)
	b = append(b, '{')
	b = append(b, table...)
	b = append(b, '/')
	b = append(b, rec...)
	b = append(b, "}/"...)
	return append(b, f...)
}

// Close closes the store (and the tier in front of it).
func (d *db) Close() error { return d.s.Close() }

// InitThread returns ctx: the store is safe for concurrent use.
func (d *db) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }

// CleanupThread does nothing.
func (d *db) CleanupThread(context.Context) {}

// Read reads the fields of a record (every field when fields is empty)
// with one GetMany.
func (d *db) Read(ctx context.Context, table, rec string, fields []string) (map[string][]byte, error) {
	if d.record {
		return d.readRecord(ctx, table, rec, fields)
	}
	if len(fields) == 0 {
		fields = d.fields
	}
	keys := make([][]byte, len(fields))
	for i, f := range fields {
		keys[i] = key(table, rec, f)
	}
	vals, err := strata.GetMany(ctx, d.s, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(fields))
	for i, v := range vals {
		if v != nil {
			out[fields[i]] = v
		}
	}
	return out, nil
}

// Scan is not supported.
func (d *db) Scan(context.Context, string, string, int, []string) ([]map[string][]byte, error) {
	return nil, fmt.Errorf("ycsb: scan: %w", strata.ErrUnsupported)
}

// Update writes the fields given with one PutMany.
func (d *db) Update(ctx context.Context, table, rec string, values map[string][]byte) error {
	return d.put(ctx, table, rec, values)
}

// Insert writes the fields of a new record with one PutMany.
func (d *db) Insert(ctx context.Context, table, rec string, values map[string][]byte) error {
	return d.put(ctx, table, rec, values)
}

func (d *db) put(ctx context.Context, table, rec string, values map[string][]byte) error {
	if d.record {
		return d.putRecord(ctx, table, rec, values)
	}
	entries := make([]strata.Entry, 0, len(values))
	for f, v := range values {
		entries = append(entries, strata.Entry{Key: key(table, rec, f), Value: v})
	}
	if len(entries) == 1 {
		return d.s.Put(ctx, entries[0].Key, entries[0].Value, 0)
	}
	return strata.PutMany(ctx, d.s, entries)
}

// Delete removes every field of a record with one DeleteMany.
func (d *db) Delete(ctx context.Context, table, rec string) error {
	if d.record {
		return d.s.Delete(ctx, []byte(table+"/"+rec))
	}
	keys := make([][]byte, len(d.fields))
	for i, f := range d.fields {
		keys[i] = key(table, rec, f)
	}
	_, err := strata.DeleteMany(ctx, d.s, keys)
	return err
}

// readRecord is Read in the record layout.
func (d *db) readRecord(ctx context.Context, table, rec string, fields []string) (map[string][]byte, error) {
	v, err := d.s.Get(ctx, []byte(table+"/"+rec))
	if errors.Is(err, strata.ErrNotFound) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	all, err := decode(v, d.names)
	if err != nil || len(fields) == 0 {
		return all, err
	}
	out := make(map[string][]byte, len(fields))
	for _, f := range fields {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}

// putRecord is Insert and Update in the record layout: the fields given
// are merged into the record's, unless they are all of them.
func (d *db) putRecord(ctx context.Context, table, rec string, values map[string][]byte) error {
	k := []byte(table + "/" + rec)
	if len(values) < len(d.fields) {
		v, err := d.s.Get(ctx, k)
		switch {
		case errors.Is(err, strata.ErrNotFound):
		case err != nil:
			return err
		default:
			old, err := decode(v, d.names)
			if err != nil {
				return err
			}
			for f, v := range values {
				old[f] = v
			}
			values = old
		}
	}
	return d.s.Put(ctx, k, encode(values), 0)
}

// encode encodes the fields of a record: per field, the uvarint lengths
// of its name and value, then both.
func encode(values map[string][]byte) []byte {
	n := 0
	for f, v := range values {
		n += len(f) + len(v) + 2*binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	for f, v := range values {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, f...)
		b = append(b, v...)
	}
	return b
}

// decode is the inverse of encode. Field names found in names are the
// strings there, not new ones.
func decode(b []byte, names map[string]string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(names))
	for len(b) > 0 {
		nf, i := binary.Uvarint(b)
		if i <= 0 {
			return nil, fmt.Errorf("ycsb: %w: bad record", strata.ErrCorrupt)
		}
		b = b[i:]
		nv, i := binary.Uvarint(b)
		if i <= 0 || uint64(len(b)-i) < nf+nv {
			return nil, fmt.Errorf("ycsb: %w: bad record", strata.ErrCorrupt)
		}
		b = b[i:]
		out[intern(b[:nf], names)] = b[nf : nf+nv : nf+nv]
		b = b[nf+nv:]
	}
	return out, nil
}

// intern returns the string of b: the one in names if there is one.
func intern(b []byte, names map[string]string) string {
	if n, ok := names[string(b)]; ok { // no allocation
		return n
	}
	return string(b)
}
