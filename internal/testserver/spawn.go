package testserver

import (
	"os/exec"
	"runtime"
	"sync"
)

// Servers are started with Pdeathsig = SIGKILL, so that they die with the
// test process. Linux sends that signal when the *thread* that forked the
// server exits, not the process (golang/go#27505), and Go ends a thread
// whenever a goroutine that locked it exits locked: a library doing so
// after borrowing the thread a server was forked from would kill the
// server in the middle of a test. So every server is forked from one
// goroutine locked to its thread for as long as any server it started
// lives; when the last one has ended, the goroutine (and its thread) may
// go, and the next start makes a new one.

// spawnReq asks the spawner to start cmd and report its Start error.
type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var spawner struct {
	mu    sync.Mutex
	reqs  chan spawnReq // nil when no spawner runs
	live  int           // servers started by the running spawner, alive
	quit  chan struct{} // closed when the spawner may end
	ended chan struct{} // closed when it has ended
}

// spawn starts cmd from the spawner's thread. It returns, on success, the
// function to call once the process has ended, and otherwise Start's error.
func spawn(cmd *exec.Cmd) (ended func(), err error) {
	spawner.mu.Lock()
	if spawner.reqs == nil {
		if spawner.ended != nil {
			<-spawner.ended // the previous spawner's thread is gone
		}
		reqs, quit, ended := make(chan spawnReq), make(chan struct{}), make(chan struct{})
		spawner.reqs, spawner.quit, spawner.ended = reqs, quit, ended
		go func() {
			defer close(ended)
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			for {
				select {
				case r := <-reqs:
					r.done <- r.cmd.Start()
				case <-quit:
					return
				}
			}
		}()
	}
	spawner.live++
	reqs := spawner.reqs
	spawner.mu.Unlock()
	req := spawnReq{cmd: cmd, done: make(chan error, 1)}
	reqs <- req
	if err := <-req.done; err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// release counts a started server as ended, and lets the spawner go when
// none is left.
func release() {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	spawner.live--
	if spawner.live == 0 {
		close(spawner.quit)
		spawner.reqs = nil
	}
}
