package spdymux

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// dialH2Push connects an h2peer whose reader also decodes PUSH_PROMISE
// (the promised stream in h2frame.last): the harness's reader does not
// know the frame.
func (ts *testServer) dialH2Push(t *testing.T, sets ...http2.Setting) *h2peer {
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
	go p.readLoopPush()
	p.write(func() error {
		if _, err := client.Write([]byte(http2.ClientPreface)); err != nil {
			return err
		}
		return p.fr.WriteSettings(sets...)
	})
	t.Cleanup(func() { client.Close() })
	return p
}

func (p *h2peer) readLoopPush() {
	defer close(p.frames)
	var block []byte
	var promised uint32
	var blockType http2.FrameType
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
			block, blockType = append(block[:0], f.HeaderBlockFragment()...), http2.FrameHeaders
			if !f.HeadersEnded() {
				continue
			}
		case *http2.PushPromiseFrame:
			block, blockType, promised = append(block[:0], f.HeaderBlockFragment()...), http2.FramePushPromise, f.PromiseID
			if !f.HeadersEnded() {
				continue
			}
		case *http2.ContinuationFrame:
			block = append(block, f.HeaderBlockFragment()...)
			if !f.HeadersEnded() {
				continue
			}
			out.typ = blockType
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
		if out.typ == http2.FrameHeaders || out.typ == http2.FramePushPromise {
			fields, err := p.dec.DecodeFull(block)
			if err != nil {
				p.t.Errorf("server sent a bad header block: %v", err)
				return
			}
			out.fields = fields
			if out.typ == http2.FramePushPromise {
				out.last = promised
			}
		}
		p.frames <- out
	}
}

// h2Push is a promised stream as the peer saw it.
type h2Push struct {
	promise  h2frame
	head     h2frame
	body     []byte
	ended    bool
	promised int // HEADERS and DATA frames of the associated stream before it
}

// readH2Page reads stream id's response and its pushes to their ends,
// checking that each PUSH_PROMISE comes before the page's END_STREAM and
// before any frame of the promised stream.
func (p *h2peer) readH2Page(id uint32) (head h2frame, body []byte, pushes map[string]*h2Push) {
	p.t.Helper()
	pushes = map[string]*h2Push{}
	byID := map[uint32]*h2Push{}
	done, seen := false, 0
	open := func() bool {
		for _, ps := range byID {
			if !ps.ended {
				return true
			}
		}
		return false
	}
	for !done || open() {
		f := p.expect("the page and its pushes", func(f h2frame) bool {
			return f.id == id || byID[f.id] != nil || (f.typ == http2.FrameRSTStream && f.id%2 == 0 && f.id != 0)
		})
		if f.typ == http2.FrameRSTStream {
			if f.id == id {
				p.t.Fatalf("page reset: %v", f.code)
			}
			if ps := byID[f.id]; ps != nil {
				ps.ended = true
			}
			continue
		}
		if f.id == id {
			switch f.typ {
			case http2.FramePushPromise:
				if done {
					p.t.Errorf("PUSH_PROMISE after the page's END_STREAM")
				}
				ps := &h2Push{promise: f, promised: seen}
				byID[f.last] = ps
				pushes[f.field(":path")] = ps
			case http2.FrameHeaders:
				head = f
			case http2.FrameData:
				body = append(body, f.data...)
			}
			if f.typ != http2.FramePushPromise {
				seen++
			}
			if f.flags.Has(http2.FlagDataEndStream) && (f.typ == http2.FrameData || f.typ == http2.FrameHeaders) {
				done = true
			}
			continue
		}
		ps := byID[f.id]
		switch f.typ {
		case http2.FrameHeaders:
			ps.head = f
		case http2.FrameData:
			ps.body = append(ps.body, f.data...)
		}
		if (f.typ == http2.FrameData || f.typ == http2.FrameHeaders) && f.flags.Has(http2.FlagDataEndStream) {
			ps.ended = true
		}
	}
	return head, body, pushes
}

// HTTP/2 push is off by default: no PUSH_PROMISE, and X-Associated-Content
// is removed all the same.
func TestH2PushOffByDefault(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newPushServer(t, ProtoH2C, nil)
		p := ts.dialH2Push(t)
		p.request(1, "GET", pageURL([]string{`"/res/a"`}, []string{"</res/b>; rel=preload"}), true)
		head, body, pushes := p.readH2Page(1)
		if string(body) != "page" || len(pushes) != 0 {
			t.Errorf("page %q, pushes %v; want no push", body, keys(pushes))
		}
		if head.field("x-associated-content") != "" {
			t.Error("x-associated-content reached the client")
		}
	})
}

// With EnableH2Push, both triggers push: a PUSH_PROMISE on the page's
// stream with the promised request, before the page's response and its
// END_STREAM, then HEADERS and DATA on the promised (even) stream.
func TestH2Push(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newPushServer(t, ProtoH2C, &Config{EnableH2Push: true})
		p := ts.dialH2Push(t)
		p.request(1, "GET", pageURL([]string{`"/res/a"`}, []string{"</res/b>; rel=preload", "</res/c>; rel=preload; nopush"}), true,
			hpack.HeaderField{Name: "user-agent", Value: "h2-push-test"},
			hpack.HeaderField{Name: "cookie", Value: "a=1"},
			hpack.HeaderField{Name: "cookie", Value: "b=2"})
		head, body, pushes := p.readH2Page(1)
		if head.field(":status") != "200" || string(body) != "page" {
			t.Errorf("page: %v %q", head.fields, body)
		}
		if head.field("x-associated-content") != "" {
			t.Error("x-associated-content reached the client")
		}
		if len(pushes) != 2 {
			t.Fatalf("pushes %v; want /res/a and /res/b", keys(pushes))
		}
		ids := map[uint32]bool{}
		for path, ps := range pushes {
			pr := ps.promise
			if ps.promised != 0 {
				t.Errorf("PUSH_PROMISE for %s after %d frames of the page; want it first", path, ps.promised)
			}
			if pr.last%2 != 0 || ids[pr.last] {
				t.Errorf("promised stream %d", pr.last)
			}
			ids[pr.last] = true
			for k, v := range map[string]string{":method": "GET", ":scheme": "http", ":authority": "example.com", "user-agent": "h2-push-test",
				"referer": "http://example.com" + pageURL([]string{`"/res/a"`}, []string{"</res/b>; rel=preload", "</res/c>; rel=preload; nopush"})} {
				if pr.field(k) != v {
					t.Errorf("PUSH_PROMISE %s: %s %q; want %q", path, k, pr.field(k), v)
				}
			}
			name := strings.TrimPrefix(path, "/res/")
			if ps.head.field(":status") != "200" || string(ps.body) != "resource "+name+"\n" {
				t.Errorf("push %s: %v %q", path, ps.head.fields, ps.body)
			}
		}
		if got := ts.sl.Stats().Pushes; got != 2 {
			t.Errorf("Stats.Pushes %d; want 2", got)
		}
	})
}

// A client that sends SETTINGS_ENABLE_PUSH 0 is never pushed to (RFC 9113
// §8.4), nor one whose MAX_CONCURRENT_STREAMS is 0 (§5.1.2).
func TestH2PushRefusedBySettings(t *testing.T) {
	for name, set := range map[string]http2.Setting{
		"ENABLE_PUSH 0":            {ID: http2.SettingEnablePush, Val: 0},
		"MAX_CONCURRENT_STREAMS 0": {ID: http2.SettingMaxConcurrentStreams, Val: 0},
	} {
		t.Run(name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				ts := newPushServer(t, ProtoH2C, &Config{EnableH2Push: true})
				p := ts.dialH2Push(t, set)
				p.request(1, "GET", pageURL([]string{`"/res/a"`}, []string{"</res/b>; rel=preload"}), true)
				if _, body, pushes := p.readH2Page(1); string(body) != "page" || len(pushes) != 0 {
					t.Errorf("page %q, pushes %v; want no push", body, keys(pushes))
				}
			})
		})
	}
}

// The client's RST_STREAM CANCEL on a promised stream stops that push
// only, on HTTP/2 too; the page's own reset leaves promised pushes be
// (RFC 9113 keeps them apart, unlike SPDY).
func TestH2PushReset(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newPushServer(t, ProtoH2C, &Config{EnableH2Push: true})
		p := ts.dialH2Push(t)
		p.request(1, "GET", pageURL([]string{`"/block/x", "/res/a"`}, nil), true)
		pr := p.expect("PUSH_PROMISE of /block/x", func(f h2frame) bool {
			return f.typ == http2.FramePushPromise && strings.HasPrefix(f.field(":path"), "/block/")
		})
		// Once its handler runs (it answers, then blocks), the client cancels it.
		p.expect("DATA of /block/x", func(f h2frame) bool { return f.typ == http2.FrameData && f.id == pr.last })
		p.write(func() error { return p.fr.WriteRSTStream(pr.last, http2.ErrCodeCancel) })
		ts.waitEvent(t, "cancelled", pr.last)
		_, body, pushes := p.readH2Page(1)
		if string(body) != "page" {
			t.Errorf("page %q", body)
		}
		if ps := pushes["/res/a"]; ps == nil || string(ps.body) != "resource a\n" {
			t.Errorf("push /res/a: %+v", ps)
		}
		ts.waitNoStreams(t)
	})
}

// A 103 Early Hints' Link fields push, as mod_http2's do: the PUSH_PROMISE
// comes before the 103 itself, and a URL the final response names again
// is not pushed twice.
func TestH2PushFromEarlyHints(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var ts *testServer
		ts = newTestServerWith(t, ProtoH2C, &Config{EnableH2Push: true}, func(srv *http.Server) {
			h := pushHandler(&ts)
			srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/hinted" {
					h.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Link", "</res/early>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Add("Link", "</res/late>; rel=preload")
				io.WriteString(w, "page")
			})
		})
		p := ts.dialH2Push(t)
		p.request(1, "GET", "/hinted", true)
		first := p.expect("the first frame of stream 1", func(f h2frame) bool { return f.id == 1 })
		if first.typ != http2.FramePushPromise || first.field(":path") != "/res/early" {
			t.Fatalf("first frame of stream 1: %v; want the PUSH_PROMISE of /res/early, before the 103", first)
		}
		hints := p.expect("the 103", func(f h2frame) bool { return f.id == 1 && f.typ == http2.FrameHeaders })
		if hints.field(":status") != "103" {
			t.Errorf("then %v; want the 103", hints)
		}
		_, body, pushes := p.readH2Page(1)
		if string(body) != "page" || len(pushes) != 1 || pushes["/res/late"] == nil {
			t.Errorf("page %q, pushes %v after the 103; want /res/late alone", body, keys(pushes))
		}
	})
}

// A client may reprioritize a pushed stream (RFC 9218 §7.1): a
// PRIORITY_UPDATE for it is taken, not a connection error.
func TestH2PushPriorityUpdate(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newPushServer(t, ProtoH2C, &Config{EnableH2Push: true})
		p := ts.dialH2Push(t)
		p.request(1, "GET", pageURL([]string{`"/block/x"`}, nil), true)
		pr := p.expect("PUSH_PROMISE", func(f h2frame) bool { return f.typ == http2.FramePushPromise })
		p.write(func() error { return p.fr.WritePriorityUpdate(pr.last, "u=1") })
		p.write(func() error { return p.fr.WritePriorityUpdate(100, "u=1") }) // never promised: ignored
		p.sync()
		for _, f := range p.pending {
			if f.typ == http2.FrameGoAway {
				t.Fatalf("GOAWAY %v after PRIORITY_UPDATE for a push", f.code)
			}
		}
		p.write(func() error { return p.fr.WriteRSTStream(pr.last, http2.ErrCodeCancel) })
		_, body, _ := p.readH2Page(1)
		if string(body) != "page" {
			t.Errorf("page %q", body)
		}
	})
}
