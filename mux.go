package spdymux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// This file and the ones it names are the protocol-neutral core shared by
// the SPDY and HTTP/2 master connections:
//
//	mux.go      the session: lifecycle, streams, the control-frame queue,
//	            and act, the one place that turns errors into RST / GOAWAY
//	mux_recv.go receiving: DATA into stream buffers, flow-control credit,
//	            window updates, new streams into requests for the pool
//	flow.go     flow-control windows
//	writer.go   the writer goroutine and the priority scheduler
//	limits.go   budgets and the zero-window timeout
//	stream.go   a stream's buffers, output queue and deadlines
//	conn.go     StreamConn, the secondary connection
//
// A protocol (spdy_session.go, h2_session.go) reads and writes its frames
// through the wire interface and calls the core for every rule the
// protocols share.

var (
	sessionIDs atomic.Uint64 // process-wide SessionID counter
	connIDs    atomic.Uint64 // process-wide ConnID counter for secondary connections
)

// wire is what a protocol adds to the core. readFrame runs on the
// session's reader goroutine, which is the only user of the protocol's
// header decoder. The write methods run on the writer goroutine with s.mu
// held and encode into s.wbuf; the writer is the only user of the header
// encoder. A write method checks a frame whole before it writes any of it:
// an error leaves the output and the compression context as they were.
type wire interface {
	// readFrame reads one frame and handles it. Its error goes to act.
	readFrame() error
	// writeCtrl encodes a queued control frame.
	writeCtrl(f ctrlFrame) error
	// writeHead encodes the head of st: a response's status and headers
	// on a server, the request on a client, with fin if nothing follows.
	writeHead(st *stream, head []httpconv.HeaderField, fin bool) error
	// writeData encodes one DATA frame of st.
	writeData(st *stream, p []byte, fin bool) error
	// writeTrailers encodes trailers that end st.
	writeTrailers(st *stream, trailers []httpconv.HeaderField) error
	// writePush encodes the frame that tells the peer of st, a stream
	// this side pushes (push.go): SPDY's SYN_STREAM, which carries st.head
	// (with fin if nothing follows), or HTTP/2's PUSH_PROMISE on the
	// associated stream, which carries the promise.
	writePush(st *stream, fin bool) error
	// checkHead reports whether head can be sent, before it is queued.
	checkHead(head []httpconv.HeaderField) error
	// errorHead is the head of an error response the session makes.
	errorHead(status, contentLength int) []httpconv.HeaderField
	// code returns the wire value of c in RST_STREAM, or in GOAWAY.
	code(c errCode, goAway bool) uint32
	// codeName names c as the protocol's spec does.
	codeName(c errCode) string
}

// session is one master connection: a SPDY session or an HTTP/2
// connection. Its reader (readLoop, on the goroutine that calls serve)
// reads every frame in arrival order and has the protocol handle it; its
// writer (writeLoop) owns the output buffer, the schedule and, through the
// protocol, the header encoder. Streams talk to both through the state
// guarded by mu.
type session struct {
	w       wire
	client  bool // this side opened the connection: its stream ids are odd
	stats   *listenerCounters
	cfg     *settings
	log     sessionLog
	conn    net.Conn
	waker   *readWaker // wakes the reader when input waits (wake.go); nil on a client or without a socket
	id      uint64
	proto   string
	dialect httpconv.Dialect
	tls     *tls.ConnectionState
	remote  string // the client's address, as http.Request.RemoteAddr
	// onStream makes what serves a stream the peer opened, given its head:
	// startRequest, an HTTP/1.1 request for the pool. The head is the
	// callee's to keep: each frame parser makes it anew for each block.
	onStream func(st *stream, head []httpconv.HeaderField) error
	// deliver hands a server's stream that got a worker slot to the inner
	// server (the listener's Accept); nil on a client.
	deliver func(*StreamConn)
	// onPush offers a client a stream the server pushed (its promise in
	// st.push.promise, its associated stream st.push.assoc), off the
	// session's lock; false refuses it. Nil refuses every push.
	onPush func(st *stream) bool

	// Which windows the protocol has: per stream (SPDY/3, HTTP/2) and per
	// session (SPDY/3.1, HTTP/2). Set before serve.
	streamFlow, sessionFlow bool
	// streamBuffer caps the bytes buffered for one stream where there is
	// no stream flow control (SPDY/2); 0 for none.
	streamBuffer int

	// poolOwner is the session's share of cfg.pool, guarded by the pool.
	poolOwner *poolOwner

	done      chan struct{} // closed by close
	flushed   chan struct{} // closed by the writer once GOAWAY is written and output half-closed
	closeOnce sync.Once
	writeWake chan struct{} // cap 1: there is something to write (wakeWriterLocked)
	ctrlTaken chan struct{} // cap 1: the writer took control frames from the queue
	recvSpace chan struct{} // cap 1: buffered bytes were read or dropped (the reader may wait for room)
	writerWG  sync.WaitGroup

	// baseContext is what the contexts of the session's requests derive
	// from in handler mode (Config.BaseContext, Config.ConnContext).
	baseContext context.Context

	// The writer's goroutine stops when an idle session has had nothing
	// to write for writerLinger (parked), and wakeWriterLocked starts it
	// again; once the session is closed (writerStopped), it is not.
	writerParked  bool
	writerStopped bool

	// fatal is set once the session ends for abuse: the reader stops.
	fatal atomic.Bool

	// Owned by writeLoop (and by the constructor before it starts):
	wbuf      writeBuf
	holdLevel int           // this turn, the lowest priority written (holdLevelLocked)
	holdWait  time.Duration // until the hold ends, or 0

	mu sync.Mutex // guards what follows and the guarded fields of every stream
	// err is the first cause of the session's end.
	err            error
	streams        map[uint32]*stream
	lastPeerStream uint32    // the last stream the peer opened
	lastAccepted   uint32    // the last stream of the peer's that was not refused
	nextStreamID   uint32    // the next stream this side opens
	headQueue      []*stream // streams opened here whose opening head is not yet written
	// spareFields are the slices of response heads an HTTP/2 server
	// session has encoded, for the reader's next blocks (fieldsLocked).
	spareFields     [][]httpconv.HeaderField
	ctrl            []ctrlFrame
	sched           [8]streamQueue
	sendFlow        outflow // the session send window (sessionFlow)
	recvFlow        inflow  // the session receive window (sessionFlow)
	peerInitWindow  int32   // stream send window the peer grants new streams
	maxSendFrame    int     // largest DATA payload the peer takes
	recvBuffered    int     // DATA bytes buffered over all streams
	heldCredit      int32   // credit held back while recvBuffered is over budget
	goingAway       bool    // GOAWAY sent: no new streams
	closeAfterFlush bool    // close once the queued control frames are written
	idleTimer       *time.Timer
	resets          budget        // streams the peer may still reset
	glitches        budget        // useless frames the peer may still send
	blocked         int           // streams whose queued data waits for window
	streamGone      chan struct{} // closed and cleared when a stream ends
	peerMaxStreams  uint32
	peerGoneAway    bool
	closed          closedStreams // the streams that ended last
	idleConns       []*StreamConn // secondary connections waiting for a stream
	push            pushState     // server push (push.go)
	// Streams the peer opened whose response head is not yet written,
	// by priority, and when the last of each opened (see holdLevelLocked).
	starting  [8]int32
	lastStart [8]time.Time
}

// priorityHold is how long the start of a stream holds back the output of
// streams of lower priority: until its response head is written, or this
// long. A session's streams share one CPU with their handlers; while the
// writer takes no bytes of lower priority their handlers wait in Write, and
// the new request's handler runs at once. Bounded, so that a slow handler
// of high priority cannot starve the rest.
const priorityHold = 10 * time.Millisecond

// startLocked counts st, a stream the peer opened, as starting.
func (s *session) startLocked(st *stream) {
	if s.client || st.starting {
		return
	}
	st.starting = true
	p := min(st.priority, 7)
	s.starting[p]++
	s.lastStart[p] = time.Now()
}

// startedLocked ends st's start: its head is written, or it is gone.
func (s *session) startedLocked(st *stream) {
	if !st.starting {
		return
	}
	st.starting = false
	s.starting[min(st.priority, 7)]--
}

// holdLevelLocked returns the lowest priority whose output the writer
// sends now: the highest priority with a stream starting within
// priorityHold, or 7. Output of lower priorities waits, and wait tells
// when the hold ends (0 without one).
func (s *session) holdLevelLocked(now time.Time) (level int, wait time.Duration) {
	for p := range 7 {
		if s.starting[p] > 0 {
			if left := priorityHold - now.Sub(s.lastStart[p]); left > 0 {
				return p, left
			}
		}
	}
	return 7, 0
}

// closedStreams remembers the last streams that ended, so that a frame for
// one of them can be told from a frame for a stream that never was, and a
// stream this side reset (whose late frames are ignored, RFC 9113 §5.1)
// from one that ended otherwise. It is a ring: memory is bounded, and a
// stream long gone is forgotten. It grows as streams end, so a session
// that served a few holds a few words.
type closedStreams struct {
	on   bool
	ids  []uint32 // stream ids, closedByReset set for those this side reset
	next int      // where the next id goes once the ring is full
}

// closedRing is how many ended streams a session remembers.
const closedRing = 256

// closedByReset marks an id in closedStreams.ids (stream ids have 31 bits).
const closedByReset = 1 << 31

// track makes c remember; a protocol that does not ask for it (SPDY)
// keeps nothing.
func (c *closedStreams) track() { c.on = true }

func (c *closedStreams) add(id uint32, reset bool) {
	if !c.on || id == 0 {
		return
	}
	if reset {
		id |= closedByReset
	}
	if len(c.ids) < closedRing {
		c.ids = append(c.ids, id)
		return
	}
	c.ids[c.next] = id
	c.next = (c.next + 1) % closedRing
}

// lookup reports whether id is among the streams remembered, and whether
// this side reset it.
func (c *closedStreams) lookup(id uint32) (found, reset bool) {
	for _, x := range c.ids {
		if x&^closedByReset == id {
			return true, x&closedByReset != 0
		}
	}
	return false, false
}

// ctrlFrame is a queued control frame; the protocol encodes it.
type ctrlFrame struct {
	kind     ctrlKind
	streamID uint32
	code     errCode // RST_STREAM, GOAWAY
	value    uint64  // WINDOW_UPDATE delta, PING id or opaque data
}

type ctrlKind uint8

const (
	ctrlRst ctrlKind = iota + 1
	ctrlPing
	ctrlPingAck // an echo of the peer's PING
	ctrlWindowUpdate
	ctrlGoAway
	ctrlSettingsAck
)

// writeBuf collects encoded frames for one write to the connection.
type writeBuf struct{ b []byte }

func (w *writeBuf) Write(p []byte) (int, error) {
	if w.b == nil {
		w.b = (*writeBufPool.Get().(*[]byte))[:0]
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// release returns a large buffer to the pool once it is flushed, so an
// idle session holds none.
func (w *writeBuf) release() {
	if w.b != nil {
		b := w.b[:0]
		w.b = nil
		writeBufPool.Put(&b)
	}
}

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, writeBatch+DefaultMaxDataFrame+64); return &b }}

// writeBatch is how many encoded bytes the writer gathers before it writes
// them to the connection.
const writeBatch = 32 << 10

// newSession makes the core of a session on c, a connection that speaks
// proto. The protocol sets w and its flow-control shape, queues its
// opening frames, and then starts it with serve.
func newSession(c net.Conn, proto string, cfg *settings, stats *listenerCounters, client bool) *session {
	s := &session{
		client:         client,
		stats:          stats,
		cfg:            cfg,
		conn:           c,
		id:             sessionIDs.Add(1),
		proto:          proto,
		done:           make(chan struct{}),
		flushed:        make(chan struct{}),
		poolOwner:      newPoolOwner(),
		baseContext:    cfg.baseContext,
		writeWake:      make(chan struct{}, 1),
		ctrlTaken:      make(chan struct{}, 1),
		recvSpace:      make(chan struct{}, 1),
		streams:        make(map[uint32]*stream),
		sendFlow:       outflow{n: DefaultInitialWindowSize},
		recvFlow:       inflow{avail: DefaultInitialWindowSize},
		peerInitWindow: DefaultInitialWindowSize,
		maxSendFrame:   DefaultMaxDataFrame,
		resets:         newBudget(cfg.resetBurst, cfg.resetRate),
		glitches:       newBudget(cfg.glitchBurst, cfg.glitchRate),
		nextStreamID:   2,
		holdLevel:      7,
	}
	if client {
		s.nextStreamID = 1
	}
	s.onStream = s.startRequest
	s.remote = c.RemoteAddr().String()
	s.log.base, s.log.s = cfg.log, s
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		s.tls = &st
	}
	return s
}

// serve runs the session until it ends.
func (s *session) serve() {
	s.log.Debug("spdymux: session started")
	// The handshake deadline goes on for the first frame read, not for
	// writes: the writer sets its own per write.
	s.conn.SetWriteDeadline(time.Time{})
	s.mu.Lock()
	s.armIdleLocked()
	s.mu.Unlock()
	s.writerWG.Add(1)
	go s.writeLoop()
	err := s.readLoop()
	s.mu.Lock()
	flushing := s.closeAfterFlush
	s.mu.Unlock()
	if flushing {
		// GOAWAY is on its way out. Once the writer has half-closed, read
		// and drop what the peer still sends until it closes too, so the
		// close does not reset the connection under the GOAWAY; bound both
		// waits for a peer that does not read or does not close.
		t := time.NewTimer(closeGrace)
		select {
		case <-s.flushed:
			s.conn.SetReadDeadline(time.Now().Add(drainTime))
			io.Copy(io.Discard, s.conn)
		case <-s.done:
		case <-t.C:
		}
		t.Stop()
	}
	s.close(err)
	s.writerWG.Wait()
	s.log.Debug("spdymux: session ended", "cause", s.cause())
}

const (
	// closeGrace bounds the time given to the writer to flush GOAWAY and
	// to the peer to close its side after it.
	closeGrace = 5 * time.Second
	// drainTime bounds the reading of what a peer that broke the
	// protocol still sends after our GOAWAY.
	drainTime = time.Second
	// lingerTime bounds the wait for a peer to close its side after our
	// final GOAWAY and FIN.
	lingerTime = time.Second
)

// readLoop reads frames until the connection ends or a session error, and
// returns the cause.
func (s *session) readLoop() error {
	for {
		if err := s.waitCtrlSpace(); err != nil {
			return err
		}
		if err := s.act(s.w.readFrame()); err != nil {
			return err
		}
		if s.fatal.Load() {
			return s.cause()
		}
	}
}

// streamErr is a frame handler's verdict that one stream must be reset:
// act sends RST_STREAM with code and the session goes on.
type streamErr struct {
	id     uint32
	code   errCode
	reason string
}

func (e *streamErr) Error() string {
	return fmt.Sprintf("spdymux: stream %d: %s", e.id, e.reason)
}

// connErr is a frame handler's verdict that the session must end: act
// sends GOAWAY with code and the reader stops.
type connErr struct {
	code errCode
	err  error
}

func (e *connErr) Error() string { return e.err.Error() }
func (e *connErr) Unwrap() error { return e.err }

// protocolError returns a connErr with codeProtocol.
func protocolError(format string, args ...any) error {
	return &connErr{code: codeProtocol, err: fmt.Errorf("spdymux: "+format, args...)}
}

// act is the one place where the verdict of a frame handler becomes a
// wire action: nil goes on; a streamErr resets its stream and goes on; a
// connErr sends GOAWAY and returns the error, which ends the reader, as
// does any other error (the connection ended).
func (s *session) act(err error) error {
	if err == nil {
		return nil
	}
	var se *streamErr
	var ce *connErr
	switch {
	case errors.As(err, &se):
		s.log.Info("spdymux: stream error", "stream", se.id, "code", s.w.codeName(se.code), "reason", se.reason)
		s.stats.streamErrors.Add(1)
		s.mu.Lock()
		if st := s.streams[se.id]; st != nil {
			s.resetLocked(st, se.code)
		} else {
			s.resetIDLocked(se.id, se.code)
		}
		// Every reset the peer earns is a glitch: a peer that makes this
		// side reset streams (MadeYouReset, CVE-2025-8671) is not seen by
		// the count of its own resets.
		s.glitchLocked(se.reason)
		s.mu.Unlock()
		return nil
	case errors.As(err, &ce):
		s.mu.Lock()
		s.sessionErrorLocked(ce.code, ce.err)
		s.mu.Unlock()
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Info("spdymux: connection ended inside a frame")
	}
	return err
}

func (s *session) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// close ends the session at once: every stream fails with err, the
// connection is closed.
func (s *session) close(err error) {
	s.closeOnce.Do(func() {
		if err == nil {
			err = errSessionClosed
		}
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.failAllLocked()
		if s.idleTimer != nil {
			s.idleTimer.Stop()
		}
		s.writerStopped = true
		s.mu.Unlock()
		close(s.done)
		s.conn.Close()
	})
}

// failAllLocked fails every open stream with the session's cause.
func (s *session) failAllLocked() {
	for _, st := range s.streams {
		st.failLocked(&sessionClosedError{cause: s.err})
		s.removeLocked(st)
	}
}

var errSessionClosed = errors.New("spdymux: session closed")

// sessionClosedError is what Read and Write return once the session is
// gone; it matches net.ErrClosed.
type sessionClosedError struct{ cause error }

func (e *sessionClosedError) Error() string {
	return "spdymux: session closed: " + e.cause.Error()
}
func (e *sessionClosedError) Unwrap() error        { return e.cause }
func (e *sessionClosedError) Is(target error) bool { return target == net.ErrClosed }

// goAway sends GOAWAY with code. With codeNo the session drains: it takes
// no new streams and closes when the open ones are done. With an error
// code it closes as soon as GOAWAY is written.
func (s *session) goAway(code errCode, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goAwayLocked(code, cause)
}

func (s *session) goAwayLocked(code errCode, cause error) {
	if s.err != nil {
		return
	}
	if !s.goingAway {
		s.goingAway = true
		// The last stream of the peer's that was accepted, not refused
		// (SPDY/3 §2.6.6, RFC 9113 §6.8).
		s.ctrl = append(s.ctrl, ctrlFrame{kind: ctrlGoAway, streamID: s.lastAccepted, code: code})
	}
	if code != codeNo {
		if cause == nil {
			cause = fmt.Errorf("spdymux: session error %s", s.w.codeName(code))
		}
		s.err = cause
		s.failAllLocked()
		s.closeAfterFlush = true
	} else if len(s.streams) == 0 {
		s.closeAfterFlush = true
	}
	s.wakeWriterLocked()
}

// sessionErrorLocked ends the session with GOAWAY code, logging err.
func (s *session) sessionErrorLocked(code errCode, err error) {
	s.log.Warn("spdymux: session error", "code", s.w.codeName(code), "err", err)
	s.stats.sessionErrors.Add(1)
	s.goAwayLocked(code, err)
}

// neverOpenedLocked reports whether stream id was never opened by either
// side: a frame for it is for "a stream that never was" (SPDY/3 §2.2.2),
// an idle stream in HTTP/2 (RFC 9113 §5.1).
func (s *session) neverOpenedLocked(id uint32) bool {
	switch {
	case (id%2 == 1) != s.client:
		return id > s.lastPeerStream
	case !s.client:
		// A server's streams are its pushes: the peer knows those it
		// was told of.
		return id > s.push.lastPromised
	}
	return id >= s.nextStreamID
}

// queueCtrlLocked queues a control frame for the writer. A peer that makes
// the queue overflow (by not reading what it asks for) is cut off.
func (s *session) queueCtrlLocked(f ctrlFrame) {
	if s.err != nil {
		return
	}
	if len(s.ctrl) >= s.cfg.maxQueuedControlFrames {
		s.log.Warn("spdymux: too many queued control frames; closing session", "limit", s.cfg.maxQueuedControlFrames)
		s.stats.sessionErrors.Add(1)
		s.stats.limitHit(limitMaxQueuedControlFrames)
		s.goAwayLocked(codeCalm, errControlFlood)
		return
	}
	s.ctrl = append(s.ctrl, f)
	s.wakeWriterLocked()
}

var errControlFlood = errors.New("spdymux: control frame queue overflow")

// waitCtrlSpace holds the reader back while half the control-frame queue
// is taken: a peer that makes the session answer many frames (PINGs,
// frames that earn a RST_STREAM) gets its answers at the pace the writer
// can send them, and one that does not read is cut off.
func (s *session) waitCtrlSpace() error {
	var stall *time.Timer
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	for {
		s.mu.Lock()
		full := len(s.ctrl) >= s.cfg.maxQueuedControlFrames/2
		s.mu.Unlock()
		if !full {
			return nil
		}
		if stall == nil {
			d := ctrlStall
			if s.cfg.writeTimeout > 0 {
				// Before a blocked write times out, so the cause is named.
				d = min(d, s.cfg.writeTimeout/2)
			}
			stall = time.NewTimer(d)
		}
		select {
		case <-s.ctrlTaken:
		case <-s.done:
			return s.cause()
		case <-stall.C:
			// The writer took nothing for ctrlStall: the peer does not
			// read the answers it keeps asking for.
			s.mu.Lock()
			s.log.Warn("spdymux: the client does not read the control frames it causes; closing session",
				"queued", len(s.ctrl))
			s.stats.limitHit(limitMaxQueuedControlFrames)
			s.abuseLocked(errControlFlood)
			s.mu.Unlock()
			return errControlFlood
		}
	}
}

// ctrlStall is how long the reader waits for the writer to take control
// frames from a half-full queue before it gives the peer up.
const ctrlStall = time.Second

// resetLocked sends RST_STREAM for st and ends it. A push the peer was
// not told of yet ends without one.
func (s *session) resetLocked(st *stream, code errCode) {
	st.failLocked(&streamError{id: st.id, code: code, name: s.w.codeName(code)})
	st.resetHere = true
	s.removeLocked(st)
	if st.pushed() && !st.push.promised {
		return
	}
	s.queueCtrlLocked(ctrlFrame{kind: ctrlRst, streamID: st.id, code: code})
}

// resetIDLocked sends RST_STREAM for stream id, which is not open.
func (s *session) resetIDLocked(id uint32, code errCode) {
	if found, _ := s.closed.lookup(id); !found {
		s.closed.add(id, true)
	}
	s.queueCtrlLocked(ctrlFrame{kind: ctrlRst, streamID: id, code: code})
}

// peerResetLocked ends st for the peer's RST_STREAM: never answered with
// one (SPDY/3 §2.4.2, RFC 9113 §5.4.2), and counted against the reset
// budget, unless st is a push: a client may refuse or cancel every push
// it is sent (their number has bounds of its own).
func (s *session) peerResetLocked(st *stream, code errCode, wireName string) {
	st.failLocked(&streamError{id: st.id, code: code, name: wireName, remote: true})
	s.removeLocked(st)
	if !st.pushed() {
		s.spendResetLocked()
	}
}

// addStreamLocked makes st one of the session's open streams.
func (s *session) addStreamLocked(st *stream) {
	s.streams[st.id] = st
	s.stats.activeStreams.Add(1)
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
}

// removeLocked takes st out of the session's open streams.
func (s *session) removeLocked(st *stream) {
	if st.removed {
		return
	}
	st.removed = true
	s.startedLocked(st)
	delete(s.streams, st.id)
	s.closed.add(st.id, st.resetHere)
	s.stats.activeStreams.Add(-1)
	if st.push != nil {
		s.pushEndedLocked(st)
	}
	if s.streamGone != nil {
		close(s.streamGone)
		s.streamGone = nil
	}
	if len(s.streams) == 0 && s.err == nil {
		if s.goingAway {
			s.closeAfterFlush = true
			s.wakeWriterLocked()
		}
		s.armIdleLocked()
	}
}

// maybeDoneLocked removes st once both sides have sent FIN.
func (s *session) maybeDoneLocked(st *stream) {
	if st.recvFin && st.sentFin {
		s.removeLocked(st)
	}
}

// armIdleLocked starts the idle timer; it is called when the last open
// stream goes.
func (s *session) armIdleLocked() {
	if s.cfg.idleTimeout < 0 {
		return
	}
	if s.idleTimer == nil {
		s.idleTimer = time.AfterFunc(s.cfg.idleTimeout, s.idle)
		return
	}
	s.idleTimer.Reset(s.cfg.idleTimeout)
}

func (s *session) idle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.streams) == 0 && !s.goingAway && s.err == nil {
		s.log.Debug("spdymux: idle session closed")
		s.stats.limitHit(limitIdleTimeout)
		s.goAwayLocked(codeNo, nil)
	}
}

// trace reports a frame read or written to Config.Trace.
func (s *session) trace(e FrameEvent) {
	e.SessionID, e.Proto = s.id, s.proto
	if e.Name == "" {
		e.Name = spdyFrameName(e.Type)
	}
	s.cfg.trace(e)
}

// errCode is a protocol-neutral error code; each protocol's wire.code
// gives its value on the wire.
type errCode uint8

const (
	codeNo                 errCode = iota // GOAWAY of a graceful end: SPDY OK, HTTP/2 NO_ERROR
	codeProtocol                          // PROTOCOL_ERROR
	codeInternal                          // INTERNAL_ERROR
	codeFlowControl                       // FLOW_CONTROL_ERROR
	codeRefused                           // REFUSED_STREAM
	codeCancel                            // CANCEL
	codeStreamClosed                      // a frame after the peer's FIN: SPDY STREAM_ALREADY_CLOSED, HTTP/2 STREAM_CLOSED
	codeInvalidStream                     // a frame for a stream that never was: SPDY INVALID_STREAM, HTTP/2 PROTOCOL_ERROR
	codeStreamInUse                       // SPDY STREAM_IN_USE (a second SYN_REPLY); HTTP/2 PROTOCOL_ERROR
	codeCalm                              // the peer is abusive: HTTP/2 ENHANCE_YOUR_CALM, SPDY PROTOCOL_ERROR
	codeFrameSize                         // SPDY/3 FRAME_TOO_LARGE, HTTP/2 FRAME_SIZE_ERROR
	codeCompression                       // HTTP/2 COMPRESSION_ERROR
	codeUnsupportedVersion                // SPDY UNSUPPORTED_VERSION
)

// reprioritizeLocked gives st a new priority, 0 (highest) to 7: for its
// next turn in the writer's schedule, and in the pool if it still waits
// for a worker slot.
func (s *session) reprioritizeLocked(st *stream, priority uint8) {
	if st.starting {
		s.startedLocked(st)
		st.priority = priority
		s.startLocked(st)
	}
	st.priority = priority
	if st.entry.owner != nil {
		s.cfg.pool.reprioritize(&st.entry, priority)
	}
}

// maxSpareFields is the most field slices a session keeps for reuse, and
// maxSpareFieldCap the largest it keeps.
const (
	maxSpareFields   = 4
	maxSpareFieldCap = 64
)

// fieldsLocked returns a slice of n fields for a header block: a spare
// one when it is large enough.
func (s *session) fieldsLocked(n int) []httpconv.HeaderField {
	if k := len(s.spareFields); k > 0 && cap(s.spareFields[k-1]) >= n {
		f := s.spareFields[k-1][:n]
		s.spareFields[k-1] = nil
		s.spareFields = s.spareFields[:k-1]
		return f
	}
	return make([]httpconv.HeaderField, n)
}

// recycleFieldsLocked keeps f, a header block nobody holds any more, for
// fieldsLocked; cleared, so that it keeps no string alive.
func (s *session) recycleFieldsLocked(f []httpconv.HeaderField) {
	if cap(f) == 0 || cap(f) > maxSpareFieldCap || len(s.spareFields) >= maxSpareFields {
		return
	}
	f = f[:cap(f)]
	clear(f)
	s.spareFields = append(s.spareFields, f[:0])
}
