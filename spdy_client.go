package spdymux

import (
	"context"
	"net"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
	"github.com/spdymux/spdymux/spdy"
)

// The client side of SPDY: the replies to the streams this side opens, and
// pings.

// newClientSession starts a client session on c, which speaks proto.
func newClientSession(c net.Conn, proto string, cfg *settings) *session {
	s := newSPDYSession(c, proto, cfg, &listenerCounters{}, true)
	go s.serve()
	return s
}

func (w *spdyWire) onSynReply(f *spdy.SynReplyFrame) error {
	s := w.s
	id := uint32(f.StreamID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	if st == nil {
		if s.neverOpenedLocked(id) {
			return &streamErr{id: id, code: codeInvalidStream, reason: "SYN_REPLY for a stream that never was"}
		}
		return nil
	}
	if st.gotReply {
		// A second SYN_REPLY (SPDY/3 §2.3.4).
		return &streamErr{id: id, code: codeStreamInUse, reason: "second SYN_REPLY"}
	}
	status, version := ":status", ":version"
	if w.version == spdy.V2 {
		status, version = "status", "version"
	}
	if !hasField(f.Header, status) || !hasField(f.Header, version) {
		// A reply without status or version MUST be reset (SPDY/3 §3.2.2).
		return &streamErr{id: id, code: codeProtocol, reason: "SYN_REPLY without status or version"}
	}
	s.replyLocked(st, f.Header, f.Flags&spdy.FlagFin != 0)
	return nil
}

// onReplyHeaders takes a HEADERS frame on st, a stream this side opened:
// with FIN, the trailers that end the response (SPDY/3 §2.6.8); without,
// headers that cannot join a response already handed over, dropped.
func (w *spdyWire) onReplyHeaders(st *stream, f *spdy.HeadersFrame) error {
	s := w.s
	if !st.gotReply {
		// HEADERS before SYN_REPLY (SPDY/3 §2.6.8: it augments the
		// headers of a stream that has them).
		return &streamErr{id: st.id, code: codeProtocol, reason: "HEADERS before SYN_REPLY"}
	}
	if f.Flags&spdy.FlagFin != 0 {
		st.recvTrailers = f.Header
		return s.receiveEndLocked(st)
	}
	return nil
}

func hasField(h []httpconv.HeaderField, name string) bool {
	for _, f := range h {
		if f.Name == name {
			return true
		}
	}
	return false
}

// ping sends a PING and waits for its echo.
func (w *spdyWire) ping(ctx context.Context) (time.Duration, error) {
	s := w.s
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return 0, &sessionClosedError{cause: err}
	}
	id := w.nextPing
	w.nextPing += 2
	if w.pings == nil {
		w.pings = make(map[uint32]chan struct{})
	}
	c := make(chan struct{})
	w.pings[id] = c
	s.queueCtrlLocked(ctrlFrame{kind: ctrlPing, value: uint64(id)})
	s.mu.Unlock()
	start := time.Now()
	select {
	case <-c:
		return time.Since(start), nil
	case <-s.done:
		return 0, &sessionClosedError{cause: s.cause()}
	case <-ctx.Done():
		s.mu.Lock()
		delete(w.pings, id)
		s.mu.Unlock()
		return 0, ctx.Err()
	}
}
