package storemock_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storemock"
)

// A store without Batcher: strata.GetMany falls back to one Get per key and
// maps ErrNotFound to a nil slot.
func TestGetManyFallsBackToGet(t *testing.T) {
	ctrl := gomock.NewController(t)
	s := storemock.NewMockStore(ctrl)
	ctx := t.Context()
	gomock.InOrder(
		s.EXPECT().Get(ctx, []byte("a")).Return([]byte("1"), nil),
		s.EXPECT().Get(ctx, []byte("b")).Return(nil, strata.ErrNotFound),
	)
	got, err := strata.GetMany(ctx, s, [][]byte{[]byte("a"), []byte("b")})
	if err != nil || len(got) != 2 || string(got[0]) != "1" || got[1] != nil {
		t.Fatalf("GetMany = %q, %v; want [1 nil]", got, err)
	}
}

// A backend error stops the fallback and reaches the caller unchanged.
func TestGetManyStopsOnError(t *testing.T) {
	ctrl := gomock.NewController(t)
	s := storemock.NewMockStore(ctrl)
	boom := &strata.OpError{Op: "get", Backend: "mock", Err: strata.ErrUnavailable}
	s.EXPECT().Get(gomock.Any(), []byte("a")).Return(nil, boom)
	_, err := strata.GetMany(t.Context(), s, [][]byte{[]byte("a"), []byte("b")})
	if !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("GetMany error = %v, want ErrUnavailable", err)
	}
}

// atomicStore is a mocked store with the Atomic capability.
type atomicStore struct {
	*storemock.MockStore
	*storemock.MockAtomic
}

// Typed.Update retries when CompareAndSwap reports a concurrent writer.
func TestTypedUpdateRetriesOnConflict(t *testing.T) {
	ctrl := gomock.NewController(t)
	s := atomicStore{storemock.NewMockStore(ctrl), storemock.NewMockAtomic(ctrl)}
	key := []byte("counter")
	gomock.InOrder(
		s.MockStore.EXPECT().Get(gomock.Any(), key).Return([]byte(`1`), nil),
		s.MockAtomic.EXPECT().CompareAndSwap(gomock.Any(), key, []byte(`1`), []byte(`2`), strata.NoExpiry).Return(false, nil),
		s.MockStore.EXPECT().Get(gomock.Any(), key).Return([]byte(`5`), nil),
		s.MockAtomic.EXPECT().CompareAndSwap(gomock.Any(), key, []byte(`5`), []byte(`6`), strata.NoExpiry).Return(true, nil),
	)
	typed := strata.NewTyped[int](s, strata.JSON[int]{})
	got, err := typed.Update(t.Context(), key, strata.NoExpiry, func(cur int, found bool) (int, error) {
		return cur + 1, nil
	})
	if err != nil || got != 6 {
		t.Fatalf("Update = %d, %v; want 6 after one retry", got, err)
	}
}

// A store without Atomic: the atomic helpers report ErrUnsupported and make
// no call at all.
func TestAtomicUnsupported(t *testing.T) {
	ctrl := gomock.NewController(t)
	s := storemock.NewMockStore(ctrl) // any call would fail the test
	_, err := strata.PutIfAbsent(context.Background(), s, []byte("k"), nil, 0)
	if !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("PutIfAbsent = %v, want ErrUnsupported", err)
	}
	typed := strata.NewTyped[string](s, strata.JSON[string]{})
	s.EXPECT().Get(gomock.Any(), []byte("k")).Return(nil, strata.ErrNotFound)
	_, err = typed.Update(t.Context(), []byte("k"), 0, func(string, bool) (string, error) { return strconv.Itoa(1), nil })
	if !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("Update on a store without Atomic = %v, want ErrUnsupported", err)
	}
}
