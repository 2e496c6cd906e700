package trace

import (
	"context"
	"fmt"
	"slices"

	"github.com/Yiling-J/theine-go"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/tier"
)

// ValueSize is the size of every value in a replay.
const ValueSize = 100

var value = make([]byte, ValueSize)

// LRU is hashicorp/golang-lru v2 holding n entries.
type LRU struct{ c *lru.Cache[uint64, []byte] }

// NewLRU returns an LRU of n entries.
func NewLRU(n int) (*LRU, error) {
	c, err := lru.New[uint64, []byte](n)
	return &LRU{c}, err
}

// Access implements Cache.
func (l *LRU) Access(_ context.Context, id uint64) (bool, error) {
	if _, ok := l.c.Get(id); ok {
		return true, nil
	}
	l.c.Add(id, value)
	return false, nil
}

// Otter is maypok86/otter v2 holding n entries.
type Otter struct{ c *otter.Cache[uint64, []byte] }

// NewOtter returns an otter cache of n entries.
func NewOtter(n int) (*Otter, error) {
	c, err := otter.New(&otter.Options[uint64, []byte]{MaximumSize: n})
	return &Otter{c}, err
}

// Access implements Cache.
func (o *Otter) Access(_ context.Context, id uint64) (bool, error) {
	if _, ok := o.c.GetIfPresent(id); ok {
		return true, nil
	}
	o.c.Set(id, value)
	return false, nil
}

// Close stops the cache's goroutines.
func (o *Otter) Close() { o.c.StopAllGoroutines() }

// Theine is Yiling-J/theine-go holding n entries.
type Theine struct{ c *theine.Cache[uint64, []byte] }

// NewTheine returns a theine cache of n entries.
func NewTheine(n int) (*Theine, error) {
	c, err := theine.NewBuilder[uint64, []byte](int64(n)).Build()
	return &Theine{c}, err
}

// Access implements Cache.
func (t *Theine) Access(_ context.Context, id uint64) (bool, error) {
	if _, ok := t.c.Get(id); ok {
		return true, nil
	}
	t.c.Set(id, value, 1)
	return false, nil
}

// Close stops the cache's goroutines.
func (t *Theine) Close() { t.c.Close() }

// Tier is a strata tier over an L2 that holds every key: an access is a
// tier Get, which fills L1 on a miss.
type Tier struct {
	T   *tier.Tier
	buf [8]byte
}

// Access implements Cache.
func (t *Tier) Access(ctx context.Context, id uint64) (bool, error) {
	_, err := t.T.Get(ctx, Key(&t.buf, id))
	return false, err
}

// Ratio is the tier's L1 hit ratio so far.
func (t *Tier) Ratio() float64 { return t.T.TierStats().L1HitRatio }

// LoadL2 writes every id of ids into s with a ValueSize value and no
// expiry.
func LoadL2(ctx context.Context, s strata.Store, ids []uint64) error {
	const batch = 4096
	entries := make([]strata.Entry, 0, batch)
	for i, id := range ids {
		var b [8]byte
		entries = append(entries, strata.Entry{Key: append([]byte(nil), Key(&b, id)...), Value: value, TTL: strata.NoExpiry})
		if len(entries) == batch || i == len(ids)-1 {
			if err := strata.PutMany(ctx, s, entries); err != nil {
				return err
			}
			entries = entries[:0]
		}
	}
	return nil
}

// TierOptions returns the options of a tier on engine whose L1 holds n
// entries of 8-byte keys and valueSize-byte values, charged what they
// cost (Engine.Budget); with bytes, the budget n·(8+valueSize+160)
// instead, which held n entries when each was charged 160 bytes on top
// of its key and value.
func TierOptions(engine string, n, valueSize int, bytes bool) (*tier.Options, error) {
	e := tier.Engine(engine)
	if !slices.Contains(tier.Engines(), e) {
		return nil, fmt.Errorf("unknown engine %q", engine)
	}
	if bytes {
		return &tier.Options{Engine: e, MaxBytes: int64(n) * int64(8+valueSize+160)}, nil
	}
	return &tier.Options{Engine: e, MaxBytes: e.Budget(n, 8, valueSize)}, nil
}
