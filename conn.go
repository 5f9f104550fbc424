package spdymux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// StreamConn is a secondary connection, as the inner server sees it: it
// serves the streams of one session, one at a time. Read yields a stream's
// HTTP/1.1 request (the head made from the stream's header block, then the
// body from DATA frames, chunked when the client gave no length), and Write
// takes the HTTP/1.1 response, which is parsed as it arrives and sent as the
// protocol's head and DATA frames (de-chunked).
//
// A server that keeps connections alive — net/http with ConnContext
// (ConfigureServer) — gets the next stream of the same session on the same
// connection once it reads for its next request, the way mod_http2 reuses
// its secondary connections: a stream then costs a request, not a
// connection. Other servers see one request per connection
// ("Connection: close"). An idle connection that gets no stream for
// secondaryIdleTime is closed (Read returns io.EOF).
//
// A StreamConn is a full net.Conn: its addresses are the client
// connection's, deadlines work and time out with os.ErrDeadlineExceeded,
// Close is idempotent. Once a request is read, Read blocks until the
// response is complete or the stream ends, rather than report end of file,
// so that a server does not take the end of the request for a client that
// went away. When the client resets the stream, Read and Write fail with an
// error matching net.ErrClosed, and the request's context is cancelled
// (ConnContext); the connection is not reused. Read, Write and Close may be
// called concurrently.
type StreamConn struct {
	s  *session
	id uint64 // the ConnID

	rmu sync.Mutex // serialises Read; guards the read state of the request below
	// dl holds the deadlines the server set, for every stream served.
	dl connDeadlines

	head      []byte // request head not yet read
	fresh     bool   // head is a new request's, not yet begun
	chunked   bool   // the body is framed as chunks
	chunkLeft int    // payload bytes left in the current chunk
	framing   []byte // chunk framing not yet read
	framebuf  [24]byte
	lastChunk bool // framing holds the last chunk
	bodyDone  bool

	wmu       sync.Mutex // serialises Write and the parser
	parser    httpconv.ResponseParser
	parserFor *stream // the stream the parser was last reset for

	closeOnce sync.Once
	wake      chan struct{} // cap 1: a stream was handed over, or c was closed

	info atomic.Pointer[StreamInfo] // the current stream's facts

	// Guarded by s.mu:
	st        *stream            // the stream served now; nil while idle
	next      *stream            // a stream handed over while idle, for Read to take
	keepAlive bool               // the server keeps connections alive (ConnContext was called)
	respDone  bool               // the current stream's response is complete
	idle      bool               // in s.idleConns
	closed    bool               // Close was called
	cancel    context.CancelFunc // cancels the connection's context (ConnContext)
}

// secondaryIdleTime is how long an idle secondary connection waits for
// another stream of its session before it is closed.
const secondaryIdleTime = 100 * time.Millisecond

func newStreamConn(s *session) *StreamConn {
	return &StreamConn{s: s, id: connIDs.Add(1), wake: make(chan struct{}, 1), dl: newConnDeadlines()}
}

// grantSlot is called by the pool when st gets a worker slot: it goes to
// an idle connection of its session, or to a new one through Accept.
func (st *stream) grantSlot() {
	s := st.s
	s.mu.Lock()
	st.granted = true
	if st.err != nil {
		// It died after the pool chose it.
		release := st.takeSlotLocked()
		s.mu.Unlock()
		s.releaseSlot(release)
		return
	}
	if s.cfg.handler != nil && !s.client {
		s.mu.Unlock()
		s.cfg.workers.run(st)
		return
	}
	c := s.handOffLocked(st)
	s.mu.Unlock()
	if c != nil {
		s.deliver(c)
	}
}

// handOffLocked gives st, which holds a slot, to an idle connection of
// the session, or to a new one, which it returns for delivery to Accept.
func (s *session) handOffLocked(st *stream) *StreamConn {
	for len(s.idleConns) > 0 {
		c := s.idleConns[len(s.idleConns)-1]
		s.idleConns[len(s.idleConns)-1] = nil
		s.idleConns = s.idleConns[:len(s.idleConns)-1]
		c.idle = false
		s.cfg.pool.putIdle()
		if c.closed {
			continue
		}
		c.next, st.conn = st, c
		signal(c.wake)
		return nil
	}
	c := newStreamConn(s)
	c.adoptLocked(st)
	return c
}

// takeSlotLocked reports whether st's worker slot is still to be released,
// and marks it released: the caller calls s.releaseSlot after unlocking.
func (st *stream) takeSlotLocked() bool {
	if !st.granted || st.released {
		return false
	}
	st.released = true
	return true
}

// releaseSlot frees a worker slot if release is set; never with s.mu held,
// since the pool may grant the slot to a stream of this session.
func (s *session) releaseSlot(release bool) {
	if release {
		s.cfg.pool.release(s.poolOwner)
	}
}

// adoptLocked makes st the stream c serves. Read's state is reset here:
// the caller holds c.rmu, or c is new and unseen; the parser is reset by
// the first Write for st (parserLocked).
func (c *StreamConn) adoptLocked(st *stream) {
	s := c.s
	c.st, st.conn = st, c
	c.respDone = false
	c.head, c.fresh = st.reqHead, true
	st.reqHead = nil
	c.chunked = st.req.Chunked
	c.bodyDone = !st.req.Chunked && st.req.ContentLength <= 0
	c.chunkLeft, c.framing, c.lastChunk = 0, nil, false
	st.rdl, st.wdl = &c.dl.read, &c.dl.write
	st.info = StreamInfo{
		Protocol:   s.proto,
		SessionID:  s.id,
		StreamID:   st.id,
		ConnID:     c.id,
		Priority:   st.priority,
		TLS:        s.tls,
		RemoteAddr: s.conn.RemoteAddr(),

		AssociatedStreamID: st.associatedID(),
	}
	c.info.Store(&st.info)
}

// parserLocked readies the response parser for st, the stream c serves;
// c.wmu is held. The parser is reset here rather than when c takes st up,
// so that taking a stream up needs only the session's lock.
func (c *StreamConn) parserLocked(st *stream) {
	if c.parserFor != st {
		c.parserFor = st
		c.parser.Reset(c.s.dialect, st.req.Method, (*responseSink)(st))
	}
}

// accepted reports whether c should go to the inner server; a stream that
// died while it waited is closed instead, freeing its slot.
func (c *StreamConn) accepted() bool {
	c.s.mu.Lock()
	dead := c.st == nil || c.st.err != nil
	c.s.mu.Unlock()
	if dead {
		c.Close()
		return false
	}
	return true
}

// abortLocked is called when st, which c serves or was handed, dies. A
// stream not yet taken up is dropped by Read; one being served breaks the
// connection: its request's context is cancelled, Read and Write fail.
func (c *StreamConn) abortLocked(st *stream) {
	signal(c.wake)
	if c.next == st {
		return
	}
	if c.cancel != nil {
		// Cancelling runs no code of ours: it only closes channels and
		// starts the AfterFuncs of its children.
		c.cancel()
	}
}

// bindContext ties the connection's context to its streams: cancel is
// called when the stream being served dies, or at once if it has. It also
// tells c that the server keeps connections alive.
func (c *StreamConn) bindContext(cancel context.CancelFunc) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.cancel = cancel
	c.keepAlive = true
	if c.st != nil && c.st.err != nil {
		cancel()
	}
}

// Info returns the facts of the stream c serves now (or served last).
func (c *StreamConn) Info() *StreamInfo { return c.info.Load() }

// Read reads the HTTP/1.1 request of the stream c serves; once that
// request and its response are complete, a read for the next request
// waits for the next stream.
func (c *StreamConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		st, err := c.current(len(p))
		if err != nil {
			return 0, err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.fresh {
			c.fresh = false
			c.s.mu.Lock()
			keepAlive := c.keepAlive
			c.s.mu.Unlock()
			if keepAlive && c.bodyDone {
				// Only a request without a body keeps the connection: on a
				// kept-alive HTTP/1.1 connection net/http reads and drops
				// what is left of a request body once the handler starts its
				// response, which would cut short a handler that streams
				// its body back (full duplex, as HTTP/2 and SPDY allow).
				c.head = httpconv.KeepAlive(c.head)
			}
		}
		n, err := c.readRequest(st, p)
		if err == errResponseDone {
			continue // the connection goes idle for the next request
		}
		return n, err
	}
}

// errResponseDone ends a wait for a stream's end once its response is
// complete, when the server may be reading for its next request.
var errResponseDone = errors.New("spdymux: response complete")

// current returns the stream whose request Read serves. When a server
// that keeps connections alive reads for its next request (a read of more
// than one byte: net/http's background read of one byte, made while a
// handler runs, does not count) after the request and response are
// complete, the stream is let go and c waits, idle, for the next.
func (c *StreamConn) current(n int) (*stream, error) {
	s := c.s
	var idleTimer *time.Timer
	defer func() {
		if idleTimer != nil {
			idleTimer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if c.closed {
			s.mu.Unlock()
			return nil, c.opError("read", net.ErrClosed)
		}
		if c.dl.read.expired() {
			s.mu.Unlock()
			return nil, c.opError("read", os.ErrDeadlineExceeded)
		}
		st := c.st
		if st != nil && c.keepAlive && c.respDone && c.bodyDone && len(c.head) == 0 && n > 1 && st.err == nil {
			release := c.detachLocked()
			st = nil
			s.mu.Unlock()
			s.releaseSlot(release)
			s.mu.Lock()
		}
		if st != nil {
			s.mu.Unlock()
			return st, nil
		}
		if next := c.next; next != nil {
			c.next = nil
			if next.err != nil {
				// Reset before it was taken up: drop it, stay idle.
				next.conn = nil
				release := next.takeSlotLocked()
				s.mu.Unlock()
				s.releaseSlot(release)
				continue
			}
			c.adoptLocked(next)
			s.mu.Unlock()
			continue
		}
		if s.err != nil {
			s.mu.Unlock()
			return nil, io.EOF
		}
		if !c.idle {
			if len(s.idleConns) >= s.maxIdleConnsLocked() || !s.cfg.pool.takeIdle() {
				s.mu.Unlock()
				return nil, io.EOF
			}
			c.idle = true
			s.idleConns = append(s.idleConns, c)
		}
		s.mu.Unlock()
		if idleTimer == nil {
			idleTimer = time.NewTimer(secondaryIdleTime)
		}
		select {
		case <-c.wake:
		case <-s.done:
		case <-c.dl.read.wait():
		case <-idleTimer.C:
			s.mu.Lock()
			if c.next == nil {
				// No stream came: closed, for the server to let go.
				c.unidleLocked()
				s.mu.Unlock()
				return nil, io.EOF
			}
			s.mu.Unlock()
		}
	}
}

// detachLocked lets go of the stream c served, whose request and response
// are complete: the rest of a request body the server did not read is
// dropped. It reports whether the stream's slot is to be released.
func (c *StreamConn) detachLocked() bool {
	st := c.st
	c.st = nil
	st.conn = nil
	c.s.requestDoneLocked(st)
	return st.takeSlotLocked()
}

// offerLocked offers c, whose response to st is complete and taken by
// the writer, to the next stream of its session before the server has even
// read for its next request: a connection kept alive whose request had no
// body will. The next stream is then not handed a new connection in the
// meantime.
func (c *StreamConn) offerLocked(st *stream) {
	if !c.keepAlive || c.idle || c.closed || c.next != nil || st.req.Chunked || st.req.ContentLength > 0 {
		return
	}
	s := c.s
	if len(s.idleConns) >= s.maxIdleConnsLocked() || !s.cfg.pool.takeIdle() {
		return
	}
	c.idle = true
	s.idleConns = append(s.idleConns, c)
}

// maxIdleConnsLocked is how many idle secondary connections the session
// keeps: as many as it may have streams (MaxConcurrentStreams). A
// connection exists only because the session had that many requests in
// its handlers at once, and one left idle for secondaryIdleTime is closed:
// what the session holds follows its load within a tenth of a second.
// Across sessions, the pool allows no more idle connections than it has
// free slots (Pool.takeIdle): while every slot is busy an idle connection
// could serve nothing, and goroutines stay bounded by the slots.
func (s *session) maxIdleConnsLocked() int {
	return int(s.cfg.maxConcurrentStreams)
}

// unidleLocked takes c out of its session's idle connections.
func (c *StreamConn) unidleLocked() {
	if !c.idle {
		return
	}
	c.idle = false
	s := c.s
	s.cfg.pool.putIdle()
	if i := slices.Index(s.idleConns, c); i >= 0 {
		s.idleConns = slices.Delete(s.idleConns, i, i+1)
	}
}

// readRequest reads the request of st into p.
func (c *StreamConn) readRequest(st *stream, p []byte) (int, error) {
	n := copy(p, c.head)
	c.head = c.head[n:]
	if n == len(p) {
		return n, nil
	}
	if c.bodyDone {
		if n > 0 {
			return n, nil
		}
		return 0, c.waitEnd(st, len(p))
	}
	if !c.chunked {
		if n > 0 {
			return n, nil
		}
		m, err := st.readPayload(p)
		if err == io.EOF {
			c.bodyDone = true
			return 0, c.waitEnd(st, len(p))
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
			m, err := st.readPayload(p[n:min(len(p), n+c.chunkLeft)])
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
		avail, fin, err := st.buffered(n == 0)
		switch {
		case avail > 0:
			c.chunkLeft = avail
			c.framing = httpconv.AppendChunkHeader(c.framebuf[:0], avail)
		case fin:
			// The last chunk carries the request's trailers, if any.
			c.framing = httpconv.AppendLastChunk(c.framebuf[:0], st.takeTrailers())
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

// waitEnd blocks once the request is read: until the stream dies, c is
// closed, the read deadline passes or, for a read of more than a byte on a
// connection kept alive, the response is complete (errResponseDone).
func (c *StreamConn) waitEnd(st *stream, n int) error {
	for {
		c.s.mu.Lock()
		closed, err := c.closed || st.connClosed, st.err
		done := c.keepAlive && c.respDone && n > 1
		var wake chan struct{}
		if !closed && err == nil && !done {
			wake = st.readWakeLocked()
		}
		c.s.mu.Unlock()
		switch {
		case closed:
			return c.opError("read", net.ErrClosed)
		case err != nil:
			return c.opError("read", err)
		case done:
			return errResponseDone
		}
		select {
		case <-wake:
		case <-c.wake:
		case <-st.rdl.wait():
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

// errIdleWrite is what a Write between two requests returns.
var errIdleWrite = errors.New("spdymux: write on a secondary connection between requests")

// Write takes HTTP/1.1 response bytes. It returns once the body bytes in
// p are written to the session's output buffer, or the stream died, or the
// write deadline passed.
func (c *StreamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	s := c.s
	s.mu.Lock()
	st, closed := c.st, c.closed
	var err error
	if st != nil {
		closed = closed || st.connClosed
		err = st.err
	}
	s.mu.Unlock()
	switch {
	case closed:
		return 0, c.opError("write", net.ErrClosed)
	case st == nil:
		return 0, c.opError("write", errIdleWrite)
	case err != nil:
		return 0, c.opError("write", err)
	case st.wdl.expired():
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	c.parserLocked(st)
	if _, err := c.parser.Write(p); err != nil {
		s.log.Info("spdymux: malformed response from the server", "stream", st.id, "err", err)
		s.mu.Lock()
		if st.err == nil {
			s.resetLocked(st, codeInternal)
		}
		s.mu.Unlock()
		return 0, c.opError("write", err)
	}
	if _, err := st.waitTaken(true); err != nil {
		return 0, c.opError("write", err)
	}
	s.mu.Lock()
	if c.respDone {
		// The whole response is with the writer: the server will read
		// for its next request.
		c.offerLocked(st)
	}
	s.mu.Unlock()
	return len(p), nil
}

// Close ends the secondary connection. A complete response ends its
// stream with FIN; an incomplete one resets it with INTERNAL_ERROR. The
// rest of a request body the server did not read is dropped.
func (c *StreamConn) Close() error {
	c.closeOnce.Do(c.close)
	return nil
}

func (c *StreamConn) close() {
	s := c.s
	s.mu.Lock()
	c.closed = true
	c.unidleLocked()
	signal(c.wake)
	st := c.st
	if st != nil {
		st.connClosed = true
		signal(st.readWake)
		signal(st.writeWake)
	}
	var handed *StreamConn
	if next := c.next; next != nil {
		// Handed over as c closed: it goes to another connection.
		c.next, next.conn = nil, nil
		if next.err == nil {
			handed = s.handOffLocked(next)
		} else if next.takeSlotLocked() {
			defer s.releaseSlot(true)
		}
	}
	s.mu.Unlock()
	if handed != nil {
		s.deliver(handed)
	}

	if st != nil {
		c.wmu.Lock()
		c.parserLocked(st)
		perr := c.parser.Close()
		c.wmu.Unlock()
		s.mu.Lock()
		if st.err == nil {
			if perr != nil {
				s.log.Info("spdymux: server closed the connection before the response was complete", "stream", st.id, "err", perr)
				s.resetLocked(st, codeInternal)
			} else {
				s.requestDoneLocked(st)
			}
		}
		release := st.takeSlotLocked()
		s.mu.Unlock()
		s.releaseSlot(release)
	}
	s.mu.Lock()
	cancel := c.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel() // the connection is over; free its context
	}
}

// LocalAddr returns the client connection's local address.
func (c *StreamConn) LocalAddr() net.Addr { return c.s.conn.LocalAddr() }

// RemoteAddr returns the client's address.
func (c *StreamConn) RemoteAddr() net.Addr { return c.s.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *StreamConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	c.SetWriteDeadline(t)
	return nil
}

// SetReadDeadline sets the read deadline, for every stream c serves.
func (c *StreamConn) SetReadDeadline(t time.Time) error {
	c.dl.read.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline, for every stream c serves.
func (c *StreamConn) SetWriteDeadline(t time.Time) error {
	c.dl.write.set(t)
	return nil
}

// connDeadlines are the deadlines a server set on a connection: every
// stream it serves waits on them, and the read deadline also bounds the
// wait for the next stream.
type connDeadlines struct {
	read, write deadline
}

func newConnDeadlines() connDeadlines { return connDeadlines{} }

// responseSink receives the parsed response of a stream and queues it on
// the stream (a conversion of *stream: no allocation per response).
type responseSink stream

// Head queues the response head. X-Associated-Content is taken out of it,
// and the pushes it and Link rel=preload ask for are started (push.go):
// their opening frames go out before the stream's FIN.
func (r *responseSink) Head(fields []httpconv.HeaderField, noBody bool) error {
	st := (*stream)(r)
	s := st.s
	s.mu.Lock()
	if st.err != nil {
		s.mu.Unlock()
		return st.err
	}
	fields, xac := takeAssociatedContent(fields)
	if err := s.w.checkHead(fields); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("response header: %w", err)
	}
	pushes := s.startPushesLocked(st, responseStatus(fields), xac, fields)
	st.head = fields
	st.headQueued = true
	st.finQueued = st.finQueued || noBody
	s.scheduleLocked(st)
	if st.pushed() {
		s.wakeWriterLocked() // a SPDY push's SYN_STREAM waits for this head
	}
	s.mu.Unlock()
	s.startPushes(pushes)
	return nil
}

func (r *responseSink) Body(p []byte) error {
	st := (*stream)(r)
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	st.queueDataLocked(p)
	return nil
}

// End ends the response; its trailers go to the client in the last
// HEADERS where the protocol has them (the protocol drops them otherwise,
// and so is a block it could not send).
func (r *responseSink) End(trailers []httpconv.HeaderField) error {
	st := (*stream)(r)
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	if len(trailers) > 0 && st.s.w.checkHead(trailers) == nil {
		st.trailers = trailers
	}
	if c := st.conn; c != nil {
		c.respDone = true
	}
	signal(st.readWake)
	st.finQueued = true
	st.s.scheduleLocked(st)
	return nil
}

// maxInterim bounds the interim responses queued ahead of one final
// response; the server's further 1xx responses are dropped.
const maxInterim = 8

// Interim queues an interim (1xx) response, such as 103 Early Hints, to
// go before the final one. The parser calls it only for HTTP/2.
// A 103 starts the pushes its Link fields name, as mod_http2 did: they
// go out ahead of the final response (which may name them again).
func (r *responseSink) Interim(status int, fields []httpconv.HeaderField) error {
	st := (*stream)(r)
	s := st.s
	s.mu.Lock()
	if st.err != nil {
		s.mu.Unlock()
		return st.err
	}
	fields, xac := takeAssociatedContent(fields)
	var pushes []*stream
	if status == statusEarlyHints {
		pushes = s.startPushesLocked(st, status, xac, fields)
	}
	switch {
	case len(st.interim) >= maxInterim || st.headQueued || st.sentHead:
	case s.w.checkHead(fields) != nil:
		// An interim response is advice: drop what cannot go.
	default:
		st.interim = append(st.interim, fields)
		s.scheduleLocked(st)
	}
	s.mu.Unlock()
	s.startPushes(pushes)
	return nil
}
