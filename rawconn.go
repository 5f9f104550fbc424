package spdymux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// rawConn is a stream as a bare byte stream: Read yields the DATA the peer
// sends (io.EOF at its FIN), Write sends DATA, CloseWrite sends FIN, Close
// sends FIN and drops whatever the peer still sends. The client uses it for
// bodies; the stream layer's tests run nettest.TestConn over it.
type rawConn struct {
	st        *stream
	rmu, wmu  sync.Mutex
	closeOnce sync.Once
}

func newRawConn(st *stream) *rawConn { return &rawConn{st: st} }

func (c *rawConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.check("read", c.st.rdl); err != nil {
		return 0, err
	}
	n, err := c.st.readPayload(p)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *rawConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.check("write", c.st.wdl); err != nil {
		return 0, err
	}
	st := c.st
	st.s.mu.Lock()
	if st.sentFin || st.finQueued {
		st.s.mu.Unlock()
		return 0, c.opError("write", errWriteAfterFin)
	}
	st.queueDataLocked(p)
	st.s.mu.Unlock()
	if dropped, err := st.waitTaken(false); err != nil {
		n := 0
		if err == os.ErrDeadlineExceeded {
			n = len(p) - dropped // the part taken before the deadline
		}
		return n, c.opError("write", err)
	}
	return len(p), nil
}

func (c *rawConn) check(op string, d *deadline) error {
	st := c.st
	st.s.mu.Lock()
	closed, err := st.connClosed, st.err
	st.s.mu.Unlock()
	switch {
	case closed:
		return c.opError(op, net.ErrClosed)
	case err != nil && op == "write":
		return c.opError(op, err)
	case d.expired():
		return c.opError(op, os.ErrDeadlineExceeded)
	}
	return nil
}

// CloseWrite sends FIN once the data written so far is out.
func (c *rawConn) CloseWrite() error { return c.closeWriteTrailers(nil) }

// closeWriteTrailers sends FIN once the data written so far is out, after
// a HEADERS frame that carries trailers if there are any (and the protocol
// takes them: spdyWire.writeTrailers).
func (c *rawConn) closeWriteTrailers(trailers []httpconv.HeaderField) error {
	st := c.st
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err == nil && !st.sentFin && !st.finQueued {
		if len(trailers) > 0 && st.s.w.checkHead(trailers) == nil {
			st.trailers = trailers
		}
		st.finQueued = true
		st.s.scheduleLocked(st)
	}
	return nil
}

func (c *rawConn) Close() error {
	c.closeOnce.Do(func() {
		st := c.st
		s := st.s
		s.mu.Lock()
		st.connClosed = true
		signal(st.readWake)
		signal(st.writeWake)
		if st.err == nil {
			if !st.sentFin {
				st.finQueued = true
				s.scheduleLocked(st)
			}
			if !st.recvFin {
				st.discardRestLocked()
			}
		}
		s.mu.Unlock()
	})
	return nil
}

// reset resets the stream with status (CANCEL to abandon a response).
func (c *rawConn) reset(code errCode) {
	c.st.s.resetStream(c.st, code)
	c.Close()
}

var errWriteAfterFin = errors.New("spdymux: write after FIN")

func (c *rawConn) opError(op string, err error) error {
	return opError(c, op, err)
}

func (c *rawConn) LocalAddr() net.Addr  { return c.st.s.conn.LocalAddr() }
func (c *rawConn) RemoteAddr() net.Addr { return c.st.s.conn.RemoteAddr() }

func (c *rawConn) SetDeadline(t time.Time) error {
	c.st.rdl.set(t)
	c.st.wdl.set(t)
	return nil
}
func (c *rawConn) SetReadDeadline(t time.Time) error  { c.st.rdl.set(t); return nil }
func (c *rawConn) SetWriteDeadline(t time.Time) error { c.st.wdl.set(t); return nil }
