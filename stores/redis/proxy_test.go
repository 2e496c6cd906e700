package redis_test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// The ways a proxy can fail the next reply.
const (
	pass      = iota
	dropReset // swallow the reply, then close the client's connection
	dropHang  // swallow the reply and keep the connection open
	dropShut  // swallow the reply, stop listening, then close the client's connection
)

// proxy is a TCP proxy between a client and a server that can lose the
// server's next reply after the server has acted on the request: the
// failure after which the client cannot know whether its write applied.
type proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // for the next reply: pass, dropReset or dropHang
	// dropped is signaled each time a reply was swallowed.
	dropped chan struct{}

	mu     sync.Mutex
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

// startProxy listens on a free loopback port and forwards to target until
// tb ends.
func startProxy(tb testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, dropped: make(chan struct{}, 16)}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

// failNextReply makes the proxy lose the next reply any server sends.
func (p *proxy) failNextReply(mode int32) { p.mode.Store(mode) }

// track records c, to be closed with the proxy (at once if it is
// closed).
func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return
	}
	p.conns = append(p.conns, c)
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		p.wg.Add(2)
		go func() { // requests: always forwarded
			defer p.wg.Done()
			_, _ = io.Copy(server, client)
			server.Close()
		}()
		go func() { // replies
			defer p.wg.Done()
			defer client.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					switch mode := p.mode.Swap(pass); mode {
					case dropReset:
						p.dropped <- struct{}{}
						return
					case dropHang:
						p.dropped <- struct{}{}
						_, _ = io.Copy(io.Discard, server)
						return
					case dropShut:
						// Every later dial is refused: the client's
						// next attempt fails before it sends anything.
						p.ln.Close()
						p.dropped <- struct{}{}
						return
					}
					if _, werr := client.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
