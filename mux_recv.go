package spdymux

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// The receiving rules the protocols share: streams the peer opens become
// requests for the pool; DATA goes into stream buffers within the windows
// and budgets; consumed and dropped bytes are credited back.

// acceptStreamLocked opens the stream id the peer started, with the
// shared limits: a stream over MaxConcurrentStreams (of the peer's own:
// pushes do not count) is refused (its RST is queued) and nil returned.
// The protocol has checked the id.
func (s *session) acceptStreamLocked(id uint32, priority uint8, fin bool) *stream {
	s.lastPeerStream = id
	s.stats.streams.Add(1)
	if uint32(len(s.streams)-s.push.open) >= s.cfg.maxConcurrentStreams {
		s.stats.refused.Add(1)
		s.glitchLocked("stream over MAX_CONCURRENT_STREAMS")
		s.resetIDLocked(id, codeRefused)
		return nil
	}
	st := newStream(s, id, priority)
	st.recvFin = fin
	s.addStreamLocked(st)
	s.startLocked(st)
	s.lastAccepted = id
	return st
}

// startRequest turns the request head of st, a stream the peer opened,
// into the HTTP/1.1 request of a new StreamConn and queues that for a
// worker slot. A request that cannot be made is answered by the session:
// with an HTTP error response, or for a malformed HTTP/2 request with a
// stream error (RFC 9113 §8.1.1), which it returns.
func (s *session) startRequest(st *stream, fields []httpconv.HeaderField) error {
	var head []byte
	var req httpconv.Request
	var err error
	if s.cfg.handler != nil {
		// Handler mode writes no head: it builds the http.Request from
		// the fields (directExchange.request).
		req, err = httpconv.CheckRequest(s.dialect, fields, st.recvFin)
	} else {
		size := 64 // request line, added fields, the blank line
		for _, f := range fields {
			size += len(f.Name) + len(f.Value) + 4
		}
		head, req, err = httpconv.AppendRequestHead(make([]byte, 0, size), s.dialect, fields, st.recvFin)
	}
	if err != nil {
		var mal *httpconv.MalformedError
		if errors.As(err, &mal) {
			return &streamErr{id: st.id, code: codeProtocol, reason: "malformed request: " + mal.Reason}
		}
		var bad *httpconv.BadRequestError
		if !errors.As(err, &bad) {
			bad = &httpconv.BadRequestError{Status: 400, Reason: err.Error()}
		}
		s.log.Info("spdymux: bad request", "stream", st.id, "reason", bad.Reason)
		s.mu.Lock()
		s.replyErrorLocked(st, bad.Status, bad.Reason)
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	st.wantLength = req.ContentLength
	st.reqHead, st.req = head, req
	if s.cfg.handler != nil {
		// Made for this block alone (onStream); once the request is
		// built, handler mode makes the response's head in the slice
		// (directExchange.block).
		st.reqFields = fields
	}
	s.notePushSourceLocked(st, fields)
	st.entry = poolEntry{owner: s.poolOwner, priority: st.priority, index: -1, grant: st}
	s.mu.Unlock()
	s.cfg.pool.acquire(&st.entry)
	return nil
}

// replyErrorLocked answers st with an HTTP error of the session's own
// making, without the inner server, and drops the request body.
func (s *session) replyErrorLocked(st *stream, status int, reason string) {
	body := []byte(fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), reason))
	if st.err != nil || st.sentHead || st.headQueued {
		s.resetLocked(st, codeProtocol)
		return
	}
	st.discardRestLocked()
	st.head = s.w.errorHead(status, len(body))
	st.headQueued = true
	st.out = append(st.out, body)
	st.outLen = len(body)
	st.finQueued = true
	s.scheduleLocked(st)
}

// requestDoneLocked notes that the server is done with st, whose
// response is complete, while the peer may still be sending the request
// body. The rest is dropped as it comes (and credited); in HTTP/2 the peer
// is also asked to stop once the response's END_STREAM is out
// (stopRequestLocked).
func (s *session) requestDoneLocked(st *stream) {
	if st.recvFin || st.err != nil {
		return
	}
	st.discardRestLocked()
	if s.dialect != httpconv.H2 {
		return
	}
	if st.sentFin {
		s.stopRequestLocked(st)
		return
	}
	st.resetAfterFin = true
}

// stopRequestWait is how long a complete response lets the client go on
// sending its request before RST_STREAM NO_ERROR asks it to stop.
const stopRequestWait = 100 * time.Millisecond

// stopRequestLocked asks the client to stop sending the body of a request
// whose response is complete, with RST_STREAM NO_ERROR (RFC 9113 §8.1),
// so that the stream does not linger half-closed for a client that will
// not send END_STREAM into a shut window. The reset comes stopRequestWait
// later, unless the client ends the stream first: the frames already on
// their way are still checked, and a request that turns out malformed (a
// body that breaks its content-length, §8.1.1; trailers without
// END_STREAM, §8.1) gets the PROTOCOL_ERROR it earns, however quickly
// the handler answered (after RST_STREAM every frame on the stream is
// ignored, §5.1). Meanwhile the stream's window is no longer credited, so
// the client sends at most one window of body in vain.
func (s *session) stopRequestLocked(st *stream) {
	st.stopWanted = true
	time.AfterFunc(stopRequestWait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if st.err == nil && !st.recvFin && !st.removed {
			s.resetLocked(st, codeNo)
		}
	})
}

// errNoStream is what receiveData returns for DATA on a stream that is not
// open: the protocol decides what that earns.
var errNoStream = errors.New("spdymux: DATA for a stream that is not open")

// receiveData takes a DATA frame for stream id: flowLen bytes count
// against the windows (HTTP/2 padding included), data is the payload, fin
// ends the peer's side. The session window is accounted for first, so
// that data for a stream that is gone still keeps it in step.
func (s *session) receiveData(id uint32, data []byte, flowLen int, fin bool) error {
	n := len(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if flowLen == 0 && !fin {
		s.glitchLocked("empty DATA frame")
	}
	if s.sessionFlow && !s.recvFlow.take(int32(flowLen)) {
		return &connErr{code: codeFlowControl, err: fmt.Errorf("spdymux: DATA overran the session window by %d bytes", int32(flowLen)-s.recvFlow.avail)}
	}
	st := s.streams[id]
	if st == nil {
		s.creditSessionLocked(int32(flowLen))
		return errNoStream
	}
	if st.recvFin {
		// DATA after the peer's FIN (SPDY/3 §2.3.7, RFC 9113 §5.1
		// half-closed (remote)).
		s.creditSessionLocked(int32(flowLen))
		return &streamErr{id: id, code: codeStreamClosed, reason: "DATA after FIN"}
	}
	if s.streamFlow && !st.recvFlow.take(int32(flowLen)) {
		s.creditSessionLocked(int32(flowLen))
		return &streamErr{id: id, code: codeFlowControl, reason: "DATA overran the stream window"}
	}
	// Padding is consumed at once: only payload waits for a reader.
	if pad := flowLen - n; pad > 0 {
		s.creditSessionLocked(int32(pad))
		s.creditStreamLocked(st, pad)
	}
	st.recvBytes += int64(n)
	if !s.client && st.wantLength >= 0 && (st.recvBytes > st.wantLength || fin && st.recvBytes != st.wantLength) {
		s.creditSessionLocked(int32(n))
		st.recvFin = st.recvFin || fin
		return s.badBodyLocked(st, "request body length does not match content-length")
	}
	if !s.sessionFlow {
		// No session flow control: stop reading until the handlers catch
		// up, so the session holds at most SessionWindowSize (or one
		// frame), and a stream without flow control (SPDY/2) at most its
		// buffer.
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
		// Never buffered: credited at once; after a complete response,
		// not to the stream, which so takes at most one more window
		// before the reset (stopRequestLocked).
		s.creditSessionLocked(int32(n))
		if !st.stopWanted {
			s.creditStreamLocked(st, n)
		}
	case n > 0:
		st.appendRecvLocked(data)
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

// receiveEnd takes the end of the peer's side of st without data (a
// HEADERS frame with FIN or END_STREAM: trailers, which an HTTP/1.1
// request already under way cannot carry).
func (s *session) receiveEndLocked(st *stream) error {
	st.recvFin = true
	if !s.client && st.wantLength >= 0 && st.recvBytes != st.wantLength {
		return s.badBodyLocked(st, "request body shorter than content-length")
	}
	s.maybeDoneLocked(st)
	signal(st.readWake)
	return nil
}

// badBodyLocked answers a request whose body broke its content-length:
// in HTTP/2 it is malformed, a stream error (RFC 9113 §8.1.1); in SPDY the
// server MUST answer 400 (SPDY/3 §3.2.1).
func (s *session) badBodyLocked(st *stream, reason string) error {
	if s.dialect == httpconv.H2 {
		return &streamErr{id: st.id, code: codeProtocol, reason: reason}
	}
	s.abortRequestLocked(st, reason)
	return nil
}

// fullLocked reports whether n more bytes for st would overfill the
// session's budget or, on SPDY/2, the stream's buffer.
func (s *session) fullLocked(st *stream, n int) bool {
	buffered := st.unread()
	return s.streamBuffer > 0 && buffered > 0 && buffered+n > s.streamBuffer ||
		s.recvBuffered > 0 && s.recvBuffered+n > int(s.cfg.sessionWindowSize)
}

// abortRequestLocked answers a request whose body broke the rules: with
// 400 on a fresh stream state if no response has started (the running
// request is cut off from the stream), or with a reset if one has.
func (s *session) abortRequestLocked(st *stream, reason string) {
	s.log.Info("spdymux: bad request body", "stream", st.id, "reason", reason)
	if st.sentHead || st.headQueued {
		s.resetLocked(st, codeProtocol)
		return
	}
	fresh := newStream(s, st.id, st.priority)
	fresh.recvFin = st.recvFin
	fresh.sendFlow = st.sendFlow
	s.startedLocked(st)
	st.removed = true
	st.failLocked(errBadRequestBody)
	s.streams[st.id] = fresh
	s.replyErrorLocked(fresh, 400, reason)
}

var errBadRequestBody = errors.New("spdymux: request body does not match content-length")

// consumedLocked credits n bytes read from st by its connection.
func (s *session) consumedLocked(st *stream, n int) {
	s.unbufferedLocked(n)
	s.creditStreamLocked(st, n)
}

// dropBufferedLocked credits n buffered bytes of st that will never be
// read, so the peer can go on sending what will be dropped.
func (s *session) dropBufferedLocked(st *stream, n int) {
	s.unbufferedLocked(n)
	s.creditStreamLocked(st, n)
}

// creditStreamLocked gives back n bytes of st's receive window, read or
// dropped, once a quarter of the window is due. No credit goes to a stream
// the peer has ended, nor past a body of known length (see
// windowCoversRest).
func (s *session) creditStreamLocked(st *stream, n int) {
	if !s.streamFlow || st.recvFin || st.windowCoversRest() {
		return
	}
	if d := st.recvFlow.credit(int32(n), s.cfg.initialWindowSize/4); d > 0 {
		s.queueCtrlLocked(ctrlFrame{kind: ctrlWindowUpdate, streamID: st.id, value: uint64(d)})
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

// creditSessionLocked gives the peer n more bytes of session window, in
// WINDOW_UPDATE frames of at least a quarter of the window.
func (s *session) creditSessionLocked(n int32) {
	if !s.sessionFlow || n <= 0 {
		return
	}
	if d := s.recvFlow.credit(n, s.cfg.sessionWindowSize/4); d > 0 {
		s.queueCtrlLocked(ctrlFrame{kind: ctrlWindowUpdate, streamID: 0, value: uint64(d)})
	}
}

// windowUpdate takes the peer's WINDOW_UPDATE of delta for stream id (0
// for the session). The protocol has checked what only it knows (a zero
// delta, SPDY/3 without a session window).
func (s *session) windowUpdate(id uint32, delta uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 {
		if delta > maxWindow || !s.sendFlow.add(int32(delta)) {
			return &connErr{code: codeFlowControl, err: errors.New("spdymux: WINDOW_UPDATE overflows the session window")}
		}
		if s.sendFlow.n > 0 {
			for _, st := range s.streams {
				s.scheduleLocked(st)
			}
		}
		return nil
	}
	st := s.streams[id]
	if st == nil {
		// A closed stream: allowed and ignored (RFC 9113 §6.9). One that
		// ended lately is a peer crediting a body it is still reading, as
		// golang.org/x/net/http2's client does for every 4 KiB read after
		// END_STREAM; any other is useless.
		if found, _ := s.closed.lookup(id); !found {
			s.glitchLocked("WINDOW_UPDATE for a stream that is gone")
		}
		return nil
	}
	if delta > maxWindow || !st.sendFlow.add(int32(delta)) {
		return &streamErr{id: id, code: codeFlowControl, reason: "WINDOW_UPDATE overflows the stream window"}
	}
	if st.pushed() {
		s.creditPushLocked(st, int(delta))
	}
	s.scheduleLocked(st)
	return nil
}

// peerInitialWindowLocked applies the peer's new initial stream window to
// every open stream; windows may go negative (SPDY/3 §2.6.8, RFC 9113
// §6.9.2). It fails when a window would pass 2^31-1.
func (s *session) peerInitialWindowLocked(v uint32) error {
	if v > maxWindow {
		return &connErr{code: codeFlowControl, err: fmt.Errorf("spdymux: SETTINGS initial window %d is over 2^31-1", v)}
	}
	delta := int32(v) - s.peerInitWindow
	s.peerInitWindow = int32(v)
	for _, st := range s.streams {
		if !st.sendFlow.add(delta) {
			return &connErr{code: codeFlowControl, err: errors.New("spdymux: SETTINGS initial window overflows a stream window")}
		}
		s.scheduleLocked(st)
	}
	return nil
}

// peerGoAwayLocked takes the peer's GOAWAY: no new streams go to it, and
// the streams this side opened above last were not processed.
func (s *session) peerGoAwayLocked(last uint32) {
	s.peerGoneAway = true
	s.failUnprocessedLocked(last)
}

// failUnprocessedLocked fails the streams this side opened above last,
// the peer's last-good-stream-id: the peer ignores them (SPDY/3 §2.6.6,
// RFC 9113 §6.8), so they may be sent again elsewhere.
func (s *session) failUnprocessedLocked(last uint32) {
	for id, st := range s.streams {
		if (id%2 == 1) == s.client && id > last {
			st.failLocked(errUnprocessed)
			s.removeLocked(st)
		}
	}
}

var errUnprocessed = errors.New("spdymux: stream not processed: the peer's GOAWAY names an earlier last stream")
