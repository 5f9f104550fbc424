package spdymux

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// The client side of the core: streams this side opens, and their replies.

var (
	errGoingAway    = errors.New("spdymux: session is going away")
	errIDsExhausted = errors.New("spdymux: stream ids exhausted")
)

// openStream opens a stream whose head (the request) is head. fin means
// the request has no body. When the peer's MAX_CONCURRENT_STREAMS is
// reached it waits for a stream to end, or for ctx.
func (s *session) openStream(ctx context.Context, head []httpconv.HeaderField, priority uint8, fin bool) (*stream, error) {
	if err := s.w.checkHead(head); err != nil {
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
		case s.nextStreamID > maxWindow:
			// Ids never wrap (SPDY/3 §2.3.2, RFC 9113 §5.1.1).
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
	st.local = true
	if s.cfg.clientPushes > 0 {
		if req, ok := ctx.Value(pushOriginKey{}).(*http.Request); ok {
			// Pushes may come as soon as the head is out: what they are
			// associated with is known first.
			st.push = &streamPush{origin: req}
		}
	}
	s.nextStreamID += 2
	st.head = head
	st.headQueued = true
	st.finQueued = fin
	s.addStreamLocked(st)
	s.headQueue = append(s.headQueue, st)
	s.wakeWriterLocked()
	return st, nil
}

// replyLocked takes the response head of st, a stream this side opened.
func (s *session) replyLocked(st *stream, head []httpconv.HeaderField, fin bool) {
	st.reply = head
	st.gotReply = true
	st.wantLength = contentLength(head)
	if fin {
		st.recvFin = true
		s.maybeDoneLocked(st)
	}
	signal(st.readWake)
}

// contentLength returns the content-length of a header block, or -1 when
// it has none or one that is not a single decimal number.
func contentLength(h []httpconv.HeaderField) int64 {
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

// waitReply waits for the stream's response head.
func (st *stream) waitReply(ctx context.Context) ([]httpconv.HeaderField, error) {
	s := st.s
	for {
		s.mu.Lock()
		reply, got, err := st.reply, st.gotReply, st.err
		if got || err != nil {
			s.mu.Unlock()
			if got {
				return reply, nil
			}
			return nil, err
		}
		wake := st.readWakeLocked()
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// resetStream resets st from this side with code, unless it has already
// ended.
func (s *session) resetStream(st *stream, code errCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.err == nil && !st.removed {
		s.resetLocked(st, code)
	}
}

// usable reports whether s takes new streams.
func (s *session) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && !s.goingAway && !s.peerGoneAway && s.nextStreamID <= maxWindow
}

// closeIfIdle sends GOAWAY and closes s if it has no open stream, and
// reports whether it did; a session in use is left alone.
func (s *session) closeIfIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.streams) > 0 || s.err != nil {
		return false
	}
	s.goAwayLocked(codeNo, nil)
	return true
}

// unprocessed reports whether err, which ended st before its reply, means
// that the peer did not process st, so that it may be sent again; and
// whether its head went out.
func (st *stream) unprocessed(err error) (sent, ok bool) {
	st.s.mu.Lock()
	sent = st.sentHead
	st.s.mu.Unlock()
	var se *streamError
	switch {
	case errors.As(err, &se):
		// REFUSED_STREAM: "not processed; safe to retry".
		return sent, se.remote && se.code == codeRefused
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
