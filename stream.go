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

// stream is one stream of a session, of either protocol: its receive
// buffer, its pending output and its flow-control windows. The session and
// the connection on the stream (StreamConn, rawConn) meet here; everything
// below "Guarded by s.mu" is read and written with the session's lock held.
type stream struct {
	s        *session
	id       uint32
	priority uint8 // 0 (highest) to 7
	local    bool  // opened by this side

	// readWake (cap 1) is signalled when received data, FIN or an error
	// arrives; writeWake (cap 1) when queued output is taken by the writer
	// or the stream dies. Each has one waiter at a time (the read or write
	// side of the connection, serialised by StreamConn's locks), which
	// makes it under s.mu on its first wait (readWakeLocked,
	// writeWakeLocked): most streams never wait, a request without a
	// body or a response queued whole. Signals, all under s.mu, go
	// nowhere until then; the waiter looks at what it waits for under
	// the same lock before it waits.
	readWake  chan struct{}
	writeWake chan struct{}
	// rdl and wdl are the read and write deadlines: the stream's own
	// (dls), or those of the secondary connection serving it.
	rdl, wdl *deadline
	dls      [2]deadline

	// Guarded by s.mu:

	conn *StreamConn // the secondary connection serving the stream, or handed it, if any

	recv      []byte // received DATA payload not yet read: recv[recvOff:]
	recvOff   int
	recvBytes int64 // DATA payload bytes received in all
	recvFlow  inflow
	// recvTrailers are the request trailers the peer sent, for the last
	// chunk of the request body.
	recvTrailers []httpconv.HeaderField
	wantLength   int64 // the body's content-length, or -1
	recvFin      bool  // the peer sent FIN
	discard      bool  // received DATA is dropped (credited at once)

	// push is server push's part (push.go): set on a GET the peer opened
	// on a session that pushes, and on a pushed stream; nil otherwise.
	push *streamPush

	sendFlow   outflow
	head       []httpconv.HeaderField // the head waiting to be written: response, or request on a client
	headQueued bool
	sentHead   bool
	out        [][]byte  // DATA payload waiting; the slices belong to the writer of the stream until taken
	outArr     [1][]byte // out's first array: most responses queue one slice at a time
	outLen     int
	trailers   []httpconv.HeaderField   // trailers that end the stream after out, if any
	interim    [][]httpconv.HeaderField // interim (1xx) heads to write before head
	blockedAt  time.Time                // since when queued data waits for window, or zero
	finQueued  bool                     // the end of the stream goes after out
	sentFin    bool
	inSched    bool // in the writer's schedule
	removed    bool // no longer in s.streams
	resetHere  bool // this side reset it
	starting   bool // counted in s.starting: opened by the peer, no head written yet
	// resetAfterFin: the server is done with the request; the client is
	// asked to stop sending once the response's END_STREAM is out
	// (HTTP/2, stopRequestLocked).
	resetAfterFin bool
	// stopWanted: the response is complete and the client is to stop
	// sending the request: RST_STREAM NO_ERROR goes out after
	// stopRequestWait (stopRequestLocked).
	stopWanted bool
	connClosed bool // the connection on the stream was closed
	granted    bool // the pool gave it a slot (entry)
	released   bool // the slot went back to the pool
	gotReply   bool // client side: reply is set

	info StreamInfo // the facts handlers see, once a connection serves it

	// The request for the inner server, from startRequest until a
	// secondary connection takes it up; the worker slot it waits for.
	reqHead []byte
	req     httpconv.Request
	// reqFields is the request's header block, in handler mode
	// (direct.go), where no head is written.
	reqFields []httpconv.HeaderField
	// ctx is the request's context in handler mode, cancelled when the
	// stream dies.
	ctx   *streamContext
	entry poolEntry

	// Client side: the response head (gotReply).
	reply []httpconv.HeaderField

	// err, once set, makes Read and Write fail: the stream was reset by
	// either side, or the session closed.
	err error
}

func newStream(s *session, id uint32, priority uint8) *stream {
	st := &stream{
		s:          s,
		id:         id,
		priority:   priority,
		recvFlow:   inflow{avail: s.cfg.initialWindowSize},
		sendFlow:   outflow{n: s.peerInitWindow},
		wantLength: -1,
	}
	st.rdl, st.wdl = &st.dls[0], &st.dls[1]
	st.out = st.outArr[:0]
	return st
}

// readWakeLocked returns readWake, made on the first call.
func (st *stream) readWakeLocked() chan struct{} {
	if st.readWake == nil {
		st.readWake = make(chan struct{}, 1)
	}
	return st.readWake
}

// writeWakeLocked returns writeWake, made on the first call.
func (st *stream) writeWakeLocked() chan struct{} {
	if st.writeWake == nil {
		st.writeWake = make(chan struct{}, 1)
	}
	return st.writeWake
}

// unread is the received payload not yet read.
func (st *stream) unread() int { return len(st.recv) - st.recvOff }

// windowCoversRest reports whether the stream's receive window already
// covers the rest of a body of known length: then no credit is needed,
// and none goes to a peer that may already have forgotten the stream
// (node's spdy-transport answers such a WINDOW_UPDATE with RST_STREAM).
func (st *stream) windowCoversRest() bool {
	return st.wantLength >= 0 && int64(st.recvFlow.avail) >= st.wantLength-st.recvBytes
}

// signal leaves a token in c unless one is there; a nil c (nobody has
// waited on it yet) takes none.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// failLocked makes the stream dead: Read and Write return err, queued
// output is dropped.
func (st *stream) failLocked(err error) {
	if st.err != nil {
		return
	}
	st.err = err
	st.dropOutputLocked()
	st.s.unbufferedLocked(st.unread())
	st.releaseRecvLocked()
	if st.entry.owner != nil && st.s.cfg.pool.cancel(&st.entry) {
		// Still waiting for a slot: it never runs.
		st.connClosed = true
	}
	if st.conn != nil {
		st.conn.abortLocked(st)
	}
	if st.ctx != nil {
		// Cancelling runs no code of ours: it only closes a channel and
		// starts the functions waiting for it, each in a goroutine.
		st.ctx.cancel(context.Canceled)
	}
	signal(st.readWake)
	signal(st.writeWake)
}

// takeTrailers returns the request trailers the peer sent, taking them.
func (st *stream) takeTrailers() []httpconv.HeaderField {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	t := st.recvTrailers
	st.recvTrailers = nil
	return t
}

// discardRestLocked drops the request body the peer sent and will still
// send on st, crediting it: no reader will come for it.
func (st *stream) discardRestLocked() {
	st.discard = true
	n := st.unread()
	st.releaseRecvLocked()
	st.s.dropBufferedLocked(st, n)
}

func (st *stream) dropOutputLocked() {
	st.unqueueLocked()
	st.head = nil
	st.headQueued = false
	st.trailers = nil
	st.interim = nil
}

// readPayload copies received DATA payload into p. It blocks until there
// is some, the peer's FIN (io.EOF), an error, or the read deadline.
func (st *stream) readPayload(p []byte) (int, error) {
	for {
		s := st.s
		s.mu.Lock()
		if st.recvOff < len(st.recv) {
			n := copy(p, st.recv[st.recvOff:])
			st.recvOff += n
			if st.recvOff == len(st.recv) {
				// Drained: keep the buffer while more may come, within
				// the window; give it back once the peer is done.
				if st.recvFin {
					st.releaseRecvLocked()
				} else {
					st.recv, st.recvOff = st.recv[:0], 0
				}
			}
			s.consumedLocked(st, n)
			s.mu.Unlock()
			return n, nil
		}
		err := st.err
		fin := st.recvFin
		if err == nil && st.connClosed {
			err = net.ErrClosed
		}
		var wake chan struct{}
		if err == nil && !fin && len(p) > 0 {
			wake = st.readWakeLocked()
		}
		s.mu.Unlock()
		switch {
		case err != nil:
			return 0, err
		case fin:
			return 0, io.EOF
		case len(p) == 0:
			return 0, nil
		}
		select {
		case <-wake:
		case <-st.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// buffered reports the payload bytes ready to read, whether the peer sent
// FIN and the stream's error. With block set it first waits until one of
// them is there, or the read deadline passes.
func (st *stream) buffered(block bool) (n int, fin bool, err error) {
	for {
		st.s.mu.Lock()
		n, fin, err = len(st.recv)-st.recvOff, st.recvFin, st.err
		if err == nil && st.connClosed {
			err = net.ErrClosed
		}
		if !block || n > 0 || fin || err != nil {
			st.s.mu.Unlock()
			return n, fin, err
		}
		wake := st.readWakeLocked()
		st.s.mu.Unlock()
		select {
		case <-wake:
		case <-st.rdl.wait():
			return 0, false, os.ErrDeadlineExceeded
		}
	}
}

// queueDataLocked queues p as DATA payload. p must stay untouched until
// waitTaken returns.
func (st *stream) queueDataLocked(p []byte) {
	if len(p) == 0 || st.err != nil {
		return
	}
	st.out = append(st.out, p)
	st.outLen += len(p)
	st.s.scheduleLocked(st)
}

// waitTaken blocks until the writer has taken all queued DATA, the stream
// died, its connection was closed, or the write deadline passed. On an
// early return it drops what is left, so the caller may reuse its
// buffers, and reports how many queued bytes were dropped. With whole set
// the queued bytes were a message that cannot stand cut short (an HTTP
// response already parsed): dropping any of them resets the stream in the
// same step, since a FIN after a truncated body would look complete.
func (st *stream) waitTaken(whole bool) (dropped int, err error) {
	s := st.s
	for {
		s.mu.Lock()
		if st.outLen == 0 || st.err != nil || st.connClosed {
			err := st.err
			dropped := st.outLen
			if err == nil && dropped > 0 {
				err = net.ErrClosed
				st.dropQueuedLocked(whole, "the connection was closed")
			}
			s.mu.Unlock()
			return dropped, err
		}
		wake := st.writeWakeLocked()
		s.mu.Unlock()
		select {
		case <-wake:
		case <-st.wdl.wait():
			s.mu.Lock()
			dropped := st.outLen
			if dropped > 0 && st.err == nil {
				st.dropQueuedLocked(whole, "the write deadline passed")
			}
			s.mu.Unlock()
			if dropped == 0 {
				return 0, nil
			}
			return dropped, os.ErrDeadlineExceeded
		}
	}
}

// dropQueuedLocked drops the queued DATA of a live stream; with whole set
// it resets the stream instead, so the peer sees the message fail.
func (st *stream) dropQueuedLocked(whole bool, why string) {
	if !whole {
		st.unqueueLocked()
		return
	}
	st.abandonOutputLocked(why)
}

// abandonOutputLocked resets a live stream whose queued response bytes
// will never be sent: the peer must see the response fail, not a FIN after
// a truncated body.
func (st *stream) abandonOutputLocked(why string) {
	st.s.log.Info("spdymux: response output dropped; resetting stream", "stream", st.id, "queued", st.outLen, "why", why)
	st.s.resetLocked(st, codeInternal)
}

func (st *stream) unqueueLocked() {
	clear(st.out)
	st.out = st.out[:0]
	st.outLen = 0
	st.s.unblockedLocked(st)
}

// A stream borrows its receive buffer from recvBufPool while it holds
// data, so a busy upload reuses buffers and an idle stream holds none.
var recvBufPool sync.Pool

const (
	recvBufSize    = 4 << 10   // a new buffer's least capacity
	recvBufMaxPool = 256 << 10 // larger buffers are left to the collector
)

// appendRecvLocked buffers received DATA payload.
func (st *stream) appendRecvLocked(p []byte) {
	if st.recv == nil {
		if b, _ := recvBufPool.Get().(*[]byte); b != nil {
			st.recv = (*b)[:0]
		} else {
			st.recv = make([]byte, 0, max(recvBufSize, len(p)))
		}
	}
	if len(st.recv)+len(p) > cap(st.recv) && st.recvOff > 0 {
		// Move the unread bytes to the front rather than grow.
		n := copy(st.recv, st.recv[st.recvOff:])
		st.recv, st.recvOff = st.recv[:n], 0
	}
	st.recv = append(st.recv, p...)
}

// releaseRecvLocked drops the receive buffer, returning it to the pool.
func (st *stream) releaseRecvLocked() {
	if st.recv != nil && cap(st.recv) <= recvBufMaxPool {
		b := st.recv[:0]
		recvBufPool.Put(&b)
	}
	st.recv, st.recvOff = nil, 0
}

// streamError is the error Read and Write return on a reset stream.
type streamError struct {
	id     uint32
	code   errCode
	name   string // the code as the protocol names it, e.g. "CANCEL"
	remote bool
}

func (e *streamError) Error() string {
	by := "locally"
	if e.remote {
		by = "by the peer"
	}
	return fmt.Sprintf("spdymux: stream %d reset %s: %s", e.id, by, e.name)
}

// Is makes a reset stream match net.ErrClosed, so servers treat it as a
// closed connection.
func (e *streamError) Is(target error) bool { return target == net.ErrClosed }

// deadline is a settable deadline whose wait channel is closed when it
// passes, as in net.Pipe. Setting it allocates nothing once its timer
// exists: the channel is made only for a waiter, and the timer is reused.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer   // fires at the deadline; made once, then Reset
	t      time.Time     // the deadline, or zero
	passed bool          // t has passed
	cancel chan struct{} // closed once passed; nil until a waiter needs it
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.t = t
	if d.passed {
		// A new deadline: a closed channel is dropped, made anew if a
		// waiter comes.
		d.passed = false
		d.cancel = nil
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		d.passLocked()
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
		return
	}
	d.timer.Reset(dur)
}

// fire passes the deadline if it is due: a firing that Stop could not
// prevent finds a deadline set since, later or cleared, and leaves it.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.passed && !d.t.IsZero() && !time.Now().Before(d.t) {
		d.passLocked()
	}
}

func (d *deadline) passLocked() {
	d.passed = true
	if d.cancel != nil {
		close(d.cancel)
	}
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
		if d.passed {
			close(d.cancel)
		}
	}
	return d.cancel
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
