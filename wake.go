package spdymux

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The Go runtime learns that a socket has bytes to read from its network
// poller, which it consults when a processor runs out of goroutines to run,
// or else every 10 ms (sysmon). A process whose goroutines keep every
// processor busy, such as a server pinned to one core sending downloads,
// so reads a session's next request up to 10 ms late: measured on one
// core under eight downloads, a request's HEADERS waited 4.6 ms in the
// socket for the session's reader, while everything after (the handler, the
// writer) took 0.2 ms. The session's writer, busy in that case, therefore
// looks at the socket itself every readWakeInterval of its turns and, when
// bytes are waiting, wakes the reader: a read deadline in the past ends the
// reader's wait at once, and the reader's connection (prefixConn) then
// reads again rather than report the timeout.

// readWakeInterval is the least time between two looks at the socket by a
// session's writer: at most one system call per interval, per busy
// session, and the longest the writer leaves waiting input unnoticed.
const readWakeInterval = 200 * time.Microsecond

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// wakeConn is the bottom of a server session's connection, under TLS if
// any: reads that a wake ended are read again.
type wakeConn struct {
	net.Conn
	mu       sync.Mutex
	deadline time.Time   // the read deadline its user set
	woken    atomic.Bool // a wake moved the read deadline to the past
}

func (c *wakeConn) Read(p []byte) (int, error) {
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

// wake ends a read waiting for bytes; the read goes on.
func (c *wakeConn) wake() {
	c.mu.Lock()
	if !c.woken.Swap(true) {
		c.Conn.SetReadDeadline(aLongTimeAgo)
	}
	c.mu.Unlock()
}

// CloseWrite half-closes the connection where the underlying one can.
func (c *wakeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// NetConn returns the connection under c.
func (c *wakeConn) NetConn() net.Conn { return c.Conn }

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// readWaker is what a session's writer uses to wake its reader.
type readWaker struct {
	c    *wakeConn
	rc   syscall.RawConn
	last time.Time // of the last look; owned by the writer
}

// newReadWaker returns the waker of a session whose connection has c at
// its bottom, or nil when c is not a socket.
func newReadWaker(c *wakeConn) *readWaker {
	sc := sysConnOf(c.Conn)
	if sc == nil {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &readWaker{c: c, rc: rc}
}

// check looks at the socket, unless it did less than readWakeInterval
// ago, and wakes the reader if bytes are waiting.
func (w *readWaker) check(now time.Time) {
	if now.Sub(w.last) < readWakeInterval {
		return
	}
	w.last = now
	pending := false
	w.rc.Control(func(fd uintptr) { pending = socketHasInput(fd) })
	if pending {
		w.c.wake()
	}
}
