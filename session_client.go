package spdymux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// newClientSession starts a client session on c, which speaks proto.
func newClientSession(c net.Conn, proto string, cfg *settings) *session {
	s := newSession(c, proto, cfg, &listenerCounters{}, true)
	go s.serve()
	return s
}

var (
	errGoingAway    = errors.New("spdymux: session is going away")
	errIDsExhausted = errors.New("spdymux: stream ids exhausted")
	errUnprocessed  = errors.New("spdymux: stream not processed: the peer's GOAWAY names an earlier last stream")
)

// openStream opens a stream with the SYN_STREAM header block header. fin
// means the request has no body. When the peer's MAX_CONCURRENT_STREAMS is
// reached it waits for a stream to end, or for ctx.
func (s *session) openStream(ctx context.Context, header []spdy.HeaderField, priority uint8, fin bool) (*stream, error) {
	if err := spdy.CheckHeaderBlock(s.version, header); err != nil {
		// Nothing unsendable is queued: the writer could not send it.
		return nil, fmt.Errorf("spdymux: request header: %w", err)
	}
	for {
		s.mu.Lock()
		switch {
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return nil, &sessionClosedError{cause: err}
		case s.goingAway || s.peerGoneAway:
			s.mu.Unlock()
			return nil, errGoingAway
		case s.nextStreamID > 1<<31-1:
			// Ids never wrap (SPDY/3 §2.3.2).
			s.mu.Unlock()
			return nil, errIDsExhausted
		}
		if s.peerMaxStreams == 0 || uint32(len(s.streams)) < s.peerMaxStreams {
			break
		}
		if s.streamGone == nil {
			s.streamGone = make(chan struct{})
		}
		gone := s.streamGone
		s.mu.Unlock()
		select {
		case <-gone:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer s.mu.Unlock()
	st := newStream(s, s.nextStreamID, priority)
	s.nextStreamID += 2
	st.synHeader = header
	st.synFin = fin
	s.addStreamLocked(st)
	s.synQueue = append(s.synQueue, st)
	signal(s.writeWake)
	return st, nil
}

func (s *session) onSynReply(f *spdy.SynReplyFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[f.StreamID]
	if st == nil {
		if s.neverOpenedLocked(f.StreamID) {
			s.queueCtrlLocked(ctrlFrame{typ: spdy.TypeRstStream, streamID: f.StreamID, value: uint32(spdy.InvalidStream)})
		}
		return
	}
	if st.gotReply {
		// A second SYN_REPLY (SPDY/3 §2.3.4).
		s.resetLocked(st, spdy.StreamInUse)
		return
	}
	status, version := ":status", ":version"
	if s.version == spdy.V2 {
		status, version = "status", "version"
	}
	if !hasField(f.Header, status) || !hasField(f.Header, version) {
		// A reply without status or version MUST be reset (SPDY/3 §3.2.2).
		s.resetLocked(st, spdy.ProtocolError)
		return
	}
	st.reply = f.Header
	st.gotReply = true
	st.wantLength = contentLength(f.Header)
	if f.Flags&spdy.FlagFin != 0 {
		st.recvFin = true
		s.maybeDoneLocked(st)
	}
	signal(st.readWake)
}

// contentLength returns the content-length of a header block, or -1 when
// it has none or one that is not a single decimal number.
func contentLength(h []spdy.HeaderField) int64 {
	for _, f := range h {
		if f.Name == "content-length" {
			n, err := strconv.ParseInt(f.Value, 10, 64)
			if err != nil || n < 0 {
				return -1
			}
			return n
		}
	}
	return -1
}

func hasField(h []spdy.HeaderField, name string) bool {
	for _, f := range h {
		if f.Name == name {
			return true
		}
	}
	return false
}

// waitReply waits for the stream's SYN_REPLY.
func (st *stream) waitReply(ctx context.Context) ([]spdy.HeaderField, error) {
	s := st.s
	for {
		s.mu.Lock()
		reply, got, err := st.reply, st.gotReply, st.err
		s.mu.Unlock()
		switch {
		case got:
			return reply, nil
		case err != nil:
			return nil, err
		}
		select {
		case <-st.readWake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ping sends a PING and waits for its echo.
func (s *session) ping(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return 0, &sessionClosedError{cause: err}
	}
	id := s.nextPing
	s.nextPing += 2
	if s.pings == nil {
		s.pings = make(map[uint32]chan struct{})
	}
	c := make(chan struct{})
	s.pings[id] = c
	s.queueCtrlLocked(ctrlFrame{typ: spdy.TypePing, value: id})
	s.mu.Unlock()
	start := time.Now()
	select {
	case <-c:
		return time.Since(start), nil
	case <-s.done:
		return 0, &sessionClosedError{cause: s.cause()}
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pings, id)
		s.mu.Unlock()
		return 0, ctx.Err()
	}
}

// resetStream resets st from this side with status, unless it has
// already ended.
func (s *session) resetStream(st *stream, status spdy.RstStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.err == nil && !st.removed {
		s.resetLocked(st, status)
	}
}

// usable reports whether s takes new streams.
func (s *session) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && !s.goingAway && !s.peerGoneAway && s.nextStreamID <= 1<<31-1
}

// closeIfIdle sends GOAWAY and closes s if it has no open stream, and
// reports whether it did; a session in use is left alone.
func (s *session) closeIfIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.streams) > 0 || s.err != nil {
		return false
	}
	s.goAwayLocked(spdy.GoAwayOK, nil)
	return true
}

// failUnprocessedLocked fails the streams this side opened above last,
// the peer's last-good-stream-id: the peer ignores them (SPDY/3 §2.6.6),
// so they may be sent again elsewhere.
func (s *session) failUnprocessedLocked(last spdy.StreamID) {
	for id, st := range s.streams {
		if (id%2 == 1) == s.client && id > last {
			st.failLocked(errUnprocessed)
			s.removeLocked(st)
		}
	}
}

// unprocessed reports whether err, which ended st before its reply, means
// that the peer did not process st, so that it may be sent again; and
// whether its SYN_STREAM went out.
func (st *stream) unprocessed(err error) (sent, ok bool) {
	st.s.mu.Lock()
	sent = st.sentHead
	st.s.mu.Unlock()
	var se *streamError
	switch {
	case errors.As(err, &se):
		// REFUSED_STREAM: "not processed; safe to retry".
		return sent, se.remote && se.status == spdy.RefusedStream
	case errors.Is(err, errUnprocessed):
		return sent, true
	}
	return sent, !sent
}

// finished reports whether st has ended: both sides sent FIN, or it was
// reset.
func (st *stream) finished() bool {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	return st.removed || st.err != nil
}
