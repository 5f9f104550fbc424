package spdymux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// h2Wire is HTTP/2's framing and connection rules (RFC 9113, HPACK RFC
// 7541, priorities RFC 9218) on the shared core: what HTTP/2 adds to a
// session. The reader is the only user of the HPACK decoder, the writer of
// the HPACK encoder. Frames are parsed by golang.org/x/net/http2's Framer;
// header blocks are assembled and decoded here, field by field, so that a
// block is bounded in frames, bytes and fields before anything of it is
// kept.
type h2Wire struct {
	s  *session
	fr *http2.Framer // reads from br; its writes go to the session's buffer

	// Owned by the reader:
	br          *sessionReader
	gotPreface  bool
	dec         *hpack.Decoder
	sawSettings bool    // the client's first SETTINGS has arrived
	block       h2Block // the header block being read, if any
	fields      []hpack.HeaderField
	fieldBytes  int  // accounted size of fields (RFC 9113 §6.5.2: name + value + 32)
	fieldsOver  bool // the block passed a limit: it is decoded, not kept
	badField    string
	priorities  map[uint32]uint8 // PRIORITY_UPDATE for streams not yet open (RFC 9218 §7.1)
	settingsAck int              // our SETTINGS not yet acknowledged
	settingsIn  int              // the client's SETTINGS frames taken

	// Owned by the writer:
	enc  *hpack.Encoder
	hbuf bytes.Buffer

	// Guarded by s.mu:
	peerTableSize    uint32 // the peer's SETTINGS_HEADER_TABLE_SIZE, for the encoder
	peerTableChanged bool
}

// h2Block is a header block being read: HEADERS then CONTINUATION frames.
type h2Block struct {
	active    bool
	streamID  uint32
	endStream bool
	reject    error // the verdict on the block, once decoded
	frames    int   // CONTINUATION frames so far
	size      int   // compressed bytes so far
}

// The HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = http2.ClientPreface

const (
	// h2MinFrame is the frame size every endpoint takes (RFC 9113 §4.2);
	// spdymux reads no larger frames than this (it advertises no other).
	h2MinFrame = 16384
	// h2DefaultWindow is the initial window of streams and connection
	// before SETTINGS (RFC 9113 §6.9.2).
	h2DefaultWindow = 65535
	// h2DefaultUrgency is RFC 9218's default urgency (§4.1).
	h2DefaultUrgency = 3
	// h2MaxPendingPriorities bounds PRIORITY_UPDATE frames kept for
	// streams not yet open.
	h2MaxPendingPriorities = 100
)

// newH2Session makes an HTTP/2 session on c, a connection whose client
// preface is next to read, and queues the server's SETTINGS and
// connection window. Start it with serve.
func newH2Session(c net.Conn, proto string, cfg *settings, stats *listenerCounters) *session {
	s := newSession(c, proto, cfg, stats, false)
	w := &h2Wire{s: s, br: newSessionReader(c, 16<<10)}
	s.w = w
	s.dialect = httpconv.H2
	s.streamFlow, s.sessionFlow = true, true
	s.sendFlow = outflow{n: h2DefaultWindow}
	s.recvFlow = inflow{avail: h2DefaultWindow}
	s.peerInitWindow = h2DefaultWindow
	s.maxSendFrame = h2MinFrame
	s.closed.track()
	s.push.on = cfg.h2Push // RFC 9113 §8.4; off by default (Config.EnableH2Push)
	w.fr = http2.NewFramer(&s.wbuf, w.br)
	w.fr.SetReuseFrames()
	w.fr.SetMaxReadFrameSize(h2MinFrame)
	w.dec = hpack.NewDecoder(4096, w.emit)
	w.dec.SetMaxStringLength(cfg.maxHeaderBytes)
	w.enc = hpack.NewEncoder(&w.hbuf)

	// The server's connection preface is its SETTINGS (RFC 9113 §3.4).
	before := len(s.wbuf.b)
	w.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: cfg.maxConcurrentStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(cfg.initialWindowSize)},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(cfg.maxHeaderBytes)},
		// RFC 9218 §2.1: the RFC 7540 priority tree means nothing here.
		http2.Setting{ID: http2.SettingID(0x9), Val: 1},
	)
	w.settingsAck++
	w.traceOut(before)
	if cfg.sessionWindowSize > h2DefaultWindow {
		before := len(s.wbuf.b)
		w.fr.WriteWindowUpdate(0, uint32(cfg.sessionWindowSize-h2DefaultWindow))
		w.traceOut(before)
		s.recvFlow.avail = cfg.sessionWindowSize
	}
	return s
}

// readFrame reads one frame and handles it; the first call reads the
// client preface first.
func (w *h2Wire) readFrame() error {
	s := w.s
	if !w.gotPreface {
		if err := w.readPreface(); err != nil {
			return err
		}
		w.gotPreface = true
	}
	f, err := w.fr.ReadFrame()
	if err != nil {
		return w.readError(err)
	}
	if s.cfg.trace != nil {
		w.traceIn(f)
	}
	if !w.sawSettings {
		// The client preface ends with a SETTINGS frame (RFC 9113 §3.4).
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			return h2ConnError(codeProtocol, "the client preface is not followed by SETTINGS")
		}
		w.sawSettings = true
		s.conn.SetReadDeadline(time.Time{})
	}
	if w.block.active {
		// Only CONTINUATION of the same stream may follow HEADERS without
		// END_HEADERS (RFC 9113 §6.10); the framer enforces it.
		cf, ok := f.(*http2.ContinuationFrame)
		if !ok || cf.StreamID != w.block.streamID {
			return h2ConnError(codeProtocol, "a header block interrupted")
		}
		return w.onContinuation(cf)
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		return w.onData(f)
	case *http2.HeadersFrame:
		return w.onHeaders(f)
	case *http2.PriorityFrame:
		// RFC 7540 priorities are parsed and otherwise ignored (RFC 9113
		// §5.3.2), but a stream may not depend on itself (§5.3.1).
		if f.StreamDep == f.StreamID {
			return &streamErr{id: f.StreamID, code: codeProtocol, reason: "PRIORITY: a stream depends on itself"}
		}
	case *http2.RSTStreamFrame:
		return w.onRstStream(f)
	case *http2.SettingsFrame:
		return w.onSettings(f)
	case *http2.PushPromiseFrame:
		// A client cannot push (RFC 9113 §8.4).
		return h2ConnError(codeProtocol, "PUSH_PROMISE from a client")
	case *http2.PingFrame:
		s.mu.Lock()
		if f.IsAck() {
			s.glitchLocked("PING ACK for no PING")
		} else {
			s.queueCtrlLocked(ctrlFrame{kind: ctrlPingAck, value: binary.BigEndian.Uint64(f.Data[:])})
		}
		s.mu.Unlock()
	case *http2.GoAwayFrame:
		s.mu.Lock()
		s.peerGoAwayLocked(f.LastStreamID)
		s.mu.Unlock()
		if f.ErrCode != http2.ErrCodeNo {
			s.log.Info("spdymux: peer sent GOAWAY", "code", f.ErrCode, "last", f.LastStreamID)
		}
	case *http2.WindowUpdateFrame:
		return w.onWindowUpdate(f)
	case *http2.PriorityUpdateFrame:
		return w.onPriorityUpdate(f)
	case *http2.ContinuationFrame:
		// The framer lets none through outside a block.
		return h2ConnError(codeProtocol, "CONTINUATION outside a header block")
	default:
		// Unknown frame types are ignored (RFC 9113 §4.1, §5.5).
		s.mu.Lock()
		s.glitchLocked("unknown frame type")
		s.mu.Unlock()
	}
	return nil
}

// readPreface reads and checks the client connection preface.
func (w *h2Wire) readPreface() error {
	var b [len(h2Preface)]byte
	if _, err := io.ReadFull(w.br, b[:]); err != nil {
		return err
	}
	if string(b[:]) != h2Preface {
		return h2ConnError(codeProtocol, "bad client connection preface")
	}
	return nil
}

// readError maps the framer's errors to verdicts.
func (w *h2Wire) readError(err error) error {
	var ce http2.ConnectionError
	var se http2.StreamError
	switch {
	case errors.As(err, &ce):
		detail := w.fr.ErrorDetail()
		if detail == nil {
			detail = err
		}
		return &connErr{code: h2Code(http2.ErrCode(ce)), err: fmt.Errorf("spdymux: %w", detail)}
	case errors.As(err, &se):
		reason := se.Code.String()
		if se.Cause != nil {
			reason = se.Cause.Error()
		}
		return &streamErr{id: se.StreamID, code: h2Code(se.Code), reason: reason}
	case errors.Is(err, http2.ErrFrameTooLarge):
		return h2ConnError(codeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
	}
	return err
}

func h2ConnError(code errCode, reason string) error {
	return &connErr{code: code, err: errors.New("spdymux: " + reason)}
}

func (w *h2Wire) onData(f *http2.DataFrame) error {
	s := w.s
	id := f.StreamID
	err := s.receiveData(id, f.Data(), int(f.Length), f.StreamEnded())
	if err != errNoStream {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.neverOpenedLocked(id) {
		// DATA on an idle stream (RFC 9113 §5.1).
		return h2ConnError(codeProtocol, "DATA on an idle stream")
	}
	if _, reset := s.closed.lookup(id); reset {
		// Late DATA on a stream this side reset is ignored (RFC 9113
		// §5.1); the session window was credited.
		return nil
	}
	// A closed stream (RFC 9113 §5.1, §6.1); counted, as the resets a
	// client makes the server send are an attack of their own
	// (CVE-2025-8671).
	return &streamErr{id: id, code: codeStreamClosed, reason: "DATA on a closed stream"}
}

// onHeaders starts a header block: a request, or trailers.
func (w *h2Wire) onHeaders(f *http2.HeadersFrame) error {
	if f.StreamID%2 == 0 {
		// Clients open odd streams (RFC 9113 §5.1.1).
		return h2ConnError(codeProtocol, "HEADERS on an even stream")
	}
	w.block = h2Block{active: true, streamID: f.StreamID, endStream: f.StreamEnded()}
	if f.HasPriority() && f.Priority.StreamDep == f.StreamID {
		// A stream may not depend on itself (RFC 9113 §5.3.1); the block
		// is still decoded, to keep HPACK in step.
		w.block.reject = &streamErr{id: f.StreamID, code: codeProtocol, reason: "HEADERS: a stream depends on itself"}
	}
	w.fields = w.fields[:0]
	w.fieldBytes, w.fieldsOver, w.badField = 0, false, ""
	return w.decodeFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (w *h2Wire) onContinuation(f *http2.ContinuationFrame) error {
	w.block.frames++
	if w.block.frames > w.s.cfg.maxContinuations {
		// CONTINUATION flood (CVE-2024-27316 and its siblings): a block
		// may not go on for ever, whatever its frames hold.
		w.s.mu.Lock()
		w.s.stats.rateLimited.Add(1)
		w.s.stats.limitHit(limitMaxContinuationFrames)
		w.s.mu.Unlock()
		return &connErr{code: codeCalm, err: fmt.Errorf("spdymux: header block of more than %d CONTINUATION frames (Config.MaxContinuationFrames)", w.s.cfg.maxContinuations)}
	}
	return w.decodeFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// decodeFragment feeds one fragment of the current block to the HPACK
// decoder, and handles the block once it ends.
func (w *h2Wire) decodeFragment(p []byte, end bool) error {
	w.block.size += len(p)
	if w.block.size > w.s.cfg.maxHeaderBytes {
		// Bounded before decoding (RFC 9113 §10.5.1): a block larger
		// than the header list it may carry is cut off.
		w.s.stats.limitHit(limitMaxHeaderBytes)
		return &connErr{code: codeCalm, err: fmt.Errorf("spdymux: header block over %d bytes (Config.MaxHeaderBytes)", w.s.cfg.maxHeaderBytes)}
	}
	if _, err := w.dec.Write(p); err != nil {
		return &connErr{code: codeCompression, err: fmt.Errorf("spdymux: HPACK: %w", err)}
	}
	if !end {
		return nil
	}
	if err := w.dec.Close(); err != nil {
		return &connErr{code: codeCompression, err: fmt.Errorf("spdymux: HPACK: %w", err)}
	}
	b := w.block
	w.block = h2Block{}
	err := w.onBlock(b)
	w.dropFields() // what onBlock did not take, no idle session keeps
	return err
}

// emit takes one decoded field. Fields are counted and sized as they
// come: past a limit the block is still decoded (the dynamic table must
// stay in step) but nothing more of it is kept.
func (w *h2Wire) emit(f hpack.HeaderField) {
	if w.fieldsOver {
		return
	}
	w.fieldBytes += len(f.Name) + len(f.Value) + 32
	if len(w.fields) >= w.s.cfg.maxHeaderFields || w.fieldBytes > w.s.cfg.maxHeaderBytes {
		// Field-count amplification: many tiny indexed fields cost a
		// few bytes each on the wire and 32 bytes or more here.
		w.fieldsOver = true
		if len(w.fields) >= w.s.cfg.maxHeaderFields {
			w.s.stats.limitHit(limitMaxHeaderFields)
		} else {
			w.s.stats.limitHit(limitMaxHeaderBytes)
		}
		w.dropFields()
		return
	}
	w.fields = append(w.fields, f)
}

// onBlock handles a complete header block of stream b.streamID.
func (w *h2Wire) onBlock(b h2Block) error {
	s := w.s
	id := b.streamID
	s.mu.Lock()
	st := s.streams[id]
	if b.reject != nil {
		if st == nil && id > s.lastPeerStream {
			s.lastPeerStream = id // the stream is closed by the error
		}
		s.mu.Unlock()
		return b.reject
	}
	switch {
	case st != nil:
		// A second block on an open stream: trailers (RFC 9113 §8.1).
		defer s.mu.Unlock()
		if st.recvFin {
			return &streamErr{id: id, code: codeStreamClosed, reason: "HEADERS after END_STREAM"}
		}
		if !b.endStream {
			return &streamErr{id: id, code: codeProtocol, reason: "trailers without END_STREAM"}
		}
		trailers := w.takeFields()
		if w.fieldsOver {
			return &streamErr{id: id, code: codeProtocol, reason: "trailers over the header limits"}
		}
		if err := httpconv.CheckTrailers(httpconv.H2, trailers); err != nil {
			return &streamErr{id: id, code: codeProtocol, reason: err.Error()}
		}
		st.recvTrailers = trailers
		return s.receiveEndLocked(st)
	case id <= s.lastPeerStream:
		found, reset := s.closed.lookup(id)
		s.mu.Unlock()
		switch {
		case reset:
			// Frames on a stream this side reset may still come: ignored
			// (RFC 9113 §5.1, closed), the block decoded all the same.
			return nil
		case found:
			// HEADERS on a stream that ended (§5.1, closed).
			return h2ConnError(codeStreamClosed, "HEADERS on a closed stream")
		}
		// Ids of new streams must increase (§5.1.1).
		return h2ConnError(codeProtocol, fmt.Sprintf("HEADERS opening stream %d after %d", id, s.lastPeerStream))
	case s.err != nil:
		s.mu.Unlock()
		return errSessionClosed
	case s.goingAway:
		// After GOAWAY, new streams are ignored (RFC 9113 §6.8).
		s.mu.Unlock()
		return nil
	}
	priority := uint8(h2DefaultUrgency)
	if p, ok := w.priorities[id]; ok {
		priority = p
		delete(w.priorities, id)
	}
	fields := w.takeFields()
	for _, f := range fields {
		if f.Name == "priority" {
			if u, ok := parseUrgency(f.Value); ok {
				priority = u
			}
		}
	}
	st = s.acceptStreamLocked(id, priority, b.endStream)
	if st == nil {
		s.mu.Unlock()
		return nil
	}
	if w.fieldsOver {
		// RFC 6585 §5; the block was decoded, the stream is answered.
		s.log.Info("spdymux: request header over the limits", "stream", id,
			"fields", s.cfg.maxHeaderFields, "bytes", s.cfg.maxHeaderBytes)
		s.replyErrorLocked(st, http.StatusRequestHeaderFieldsTooLarge, "request header fields over the limits")
		// As a reset would be: the client made the server refuse it.
		s.glitchLocked("request header over the limits")
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.onStream(st, fields)
}

// takeFields returns the block's fields as the core's header fields; the
// caller holds s.mu.
func (w *h2Wire) takeFields() []httpconv.HeaderField {
	if len(w.fields) == 0 {
		return nil
	}
	out := w.s.fieldsLocked(len(w.fields))
	for i, f := range w.fields {
		out[i] = httpconv.HeaderField{Name: f.Name, Value: f.Value}
	}
	w.dropFields()
	return out
}

// dropFields empties the block's fields, clearing them first: a slice
// only cut to length 0 would keep every string it held alive, up to
// MaxHeaderBytes per session, until a later block overwrote them.
func (w *h2Wire) dropFields() {
	clear(w.fields)
	w.fields = w.fields[:0]
}

// parseUrgency reads the urgency of an RFC 9218 priority field value
// ("u=1, i"); ok is false when it names none.
func parseUrgency(v string) (uint8, bool) {
	for len(v) > 0 {
		var item string
		item, v, _ = strings.Cut(v, ",")
		item = strings.Trim(item, " \t") // OWS
		if len(item) == 3 && item[0] == 'u' && item[1] == '=' && item[2] >= '0' && item[2] <= '7' {
			return item[2] - '0', true
		}
	}
	return 0, false
}

func (w *h2Wire) onRstStream(f *http2.RSTStreamFrame) error {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[f.StreamID]
	if st == nil {
		if s.neverOpenedLocked(f.StreamID) {
			// RST_STREAM on an idle stream (RFC 9113 §6.4).
			return h2ConnError(codeProtocol, "RST_STREAM on an idle stream")
		}
		return nil
	}
	// Never answered with RST_STREAM (RFC 9113 §5.4.2).
	s.peerResetLocked(st, h2Code(f.ErrCode), f.ErrCode.String())
	return nil
}

func (w *h2Wire) onSettings(f *http2.SettingsFrame) error {
	s := w.s
	if f.IsAck() {
		if w.settingsAck == 0 {
			s.mu.Lock()
			s.glitchLocked("SETTINGS ACK for no SETTINGS")
			s.mu.Unlock()
			return nil
		}
		w.settingsAck--
		return nil
	}
	if f.NumSettings() > s.cfg.maxSettingsEntries {
		s.stats.limitHit(limitMaxSettingsEntries)
		return &connErr{code: codeCalm, err: fmt.Errorf("spdymux: SETTINGS with %d entries (Config.MaxSettingsEntries %d)", f.NumSettings(), s.cfg.maxSettingsEntries)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w.settingsIn++
	if w.settingsIn > 1 {
		// Allowed, but every one is acknowledged and may touch every
		// stream: a flood is CVE-2019-9515.
		s.glitchLocked("SETTINGS after the first")
	}
	err := f.ForeachSetting(func(set http2.Setting) error {
		if err := set.Valid(); err != nil {
			// A value out of its range (RFC 9113 §6.5.2).
			var ce http2.ConnectionError
			errors.As(err, &ce)
			return &connErr{code: h2Code(http2.ErrCode(ce)), err: fmt.Errorf("spdymux: SETTINGS: %w", err)}
		}
		switch set.ID {
		case http2.SettingHeaderTableSize:
			w.peerTableSize, w.peerTableChanged = set.Val, true
		case http2.SettingMaxConcurrentStreams:
			s.peerMaxStreams = set.Val
			s.push.peerMaxSet = true
		case http2.SettingEnablePush:
			// A client that says 0 gets no PUSH_PROMISE (RFC 9113 §8.4).
			s.push.peerOff = set.Val == 0
		case http2.SettingInitialWindowSize:
			return s.peerInitialWindowLocked(set.Val)
		case http2.SettingMaxFrameSize:
			s.maxSendFrame = int(min(set.Val, uint32(DefaultMaxDataFrame)))
		}
		// Others, known or not, are ignored (§6.5.2).
		return nil
	})
	if err != nil {
		return err
	}
	// Every SETTINGS is acknowledged (RFC 9113 §6.5.3).
	s.queueCtrlLocked(ctrlFrame{kind: ctrlSettingsAck})
	return nil
}

func (w *h2Wire) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	s := w.s
	id := f.StreamID
	if id != 0 {
		s.mu.Lock()
		idle := s.streams[id] == nil && s.neverOpenedLocked(id)
		s.mu.Unlock()
		if idle {
			return h2ConnError(codeProtocol, "WINDOW_UPDATE on an idle stream")
		}
	}
	// A zero increment is refused by the framer (RFC 9113 §6.9).
	return s.windowUpdate(id, f.Increment)
}

// onPriorityUpdate takes an RFC 9218 PRIORITY_UPDATE: the urgency of an
// open stream changes for the pool and the writer; one for a stream not
// yet open is kept, within a bound, for when it opens (§7.1).
func (w *h2Wire) onPriorityUpdate(f *http2.PriorityUpdateFrame) error {
	s := w.s
	id := f.PrioritizedStreamID
	u, ok := parseUrgency(f.Priority)
	if !ok {
		u = h2DefaultUrgency
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id%2 == 0 {
		// A push stream (RFC 9218 §7.1): reprioritized while open; one
		// not open, or never promised, is ignored (a client may not
		// know it has ended).
		if st := s.streams[id]; st != nil && st.pushed() && st.push.promised {
			s.reprioritizeLocked(st, u)
		} else if s.neverOpenedLocked(id) {
			s.glitchLocked("PRIORITY_UPDATE for a push that never was")
		}
		return nil
	}
	if st := s.streams[id]; st != nil {
		s.reprioritizeLocked(st, u)
		return nil
	}
	if !s.neverOpenedLocked(id) {
		return nil // closed
	}
	if w.priorities == nil {
		w.priorities = make(map[uint32]uint8)
	}
	if len(w.priorities) >= h2MaxPendingPriorities {
		s.glitchLocked("PRIORITY_UPDATE for too many idle streams")
		return nil
	}
	w.priorities[id] = u
	return nil
}

// Writing.

func (w *h2Wire) writeCtrl(f ctrlFrame) error {
	before := len(w.s.wbuf.b)
	var err error
	switch f.kind {
	case ctrlRst:
		err = w.fr.WriteRSTStream(f.streamID, http2.ErrCode(w.code(f.code, false)))
	case ctrlPing, ctrlPingAck:
		var data [8]byte
		binary.BigEndian.PutUint64(data[:], f.value)
		err = w.fr.WritePing(f.kind == ctrlPingAck, data)
	case ctrlWindowUpdate:
		err = w.fr.WriteWindowUpdate(f.streamID, uint32(f.value))
	case ctrlGoAway:
		err = w.fr.WriteGoAway(f.streamID, http2.ErrCode(w.code(f.code, true)), nil)
	case ctrlSettingsAck:
		err = w.fr.WriteSettingsAck()
	}
	if err != nil {
		return err
	}
	w.traceOut(before)
	return nil
}

// writeHead encodes head as HEADERS and, past the peer's frame size,
// CONTINUATION frames, written together.
func (w *h2Wire) writeHead(st *stream, head []httpconv.HeaderField, fin bool) error {
	return w.writeBlock(st.id, head, fin)
}

func (w *h2Wire) writeTrailers(st *stream, trailers []httpconv.HeaderField) error {
	return w.writeBlock(st.id, trailers, true)
}

// writePush writes the PUSH_PROMISE that reserves st, a pushed stream, on
// the stream whose response asked for it, with the promised request (RFC
// 9113 §8.4, §6.6), and CONTINUATION frames past the peer's frame size.
func (w *h2Wire) writePush(st *stream, _ bool) error {
	assoc := st.push.assoc.id
	return w.writeFrames(assoc, st.push.promise, func(first []byte, end bool) error {
		return w.fr.WritePushPromise(http2.PushPromiseParam{StreamID: assoc, PromiseID: st.id, BlockFragment: first, EndHeaders: end})
	})
}

func (w *h2Wire) writeBlock(id uint32, fields []httpconv.HeaderField, endStream bool) error {
	return w.writeFrames(id, fields, func(first []byte, end bool) error {
		return w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: end})
	})
}

// writeFrames encodes fields as a header block and writes it on stream
// id: the first fragment with writeFirst (HEADERS, PUSH_PROMISE), the
// rest as CONTINUATION frames, each within the peer's frame size.
func (w *h2Wire) writeFrames(id uint32, fields []httpconv.HeaderField, writeFirst func(first []byte, end bool) error) error {
	s := w.s
	if w.peerTableChanged {
		// The encoder may use at most the table the peer allows (RFC 7541
		// §4.2); the change is signalled at the start of the next block.
		w.enc.SetMaxDynamicTableSizeLimit(w.peerTableSize)
		w.peerTableChanged = false
	}
	w.hbuf.Reset()
	for _, f := range fields {
		w.enc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
	}
	block := w.hbuf.Bytes()
	max := s.maxSendFrame
	first := block[:min(len(block), max)]
	before := len(s.wbuf.b)
	if err := writeFirst(first, len(first) == len(block)); err != nil {
		return err
	}
	w.traceOut(before)
	for rest := block[len(first):]; len(rest) > 0; {
		frag := rest[:min(len(rest), max)]
		rest = rest[len(frag):]
		before := len(s.wbuf.b)
		if err := w.fr.WriteContinuation(id, len(rest) == 0, frag); err != nil {
			return err
		}
		w.traceOut(before)
	}
	return nil
}

// writeData writes a DATA frame straight into the session's buffer: its
// 9-byte header, then the payload, with no copy through the framer.
func (w *h2Wire) writeData(st *stream, p []byte, fin bool) error {
	var flags http2.Flags
	if fin {
		flags = http2.FlagDataEndStream
	}
	b := &w.s.wbuf
	var h [9]byte
	h[0], h[1], h[2] = byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
	h[3] = byte(http2.FrameData)
	h[4] = byte(flags)
	binary.BigEndian.PutUint32(h[5:], st.id&(1<<31-1))
	b.Write(h[:])
	b.Write(p)
	if w.s.cfg.trace != nil {
		w.s.trace(FrameEvent{Out: true, Name: "DATA", StreamID: st.id, Flags: uint8(flags), Length: len(p)})
	}
	return nil
}

// checkHead reports whether head can be sent: HPACK carries any field, so
// only what HTTP/2 forbids is refused (RFC 9113 §8.2).
func (w *h2Wire) checkHead(head []httpconv.HeaderField) error {
	for _, f := range head {
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			return errors.Join(errFrameRejected, fmt.Errorf("invalid value in field %q", f.Name))
		}
	}
	return nil
}

// errorHead is the head of an error response the session makes itself.
func (w *h2Wire) errorHead(status, contentLength int) []httpconv.HeaderField {
	return []httpconv.HeaderField{
		{Name: ":status", Value: strconv.Itoa(status)},
		{Name: "content-length", Value: strconv.Itoa(contentLength)},
		{Name: "content-type", Value: "text/plain; charset=utf-8"},
	}
}

// code returns the HTTP/2 error code of c (RFC 9113 §7); only HTTP/2
// codes go on the wire.
func (w *h2Wire) code(c errCode, _ bool) uint32 {
	switch c {
	case codeNo:
		return uint32(http2.ErrCodeNo)
	case codeInternal:
		return uint32(http2.ErrCodeInternal)
	case codeFlowControl:
		return uint32(http2.ErrCodeFlowControl)
	case codeStreamClosed:
		return uint32(http2.ErrCodeStreamClosed)
	case codeFrameSize:
		return uint32(http2.ErrCodeFrameSize)
	case codeRefused:
		return uint32(http2.ErrCodeRefusedStream)
	case codeCancel:
		return uint32(http2.ErrCodeCancel)
	case codeCompression:
		return uint32(http2.ErrCodeCompression)
	case codeCalm:
		return uint32(http2.ErrCodeEnhanceYourCalm)
	}
	return uint32(http2.ErrCodeProtocol)
}

func (w *h2Wire) codeName(c errCode) string { return http2.ErrCode(w.code(c, false)).String() }

// h2Code maps an HTTP/2 error code from the peer or the framer to the
// core's; codes the core has no use for read as PROTOCOL_ERROR's kin.
func h2Code(c http2.ErrCode) errCode {
	switch c {
	case http2.ErrCodeNo:
		return codeNo
	case http2.ErrCodeInternal:
		return codeInternal
	case http2.ErrCodeFlowControl:
		return codeFlowControl
	case http2.ErrCodeStreamClosed:
		return codeStreamClosed
	case http2.ErrCodeFrameSize:
		return codeFrameSize
	case http2.ErrCodeRefusedStream:
		return codeRefused
	case http2.ErrCodeCancel:
		return codeCancel
	case http2.ErrCodeCompression:
		return codeCompression
	case http2.ErrCodeEnhanceYourCalm:
		return codeCalm
	}
	return codeProtocol
}

// Tracing.

func (w *h2Wire) traceIn(f http2.Frame) {
	h := f.Header()
	e := FrameEvent{Name: h.Type.String(), StreamID: h.StreamID, Flags: uint8(h.Flags), Length: int(h.Length)}
	switch f := f.(type) {
	case *http2.RSTStreamFrame:
		e.Code = uint32(f.ErrCode)
	case *http2.GoAwayFrame:
		e.Code = uint32(f.ErrCode)
	}
	w.s.trace(e)
}

// traceOut reports the frame the writer just encoded at wbuf[before:].
func (w *h2Wire) traceOut(before int) {
	s := w.s
	b := s.wbuf.b
	if s.cfg.trace == nil || len(b) < before+9 {
		return
	}
	h := b[before:]
	e := FrameEvent{Out: true, Name: http2.FrameType(h[3]).String(), StreamID: binary.BigEndian.Uint32(h[5:]) & (1<<31 - 1),
		Flags: h[4], Length: int(h[0])<<16 | int(h[1])<<8 | int(h[2])}
	switch p := h[9:]; {
	case http2.FrameType(h[3]) == http2.FramePushPromise && len(p) >= 4:
		e.PromisedID = binary.BigEndian.Uint32(p) & (1<<31 - 1) // §6.6, unpadded
	case http2.FrameType(h[3]) == http2.FrameRSTStream && len(p) >= 4:
		e.Code = binary.BigEndian.Uint32(p) // RFC 9113 §6.4
	case http2.FrameType(h[3]) == http2.FrameGoAway && len(p) >= 8:
		e.Code = binary.BigEndian.Uint32(p[4:]) // §6.8: after the last stream id
	}
	s.trace(e)
}
