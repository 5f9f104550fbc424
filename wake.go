package spdymux

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spdymux/spdymux/internal/sockpeek"
)

// The Go runtime learns that a socket has bytes to read from its network
// poller, which it consults when a processor runs out of goroutines to run,
// or else every 10 ms (sysmon). A process whose goroutines keep every
// processor busy, such as a server pinned to one core sending downloads,
// so reads a session's next request up to 10 ms late: measured on one
// core under eight downloads, a request's HEADERS waited 4.6 ms in the
// socket for the session's reader, while everything after (the handler, the
// writer) took 0.2 ms. A busy session writer therefore looks for waiting
// input every readWakeInterval of its turns: on Linux at every session of
// the process at once (sessionPoll, a second epoll set of their sockets),
// elsewhere at its own session's socket; and it wakes each reader that
// waits while its socket has bytes: a read deadline in the past ends the reader's wait at
// once, and the reader's connection (wakeConn) then reads again rather
// than report the timeout.

// readWakeInterval is the least time between two looks for waiting input:
// at most one system call per interval (per busy session where there is
// no sessionPoll), and the longest a busy writer leaves input unnoticed.
const readWakeInterval = 200 * time.Microsecond

// writerBusyFor is how long a session's writer must have gone from turn
// to turn without waiting before it looks for input: a process where
// writers pause is not one whose readers wait for the poller.
const writerBusyFor = 500 * time.Microsecond

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// wakeConn is the bottom of every connection a Listener accepts, under
// TLS if any. Once armed for a session, reads that a wake ended are read
// again; until then (and for ever on a connection the inner server gets)
// it only passes calls through.
type wakeConn struct {
	net.Conn
	armed    bool // set before the session's goroutines start
	mu       sync.Mutex
	deadline time.Time    // the read deadline its user set
	woken    atomic.Bool  // a wake moved the read deadline to the past
	reading  atomic.Bool  // a Read is under way, perhaps waiting
	wakes    atomic.Int64 // reads woken, for tests
}

// arm makes c a session's: its read deadline, deadline until now, is
// kept from now on, for a woken read to restore.
func (c *wakeConn) arm(deadline time.Time) {
	c.deadline = deadline
	c.armed = true
}

func (c *wakeConn) Read(p []byte) (int, error) {
	if !c.armed {
		return c.Conn.Read(p)
	}
	c.reading.Store(true)
	defer c.reading.Store(false)
	for {
		n, err := c.Conn.Read(p)
		if n == 0 && err != nil && c.woken.Load() && isTimeout(err) {
			c.mu.Lock()
			if c.woken.Swap(false) {
				c.Conn.SetReadDeadline(c.deadline)
				c.mu.Unlock()
				continue
			}
			c.mu.Unlock()
		}
		return n, err
	}
}

func (c *wakeConn) SetReadDeadline(t time.Time) error {
	if !c.armed {
		return c.Conn.SetReadDeadline(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.woken.Load() {
		return nil // set when the woken read restores it
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *wakeConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// wake ends a read waiting for bytes; the read goes on. Without a read
// under way it does nothing: the next read finds the bytes without
// waiting.
func (c *wakeConn) wake() {
	if !c.reading.Load() {
		return
	}
	c.wakes.Add(1)
	c.mu.Lock()
	if !c.woken.Swap(true) {
		c.Conn.SetReadDeadline(aLongTimeAgo)
	}
	c.mu.Unlock()
}

// CloseWrite half-closes the connection where the underlying one can.
func (c *wakeConn) CloseWrite() error { return closeWrite(c.Conn) }

// NetConn returns the connection under c.
func (c *wakeConn) NetConn() net.Conn { return c.Conn }

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// readWaker is what a session's writer uses to wake readers.
type readWaker struct {
	c    *wakeConn
	rc   syscall.RawConn
	poll *sessionPoll // the process's set of session sockets (Linux), or nil
	tok  uint64       // c's token in poll
	last time.Time    // of the last look at c alone; owned by the writer
}

// newReadWaker arms c, the bottom of a session's connection whose read
// deadline is deadline, and returns its waker; or nil when c is not a
// socket. Its release must be called when the session ends.
func newReadWaker(c *wakeConn, deadline time.Time) *readWaker {
	sc := sysConnOf(c.Conn)
	if sc == nil {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	c.arm(deadline)
	w := &readWaker{c: c, rc: rc}
	if p := getSessionPoll(); p != nil {
		if tok := p.add(c, rc); tok != 0 {
			w.poll, w.tok = p, tok
		}
	}
	return w
}

// release forgets the session.
func (w *readWaker) release() {
	if w != nil && w.poll != nil {
		w.poll.remove(w.tok)
	}
}

// check wakes the readers of sessions with input waiting: with the
// process's set, every session's, else this session's. It looks at most
// once per readWakeInterval.
func (w *readWaker) check(now time.Time) {
	if w.poll != nil {
		w.poll.look(now)
		return
	}
	if now.Sub(w.last) < readWakeInterval {
		return
	}
	w.last = now
	if sockpeek.Raw(w.rc) == sockpeek.Data {
		w.c.wake()
	}
}
