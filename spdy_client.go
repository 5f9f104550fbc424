package spdymux

import (
	"context"
	"net"
	"strings"
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
	if !w.hasStatus(f.Header) {
		// A reply without status or version MUST be reset (SPDY/3 §3.2.2).
		return &streamErr{id: id, code: codeProtocol, reason: "SYN_REPLY without status or version"}
	}
	s.replyLocked(st, f.Header, f.Flags&spdy.FlagFin != 0)
	return nil
}

// hasStatus reports whether a response head has the status and version
// fields of the session's version.
func (w *spdyWire) hasStatus(h []httpconv.HeaderField) bool {
	status, version := ":status", ":version"
	if w.version == spdy.V2 {
		status, version = "status", "version"
	}
	return hasField(h, status) && hasField(h, version)
}

// onPushStream takes a SYN_STREAM from the server: a push (SPDY/3 §3.3,
// SPDY/2 draft 2 "Server Push Transactions"). One the client cannot take
// is refused with RST_STREAM REFUSED_STREAM: without a push handler
// (s.onPush nil), over the pushes the client takes at once (its
// MAX_CONCURRENT_STREAMS), associated with a stream that is not open, or
// that the handler turns down (not the associated request's origin). A
// push that breaks the protocol is reset with PROTOCOL_ERROR: on SPDY/3
// one without :scheme, :host and :path, on SPDY/2 one without url, or
// whose url is a path without host and scheme beside it. Its response
// head comes in the SYN_STREAM or in a later HEADERS frame: the push is
// offered then (offerPush).
func (w *spdyWire) onPushStream(f *spdy.SynStreamFrame) error {
	s := w.s
	id, assocID := uint32(f.StreamID), uint32(f.AssociatedStreamID)
	fin := f.Flags&spdy.FlagFin != 0
	s.mu.Lock()
	switch {
	case id == 0 || id%2 == 1:
		s.mu.Unlock()
		return protocolError("SYN_STREAM with id %d from a server: its ids are even", id)
	case id <= s.lastPeerStream:
		s.mu.Unlock()
		return protocolError("SYN_STREAM id %d after %d", id, s.lastPeerStream) // §2.3.2
	}
	s.lastPeerStream = id
	assoc := s.streams[assocID]
	reason := ""
	switch {
	case f.Flags&spdy.FlagUnidirectional == 0 || assocID == 0:
		reason = "a server's SYN_STREAM is a unidirectional push with an associated stream"
	case w.version == spdy.V2:
		// Draft 2: a push names its resource in url, the full URL
		// (Chromium read nothing else); a url that is a path takes host
		// and scheme beside it, as spdy-transport's server sends them.
		u, ok := fieldValue(f.Header, "url")
		if !ok {
			reason = "SPDY/2 push without url"
		} else if strings.HasPrefix(u, "/") && (!hasField(f.Header, "scheme") || !hasField(f.Header, "host")) {
			reason = "SPDY/2 push with a url path and without scheme and host"
		}
	case !hasField(f.Header, ":scheme") || !hasField(f.Header, ":host") || !hasField(f.Header, ":path"):
		reason = "push without :scheme, :host and :path" // §3.3.2
	}
	if reason == "" && fin && !w.hasStatus(f.Header) {
		reason = "push ended without a status"
	}
	if reason != "" {
		s.mu.Unlock()
		return &streamErr{id: id, code: codeProtocol, reason: reason}
	}
	if s.onPush == nil || assoc == nil || !assoc.local || assoc.recvFin || s.push.open >= int(s.cfg.clientPushes) {
		s.queueCtrlLocked(ctrlFrame{kind: ctrlRst, streamID: id, code: codeRefused})
		s.mu.Unlock()
		return nil
	}
	pst := newStream(s, id, f.Priority)
	pst.sentFin = true // unidirectional: this side sends nothing
	pst.push = &streamPush{assoc: assoc, promise: f.Header, promised: true, settled: true}
	s.addStreamLocked(pst)
	s.lastAccepted = id
	s.push.open++
	if w.hasStatus(f.Header) {
		s.replyLocked(pst, w.pushReply(f.Header), fin)
		w.offer = pst
	}
	s.mu.Unlock()
	w.offerPush()
	return nil
}

// offerPush offers the push whose head just came to the client's handler
// (s.onPush), on the reader, before any later frame is read; one the
// handler turns down is refused.
func (w *spdyWire) offerPush() {
	pst := w.offer
	if pst == nil {
		return
	}
	w.offer = nil
	if !w.s.onPush(pst) {
		w.s.resetStream(pst, codeRefused)
	}
}

// onReplyHeaders takes a HEADERS frame on st, a stream this side opened
// or a push: after the reply, the response's trailers (SPDY/3 §2.6.8),
// with FIN or before a DATA frame with FIN, within MaxHeaderFields. On a
// push whose SYN_STREAM had no status it is the response head (SPDY/3
// §3.3.1).
func (w *spdyWire) onReplyHeaders(st *stream, f *spdy.HeadersFrame) error {
	s := w.s
	if !st.gotReply {
		if st.pushed() && w.hasStatus(f.Header) {
			s.replyLocked(st, f.Header, f.Flags&spdy.FlagFin != 0)
			w.offer = st
			return nil
		}
		// HEADERS before SYN_REPLY (SPDY/3 §2.6.8: it augments the
		// headers of a stream that has them); a push's data must not come
		// before its status (§3.3.2).
		return &streamErr{id: st.id, code: codeProtocol, reason: "HEADERS before SYN_REPLY"}
	}
	if len(st.recvTrailers)+len(f.Header) <= s.cfg.maxHeaderFields {
		st.recvTrailers = append(st.recvTrailers, f.Header...)
	}
	if f.Flags&spdy.FlagFin != 0 {
		return s.receiveEndLocked(st)
	}
	return nil
}

// pushReply returns the response head of a push whose SYN_STREAM carries
// it: on SPDY/2 without the promised request's method, url, host and
// scheme, which would otherwise be taken for response headers (SPDY/3's
// have a colon and are skipped as any pseudo-header).
func (w *spdyWire) pushReply(h []httpconv.HeaderField) []httpconv.HeaderField {
	if w.version != spdy.V2 {
		return h
	}
	out := make([]httpconv.HeaderField, 0, len(h))
	for _, f := range h {
		if !pushRequestField(spdy.V2, f.Name) {
			out = append(out, f)
		}
	}
	return out
}

func hasField(h []httpconv.HeaderField, name string) bool {
	_, ok := fieldValue(h, name)
	return ok
}

// fieldValue returns the value of the field name in h.
func fieldValue(h []httpconv.HeaderField, name string) (string, bool) {
	for _, f := range h {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
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
