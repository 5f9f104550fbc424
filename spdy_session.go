package spdymux

import (
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
	"github.com/spdymux/spdymux/spdy"
)

// spdyWire is the SPDY/3.1, SPDY/3 and SPDY/2 framing and session rules
// of a session: what SPDY adds to the core. Frames are read by the
// session's reader, the only user of the inflate context; they are
// written by its writer, the only user of the deflate context (both
// inside fr).
type spdyWire struct {
	s       *session
	version spdy.Version
	fr      *spdy.Framer

	// Owned by the reader:
	firstFrame   bool // a server's first frame clears the handshake deadline
	settingsSeen bool
	offer        *stream // a client's: a push whose head came, to offer once s.mu is released

	// Guarded by s.mu (client side): pings sent and not yet answered.
	pings    map[uint32]chan struct{}
	nextPing uint32
}

// newSPDYSession makes a SPDY session on c, a connection that speaks
// proto, and queues its opening frames. Start it with serve.
func newSPDYSession(c net.Conn, proto string, cfg *settings, stats *listenerCounters, client bool) *session {
	s := newSession(c, proto, cfg, stats, client)
	w := &spdyWire{s: s, firstFrame: !client, nextPing: 2}
	if client {
		w.nextPing = 1
	}
	s.w = w
	switch proto {
	case ProtoSPDY2:
		w.version = spdy.V2
		s.dialect = httpconv.SPDY2
		// A SPDY/2 stream has no flow control: its buffer is bounded by
		// V2StreamBuffer and TCP back-pressure instead.
		s.streamBuffer = cfg.v2StreamBuffer
	case ProtoSPDY3:
		w.version, s.dialect, s.streamFlow = spdy.V3, httpconv.SPDY3, true
	default:
		w.version, s.dialect, s.streamFlow, s.sessionFlow = spdy.V3, httpconv.SPDY3, true, true
	}
	// A SPDY server pushes, unless told not to: SPDY/3 and 3.1 as §3.3
	// has it, SPDY/2 as draft 2's "Server Push Transactions" has it
	// (writePush). Its SYN_STREAM carries the pushed response's head
	// (push.go).
	s.push.on = !client && cfg.spdyPush
	s.push.opensWithHead = true
	w.fr = spdy.NewFramer(&s.wbuf, newSessionReader(c, 4<<10), w.version)
	w.fr.MaxHeaderBytes = cfg.maxHeaderBytes
	w.fr.MaxHeaderFields = cfg.maxHeaderFields
	w.fr.MaxControlFrameSize = cfg.maxControlFrameSize
	w.fr.MaxDataFrameSize = cfg.maxDataFrameSize
	if w.version == spdy.V2 {
		// A SPDY/2 stream buffers at most V2StreamBuffer, or one frame
		// when its buffer is empty: bound that frame too.
		w.fr.MaxDataFrameSize = min(cfg.maxDataFrameSize, max(cfg.v2StreamBuffer, 64<<10))
	}
	w.fr.MaxSettings = cfg.maxSettingsEntries

	// SETTINGS go first (SPDY/3 §2.6.4), then the session window beyond
	// its initial 64 KiB (3.1 §2.6.8).
	// MAX_CONCURRENT_STREAMS bounds the streams the peer opens: a
	// client's are the pushes it takes, none without a push handler.
	settings := []spdy.Setting{{ID: spdy.SettingMaxConcurrentStreams, Value: cfg.maxConcurrentStreams}}
	if client {
		settings[0].Value = cfg.clientPushes
	}
	window := uint32(cfg.initialWindowSize)
	if !s.streamFlow {
		// SPDY/2 has no flow control, but some peers (node's
		// spdy-transport) apply SPDY/3's to it and stall after 64 KiB
		// unless told otherwise; SPDY/2 defines the setting (id 7), so
		// open the window all the way.
		window = maxWindow
	}
	settings = append(settings, spdy.Setting{ID: spdy.SettingInitialWindowSize, Value: window})
	before := len(s.wbuf.b)
	w.fr.WriteSettings(0, settings...)
	w.traceOut(before, spdy.TypeSettings, 0, 0)
	if s.sessionFlow && cfg.sessionWindowSize > DefaultInitialWindowSize {
		before := len(s.wbuf.b)
		w.fr.WriteWindowUpdate(0, uint32(cfg.sessionWindowSize-DefaultInitialWindowSize))
		w.traceOut(before, spdy.TypeWindowUpdate, 0, 0)
		s.recvFlow.avail = cfg.sessionWindowSize
	}
	return s
}

// readFrame reads one frame and handles it.
func (w *spdyWire) readFrame() error {
	s := w.s
	f, err := w.fr.ReadFrame()
	if err != nil {
		if le, ok := errors.AsType[*spdy.LimitError](err); ok {
			if l, ok := spdyFramerLimits[le.Limit]; ok {
				s.stats.limitHit(l)
			}
		}
		var se *spdy.StreamError
		var ge *spdy.SessionError
		switch {
		case errors.As(err, &se):
			return &streamErr{id: uint32(se.StreamID), code: spdyCode(se.Status), reason: se.Error()}
		case errors.As(err, &ge):
			return &connErr{code: spdyGoAwayCode(ge.Status), err: err}
		}
		return err
	}
	if s.cfg.trace != nil {
		w.traceIn(f)
	}
	if w.firstFrame {
		w.firstFrame = false
		s.conn.SetReadDeadline(time.Time{})
	}
	switch f := f.(type) {
	case *spdy.DataFrame:
		return w.onData(f)
	case *spdy.SynStreamFrame:
		if s.client {
			return w.onPushStream(f)
		}
		return w.onSynStream(f)
	case *spdy.SynReplyFrame:
		if s.client {
			return w.onSynReply(f)
		}
		// A server's streams are unidirectional pushes, so a client has
		// nothing to reply to: an open stream is reset, another id is
		// invalid.
		code := codeInvalidStream
		s.mu.Lock()
		if s.streams[uint32(f.StreamID)] != nil {
			code = codeProtocol
		}
		s.mu.Unlock()
		return &streamErr{id: uint32(f.StreamID), code: code, reason: "SYN_REPLY from a client"}
	case *spdy.RstStreamFrame:
		w.onRstStream(f)
	case *spdy.SettingsFrame:
		return w.onSettings(f)
	case *spdy.PingFrame:
		w.onPing(f)
	case *spdy.GoAwayFrame:
		s.mu.Lock()
		s.peerGoAwayLocked(uint32(f.LastGoodStreamID))
		s.mu.Unlock()
		if f.Status != spdy.GoAwayOK {
			s.log.Info("spdymux: peer sent GOAWAY", "status", f.Status, "last", f.LastGoodStreamID)
		}
	case *spdy.HeadersFrame:
		return w.onHeaders(f)
	case *spdy.WindowUpdateFrame:
		if f.StreamID == 0 && !s.sessionFlow {
			return protocolError("WINDOW_UPDATE for stream 0 on %s", s.proto)
		}
		return s.windowUpdate(uint32(f.StreamID), f.Delta)
	case *spdy.NoopFrame, *spdy.CredentialFrame, *spdy.UnknownFrame:
		// Ignored: NOOP by definition, CREDENTIAL is deprecated in 3.1,
		// unknown control frames must be ignored (SPDY/3 §2.2.1).
		s.mu.Lock()
		s.glitchLocked("ignored control frame")
		s.mu.Unlock()
	}
	return nil
}

func (w *spdyWire) onSynStream(f *spdy.SynStreamFrame) error {
	s := w.s
	id := uint32(f.StreamID)
	s.mu.Lock()
	switch {
	case s.err != nil:
		s.mu.Unlock()
		return errSessionClosed
	case s.goingAway:
		// After GOAWAY, new streams are ignored (SPDY/3 §2.6.6).
		s.mu.Unlock()
		return nil
	case id == 0 || id%2 == 0:
		s.mu.Unlock()
		return protocolError("SYN_STREAM with id %d: a client's ids are odd", id)
	case s.streams[id] != nil:
		// A second SYN_STREAM for an open stream is a stream error
		// (SPDY/3 §2.3.2).
		s.mu.Unlock()
		return &streamErr{id: id, code: codeProtocol, reason: "SYN_STREAM for an open stream"}
	case id <= s.lastPeerStream:
		// Ids must increase (SPDY/3 §2.3.2).
		s.mu.Unlock()
		return protocolError("SYN_STREAM id %d after %d", id, s.lastPeerStream)
	case f.Flags&spdy.FlagUnidirectional != 0:
		s.lastPeerStream = id
		s.stats.streams.Add(1)
		s.mu.Unlock()
		return &streamErr{id: id, code: codeProtocol, reason: "unidirectional SYN_STREAM from a client"}
	}
	st := s.acceptStreamLocked(id, f.Priority, f.Flags&spdy.FlagFin != 0)
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	return s.onStream(st, f.Header)
}

func (w *spdyWire) onData(f *spdy.DataFrame) error {
	s := w.s
	id := uint32(f.StreamID)
	err := s.receiveData(id, f.Data, len(f.Data), f.Flags&spdy.FlagFin != 0)
	if err != errNoStream {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.neverOpenedLocked(id) {
		// A stream that never was (SPDY/3 §2.2.2).
		return &streamErr{id: id, code: codeInvalidStream, reason: "DATA for a stream that never was"}
	}
	// Otherwise the stream was refused or reset, or has ended: the peer
	// may have sent this before it learned, so drop it quietly.
	return nil
}

func (w *spdyWire) onRstStream(f *spdy.RstStreamFrame) {
	s := w.s
	s.mu.Lock()
	st := s.streams[uint32(f.StreamID)]
	if st == nil {
		if s.neverOpenedLocked(uint32(f.StreamID)) {
			s.glitchLocked("RST_STREAM for a stream that never was")
		}
		s.mu.Unlock()
		return
	}
	// Never answer RST_STREAM with RST_STREAM (SPDY/3 §2.4.2).
	s.peerResetLocked(st, spdyCode(f.Status), f.Status.String())
	s.mu.Unlock()
	if f.Status != spdy.Cancel && f.Status != spdy.RefusedStream {
		s.log.Info("spdymux: peer reset stream", "stream", f.StreamID, "status", f.Status)
	}
}

func (w *spdyWire) onSettings(f *spdy.SettingsFrame) error {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.settingsSeen {
		s.glitchLocked("SETTINGS after the first")
	}
	w.settingsSeen = true
	for _, set := range f.Settings {
		switch set.ID {
		case spdy.SettingMaxConcurrentStreams:
			s.peerMaxStreams = set.Value
			s.push.peerMaxSet = true
		case spdy.SettingInitialWindowSize:
			if !s.streamFlow {
				continue
			}
			if set.Value > maxWindow {
				// GOAWAY has no FLOW_CONTROL_ERROR in SPDY.
				return protocolError("SETTINGS INITIAL_WINDOW_SIZE %d is over 2^31-1", set.Value)
			}
			if err := s.peerInitialWindowLocked(set.Value); err != nil {
				return err
			}
		}
		// Other ids, known or not, are ignored; persistence flags from a
		// client are ignored too (SPDY/3 §2.6.4).
	}
	return nil
}

// onPing echoes the peer's pings: odd ids come from a client, even ones
// from a server. A ping of our own parity is a reply (SPDY/3 §2.6.5), or
// nothing we sent, and is never echoed.
func (w *spdyWire) onPing(f *spdy.PingFrame) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if (f.ID%2 == 1) != s.client {
		s.queueCtrlLocked(ctrlFrame{kind: ctrlPingAck, value: uint64(f.ID)})
	} else if c := w.pings[f.ID]; c != nil {
		delete(w.pings, f.ID)
		close(c)
	} else {
		s.glitchLocked("PING of our parity that we did not send")
	}
}

func (w *spdyWire) onHeaders(f *spdy.HeadersFrame) error {
	w.s.mu.Lock()
	err := w.onHeadersLocked(f)
	w.s.mu.Unlock()
	w.offerPush()
	return err
}

func (w *spdyWire) onHeadersLocked(f *spdy.HeadersFrame) error {
	s := w.s
	id := uint32(f.StreamID)
	st := s.streams[id]
	if st == nil {
		s.glitchLocked("HEADERS for a stream that is gone")
		if s.neverOpenedLocked(id) {
			return &streamErr{id: id, code: codeInvalidStream, reason: "HEADERS for a stream that never was"}
		}
		return nil
	}
	if st.recvTrailers != nil {
		// Trailers come in one HEADERS frame; more are useless.
		s.glitchLocked("a second HEADERS frame")
	}
	if st.recvFin {
		return &streamErr{id: id, code: codeStreamClosed, reason: "HEADERS after FIN"}
	}
	if s.client {
		return w.onReplyHeaders(st, f)
	}
	// A HEADERS frame after the request's head holds its trailers (SPDY/3
	// §2.6.8), with FIN or before a DATA frame with FIN: they reach the
	// server in the last chunk of a chunked body, as mod_spdy made them
	// (a body with a content-length has no place for them); fields a
	// trailer must not hold are dropped there. A later HEADERS frame adds
	// to them, within MaxHeaderFields.
	if len(st.recvTrailers)+len(f.Header) <= s.cfg.maxHeaderFields {
		st.recvTrailers = append(st.recvTrailers, f.Header...)
	}
	if f.Flags&spdy.FlagFin != 0 {
		return s.receiveEndLocked(st)
	}
	return nil
}

// Writing.

func (w *spdyWire) writeCtrl(f ctrlFrame) error {
	before := len(w.s.wbuf.b)
	var err error
	var typ spdy.FrameType
	switch f.kind {
	case ctrlRst:
		typ = spdy.TypeRstStream
		err = w.fr.WriteRstStream(spdy.StreamID(f.streamID), spdy.RstStatus(w.code(f.code, false)))
	case ctrlPing, ctrlPingAck:
		typ = spdy.TypePing
		err = w.fr.WritePing(uint32(f.value))
	case ctrlWindowUpdate:
		typ = spdy.TypeWindowUpdate
		err = w.fr.WriteWindowUpdate(spdy.StreamID(f.streamID), uint32(f.value))
	case ctrlGoAway:
		typ = spdy.TypeGoAway
		err = w.fr.WriteGoAway(spdy.StreamID(f.streamID), spdy.GoAwayStatus(w.code(f.code, true)))
	default:
		return nil // nothing of SPDY's (SETTINGS ACK)
	}
	if err != nil {
		return err
	}
	w.traceOut(before, typ, f.streamID, 0)
	return nil
}

func (w *spdyWire) writeHead(st *stream, head []httpconv.HeaderField, fin bool) error {
	var flags spdy.Flags
	if fin {
		flags = spdy.FlagFin
	}
	before := len(w.s.wbuf.b)
	var err error
	typ := spdy.TypeSynReply
	if st.local {
		typ = spdy.TypeSynStream
		err = w.fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(st.id), Priority: st.priority, Flags: flags, Header: head})
	} else {
		err = w.fr.WriteSynReply(&spdy.SynReplyFrame{StreamID: spdy.StreamID(st.id), Flags: flags, Header: head})
	}
	if err != nil {
		return spdyWriteError(err)
	}
	w.traceOut(before, typ, st.id, flags)
	return nil
}

func (w *spdyWire) writeData(st *stream, p []byte, fin bool) error {
	var flags spdy.Flags
	if fin {
		flags = spdy.FlagFin
	}
	if err := w.fr.WriteData(spdy.StreamID(st.id), flags, p); err != nil {
		return spdyWriteError(err)
	}
	w.traceOut(len(w.s.wbuf.b)-8-len(p), 0, st.id, flags)
	return nil
}

// writePush writes the unidirectional SYN_STREAM that opens st, a pushed
// stream, associated to the stream whose response asked for it (SPDY/3
// §3.3.1). It carries the promised request's :method, :path, :host and
// :scheme, then the response head (:status, :version, headers): the form
// node's spdy-transport requires (it rejects a SYN_STREAM without :status)
// and Chromium read. mod_spdy sent :host, :path and :scheme alone and the
// rest in a HEADERS frame, which the spec allows too; the Transport takes
// both.
//
// On SPDY/2 the same fields go by SPDY/2's names: method, url, host and
// scheme, then status, version and the headers. Draft 2 ("Server Push
// Transactions") asks for a "url" that holds the full URL of the pushed
// resource, and Chromium's SPDY/2 client read a push's URL from "url"
// alone (GetUrlFromHeaderBlock: "SPDY 2 server push urls are specified in
// a single url header"), resetting a push whose url is not absolute; so
// url is absolute (scheme://host/path?query), as pushRequestLocked makes
// it. node's spdy-transport takes any url (it renames it :path, host
// :authority, and requires method, url and status): it gets the absolute
// URL as the push's path. host and scheme go as well, as spdy-transport's
// own SPDY/2 server sends them, for clients that build the URL from
// scheme, host and url. A response field of one of these four names
// would repeat a name in the block (or rename the pushed resource): it is
// left out.
func (w *spdyWire) writePush(st *stream, fin bool) error {
	flags := spdy.FlagUnidirectional
	if fin {
		flags |= spdy.FlagFin
	}
	hdr := make([]httpconv.HeaderField, 0, 4+len(st.head))
	for _, f := range st.push.promise {
		if pushRequestField(w.version, f.Name) {
			hdr = append(hdr, f)
		}
	}
	for _, f := range st.head {
		if w.version == spdy.V2 && pushRequestField(spdy.V2, f.Name) {
			continue
		}
		hdr = append(hdr, f)
	}
	assoc := st.push.assoc.id
	before := len(w.s.wbuf.b)
	err := w.fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(st.id), AssociatedStreamID: spdy.StreamID(assoc),
		Priority: st.priority, Flags: flags, Header: hdr})
	if err != nil {
		return spdyWriteError(err)
	}
	if s := w.s; s.cfg.trace != nil && len(s.wbuf.b) >= before+8 {
		s.trace(FrameEvent{Out: true, Type: spdy.TypeSynStream, StreamID: st.id, Flags: uint8(flags),
			Length: len(s.wbuf.b) - before - 8, AssociatedID: assoc})
	}
	return nil
}

// pushRequestField reports whether name is one of the promised request's
// fields a push's SYN_STREAM carries in version v: :method, :path, :host
// and :scheme; on SPDY/2 method, url, host and scheme.
func pushRequestField(v spdy.Version, name string) bool {
	if v == spdy.V2 {
		switch name {
		case "method", "url", "host", "scheme":
			return true
		}
		return false
	}
	switch name {
	case ":method", ":path", ":host", ":scheme":
		return true
	}
	return false
}

// writeTrailers ends st with the trailers, on SPDY/3 and 3.1: a HEADERS
// frame that carries them (SPDY/3 §2.6.8), then FIN on an empty DATA
// frame. FIN is not put on the HEADERS frame itself, which the spec
// allows, because node's spdy-transport (3.0.0) reads every HEADERS frame
// as without FIN, and its stream would never end. SPDY/2 drops trailers.
func (w *spdyWire) writeTrailers(st *stream, trailers []httpconv.HeaderField) error {
	if w.version != spdy.V2 {
		before := len(w.s.wbuf.b)
		if err := w.fr.WriteHeaders(&spdy.HeadersFrame{StreamID: spdy.StreamID(st.id), Header: trailers}); err != nil {
			return spdyWriteError(err)
		}
		w.traceOut(before, spdy.TypeHeaders, st.id, 0)
	}
	return w.writeData(st, nil, true)
}

// spdyWriteError marks the framer's refusals of a frame it checked whole
// before writing any of it.
func spdyWriteError(err error) error {
	if errors.Is(err, spdy.ErrHeaderTooLarge) || errors.Is(err, spdy.ErrFrameTooLarge) || errors.Is(err, spdy.ErrBadStreamID) {
		return errors.Join(errFrameRejected, err)
	}
	return err
}

func (w *spdyWire) checkHead(head []httpconv.HeaderField) error {
	return spdy.CheckHeaderBlock(w.version, head)
}

// errorHead is the SYN_REPLY header block of an error response the
// session makes itself.
func (w *spdyWire) errorHead(status, contentLength int) []httpconv.HeaderField {
	st := strconv.Itoa(status) + " " + http.StatusText(status)
	statusName, versionName := ":status", ":version"
	if w.version == spdy.V2 {
		statusName, versionName = "status", "version"
	}
	return []httpconv.HeaderField{
		{Name: statusName, Value: st},
		{Name: versionName, Value: "HTTP/1.1"},
		{Name: "content-length", Value: strconv.Itoa(contentLength)},
		{Name: "content-type", Value: "text/plain; charset=utf-8"},
	}
}

// code returns the SPDY status for c: a RST_STREAM status, or with goAway
// a GOAWAY status. SPDY/2 lacks some statuses, and GOAWAY has only three.
func (w *spdyWire) code(c errCode, goAway bool) uint32 {
	if goAway {
		switch c {
		case codeNo:
			return uint32(spdy.GoAwayOK)
		case codeInternal:
			return uint32(spdy.GoAwayInternalError)
		}
		// GOAWAY has no FLOW_CONTROL_ERROR: PROTOCOL_ERROR, as mod_spdy.
		return uint32(spdy.GoAwayProtocolError)
	}
	var s spdy.RstStatus
	switch c {
	case codeInternal:
		s = spdy.InternalError
	case codeFlowControl:
		s = spdy.FlowControlError
	case codeRefused:
		s = spdy.RefusedStream
	case codeCancel:
		s = spdy.Cancel
	case codeStreamClosed:
		s = spdy.StreamAlreadyClosed
	case codeInvalidStream:
		s = spdy.InvalidStream
	case codeStreamInUse:
		s = spdy.StreamInUse
	case codeFrameSize:
		s = spdy.FrameTooLarge
	case codeUnsupportedVersion:
		s = spdy.UnsupportedVersion
	default:
		s = spdy.ProtocolError
	}
	if w.version == spdy.V2 && s > spdy.FlowControlError {
		// STREAM_IN_USE and later are SPDY/3's (SPDY/2 has 1 to 7).
		s = spdy.ProtocolError
	}
	return uint32(s)
}

func (w *spdyWire) codeName(c errCode) string {
	return spdy.RstStatus(w.code(c, false)).String()
}

// spdyCode maps a RST_STREAM status the peer sent, or a codec's verdict,
// to the core's code.
func spdyCode(s spdy.RstStatus) errCode {
	switch s {
	case spdy.InvalidStream:
		return codeInvalidStream
	case spdy.RefusedStream:
		return codeRefused
	case spdy.Cancel:
		return codeCancel
	case spdy.InternalError:
		return codeInternal
	case spdy.FlowControlError:
		return codeFlowControl
	case spdy.StreamInUse:
		return codeStreamInUse
	case spdy.StreamAlreadyClosed:
		return codeStreamClosed
	case spdy.FrameTooLarge:
		return codeFrameSize
	case spdy.UnsupportedVersion:
		return codeUnsupportedVersion
	}
	return codeProtocol
}

func spdyGoAwayCode(s spdy.GoAwayStatus) errCode {
	switch s {
	case spdy.GoAwayOK:
		return codeNo
	case spdy.GoAwayInternalError:
		return codeInternal
	}
	return codeProtocol
}

// Tracing.

func (w *spdyWire) traceIn(f spdy.Frame) {
	e := FrameEvent{Length: w.fr.LastFrameLength()}
	switch f := f.(type) {
	case *spdy.DataFrame:
		e.StreamID, e.Flags = uint32(f.StreamID), uint8(f.Flags)
	case *spdy.SynStreamFrame:
		e.Type, e.StreamID, e.Flags = spdy.TypeSynStream, uint32(f.StreamID), uint8(f.Flags)
		e.AssociatedID = uint32(f.AssociatedStreamID)
	case *spdy.SynReplyFrame:
		e.Type, e.StreamID, e.Flags = spdy.TypeSynReply, uint32(f.StreamID), uint8(f.Flags)
	case *spdy.RstStreamFrame:
		e.Type, e.StreamID, e.Code = spdy.TypeRstStream, uint32(f.StreamID), uint32(f.Status)
	case *spdy.SettingsFrame:
		e.Type, e.Flags = spdy.TypeSettings, uint8(f.Flags)
	case *spdy.NoopFrame:
		e.Type = spdy.TypeNoop
	case *spdy.PingFrame:
		e.Type = spdy.TypePing
	case *spdy.GoAwayFrame:
		e.Type, e.Code = spdy.TypeGoAway, uint32(f.Status)
	case *spdy.HeadersFrame:
		e.Type, e.StreamID, e.Flags = spdy.TypeHeaders, uint32(f.StreamID), uint8(f.Flags)
	case *spdy.WindowUpdateFrame:
		e.Type, e.StreamID = spdy.TypeWindowUpdate, uint32(f.StreamID)
	case *spdy.CredentialFrame:
		e.Type = spdy.TypeCredential
	case *spdy.UnknownFrame:
		e.Type, e.Flags = f.Type, uint8(f.Flags)
	}
	w.s.trace(e)
}

// traceOut reports the frame the writer just encoded at wbuf[before:].
func (w *spdyWire) traceOut(before int, typ spdy.FrameType, id uint32, flags spdy.Flags) {
	s := w.s
	if s.cfg.trace != nil && len(s.wbuf.b) >= before+8 {
		e := FrameEvent{Out: true, Type: typ, StreamID: id, Flags: uint8(flags), Length: len(s.wbuf.b) - before - 8}
		if p := s.wbuf.b[before+8:]; (typ == spdy.TypeRstStream || typ == spdy.TypeGoAway) && len(p) >= 8 {
			// RST_STREAM: stream id, status; GOAWAY: last-good-stream-id,
			// then (SPDY/3) the status.
			e.Code = binary.BigEndian.Uint32(p[4:8])
		}
		s.trace(e)
	}
}

// spdyFrameName names a SPDY frame type for a trace.
func spdyFrameName(t spdy.FrameType) string {
	if t == 0 {
		return "DATA"
	}
	return t.String()
}
