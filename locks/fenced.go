package locks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// fencedVersion starts every value written by FencedPut.
const fencedVersion = 0xF1

// fencedHeader is the version byte and the big-endian token.
const fencedHeader = 1 + 8

// FencedPut stores value under key in s unless the value already there was
// written with a higher fencing token; then it fails with an error
// matching ErrStaleToken and leaves the store as it was. A write with the
// same token as the stored one is accepted (the same holder writing again).
// The token is stored in a 9-byte header in front of the value; read it
// back with FencedGet.
//
// It is a compare-and-swap loop, so s must implement strata.Atomic
// (otherwise the error matches strata.ErrUnsupported); it is atomic
// against every other client of the same backend, and every writer of key
// must go through FencedPut. ttl follows the rules of strata.Store.Put;
// when the key expires, the highest token it has seen is forgotten with
// it, so keys that fence writes should not expire while a stale holder
// might still write.
func FencedPut(ctx context.Context, s strata.Store, key []byte, token uint64, value []byte, ttl time.Duration) error {
	if _, ok := s.(strata.Atomic); !ok {
		return storekit.NewOpError("fenced_put", "", key, strata.ErrUnsupported)
	}
	enc := make([]byte, fencedHeader+len(value))
	enc[0] = fencedVersion
	binary.BigEndian.PutUint64(enc[1:], token)
	copy(enc[fencedHeader:], value)
	for {
		cur, err := s.Get(ctx, key)
		var old []byte // nil: the key must be absent
		switch {
		case errors.Is(err, strata.ErrNotFound):
		case err != nil:
			return err
		default:
			seen, _, err := decodeFenced(cur)
			if err != nil {
				return storekit.NewOpError("fenced_put", "", key, err)
			}
			if token < seen {
				return storekit.NewOpError("fenced_put", "", key,
					fmt.Errorf("%w: token %d, the resource has accepted %d", ErrStaleToken, token, seen))
			}
			old = cur
		}
		swapped, err := strata.CompareAndSwap(ctx, s, key, old, enc, ttl)
		if err != nil {
			return err
		}
		if swapped {
			return nil
		}
		// Another writer got in between: read again and recheck.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// FencedGet returns the value FencedPut stored under key and the token it
// was written with. It fails with strata.ErrNotFound if the key is absent
// and with an error matching strata.ErrCorrupt if the value was not
// written by FencedPut.
func FencedGet(ctx context.Context, s strata.Store, key []byte) ([]byte, uint64, error) {
	cur, err := s.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	token, value, err := decodeFenced(cur)
	if err != nil {
		return nil, 0, storekit.NewOpError("fenced_get", "", key, err)
	}
	return value, token, nil
}

// decodeFenced splits a value written by FencedPut.
func decodeFenced(b []byte) (token uint64, value []byte, err error) {
	if len(b) < fencedHeader || b[0] != fencedVersion {
		return 0, nil, fmt.Errorf("%w: value has no fencing header", strata.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b[1:]), b[fencedHeader:], nil
}
