package spdymux

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
	"github.com/spdymux/spdymux/spdy"
)

var (
	sessionIDs atomic.Uint64 // process-wide SessionID counter
	connIDs    atomic.Uint64 // process-wide ConnID counter for secondary connections
)

// session is one SPDY session: the seed's master connection. Its reader
// (readLoop, on the goroutine that calls serve) reads and inflates every
// frame in arrival order and dispatches it; its writer (writeLoop) owns the
// deflate context, the schedule and the output buffer. Streams talk to
// both through the state guarded by mu.
type session struct {
	l       *Listener // nil for a client session
	client  bool
	stats   *listenerCounters
	cfg     *settings
	log     *slog.Logger
	conn    net.Conn
	id      uint64
	proto   string
	version spdy.Version
	flow    bool // SPDY/3 or later: stream flow control
	flow31  bool // SPDY/3.1: session flow control too
	tls     *tls.ConnectionState
	fr      *spdy.Framer

	// poolOwner is the session's share of cfg.pool, guarded by the pool.
	poolOwner *poolOwner

	done      chan struct{} // closed by close
	flushed   chan struct{} // closed by the writer once GOAWAY is written and output half-closed
	closeOnce sync.Once
	writeWake chan struct{} // cap 1: there is something to write
	ctrlTaken chan struct{} // cap 1: the writer took control frames from the queue
	recvSpace chan struct{} // cap 1: buffered bytes were read or dropped (the reader may wait for room)
	writerWG  sync.WaitGroup

	// Owned by readLoop:
	firstFrame bool

	// fatal is set once the session ends for abuse: the reader stops.
	fatal atomic.Bool

	// Owned by writeLoop (and by newSession before it starts):
	wbuf writeBuf

	mu sync.Mutex // guards what follows and the guarded fields of every stream
	// err is the first cause of the session's end.
	err               error
	streams           map[spdy.StreamID]*stream
	lastPeerStream    spdy.StreamID // the last stream the peer opened
	lastAccepted      spdy.StreamID // the last stream of the peer's that was not refused
	nextStreamID      spdy.StreamID // the next stream this side opens
	synQueue          []*stream     // streams opened here, SYN_STREAM not yet written
	pings             map[uint32]chan struct{}
	nextPing          uint32
	ctrl              []ctrlFrame
	sched             [8]streamQueue
	sendWindow        int32 // SPDY/3.1 session send window
	peerInitialWindow int32 // from the peer's SETTINGS
	recvWindow        int32 // SPDY/3.1 session receive window left
	recvBuffered      int   // DATA bytes buffered over all streams
	sessionCredit     int32 // session window credit not yet sent
	heldCredit        int32 // credit held back while recvBuffered is over budget
	goingAway         bool  // GOAWAY sent: no new streams
	closeAfterFlush   bool  // close once the queued control frames are written
	idleTimer         *time.Timer
	resets            budget // streams the peer may still reset
	glitches          budget // useless frames the peer may still send
	settingsSeen      bool
	blocked           int           // streams whose queued data waits for window
	streamGone        chan struct{} // closed and cleared when a stream ends
	peerMaxStreams    uint32
	peerGoneAway      bool
}

// ctrlFrame is a queued control frame.
type ctrlFrame struct {
	typ      spdy.FrameType
	streamID spdy.StreamID
	value    uint32 // RST_STREAM status, PING id, WINDOW_UPDATE delta, GOAWAY status
}

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

func newServerSession(l *Listener, c net.Conn, proto string) *session {
	s := newSession(c, proto, l.cfg, &l.stats, false)
	s.l = l
	return s
}

// newSession makes a session on c, a connection that speaks proto, and
// queues its opening frames. Start it with serve.
func newSession(c net.Conn, proto string, cfg *settings, stats *listenerCounters, client bool) *session {
	s := &session{
		client:            client,
		stats:             stats,
		cfg:               cfg,
		conn:              c,
		id:                sessionIDs.Add(1),
		proto:             proto,
		done:              make(chan struct{}),
		flushed:           make(chan struct{}),
		poolOwner:         newPoolOwner(),
		writeWake:         make(chan struct{}, 1),
		ctrlTaken:         make(chan struct{}, 1),
		recvSpace:         make(chan struct{}, 1),
		streams:           make(map[spdy.StreamID]*stream),
		sendWindow:        DefaultInitialWindowSize,
		peerInitialWindow: DefaultInitialWindowSize,
		recvWindow:        DefaultInitialWindowSize,
		firstFrame:        !client,
		resets:            newBudget(cfg.resetBurst, cfg.resetRate),
		glitches:          newBudget(cfg.glitchBurst, cfg.glitchRate),
		nextStreamID:      2,
		nextPing:          2,
	}
	if client {
		s.nextStreamID, s.nextPing = 1, 1
	}
	s.log = cfg.log.With("session", s.id, "proto", proto, "remote", c.RemoteAddr().String())
	switch proto {
	case ProtoSPDY2:
		s.version = spdy.V2
	case ProtoSPDY3:
		s.version, s.flow = spdy.V3, true
	default:
		s.version, s.flow, s.flow31 = spdy.V3, true, true
	}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		s.tls = &st
	}
	s.fr = spdy.NewFramer(&s.wbuf, bufio.NewReaderSize(c, 4<<10), s.version)
	s.fr.MaxHeaderBytes = cfg.maxHeaderBytes
	s.fr.MaxHeaderFields = cfg.maxHeaderFields
	s.fr.MaxControlFrameSize = cfg.maxControlFrameSize
	s.fr.MaxDataFrameSize = cfg.maxDataFrameSize
	if s.version == spdy.V2 {
		// A SPDY/2 stream buffers at most V2StreamBuffer, or one frame
		// when its buffer is empty: bound that frame too.
		s.fr.MaxDataFrameSize = min(cfg.maxDataFrameSize, max(cfg.v2StreamBuffer, 64<<10))
	}
	s.fr.MaxSettings = cfg.maxSettingsEntries

	// SETTINGS go first (SPDY/3 §2.6.4), then the session window beyond
	// its initial 64 KiB (3.1 §2.6.8).
	var settings []spdy.Setting
	if !client {
		settings = append(settings, spdy.Setting{ID: spdy.SettingMaxConcurrentStreams, Value: cfg.maxConcurrentStreams})
	}
	window := uint32(cfg.initialWindowSize)
	if !s.flow {
		// SPDY/2 has no flow control, but some peers (node's
		// spdy-transport) apply SPDY/3's to it and stall after 64 KiB
		// unless told otherwise; SPDY/2 defines the setting (id 7), so
		// open the window all the way. SPDY/2 streams are bounded by
		// V2StreamBuffer and TCP back-pressure instead.
		window = 1<<31 - 1
	}
	settings = append(settings, spdy.Setting{ID: spdy.SettingInitialWindowSize, Value: window})
	s.fr.WriteSettings(0, settings...)
	s.traceOut(0, spdy.TypeSettings, 0, 0)
	if s.flow31 && cfg.sessionWindowSize > DefaultInitialWindowSize {
		before := len(s.wbuf.b)
		s.fr.WriteWindowUpdate(0, uint32(cfg.sessionWindowSize-DefaultInitialWindowSize))
		s.traceOut(before, spdy.TypeWindowUpdate, 0, 0)
		s.recvWindow = cfg.sessionWindowSize
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
		for _, st := range s.streams {
			st.failLocked(&sessionClosedError{cause: s.err})
			s.removeLocked(st)
		}
		if s.idleTimer != nil {
			s.idleTimer.Stop()
		}
		s.mu.Unlock()
		close(s.done)
		s.conn.Close()
	})
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

// goAway sends GOAWAY with status. With GoAwayOK the session drains: it
// takes no new streams and closes when the open ones are done. With an
// error status it closes as soon as GOAWAY is written.
func (s *session) goAway(status spdy.GoAwayStatus, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goAwayLocked(status, cause)
}

func (s *session) goAwayLocked(status spdy.GoAwayStatus, cause error) {
	if s.err != nil {
		return
	}
	if !s.goingAway {
		s.goingAway = true
		// last-good-stream-id: the last stream of the peer's that was
		// accepted, not refused (SPDY/3 §2.6.6).
		s.ctrl = append(s.ctrl, ctrlFrame{typ: spdy.TypeGoAway, streamID: s.lastAccepted, value: uint32(status)})
	}
	if status != spdy.GoAwayOK {
		if cause == nil {
			cause = fmt.Errorf("spdymux: session error %v", status)
		}
		s.err = cause
		for _, st := range s.streams {
			st.failLocked(&sessionClosedError{cause: cause})
			s.removeLocked(st)
		}
		s.closeAfterFlush = true
	} else if len(s.streams) == 0 {
		s.closeAfterFlush = true
	}
	signal(s.writeWake)
}

// neverOpenedLocked reports whether stream id was never opened by either
// side: a frame for it is for "a stream that never was" (SPDY/3 §2.2.2).
func (s *session) neverOpenedLocked(id spdy.StreamID) bool {
	if (id%2 == 1) == s.client {
		return id >= s.nextStreamID
	}
	return id > s.lastPeerStream
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
		s.goAwayLocked(spdy.GoAwayProtocolError, errControlFlood)
		return
	}
	s.ctrl = append(s.ctrl, f)
	signal(s.writeWake)
}

var errControlFlood = errors.New("spdymux: control frame queue overflow")

// resetLocked sends RST_STREAM for st and ends it.
func (s *session) resetLocked(st *stream, status spdy.RstStatus) {
	st.failLocked(&streamError{id: st.id, status: status})
	s.removeLocked(st)
	s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: st.id, value: uint32(status)})
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
	delete(s.streams, st.id)
	s.stats.activeStreams.Add(-1)
	if s.streamGone != nil {
		close(s.streamGone)
		s.streamGone = nil
	}
	if len(s.streams) == 0 && s.err == nil {
		if s.goingAway {
			s.closeAfterFlush = true
			signal(s.writeWake)
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
		s.goAwayLocked(spdy.GoAwayOK, nil)
	}
}

// consumedLocked credits n bytes read from st by its connection.
func (s *session) consumedLocked(st *stream, n int) {
	s.unbufferedLocked(n)
	if s.version == spdy.V2 || st.recvFin || st.err != nil {
		return
	}
	if st.windowCoversRest() {
		return
	}
	st.recvUnacked += int32(n)
	// Credit the stream window once a quarter of it was read.
	if st.recvUnacked >= s.cfg.initialWindowSize/4 {
		st.recvWindow += st.recvUnacked
		s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeWindowUpdate, streamID: st.id, value: uint32(st.recvUnacked)})
		st.recvUnacked = 0
	}
}

// unbufferedLocked notes that n buffered bytes were read or dropped. Each
// received byte was credited to the session window once, when it was
// buffered or, over budget, into heldCredit; held credit goes out once the
// session is back under its budget.
func (s *session) unbufferedLocked(n int) {
	s.recvBuffered -= n
	signal(s.recvSpace)
	if s.heldCredit > 0 && s.recvBuffered < int(s.cfg.sessionWindowSize) {
		s.creditSessionLocked(s.heldCredit)
		s.heldCredit = 0
	}
}

// creditSessionLocked gives the peer n more bytes of SPDY/3.1 session
// window, in WINDOW_UPDATE frames of at least a quarter of the window.
func (s *session) creditSessionLocked(n int32) {
	if !s.flow31 || n <= 0 {
		return
	}
	s.sessionCredit += n
	if s.sessionCredit >= s.cfg.sessionWindowSize/4 {
		s.recvWindow += s.sessionCredit
		s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeWindowUpdate, streamID: 0, value: uint32(s.sessionCredit)})
		s.sessionCredit = 0
	}
}

// readLoop reads frames until the connection ends or a session error. It
// returns the cause.
func (s *session) readLoop() error {
	for {
		if err := s.waitCtrlSpace(); err != nil {
			return err
		}
		f, err := s.fr.ReadFrame()
		if err != nil {
			var se *spdy.StreamError
			var ge *spdy.SessionError
			switch {
			case errors.As(err, &se):
				s.log.Info("spdymux: stream error", "stream", se.StreamID, "status", se.Status, "err", se.Err)
				s.stats.streamErrors.Add(1)
				s.mu.Lock()
				if st := s.streams[se.StreamID]; st != nil {
					s.resetLocked(st, se.Status)
				} else {
					s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: se.StreamID, value: uint32(se.Status)})
				}
				s.glitchLocked("frame with a stream error")
				s.mu.Unlock()
				if s.fatal.Load() {
					return se
				}
				continue
			case errors.As(err, &ge):
				s.sessionError(ge.Status, err)
				return err
			case errors.Is(err, io.EOF):
				return err
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				s.log.Info("spdymux: connection ended inside a frame")
			}
			return err
		}
		if s.cfg.trace != nil {
			s.traceIn(f)
		}
		if s.firstFrame {
			s.firstFrame = false
			s.conn.SetReadDeadline(time.Time{})
		}
		if err := s.dispatch(f); err != nil {
			return err
		}
		if s.fatal.Load() {
			return s.cause()
		}
	}
}

func (s *session) traceIn(f spdy.Frame) {
	e := FrameEvent{SessionID: s.id, Length: s.fr.LastFrameLength()}
	switch f := f.(type) {
	case *spdy.DataFrame:
		e.StreamID, e.Flags = uint32(f.StreamID), f.Flags
	case *spdy.SynStreamFrame:
		e.Type, e.StreamID, e.Flags = spdy.TypeSynStream, uint32(f.StreamID), f.Flags
	case *spdy.SynReplyFrame:
		e.Type, e.StreamID, e.Flags = spdy.TypeSynReply, uint32(f.StreamID), f.Flags
	case *spdy.RstStreamFrame:
		e.Type, e.StreamID = spdy.TypeRstStream, uint32(f.StreamID)
	case *spdy.SettingsFrame:
		e.Type, e.Flags = spdy.TypeSettings, f.Flags
	case *spdy.NoopFrame:
		e.Type = spdy.TypeNoop
	case *spdy.PingFrame:
		e.Type = spdy.TypePing
	case *spdy.GoAwayFrame:
		e.Type = spdy.TypeGoAway
	case *spdy.HeadersFrame:
		e.Type, e.StreamID, e.Flags = spdy.TypeHeaders, uint32(f.StreamID), f.Flags
	case *spdy.WindowUpdateFrame:
		e.Type, e.StreamID = spdy.TypeWindowUpdate, uint32(f.StreamID)
	case *spdy.CredentialFrame:
		e.Type = spdy.TypeCredential
	case *spdy.UnknownFrame:
		e.Type, e.Flags = f.Type, f.Flags
	}
	s.cfg.trace(e)
}

// waitCtrlSpace holds the reader back while half the control-frame queue
// is taken: a peer that makes the session answer many frames (PINGs,
// frames that earn a RST_STREAM) gets its answers at the pace the writer
// can send them, and one that does not read is cut off by WriteTimeout.
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
			s.abuseLocked(errControlFlood)
			s.mu.Unlock()
			return errControlFlood
		}
	}
}

// ctrlStall is how long the reader waits for the writer to take control
// frames from a half-full queue before it gives the peer up.
const ctrlStall = time.Second

// sessionError ends the session with GOAWAY status, logging err.
func (s *session) sessionError(status spdy.GoAwayStatus, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessionErrorLocked(status, err)
}

func (s *session) sessionErrorLocked(status spdy.GoAwayStatus, err error) {
	s.log.Warn("spdymux: session error", "status", status, "err", err)
	s.stats.sessionErrors.Add(1)
	s.goAwayLocked(status, err)
}

// protocolErrorLocked ends the session with GOAWAY PROTOCOL_ERROR and
// returns the error, for the reader to stop with.
func (s *session) protocolErrorLocked(format string, args ...any) error {
	err := fmt.Errorf("spdymux: "+format, args...)
	s.sessionErrorLocked(spdy.GoAwayProtocolError, err)
	return err
}

func (s *session) dispatch(f spdy.Frame) error {
	switch f := f.(type) {
	case *spdy.DataFrame:
		return s.onData(f)
	case *spdy.SynStreamFrame:
		return s.onSynStream(f)
	case *spdy.RstStreamFrame:
		s.onRstStream(f)
	case *spdy.SettingsFrame:
		return s.onSettings(f)
	case *spdy.PingFrame:
		// Echo the peer's pings: odd ids come from a client, even ones
		// from a server. A ping of our own parity is a reply (SPDY/3
		// §2.6.5), or nothing we sent, and is never echoed.
		s.mu.Lock()
		if (f.ID%2 == 1) != s.client {
			s.queueCtrlLocked(ctrlFrame{typ: spdy.TypePing, value: f.ID})
		} else if c := s.pings[f.ID]; c != nil {
			delete(s.pings, f.ID)
			close(c)
		} else {
			s.glitchLocked("PING of our parity that we did not send")
		}
		s.mu.Unlock()
	case *spdy.GoAwayFrame:
		s.mu.Lock()
		s.peerGoneAway = true
		s.failUnprocessedLocked(f.LastGoodStreamID)
		s.mu.Unlock()
		if f.Status != spdy.GoAwayOK {
			s.log.Info("spdymux: peer sent GOAWAY", "status", f.Status, "last", f.LastGoodStreamID)
		}
	case *spdy.HeadersFrame:
		return s.onHeaders(f)
	case *spdy.WindowUpdateFrame:
		return s.onWindowUpdate(f)
	case *spdy.SynReplyFrame:
		if s.client {
			s.onSynReply(f)
			return nil
		}
		// A server opens no streams (no push), so a client has nothing
		// to reply to.
		s.mu.Lock()
		s.glitchLocked("SYN_REPLY from a client")
		if st := s.streams[f.StreamID]; st != nil {
			s.resetLocked(st, spdy.ProtocolError)
		} else {
			s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: f.StreamID, value: uint32(spdy.InvalidStream)})
		}
		s.mu.Unlock()
	case *spdy.NoopFrame, *spdy.CredentialFrame, *spdy.UnknownFrame:
		// Ignored: NOOP by definition, CREDENTIAL is deprecated in 3.1,
		// unknown control frames must be ignored (SPDY/3 §2.2.1).
		s.mu.Lock()
		s.glitchLocked("ignored control frame")
		s.mu.Unlock()
	}
	return nil
}

func (s *session) onSynStream(f *spdy.SynStreamFrame) error {
	id := f.StreamID
	s.mu.Lock()
	if s.client {
		// Server push is not taken: refuse it (SPDY/3 §3.3.1).
		s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: id, value: uint32(spdy.RefusedStream)})
		s.mu.Unlock()
		return nil
	}
	if s.err != nil {
		s.mu.Unlock()
		return errSessionClosed
	}
	if s.goingAway {
		// After GOAWAY, new streams are ignored (SPDY/3 §2.6.6).
		s.mu.Unlock()
		return nil
	}
	if id == 0 || id%2 == 0 {
		defer s.mu.Unlock()
		return s.protocolErrorLocked("SYN_STREAM with id %d: a client's ids are odd", id)
	}
	if st := s.streams[id]; st != nil {
		// A second SYN_STREAM for an open stream is a stream error
		// (SPDY/3 §2.3.2).
		s.resetLocked(st, spdy.ProtocolError)
		s.mu.Unlock()
		return nil
	}
	if id <= s.lastPeerStream {
		// Ids must increase (SPDY/3 §2.3.2).
		defer s.mu.Unlock()
		return s.protocolErrorLocked("SYN_STREAM id %d after %d", id, s.lastPeerStream)
	}
	s.lastPeerStream = id
	s.stats.streams.Add(1)
	if f.Flags&spdy.FlagUnidirectional != 0 {
		s.glitchLocked("unidirectional SYN_STREAM from a client")
		s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: id, value: uint32(spdy.ProtocolError)})
		s.mu.Unlock()
		return nil
	}
	if uint32(len(s.streams)) >= s.cfg.maxConcurrentStreams {
		s.stats.refused.Add(1)
		s.glitchLocked("stream over MAX_CONCURRENT_STREAMS")
		s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: id, value: uint32(spdy.RefusedStream)})
		s.mu.Unlock()
		return nil
	}
	st := newStream(s, id, f.Priority)
	st.recvFin = f.Flags&spdy.FlagFin != 0
	s.addStreamLocked(st)
	s.lastAccepted = id
	if raw := s.cfg.rawStreams; raw != nil {
		// A bare byte stream, for tests of the stream layer.
		st.head = errorReplyHeader(s.version, 200, 0)[:2]
		st.headQueued = true
		s.scheduleLocked(st)
		s.mu.Unlock()
		raw(newRawConn(st))
		return nil
	}
	s.mu.Unlock()

	head, req, err := httpconv.AppendRequestHead(nil, int(s.version), f.Header, st.recvFin)
	if err != nil {
		var bad *httpconv.BadRequestError
		if !errors.As(err, &bad) {
			bad = &httpconv.BadRequestError{Status: 400, Reason: err.Error()}
		}
		s.log.Info("spdymux: bad request", "stream", id, "reason", bad.Reason)
		s.mu.Lock()
		s.replyErrorLocked(st, bad.Status, bad.Reason)
		s.mu.Unlock()
		return nil
	}
	c := newStreamConn(st, head, req)
	s.mu.Lock()
	st.wantLength = req.ContentLength
	st.conn = c
	s.mu.Unlock()
	s.cfg.pool.acquire(&c.entry)
	return nil
}

// replyErrorLocked answers st with an HTTP error of the session's own
// making, without the inner server, and drops the request body.
func (s *session) replyErrorLocked(st *stream, status int, reason string) {
	body := []byte(fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), reason))
	if st.err != nil || st.sentHead || st.headQueued {
		s.resetLocked(st, spdy.ProtocolError)
		return
	}
	st.discard = true
	s.dropBufferedLocked(st, len(st.recv)-st.recvOff)
	st.releaseRecvLocked()
	st.head = errorReplyHeader(s.version, status, len(body))
	st.headQueued = true
	st.out = append(st.out, body)
	st.outLen = len(body)
	st.finQueued = true
	s.scheduleLocked(st)
}

func (s *session) onData(f *spdy.DataFrame) error {
	n := len(f.Data)
	fin := f.Flags&spdy.FlagFin != 0
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 && !fin {
		s.glitchLocked("empty DATA frame")
	}
	if s.flow31 {
		s.recvWindow -= int32(n)
		if s.recvWindow < 0 {
			// The session window was overrun; GOAWAY has no
			// FLOW_CONTROL_ERROR, so PROTOCOL_ERROR (as mod_spdy).
			return s.protocolErrorLocked("DATA overran the session window by %d bytes", -s.recvWindow)
		}
	}
	st := s.streams[f.StreamID]
	if st == nil {
		s.creditSessionLocked(int32(n))
		if s.neverOpenedLocked(f.StreamID) {
			// A stream that never was (SPDY/3 §2.2.2).
			s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: f.StreamID, value: uint32(spdy.InvalidStream)})
			s.glitchLocked("DATA for a stream that never was")
		}
		// Otherwise the stream was refused or reset, or has ended: the
		// peer may have sent this before it learned, so drop it quietly.
		return nil
	}
	if st.recvFin {
		// DATA after the peer's FIN (SPDY/3 §2.3.7).
		s.creditSessionLocked(int32(n))
		s.resetLocked(st, s.alreadyClosed())
		s.glitchLocked("frame after FIN")
		return nil
	}
	if s.flow {
		st.recvWindow -= int32(n)
		if st.recvWindow < 0 {
			s.creditSessionLocked(int32(n))
			s.resetLocked(st, spdy.FlowControlError)
			return nil
		}
	}
	st.recvBytes += int64(n)
	if !s.client && st.wantLength >= 0 && (st.recvBytes > st.wantLength || fin && st.recvBytes != st.wantLength) {
		// The body does not match its content-length: the server MUST
		// answer 400 (SPDY/3 §3.2.1).
		s.creditSessionLocked(int32(n))
		st.recvFin = st.recvFin || fin
		s.abortRequestLocked(st, "request body length does not match content-length")
		return nil
	}
	if !s.flow31 {
		// No session flow control: stop reading until the handlers catch
		// up, so the session holds at most SessionWindowSize (or one
		// frame), and a SPDY/2 stream, without any flow control, at most
		// V2StreamBuffer.
		for n > 0 && st.err == nil && !st.discard && s.fullLocked(st, n) {
			s.mu.Unlock()
			select {
			case <-s.recvSpace:
			case <-s.done:
				s.mu.Lock()
				return errSessionClosed
			}
			s.mu.Lock()
		}
	}
	switch {
	case st.discard || st.err != nil:
		// Never buffered: credited at once.
		s.creditSessionLocked(int32(n))
		s.creditDroppedLocked(st, n)
	case n > 0:
		st.appendRecvLocked(f.Data)
		s.recvBuffered += n
		if s.recvBuffered <= int(s.cfg.sessionWindowSize) {
			s.creditSessionLocked(int32(n))
		} else {
			s.heldCredit += int32(n)
		}
	}
	if fin {
		st.recvFin = true
		s.maybeDoneLocked(st)
	}
	signal(st.readWake)
	return nil
}

// fullLocked reports whether n more bytes for st would overfill the
// session's budget or, on SPDY/2, the stream's buffer.
func (s *session) fullLocked(st *stream, n int) bool {
	buffered := len(st.recv) - st.recvOff
	return s.version == spdy.V2 && buffered > 0 && buffered+n > s.cfg.v2StreamBuffer ||
		s.recvBuffered > 0 && s.recvBuffered+n > int(s.cfg.sessionWindowSize)
}

// alreadyClosed is the status for a frame after the peer's FIN:
// STREAM_ALREADY_CLOSED, which SPDY/2 lacks (it has PROTOCOL_ERROR).
func (s *session) alreadyClosed() spdy.RstStatus {
	if s.version == spdy.V2 {
		return spdy.ProtocolError
	}
	return spdy.StreamAlreadyClosed
}

// dropBufferedLocked credits n buffered bytes of st that will never be
// read, so the peer can go on sending what will be dropped.
func (s *session) dropBufferedLocked(st *stream, n int) {
	s.unbufferedLocked(n)
	s.creditDroppedLocked(st, n)
}

// creditDroppedLocked gives back the stream window of n bytes of st that
// no handler will read, once a quarter of the window is due.
func (s *session) creditDroppedLocked(st *stream, n int) {
	if st.flowUnacked(n) {
		s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeWindowUpdate, streamID: st.id, value: uint32(st.takeUnacked())})
	}
}

// windowCoversRest reports whether the stream's receive window already
// covers the rest of a body of known length: then no credit is needed,
// and none goes to a peer that may already have forgotten the stream
// (node's spdy-transport answers such a WINDOW_UPDATE with RST_STREAM).
func (st *stream) windowCoversRest() bool {
	return st.wantLength >= 0 && int64(st.recvWindow) >= st.wantLength-st.recvBytes
}

// flowUnacked counts n discarded bytes towards the next stream
// WINDOW_UPDATE and reports whether one is due.
func (st *stream) flowUnacked(n int) bool {
	if !st.s.flow || st.recvFin || st.windowCoversRest() {
		return false
	}
	st.recvUnacked += int32(n)
	return st.recvUnacked >= st.s.cfg.initialWindowSize/4
}

func (st *stream) takeUnacked() int32 {
	n := st.recvUnacked
	st.recvWindow += n
	st.recvUnacked = 0
	return n
}

// abortRequestLocked answers a request whose body broke the rules: with
// 400 on a fresh stream state if no response has started (the running
// request is cut off from the stream), or with RST_STREAM if one has.
func (s *session) abortRequestLocked(st *stream, reason string) {
	s.log.Info("spdymux: bad request body", "stream", st.id, "reason", reason)
	if st.sentHead || st.headQueued {
		s.resetLocked(st, spdy.ProtocolError)
		return
	}
	fresh := newStream(s, st.id, st.priority)
	fresh.recvFin = st.recvFin
	fresh.sendWindow = st.sendWindow
	st.removed = true
	st.failLocked(errBadRequestBody)
	s.streams[st.id] = fresh
	s.replyErrorLocked(fresh, 400, reason)
}

var errBadRequestBody = errors.New("spdymux: request body does not match content-length")

func (s *session) onRstStream(f *spdy.RstStreamFrame) {
	s.mu.Lock()
	st := s.streams[f.StreamID]
	if st == nil {
		if s.neverOpenedLocked(f.StreamID) {
			s.glitchLocked("RST_STREAM for a stream that never was")
		}
		s.mu.Unlock()
		return
	}
	// Never answer RST_STREAM with RST_STREAM (SPDY/3 §2.4.2).
	st.failLocked(&streamError{id: st.id, status: f.Status, remote: true})
	s.removeLocked(st)
	s.peerResetLocked()
	s.mu.Unlock()
	if f.Status != spdy.Cancel && f.Status != spdy.RefusedStream {
		s.log.Info("spdymux: peer reset stream", "stream", f.StreamID, "status", f.Status)
	}
}

func (s *session) onSettings(f *spdy.SettingsFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settingsSeen {
		s.glitchLocked("SETTINGS after the first")
	}
	s.settingsSeen = true
	for _, set := range f.Settings {
		switch set.ID {
		case spdy.SettingMaxConcurrentStreams:
			s.peerMaxStreams = set.Value
		case spdy.SettingInitialWindowSize:
			if !s.flow {
				continue
			}
			if set.Value > 1<<31-1 {
				return s.protocolErrorLocked("SETTINGS INITIAL_WINDOW_SIZE %d is over 2^31-1", set.Value)
			}
			// The change applies to every open stream; windows may go
			// negative (SPDY/3 §2.6.8).
			delta := int32(set.Value) - s.peerInitialWindow
			s.peerInitialWindow = int32(set.Value)
			for _, st := range s.streams {
				st.sendWindow += delta
				s.scheduleLocked(st)
			}
		}
		// Other ids, known or not, are ignored; persistence flags from a
		// client are ignored too (SPDY/3 §2.6.4).
	}
	return nil
}

func (s *session) onHeaders(f *spdy.HeadersFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[f.StreamID]
	if st == nil {
		if s.neverOpenedLocked(f.StreamID) {
			s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: f.StreamID, value: uint32(spdy.InvalidStream)})
		}
		s.glitchLocked("HEADERS for a stream that is gone")
		return nil
	}
	if f.Flags&spdy.FlagFin == 0 {
		s.glitchLocked("HEADERS without FIN")
	}
	if st.recvFin {
		s.resetLocked(st, s.alreadyClosed())
		s.glitchLocked("frame after FIN")
		return nil
	}
	// Request trailers have no place in the HTTP/1.1 request of a stream
	// whose head is already out; only FIN matters.
	if f.Flags&spdy.FlagFin != 0 {
		st.recvFin = true
		if !s.client && st.wantLength >= 0 && st.recvBytes != st.wantLength {
			s.abortRequestLocked(st, "request body shorter than content-length")
			return nil
		}
		s.maybeDoneLocked(st)
		signal(st.readWake)
	}
	return nil
}

func (s *session) onWindowUpdate(f *spdy.WindowUpdateFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.StreamID == 0 {
		if !s.flow31 {
			return s.protocolErrorLocked("WINDOW_UPDATE for stream 0 on %s", s.proto)
		}
		if int64(s.sendWindow)+int64(f.Delta) > 1<<31-1 {
			return s.protocolErrorLocked("WINDOW_UPDATE overflows the session window")
		}
		s.sendWindow += int32(f.Delta)
		if s.sendWindow > 0 {
			for _, st := range s.streams {
				s.scheduleLocked(st)
			}
		}
		return nil
	}
	st := s.streams[f.StreamID]
	if st == nil {
		// A closed stream: allowed and ignored, but useless.
		s.glitchLocked("WINDOW_UPDATE for a stream that is gone")
		return nil
	}
	if int64(st.sendWindow)+int64(f.Delta) > 1<<31-1 {
		s.resetLocked(st, spdy.FlowControlError)
		return nil
	}
	st.sendWindow += int32(f.Delta)
	s.scheduleLocked(st)
	return nil
}
