package spdymux

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// streamContext is a request's context in handler mode. It carries the
// stream's StreamInfo and the local address (http.LocalAddrContextKey), as
// a request's context does on a secondary connection, and it is cancelled
// when the stream dies or the handler returns.
//
// It lives in the stream's exchange and cancels itself, where
// context.WithCancel would allocate a context and a CancelFunc per
// request. Contexts derived from it (context.WithCancel, AfterFunc) learn
// of its end through its AfterFunc method, as from any context that
// implements one; a proxy in front of a backend can hold one watch on it
// without allocating (WatchDone), which the gateway does for every
// request.
type streamContext struct {
	base  context.Context // its deadline and other values; its end ends this one
	info  *StreamInfo
	local net.Addr

	// done holds the chan struct{} Done returns, made when first asked
	// for and closed at the end; read without mu once set.
	done atomic.Value

	mu       sync.Mutex
	stopBase func() bool  // stops the watch on base, if base can end
	err      error        // why it ended, nil until then
	after    []*afterFunc // AfterFunc's functions, not yet started

	// watch is WatchDone's function; watchRun says it was started.
	watch    func()
	watchRun bool
}

// afterFunc is a function AfterFunc arranged to run at the end.
type afterFunc struct{ f func() }

// closedChan is the Done channel of a context that ended before anyone
// asked for one.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// init readies c for a new request; an end of base ends it too.
func (c *streamContext) init(base context.Context, info *StreamInfo, local net.Addr) {
	c.base, c.info, c.local = base, info, local
	if base.Done() != nil {
		stop := context.AfterFunc(base, func() { c.cancel(base.Err()) })
		c.mu.Lock()
		c.stopBase = stop
		c.mu.Unlock()
	}
}

func (c *streamContext) Deadline() (time.Time, bool) { return c.base.Deadline() }

func (c *streamContext) Done() <-chan struct{} {
	if d := c.done.Load(); d != nil {
		return d.(chan struct{})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, _ := c.done.Load().(chan struct{})
	if d == nil {
		if c.err != nil {
			d = closedChan
		} else {
			d = make(chan struct{})
		}
		c.done.Store(d)
	}
	return d
}

func (c *streamContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *streamContext) Value(key any) any {
	switch key {
	case streamInfoKey{}:
		return c.info
	case http.LocalAddrContextKey:
		return c.local
	}
	return c.base.Value(key)
}

func (c *streamContext) String() string { return "spdymux stream context" }

// AfterFunc arranges for f to run in its own goroutine once c ends, as
// context.AfterFunc does; context.AfterFunc and context.WithCancel on c
// use it. stop reports whether it kept f from running.
func (c *streamContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.after = append(c.after, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.after, a)
		if i < 0 {
			return false
		}
		c.after = slices.Delete(c.after, i, i+1)
		return true
	}
}

// WatchDone arranges for f to run in its own goroutine once c ends,
// without allocating; StopWatch stops it. A context holds one such
// watch: WatchDone reports false, and arranges nothing, if one is set.
func (c *streamContext) WatchDone(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch != nil {
		return false
	}
	c.watch = f
	if c.err != nil {
		c.watchRun = true
		go f()
	}
	return true
}

// StopWatch removes WatchDone's function; it reports whether that kept
// the function from running (false: it has been started).
func (c *streamContext) StopWatch() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.watchRun
	c.watch, c.watchRun = nil, false
	return !run
}

// cancel ends c with err, if it has not ended. It runs no code of its
// callers': the functions waiting for the end each start in a goroutine
// of their own. The stream's failure calls it with the session's lock
// held.
func (c *streamContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if d, _ := c.done.Load().(chan struct{}); d == nil {
		c.done.Store(closedChan)
	} else {
		close(d)
	}
	after := c.after
	c.after = nil
	watch := c.watch
	if watch != nil {
		c.watchRun = true
	}
	stopBase := c.stopBase
	c.mu.Unlock()
	for _, a := range after {
		go a.f()
	}
	if watch != nil {
		go watch()
	}
	if stopBase != nil {
		stopBase()
	}
}
