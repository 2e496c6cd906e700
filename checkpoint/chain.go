package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/strata-kv/strata"
)

// resolveChain returns the links of the chain that ends at head, the full
// checkpoint first, from the checkpoints of a listing (whose manifests are
// not verified yet: verifyChain checks them again once verified). A link
// that is missing, unreadable or does not continue its child (id, checksum,
// base, depth) fails with an error matching strata.ErrCorrupt. Depths
// decrease by one per link, so a hostile set of manifests cannot make it
// loop.
func resolveChain(head Info, byID map[string]Info) ([]Info, error) {
	if head.Err != nil {
		return nil, fmt.Errorf("%s: %w", head.ID, head.Err)
	}
	links := []Info{head}
	cur := head
	for cur.Manifest.IsDelta() {
		if len(links) > MaxDepth {
			return nil, corrupt("chain of %s is longer than %d", head.ID, MaxDepth)
		}
		p, ok := byID[cur.Manifest.Parent]
		if !ok {
			return nil, corrupt("chain of %s: %s, the parent of %s, is missing", head.ID, cur.Manifest.Parent, cur.ID)
		}
		if p.Err != nil {
			return nil, fmt.Errorf("chain of %s: %s: %w", head.ID, p.ID, p.Err)
		}
		if err := checkLink(cur.Manifest, p.Manifest); err != nil {
			return nil, fmt.Errorf("chain of %s: %w", head.ID, err)
		}
		links = append(links, p)
		cur = p
	}
	slices.Reverse(links)
	return links, nil
}

// checkLink checks that parent is the checkpoint that the delta child was
// written over.
func checkLink(child, parent Manifest) error {
	switch {
	case !child.IsDelta():
		return corrupt("%s is not a delta", child.ID)
	case parent.ID != child.Parent:
		return corrupt("%s names parent %s, found %s", child.ID, child.Parent, parent.ID)
	case parent.Checksum != child.ParentChecksum:
		return corrupt("%s was written over a different %s (checksum %s, found %s)", child.ID, parent.ID, child.ParentChecksum, parent.Checksum)
	case parent.Depth != child.Depth-1:
		return corrupt("%s at depth %d has parent %s at depth %d", child.ID, child.Depth, parent.ID, parent.Depth)
	case parent.IsDelta() && parent.Base != child.Base, !parent.IsDelta() && parent.ID != child.Base:
		return corrupt("%s names base %s, its parent %s another", child.ID, child.Base, parent.ID)
	}
	return nil
}

// verified remembers the links a restore has verified, so that chains
// sharing a base verify it once.
type verified map[string]verifyResult

type verifyResult struct {
	m   Manifest
	err error
}

// verifyChain verifies every link of chain whole (as Verify does, reading
// it from loc) and checks that the verified manifests still form the
// chain. It returns the verified manifests, base first.
func verifyChain(ctx context.Context, loc Location, chain []Info, limits *Limits, cache verified) ([]Manifest, error) {
	ms := make([]Manifest, len(chain))
	for i, in := range chain {
		r, ok := cache[in.ID]
		if !ok {
			r.m, r.err = verifyID(ctx, loc, in.ID, limits)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if cache != nil {
				cache[in.ID] = r
			}
		}
		if r.err != nil {
			if len(chain) > 1 && in.ID != chain[len(chain)-1].ID {
				return nil, fmt.Errorf("chain of %s: %w", chain[len(chain)-1].ID, r.err)
			}
			return nil, r.err
		}
		ms[i] = r.m
		if i == 0 && r.m.IsDelta() {
			return nil, corrupt("chain of %s starts with delta %s", chain[len(chain)-1].ID, in.ID)
		}
		if i > 0 {
			if err := checkLink(r.m, ms[i-1]); err != nil {
				return nil, fmt.Errorf("chain of %s: %w", chain[len(chain)-1].ID, err)
			}
		}
	}
	return ms, nil
}

// verifyID reads checkpoint id from loc whole and returns its manifest.
func verifyID(ctx context.Context, loc Location, id string, limits *Limits) (Manifest, error) {
	r, err := loc.Open(ctx, id)
	if err != nil {
		return Manifest{}, err
	}
	defer r.Close()
	m, err := Verify(ctx, r, limits)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", id, err)
	}
	if m.IsDelta() && m.ID != id {
		return Manifest{}, corrupt("%s holds delta %s", id, m.ID)
	}
	return m, nil
}

// restoreID restores checkpoint id of listing ls from loc into dst: it
// resolves and verifies the whole chain, and only then applies it.
func restoreID(ctx context.Context, loc Location, ls Listing, id string, dst strata.Store, o *RestoreOptions, cache verified) (Report, error) {
	if err := ValidateID(id); err != nil {
		return Report{}, err
	}
	byID := indexListing(ls)
	head, ok := byID[id]
	if !ok {
		return Report{}, fmt.Errorf("%w: %s in %s", ErrNoCheckpoint, id, loc)
	}
	chain, err := resolveChain(head, byID)
	if err != nil {
		return Report{}, err
	}
	ms, err := verifyChain(ctx, loc, chain, o.Limits, cache)
	if err != nil {
		return Report{}, err
	}
	return applyChain(ctx, loc, ms, dst, o)
}

func indexListing(ls Listing) map[string]Info {
	byID := make(map[string]Info, len(ls.Checkpoints))
	for _, in := range ls.Checkpoints {
		byID[in.ID] = in
	}
	return byID
}

// applyChain opens every link of a verified chain, then applies them in
// order. Opening them all first means that a link deleted meanwhile (by
// another writer's retention) fails the restore before anything is
// written, on a directory at least (an open file outlives its name).
func applyChain(ctx context.Context, loc Location, ms []Manifest, dst strata.Store, o *RestoreOptions) (Report, error) {
	files := make([]io.Reader, 0, len(ms))
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, m := range ms {
		r, err := loc.Open(ctx, m.ID)
		if err != nil {
			if errors.Is(err, ErrNoCheckpoint) {
				return Report{}, corrupt("%s disappeared after it was verified", m.ID)
			}
			return Report{}, err
		}
		closers = append(closers, r)
		files = append(files, r)
	}
	return applyVerified(ctx, files, ms, dst, o)
}
