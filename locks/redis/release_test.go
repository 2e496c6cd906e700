package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

// relay forwards TCP connections to a real server and can freeze them: a
// frozen relay stops passing bytes in either direction, as a network
// partition that leaves the connections open does.
type relay struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	thaw   chan struct{} // closed on unfreeze
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, thaw: make(chan struct{})}
	close(r.thaw)
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, s)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(s, c)
		go r.pipe(c, s)
	}
}

// pipe copies src to dst, holding each chunk while the relay is frozen.
func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			thaw := r.thaw
			r.mu.Unlock()
			<-thaw
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func (r *relay) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.frozen {
		r.frozen = true
		r.thaw = make(chan struct{})
	}
}

func (r *relay) unfreeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		r.frozen = false
		close(r.thaw)
	}
}

func (r *relay) close() {
	r.unfreeze()
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// TestReleaseInFlightPastTTL: a Release that hangs (the network to Redis
// froze) must not keep Done open past the lease's validity. Redis expires
// the key meanwhile and another client takes the lock; a goroutine that
// watches Done to stop touching the resource has to be told by then, not
// when Release finally returns.
func TestReleaseInFlightPastTTL(t *testing.T) {
	srv := testserver.StartRedis(t, nil)
	rl := startRelay(t, srv.Addr)
	o := srv.Options()
	o.Addr = rl.addr()
	o.ReadTimeout = time.Minute // Release hangs as long as the partition lasts
	o.WriteTimeout = time.Minute
	held := goredis.NewClient(o)
	defer held.Close()
	prefix := uniquePrefix()
	const ttl = time.Second
	holder := newLocker(t, held, prefix, locks.Options{DisableRenewal: true})
	other := newLocker(t, srv.Client(t), prefix, locks.Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})

	l, err := holder.TryAcquire(t.Context(), "partitioned", ttl)
	if err != nil {
		t.Fatal(err)
	}
	rl.freeze()
	released := make(chan error, 1)
	go func() { released <- l.Release(context.Background()) }()

	actx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	next, err := other.Acquire(actx, "partitioned", time.Minute)
	if err != nil {
		t.Fatalf("Acquire after the holder's key expired: %v", err)
	}
	defer next.Release(context.Background())
	select {
	case <-l.Done():
	case err := <-released:
		t.Fatalf("Release returned (%v) while the relay was frozen", err)
	case <-time.After(10 * time.Second):
		t.Fatal("another client holds the lock, but the old lease's Done is still open while its Release hangs")
	}
	if err := l.Err(); !errors.Is(err, locks.ErrLost) {
		t.Errorf("Err() after the validity ran out during Release = %v, want ErrLost", err)
	}
	rl.unfreeze()
	if err := <-released; !errors.Is(err, locks.ErrLost) {
		t.Errorf("Release that outlived the lease = %v, want ErrLost", err)
	}
	if next.Token() <= l.Token() {
		t.Errorf("token %d not above %d", next.Token(), l.Token())
	}
	// The stale release did not free the new holder's lock.
	if _, err := holder.TryAcquire(t.Context(), "partitioned", time.Minute); !errors.Is(err, locks.ErrHeld) {
		t.Errorf("TryAcquire after the stale Release = %v, want ErrHeld", err)
	}
}
