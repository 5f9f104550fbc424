package spdymux

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// StreamConn is the secondary connection of one SPDY stream, as the inner
// server sees it: Read yields one HTTP/1.1 request (the head made from the
// SYN_STREAM header block, then the body from DATA frames, chunked when the
// client gave no length), and Write takes the HTTP/1.1 response, which is
// parsed as it arrives and sent as SYN_REPLY and DATA frames (de-chunked).
//
// A StreamConn is a full net.Conn: its addresses are the client
// connection's, deadlines work and time out with os.ErrDeadlineExceeded,
// Close is idempotent. Once the request is read, Read blocks until the
// stream ends rather than report end of file, so that a server does not take
// the end of the request for a client that went away. When the client
// resets the stream, Read and Write fail with an error matching
// net.ErrClosed. Read, Write and Close may be called concurrently.
type StreamConn struct {
	st    *stream
	s     *session
	info  *StreamInfo
	entry poolEntry

	rmu       sync.Mutex // serialises Read; guards the read state below
	head      []byte     // request head not yet read
	chunked   bool       // the body is framed as chunks
	chunkLeft int        // payload bytes left in the current chunk
	framing   []byte     // chunk framing not yet read
	framebuf  [24]byte
	lastChunk bool // framing holds the last chunk
	bodyDone  bool

	wmu    sync.Mutex // serialises Write and the parser
	parser httpconv.ResponseParser

	closeOnce sync.Once

	// Guarded by s.mu:
	granted bool               // a pool slot was granted and is not yet released
	cancel  context.CancelFunc // cancels the request's context (ConnContext)
}

func newStreamConn(st *stream, head []byte, req httpconv.Request) *StreamConn {
	s := st.s
	c := &StreamConn{
		st:       st,
		s:        s,
		head:     head,
		chunked:  req.Chunked,
		bodyDone: !req.Chunked && req.ContentLength <= 0,
		info: &StreamInfo{
			Protocol:   s.proto,
			SessionID:  s.id,
			StreamID:   uint32(st.id),
			ConnID:     connIDs.Add(1),
			Priority:   st.priority,
			TLS:        s.tls,
			RemoteAddr: s.conn.RemoteAddr(),
		},
	}
	c.entry = poolEntry{owner: s.poolOwner, priority: st.priority, index: -1, grant: c.grant}
	c.parser.Reset(s.dialect, req.Method, (*responseSink)(c))
	return c
}

// grant is called by the pool when the stream gets a worker slot.
func (c *StreamConn) grant() {
	c.s.mu.Lock()
	c.granted = true
	c.s.mu.Unlock()
	c.s.deliver(c)
}

// accepted reports whether c should go to the inner server; a stream that
// died while it waited is closed instead, freeing its slot.
func (c *StreamConn) accepted() bool {
	c.s.mu.Lock()
	dead := c.st.err != nil || c.st.connClosed
	c.s.mu.Unlock()
	if dead {
		c.Close()
		return false
	}
	return true
}

// abortLocked is called when the stream dies; a stream still waiting for
// a slot never runs.
func (c *StreamConn) abortLocked() {
	if c.s.cfg.pool.cancel(&c.entry) {
		c.st.connClosed = true
	}
	if c.cancel != nil {
		// Cancelling runs no code of ours: it only closes channels and
		// starts the AfterFuncs of its children.
		c.cancel()
	}
}

// setCancel ties the request's context to the stream: cancel is called
// when the stream dies, or at once if it has.
func (c *StreamConn) setCancel(cancel context.CancelFunc) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.cancel = cancel
	if c.st.err != nil {
		cancel()
	}
}

// Info returns the facts of the stream behind c.
func (c *StreamConn) Info() *StreamInfo { return c.info }

// Read reads the HTTP/1.1 request.
func (c *StreamConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.readErr(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := copy(p, c.head)
	c.head = c.head[n:]
	if n == len(p) {
		return n, nil
	}
	if c.bodyDone {
		if n > 0 {
			return n, nil
		}
		return 0, c.waitEnd()
	}
	if !c.chunked {
		if n > 0 {
			return n, nil
		}
		m, err := c.st.readPayload(p)
		if err == io.EOF {
			c.bodyDone = true
			return 0, c.waitEnd()
		}
		return m, c.wrapErr(err)
	}
	for n < len(p) {
		if len(c.framing) > 0 {
			m := copy(p[n:], c.framing)
			c.framing = c.framing[m:]
			n += m
			if len(c.framing) == 0 && c.lastChunk {
				c.bodyDone = true
				break
			}
			continue
		}
		if c.chunkLeft > 0 {
			m, err := c.st.readPayload(p[n:min(len(p), n+c.chunkLeft)])
			n += m
			c.chunkLeft -= m
			if err != nil {
				if n > 0 {
					return n, nil
				}
				return 0, c.wrapErr(err)
			}
			if c.chunkLeft == 0 {
				c.framing = httpconv.AppendChunkEnd(c.framebuf[:0])
			}
			continue
		}
		// Start the next chunk with everything buffered now; block only
		// when nothing has been read yet.
		avail, fin, err := c.st.buffered(n == 0)
		switch {
		case avail > 0:
			c.chunkLeft = avail
			c.framing = httpconv.AppendChunkHeader(c.framebuf[:0], avail)
		case fin:
			// The last chunk carries the request's trailers, if any.
			c.framing = httpconv.AppendLastChunk(c.framebuf[:0], c.st.takeTrailers())
			c.lastChunk = true
		case err != nil:
			if n > 0 {
				return n, nil
			}
			return 0, c.wrapErr(err)
		default:
			return n, nil
		}
	}
	return n, nil
}

func (c *StreamConn) readErr() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.st.connClosed {
		return c.opError("read", net.ErrClosed)
	}
	if c.st.rdl.expired() {
		return c.opError("read", os.ErrDeadlineExceeded)
	}
	return nil
}

// waitEnd blocks once the request is read, until the stream dies, c is
// closed or the read deadline passes.
func (c *StreamConn) waitEnd() error {
	for {
		c.s.mu.Lock()
		closed, err := c.st.connClosed, c.st.err
		c.s.mu.Unlock()
		switch {
		case closed:
			return c.opError("read", net.ErrClosed)
		case err != nil:
			return c.opError("read", err)
		}
		select {
		case <-c.st.readWake:
		case <-c.st.rdl.wait():
			return c.opError("read", os.ErrDeadlineExceeded)
		}
	}
}

func (c *StreamConn) wrapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return c.opError("read", err)
}

func (c *StreamConn) opError(op string, err error) error { return opError(c, op, err) }

// opError wraps err as the net.OpError of operation op on c, a connection
// on a stream.
func opError(c net.Conn, op string, err error) error {
	return &net.OpError{Op: op, Net: "stream", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Write takes HTTP/1.1 response bytes. It returns once the body bytes in
// p are written to the session's output buffer, or the stream died, or the
// write deadline passed.
func (c *StreamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	s, st := c.s, c.st
	s.mu.Lock()
	closed, err := c.st.connClosed, st.err
	s.mu.Unlock()
	switch {
	case closed:
		return 0, c.opError("write", net.ErrClosed)
	case err != nil:
		return 0, c.opError("write", err)
	case st.wdl.expired():
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	if _, err := c.parser.Write(p); err != nil {
		s.log.Info("spdymux: malformed response from the server", "stream", st.id, "err", err)
		s.mu.Lock()
		if st.err == nil {
			s.resetLocked(st, codeInternal)
		}
		s.mu.Unlock()
		return 0, c.opError("write", err)
	}
	if _, err := c.st.waitTaken(true); err != nil {
		return 0, c.opError("write", err)
	}
	return len(p), nil
}

// Close ends the secondary connection. A complete response ends the
// stream with FIN; an incomplete one resets it with INTERNAL_ERROR. The
// rest of a request body the server did not read is dropped.
func (c *StreamConn) Close() error {
	c.closeOnce.Do(c.close)
	return nil
}

func (c *StreamConn) close() {
	s, st := c.s, c.st
	s.mu.Lock()
	c.st.connClosed = true
	signal(st.readWake)
	signal(st.writeWake)
	s.mu.Unlock()

	c.wmu.Lock()
	perr := c.parser.Close()
	c.wmu.Unlock()

	s.mu.Lock()
	if st.err == nil {
		if perr != nil {
			s.log.Info("spdymux: server closed the connection before the response was complete", "stream", st.id, "err", perr)
			s.resetLocked(st, codeInternal)
		} else if !st.recvFin {
			st.discardRestLocked()
		}
	}
	release := c.granted
	c.granted = false
	cancel := c.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel() // the request is over; free the context
	}
	if release {
		s.cfg.pool.release(s.poolOwner)
	}
}

// LocalAddr returns the client connection's local address.
func (c *StreamConn) LocalAddr() net.Addr { return c.s.conn.LocalAddr() }

// RemoteAddr returns the client's address.
func (c *StreamConn) RemoteAddr() net.Addr { return c.s.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *StreamConn) SetDeadline(t time.Time) error {
	c.st.rdl.set(t)
	c.st.wdl.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *StreamConn) SetReadDeadline(t time.Time) error {
	c.st.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *StreamConn) SetWriteDeadline(t time.Time) error {
	c.st.wdl.set(t)
	return nil
}

// responseSink receives the parsed response and queues it on the stream.
type responseSink StreamConn

func (r *responseSink) Head(fields []httpconv.HeaderField, noBody bool) error {
	st := r.st
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	if err := st.s.w.checkHead(fields); err != nil {
		return fmt.Errorf("response header: %w", err)
	}
	st.head = fields
	st.headQueued = true
	st.finQueued = st.finQueued || noBody
	st.s.scheduleLocked(st)
	return nil
}

func (r *responseSink) Body(p []byte) error {
	st := r.st
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	st.queueDataLocked(p)
	return nil
}

// End ends the response; its trailers go to the client in the last
// HEADERS where the protocol has them (the protocol drops them otherwise).
func (r *responseSink) End(trailers []httpconv.HeaderField) error {
	st := r.st
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	if len(trailers) > 0 {
		st.trailers = trailers
	}
	st.finQueued = true
	st.s.scheduleLocked(st)
	return nil
}

// maxInterim bounds the interim responses queued ahead of one final
// response; the server's further 1xx responses are dropped.
const maxInterim = 8

// Interim queues an interim (1xx) response, such as 103 Early Hints, to
// go before the final one. The parser calls it only for HTTP/2.
func (r *responseSink) Interim(status int, fields []httpconv.HeaderField) error {
	st := r.st
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	if len(st.interim) >= maxInterim || st.headQueued || st.sentHead {
		return nil
	}
	if err := st.s.w.checkHead(fields); err != nil {
		return nil // an interim response is advice: drop what cannot go
	}
	st.interim = append(st.interim, fields)
	st.s.scheduleLocked(st)
	return nil
}
