package embedded

import (
	"context"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// checkKey checks ctx and the key of an operation: ctx's error, or
// storekit.CheckKey's.
func checkKey(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return storekit.CheckKey(key)
}

// checkKeys runs checkKey on each of keys in turn and returns the first
// failure and its key. It does not look at ctx if keys is empty.
func checkKeys(ctx context.Context, keys [][]byte) (bad []byte, err error) {
	for _, k := range keys {
		if err := checkKey(ctx, k); err != nil {
			return k, err
		}
	}
	return nil, nil
}

// live reports whether a value with the absolute expiry exp (Unix
// milliseconds, 0 for never) is live. The clock is read only for a value
// that can expire, once per *now: a zero *now is filled in.
func live(clock strata.Clock, now *time.Time, exp int64) bool {
	// Small enough to inline: a value without expiry costs no call.
	return exp == 0 || unexpired(clock, now, exp)
}

func unexpired(clock strata.Clock, now *time.Time, exp int64) bool {
	if now.IsZero() {
		*now = clock.Now()
	}
	return !storekit.Expired(*now, exp)
}

// expiry returns the absolute expiry of a write made now with a resolved
// ttl, reading the clock only for a key that expires.
func expiry(clock strata.Clock, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return storekit.ExpiryMillis(clock.Now(), ttl)
}

// decoded is a stored value read through an engine: its expiry and the
// caller's value, which aliases the raw bytes.
type decoded struct {
	exp   int64
	value []byte
	live  bool
}

// decode splits raw (ok == false: the key is absent) into its expiry and
// value, and decides whether it is live at *now (see live). A raw value
// without a valid header fails with an error matching strata.ErrCorrupt.
func decode(clock strata.Clock, now *time.Time, raw []byte, ok bool) (decoded, error) {
	if !ok {
		return decoded{}, nil
	}
	exp, v, err := ttlval.Decode(raw)
	if err != nil {
		return decoded{}, err
	}
	if !live(clock, now, exp) {
		return decoded{}, nil
	}
	return decoded{exp: exp, value: v, live: true}, nil
}

// getLive reads key through r and decodes it (see decode).
func (s *Store) getLive(r Reader, key []byte, now *time.Time) (decoded, error) {
	raw, ok, err := r.Get(key, nil)
	if err != nil {
		return decoded{}, err
	}
	return decode(s.clock, now, raw, ok)
}
