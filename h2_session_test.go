package spdymux

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2peer is a scripted HTTP/2 client over net.Pipe: it writes frames as
// the test says and collects what the server sends, with header blocks
// decoded, so that tests can assert exact frames.
type h2peer struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer

	wmu  sync.Mutex
	enc  *hpack.Encoder
	ebuf bytes.Buffer

	frames  chan h2frame // filled by readLoop, closed when it ends
	pending []h2frame    // received and not yet taken; test goroutine only
	dec     *hpack.Decoder
}

// h2frame is a received frame, copied out of the framer's buffers.
type h2frame struct {
	typ    http2.FrameType
	id     uint32
	flags  http2.Flags
	data   []byte              // DATA payload, PING data
	fields []hpack.HeaderField // a header block, decoded
	code   http2.ErrCode       // RST_STREAM, GOAWAY
	last   uint32              // GOAWAY
	sets   []http2.Setting     // SETTINGS
	incr   uint32              // WINDOW_UPDATE
}

func (f h2frame) String() string {
	return fmt.Sprintf("%v stream=%d flags=%#x len=%d code=%v fields=%v", f.typ, f.id, uint8(f.flags), len(f.data), f.code, f.fields)
}

func (f h2frame) field(name string) string {
	for _, h := range f.fields {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// dialH2 connects an h2peer to ts: the client preface, SETTINGS with
// extra settings, and it acknowledges the server's SETTINGS.
func (ts *testServer) dialH2(t *testing.T, sets ...http2.Setting) *h2peer {
	t.Helper()
	client, server := net.Pipe()
	p := &h2peer{t: t, conn: client, frames: make(chan h2frame, 1<<12)}
	p.fr = http2.NewFramer(client, client)
	p.enc = hpack.NewEncoder(&p.ebuf)
	p.dec = hpack.NewDecoder(4096, nil)
	select {
	case ts.ln.ch <- server:
	case <-time.After(waitTimeout):
		t.Fatal("listener did not accept the connection")
	}
	go p.readLoop()
	p.write(func() error {
		if _, err := client.Write([]byte(http2.ClientPreface)); err != nil {
			return err
		}
		return p.fr.WriteSettings(sets...)
	})
	t.Cleanup(func() { client.Close() })
	return p
}

func (p *h2peer) readLoop() {
	defer close(p.frames)
	var block []byte
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			return
		}
		h := f.Header()
		out := h2frame{typ: h.Type, id: h.StreamID, flags: h.Flags}
		switch f := f.(type) {
		case *http2.DataFrame:
			out.data = bytes.Clone(f.Data())
		case *http2.HeadersFrame:
			block = append(block[:0], f.HeaderBlockFragment()...)
			if !f.HeadersEnded() {
				continue
			}
		case *http2.ContinuationFrame:
			block = append(block, f.HeaderBlockFragment()...)
			if !f.HeadersEnded() {
				continue
			}
			out.typ = http2.FrameHeaders
		case *http2.RSTStreamFrame:
			out.code = f.ErrCode
		case *http2.GoAwayFrame:
			out.code, out.last = f.ErrCode, f.LastStreamID
		case *http2.SettingsFrame:
			f.ForeachSetting(func(s http2.Setting) error { out.sets = append(out.sets, s); return nil })
			if !f.IsAck() {
				p.write(func() error { return p.fr.WriteSettingsAck() })
			}
		case *http2.WindowUpdateFrame:
			out.incr = f.Increment
		case *http2.PingFrame:
			out.data = bytes.Clone(f.Data[:])
		}
		if out.typ == http2.FrameHeaders {
			fields, err := p.dec.DecodeFull(block)
			if err != nil {
				p.t.Errorf("server sent a bad header block: %v", err)
				return
			}
			out.fields = fields
		}
		p.frames <- out
	}
}

func (p *h2peer) write(f func() error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := f(); err != nil {
		p.t.Errorf("write to server: %v", err)
	}
}

// request sends HEADERS for a request on stream id, with END_STREAM when
// endStream; extra fields follow the pseudo-headers.
func (p *h2peer) request(id uint32, method, path string, endStream bool, extra ...hpack.HeaderField) {
	p.headers(id, endStream, append([]hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "example.com"},
		{Name: ":path", Value: path},
	}, extra...)...)
}

func (p *h2peer) headers(id uint32, endStream bool, fields ...hpack.HeaderField) {
	p.write(func() error {
		p.ebuf.Reset()
		for _, f := range fields {
			p.enc.WriteField(f)
		}
		return p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.ebuf.Bytes(), EndStream: endStream, EndHeaders: true})
	})
}

// expect returns the first frame, pending or new, that match accepts.
func (p *h2peer) expect(what string, match func(h2frame) bool) h2frame {
	p.t.Helper()
	for i, f := range p.pending {
		if match(f) {
			p.pending = slices.Delete(p.pending, i, i+1)
			return f
		}
	}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-p.frames:
			if !ok {
				p.t.Fatalf("want %s; the connection ended; frames passed over: %v", what, p.pending)
			}
			if match(f) {
				return f
			}
			p.pending = append(p.pending, f)
		case <-timer.C:
			p.t.Fatalf("want %s within %v; frames passed over: %v", what, waitTimeout, p.pending)
		}
	}
}

// sync sends a PING and waits for its ACK: every frame the server sent
// before it is pending.
func (p *h2peer) sync() {
	p.t.Helper()
	data := [8]byte{'s', 'y', 'n', 'c'}
	p.write(func() error { return p.fr.WritePing(false, data) })
	p.expect("PING ACK", func(f h2frame) bool { return f.typ == http2.FramePing && f.flags.Has(http2.FlagPingAck) })
}

// response reads the response of stream id: its final head, its body
// and its trailers, if any.
func (p *h2peer) response(id uint32) (head h2frame, body []byte, trailers h2frame) {
	p.t.Helper()
	isStream := func(f h2frame) bool {
		return f.id == id && (f.typ == http2.FrameHeaders || f.typ == http2.FrameData || f.typ == http2.FrameRSTStream)
	}
	for {
		head = p.expect(fmt.Sprintf("HEADERS of stream %d", id), isStream)
		if head.typ != http2.FrameHeaders {
			p.t.Fatalf("stream %d: got %v; want HEADERS", id, head)
		}
		if s := head.field(":status"); len(s) != 3 || s[0] != '1' {
			break
		}
	}
	if head.flags.Has(http2.FlagHeadersEndStream) {
		return head, nil, h2frame{}
	}
	for {
		f := p.expect(fmt.Sprintf("DATA of stream %d", id), isStream)
		switch f.typ {
		case http2.FrameRSTStream:
			p.t.Fatalf("stream %d reset: %v", id, f.code)
		case http2.FrameHeaders:
			if !f.flags.Has(http2.FlagHeadersEndStream) {
				p.t.Fatalf("stream %d: trailers without END_STREAM", id)
			}
			return head, body, f
		}
		body = append(body, f.data...)
		if f.flags.Has(http2.FlagDataEndStream) {
			return head, body, h2frame{}
		}
	}
}

func TestH2InitialFrames(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t)
		settings := p.expect("SETTINGS", func(f h2frame) bool { return f.typ == http2.FrameSettings && !f.flags.Has(http2.FlagSettingsAck) })
		want := map[http2.SettingID]uint32{
			http2.SettingMaxConcurrentStreams: DefaultMaxConcurrentStreams,
			http2.SettingInitialWindowSize:    DefaultInitialWindowSize,
			http2.SettingMaxHeaderListSize:    DefaultMaxHeaderBytes,
			0x9:                               1, // SETTINGS_NO_RFC7540_PRIORITIES
		}
		for _, s := range settings.sets {
			if w, ok := want[s.ID]; ok && s.Val != w {
				t.Errorf("SETTINGS %v = %d; want %d", s.ID, s.Val, w)
			}
			delete(want, s.ID)
		}
		if len(want) > 0 {
			t.Errorf("SETTINGS lacks %v: %v", want, settings.sets)
		}
		wu := p.expect("WINDOW_UPDATE", func(f h2frame) bool { return f.typ == http2.FrameWindowUpdate })
		if wu.id != 0 || wu.incr != DefaultSessionWindowSize-65535 {
			t.Errorf("WINDOW_UPDATE stream %d increment %d; want stream 0, %d", wu.id, wu.incr, DefaultSessionWindowSize-65535)
		}
		p.expect("SETTINGS ACK", func(f h2frame) bool { return f.typ == http2.FrameSettings && f.flags.Has(http2.FlagSettingsAck) })
	})
}

func TestH2GET(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t)
		p.request(1, "GET", "/hello", true)
		head, body, _ := p.response(1)
		if head.field(":status") != "200" || string(body) != "hello, world\n" {
			t.Errorf("GET /hello: %v %q", head.fields, body)
		}
		for _, f := range head.fields {
			if f.Name == "connection" || f.Name == "transfer-encoding" || f.Name == ":version" {
				t.Errorf("response carries %q", f.Name)
			}
		}
		p.request(3, "GET", "/info", true, hpack.HeaderField{Name: "priority", Value: "u=1"})
		_, body, _ = p.response(3)
		var info struct {
			Protocol string
			StreamID uint32
			Priority uint8
		}
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatalf("/info: %q: %v", body, err)
		}
		if info.Protocol != ProtoH2C || info.StreamID != 3 || info.Priority != 1 {
			t.Errorf("StreamInfo %+v; want h2c, stream 3, priority 1 (urgency from the priority field)", info)
		}
	})
}

// Request trailers reach the server as chunked trailers; response
// trailers go to the client as a last HEADERS with END_STREAM.
func TestH2Trailers(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t)
		p.request(1, "POST", "/trailers", false)
		p.write(func() error { return p.fr.WriteData(1, false, []byte("some body")) })
		p.headers(1, true, hpack.HeaderField{Name: "x-in", Value: "sent after the body"})
		head, body, trailers := p.response(1)
		if head.field(":status") != "200" || string(body) != "some body" {
			t.Fatalf("POST /trailers: %v %q", head.fields, body)
		}
		if got := trailers.field("x-out"); got != "sent after the body" {
			t.Errorf("response trailer x-out %q; want the request trailer back (trailers %v)", got, trailers.fields)
		}
		if got := trailers.field("x-len"); got != "9" {
			t.Errorf("response trailer x-len %q; want 9", got)
		}
	})
}

// A handler's 103 Early Hints goes to the client as an interim HEADERS
// before the final response.
func TestH2EarlyHints(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t)
		p.request(1, "GET", "/hints", true)
		hints := p.expect("HEADERS 103", func(f h2frame) bool { return f.typ == http2.FrameHeaders && f.id == 1 })
		if hints.field(":status") != "103" || hints.field("link") == "" || hints.flags.Has(http2.FlagHeadersEndStream) {
			t.Errorf("first HEADERS: %v; want 103 with link, no END_STREAM", hints)
		}
		head, body, _ := p.response(1)
		if head.field(":status") != "200" || string(body) != "after hints\n" {
			t.Errorf("final response: %v %q", head.fields, body)
		}
	})
}

// A malformed request is a stream error (RFC 9113 §8.1.1); the connection
// goes on.
func TestH2MalformedRequest(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t)
		for i, extra := range []hpack.HeaderField{
			{Name: "X-Upper", Value: "1"},
			{Name: "connection", Value: "close"},
			{Name: "te", Value: "gzip"},
		} {
			id := uint32(1 + 2*i)
			p.request(id, "GET", "/hello", true, extra)
			f := p.expect(fmt.Sprintf("RST_STREAM of stream %d", id), func(f h2frame) bool { return f.id == id })
			if f.typ != http2.FrameRSTStream || f.code != http2.ErrCodeProtocol {
				t.Errorf("request with %q: got %v; want RST_STREAM PROTOCOL_ERROR", extra.Name, f)
			}
		}
		p.request(7, "GET", "/hello", true)
		if head, body, _ := p.response(7); head.field(":status") != "200" || string(body) != "hello, world\n" {
			t.Errorf("after the malformed requests: %v %q", head.fields, body)
		}
	})
}

// The server sends no more than the client's stream window before a
// WINDOW_UPDATE.
func TestH2SendWindow(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		p.request(1, "GET", "/bytes/5000", true)
		got := 0
		for got < 1000 {
			f := p.expect("DATA", func(f h2frame) bool { return f.typ == http2.FrameData && f.id == 1 })
			got += len(f.data)
		}
		p.sync()
		for _, f := range p.pending {
			if f.typ == http2.FrameData && len(f.data) > 0 {
				t.Fatalf("DATA beyond the stream window of 1000: %v", f)
			}
		}
		p.write(func() error { return p.fr.WriteWindowUpdate(1, 4000) })
		for got < 5000 {
			f := p.expect("DATA", func(f h2frame) bool { return f.typ == http2.FrameData && f.id == 1 })
			got += len(f.data)
		}
		if got != 5000 {
			t.Errorf("got %d bytes; want 5000", got)
		}
	})
}

// Handlers waiting for a worker slot run by RFC 9218 urgency.
func TestH2PoolUrgency(t *testing.T) {
	bubble(t, func(t *testing.T) {
		pool := NewPool(1)
		ts := newTestServer(t, ProtoH2C, &Config{Pool: pool})
		p := ts.dialH2(t)
		p.request(1, "GET", "/wait", true)
		ts.waitEvent(t, "start", 1)
		urgencies := []uint8{7, 3, 0, 5}
		for i, u := range urgencies {
			p.request(uint32(3+2*i), "GET", "/info", true, hpack.HeaderField{Name: "priority", Value: "u=" + strconv.Itoa(int(u))})
		}
		ts.waitPool(t, 1, len(urgencies))
		// A PRIORITY_UPDATE moves the last one ahead of all.
		p.write(func() error { return p.fr.WritePriorityUpdate(9, "u=0, i") })
		p.sync()
		ts.unblock()
		p.response(1)
		for i := range urgencies {
			p.response(uint32(3 + 2*i))
		}
		var order []uint32
		for _, e := range ts.drainEvents() {
			if e.kind == "start" && e.path == "/info" {
				order = append(order, e.stream)
			}
		}
		if want := []uint32{7, 9, 5, 3}; !slices.Equal(order, want) {
			t.Errorf("handlers ran for streams %v; want %v (urgency 0, 0 updated later, 3, 7)", order, want)
		}
	})
}

// Output dropped at the server's write deadline resets the stream with
// INTERNAL_ERROR, as on SPDY, never an END_STREAM after a short body.
func TestH2DroppedOutputResets(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServerWith(t, ProtoH2C, nil, func(srv *http.Server) { srv.WriteTimeout = 300 * time.Millisecond })
		p := ts.dialH2(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		p.request(1, "GET", "/bytes/3000", true)
		f := p.expect("RST_STREAM", func(f h2frame) bool { return f.typ == http2.FrameRSTStream && f.id == 1 })
		if f.code != http2.ErrCodeInternal {
			t.Errorf("RST_STREAM %v; want INTERNAL_ERROR", f.code)
		}
		p.write(func() error { return p.fr.WriteWindowUpdate(1, 4000) })
		p.sync()
		for _, f := range p.pending {
			if f.typ == http2.FrameData && f.flags.Has(http2.FlagDataEndStream) {
				t.Errorf("stream ended after the reset: %v", f)
			}
		}
		ts.waitNoStreams(t)
	})
}

// A secondary connection lives on across streams: net/http keeps it
// alive, and the next stream of the session is served on it (the same
// ConnID), with each handler seeing its own stream's facts.
func TestSecondaryConnReuse(t *testing.T) {
	if *handlerMode {
		t.Skip("secondary connections only")
	}
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoH2C, nil)
		p := ts.dialH2(t)
		var conns []uint64
		for i := range 3 {
			id := uint32(1 + 2*i)
			p.request(id, "GET", "/info", true)
			_, body, _ := p.response(id)
			var info struct {
				StreamID uint32
				ConnID   uint64
			}
			if err := json.Unmarshal(body, &info); err != nil {
				t.Fatalf("/info: %q: %v", body, err)
			}
			if info.StreamID != id {
				t.Errorf("stream %d: the handler saw StreamID %d", id, info.StreamID)
			}
			conns = append(conns, info.ConnID)
		}
		if conns[0] != conns[1] || conns[1] != conns[2] {
			t.Errorf("ConnIDs %v for three streams one after another; want one connection reused", conns)
		}
	})
}

// While a stream of higher priority starts, the writer holds back the
// output of lower priorities, until its head is written or priorityHold
// has passed.
func TestPriorityHold(t *testing.T) {
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	cfg := (&Config{Logger: discardLogger}).settings()
	s := newSPDYSession(c, ProtoSPDY31, cfg, &listenerCounters{}, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wbuf.b = nil
	low := newStream(s, 1, 7)
	low.sentHead = true
	s.addStreamLocked(low)
	low.queueDataLocked(make([]byte, 100))
	high := s.acceptStreamLocked(3, 0, true)
	now := time.Now()
	if s.holdLevel, s.holdWait = s.holdLevelLocked(now); s.holdLevel != 0 || s.holdWait <= 0 {
		t.Fatalf("hold level %d, wait %v with a priority-0 stream starting; want 0 and a wait", s.holdLevel, s.holdWait)
	}
	if s.nextFrameLocked() {
		t.Fatalf("the writer wrote priority-7 data while a priority-0 stream starts: %x", s.wbuf.b)
	}
	if !s.heldLocked() {
		t.Errorf("heldLocked: false with priority-7 data waiting")
	}
	high.head = s.w.errorHead(200, 0)
	high.headQueued = true
	high.finQueued = true
	s.scheduleLocked(high)
	if !s.nextFrameLocked() || high.starting {
		t.Fatalf("the priority-0 head did not go out")
	}
	if s.holdLevel, _ = s.holdLevelLocked(now); s.holdLevel != 7 {
		t.Fatalf("hold level %d once the head is written; want 7", s.holdLevel)
	}
	if !s.nextFrameLocked() || low.outLen != 0 {
		t.Errorf("the priority-7 data did not go out once the hold ended")
	}
	// A start holds for priorityHold at most.
	s.acceptStreamLocked(5, 0, true)
	if lvl, _ := s.holdLevelLocked(time.Now().Add(priorityHold)); lvl != 7 {
		t.Errorf("hold level %d after priorityHold; want 7", lvl)
	}
}

// An RFC 9218 priority field's urgency is its u parameter, 0 to 7, in any
// place in the list and with optional whitespace around each item.
func TestParseUrgency(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want uint8
		ok   bool
	}{
		{"u=1, i", 1, true},
		{"i, u=7", 7, true},
		{" u=3 ", 3, true},
		{"\tu=0\t,i", 0, true},
		{"i,,u=5", 5, true},
		{"u=8", 0, false},
		{"u=12", 0, false},
		{"U=1", 0, false},
		{"i", 0, false},
		{"", 0, false},
	} {
		if got, ok := parseUrgency(tc.v); got != tc.want || ok != tc.ok {
			t.Errorf("parseUrgency(%q) = %d, %v; want %d, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

// closedStreams remembers the last closedRing streams, each with whether
// this side reset it, and nothing for a protocol that does not track.
func TestClosedStreams(t *testing.T) {
	var off closedStreams
	off.add(1, true)
	if found, _ := off.lookup(1); found {
		t.Fatal("a closedStreams not tracking remembered a stream")
	}

	var c closedStreams
	c.track()
	c.add(0, true)
	if found, _ := c.lookup(0); found {
		t.Fatal("stream 0 is remembered")
	}
	const n = closedRing + 44
	for id := uint32(1); id <= n; id++ {
		c.add(id, id%3 == 0)
	}
	if len(c.ids) != closedRing {
		t.Fatalf("holds %d ids, want %d", len(c.ids), closedRing)
	}
	for id := uint32(1); id <= n; id++ {
		found, reset := c.lookup(id)
		if want := id > n-closedRing; found != want {
			t.Fatalf("stream %d: found %v, want %v", id, found, want)
		}
		if found && reset != (id%3 == 0) {
			t.Fatalf("stream %d: reset %v", id, reset)
		}
	}
	if found, _ := c.lookup(n + 1); found {
		t.Fatal("a stream that never was is remembered")
	}
	// The highest stream id there is.
	c.add(1<<31-1, false)
	if found, reset := c.lookup(1<<31 - 1); !found || reset {
		t.Fatalf("stream 2^31-1: found %v, reset %v", found, reset)
	}
}
