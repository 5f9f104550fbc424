package spdymux

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// Protocol conformance tests of a session, driven by a scripted peer
// (testpeer_test.go). Each test names the rule it checks; rules come from
// the SPDY/2 and SPDY/3.1 drafts and from mod_spdy's frame handling.

func TestInitialFrames(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{MaxConcurrentStreams: 7})
		p := ts.dial(t)
		got := p.opening
		if len(got) == 0 {
			t.Fatal("no frame before the PING echo; want SETTINGS first")
		}
		s, ok := got[0].(*spdy.SettingsFrame)
		if !ok {
			t.Fatalf("first frame %s; want SETTINGS", describe(got[0]))
		}
		want := []spdy.Setting{
			{ID: spdy.SettingMaxConcurrentStreams, Value: 7},
			{ID: spdy.SettingInitialWindowSize, Value: DefaultInitialWindowSize},
		}
		if proto == ProtoSPDY2 {
			// SPDY/2 has no flow control; the server opens the window
			// all the way for clients that apply SPDY/3's anyway.
			want[1].Value = 1<<31 - 1
		}
		if !slices.Equal(s.Settings, want) {
			t.Errorf("SETTINGS %v; want %v", s.Settings, want)
		}
		// The same frame byte for byte, without the codec: SPDY/2 puts a
		// 24-bit little-endian id before the flags (checklist 5).
		wantRaw := []byte{0x80, 3, 0, 4, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 7, 0, 1, 0, 0}
		if proto == ProtoSPDY2 {
			wantRaw = []byte{0x80, 2, 0, 4, 0, 0, 0, 20, 0, 0, 0, 2, 4, 0, 0, 0, 0, 0, 0, 7, 7, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}
		}
		if raw := p.raw.bytes(); !bytes.HasPrefix(raw, wantRaw) {
			t.Errorf("first bytes on the wire\n% x\nwant\n% x", raw[:min(len(raw), len(wantRaw))], wantRaw)
		}
		rest := got[1:]
		if proto == ProtoSPDY31 {
			// The session window beyond its initial 64 KiB (3.1 §2.6.8).
			want := &spdy.WindowUpdateFrame{Version: spdy.V3, StreamID: 0, Delta: DefaultSessionWindowSize - DefaultInitialWindowSize}
			if len(rest) == 0 || describe(rest[0]) != describe(want) {
				t.Fatalf("after SETTINGS: %s; want %s", describeAll(rest), describe(want))
			}
			rest = rest[1:]
		}
		if len(rest) > 0 {
			t.Errorf("unexpected opening frames: %s", describeAll(rest))
		}
	})
}

func TestGET(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/hello")
		r := p.readResponse(t, 1)
		if string(r.body) != "hello, world\n" {
			t.Errorf("body %q; want %q", r.body, "hello, world\n")
		}
		statusName, versionName := ":status", ":version"
		if proto == ProtoSPDY2 {
			statusName, versionName = "status", "version"
		}
		if !strings.HasPrefix(r.status, "200") {
			t.Errorf("%s %q; want 200", statusName, r.status)
		}
		if v := r.header[versionName]; v != "HTTP/1.1" {
			t.Errorf("%s %q; want HTTP/1.1", versionName, v)
		}
		names := slices.Sorted(slices.Values(r.names))
		want := slices.Sorted(slices.Values([]string{statusName, versionName, "content-length", "content-type", "date"}))
		if !slices.Equal(names, want) {
			t.Errorf("response header names %q; want exactly %q", names, want)
		}
		for _, n := range r.names {
			if n != strings.ToLower(n) {
				t.Errorf("header name %q is not lower case", n)
			}
		}
		// The session stays usable.
		p.get(t, 3, "/hello")
		p.readResponse(t, 3)
		ts.waitNoStreams(t)
	})
}

func TestConcurrentStreams(t *testing.T) {
	sizes := []int{0, 1, 4096, 20000, 150000}
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		var frames []spdy.Frame
		for i, n := range sizes {
			frames = append(frames, p.syn(spdy.StreamID(2*i+1), uint8(i%4), true, p.request("GET", fmt.Sprintf("/bytes/%d", n))))
		}
		p.send(t, frames...)
		for i, n := range sizes {
			id := spdy.StreamID(2*i + 1)
			r := p.readResponse(t, id)
			if !bytes.Equal(r.body, pattern(n)) {
				t.Errorf("stream %d: body of %d bytes; want /bytes/%d exactly", id, len(r.body), n)
			}
			if n == 0 && !r.finOnReply {
				t.Errorf("stream %d: empty body not ended by FIN on SYN_REPLY", id)
			}
		}
		ts.waitNoStreams(t)
	})
}

func TestPOSTEcho(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		length bool // send content-length; else the body goes chunked to the server
	}{
		{"content-length", 100000, true},
		{"chunked", 100000, false},
		{"small chunked", 10, false},
		{"expect 100-continue", 5000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBubble(t, versions, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				body := pattern(tc.size)
				var extra []spdy.HeaderField
				if tc.length {
					extra = append(extra, spdy.HeaderField{Name: "content-length", Value: fmt.Sprint(tc.size)})
				}
				if strings.HasPrefix(tc.name, "expect") {
					// The interim 100 response has no place in SPDY.
					extra = append(extra, spdy.HeaderField{Name: "expect", Value: "100-continue"})
				}
				p.send(t, p.syn(1, 0, false, p.request("POST", "/echo", extra...)))
				p.sendBody(t, 1, body, true)
				r := p.readResponse(t, 1)
				if !strings.HasPrefix(r.status, "200") {
					t.Errorf("status %q; want 200", r.status)
				}
				if !bytes.Equal(r.body, body) {
					t.Errorf("echo of %d bytes; got %d bytes back, equal prefix %d", len(body), len(r.body), commonPrefix(r.body, body))
				}
				ts.waitNoStreams(t)
			})
		})
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// A response without a body ends with FIN on its SYN_REPLY and no DATA.
func TestNoBodyResponses(t *testing.T) {
	for _, tc := range []struct {
		method, path, status string
	}{
		{"HEAD", "/hello", "200"},
		{"GET", "/status/204", "204"},
		{"GET", "/status/304", "304"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			forEachBubble(t, versions, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				p.send(t, p.syn(1, 0, true, p.request(tc.method, tc.path)))
				r := p.readResponse(t, 1)
				if !strings.HasPrefix(r.status, tc.status) {
					t.Errorf("status %q; want %s", r.status, tc.status)
				}
				if !r.finOnReply {
					t.Errorf("SYN_REPLY without FIN, then %d DATA frames (%d bytes); want FIN on SYN_REPLY", r.dataFrames, len(r.body))
				}
				p.get(t, 3, "/hello")
				p.readResponse(t, 3)
				p.sync(t)
				p.noFrames(t, 1, "after FIN on SYN_REPLY")
				ts.waitNoStreams(t)
			})
		})
	}
}

// Repeated response headers are one NUL-joined value (SPDY/3 §3.2.2).
func TestResponseMultiValues(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/cookies")
		r := p.readResponse(t, 1)
		if got, want := r.header["set-cookie"], "a=1\x00b=2; Path=/"; got != want {
			t.Errorf("set-cookie %q; want %q", got, want)
		}
		if got, want := r.header["x-multi"], "x\x00y"; got != want {
			t.Errorf("x-multi %q; want %q", got, want)
		}
		if c := countNames(r.names, "set-cookie"); c != 1 {
			t.Errorf("set-cookie appears %d times; a name may appear once", c)
		}
	})
}

func countNames(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

// NUL-joined request values reach the server as separate header lines;
// connection-specific headers do not reach it.
func TestRequestHeaders(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/hello") // a first block, so the next uses the shared deflate state
		p.readResponse(t, 1)
		p.send(t, p.syn(3, 0, true, p.request("GET", "/headers",
			spdy.HeaderField{Name: "x-multi", Value: "a\x00b\x00c"},
			spdy.HeaderField{Name: "accept", Value: "text/plain"},
			spdy.HeaderField{Name: "keep-alive", Value: "300"},
		)))
		r := p.readResponse(t, 3)
		var h http.Header
		if err := json.Unmarshal(r.body, &h); err != nil {
			t.Fatalf("/headers body %q: %v", r.body, err)
		}
		if got := h["X-Multi"]; !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("X-Multi %q; want three lines a, b, c", got)
		}
		if got := h.Get("Accept"); got != "text/plain" {
			t.Errorf("Accept %q; want text/plain", got)
		}
		if got := h.Get("Host"); got != "example.com" {
			t.Errorf("Host %q; want example.com", got)
		}
		if got := h.Get("Keep-Alive"); got != "" {
			t.Errorf("Keep-Alive %q reached the server; it is connection-specific", got)
		}
	})
}

// A request missing a required header gets HTTP 400, not RST_STREAM
// (SPDY/3 §3.2.1; PROTOCOL.md §4.4, checklist 11).
func TestMissingRequestHeaders(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		required := []string{":method", ":path", ":version", ":host", ":scheme"}
		if proto == ProtoSPDY2 {
			required = []string{"method", "url", "version", "scheme"}
		}
		id := spdy.StreamID(1)
		for _, drop := range required {
			h := slices.DeleteFunc(p.request("GET", "/hello"), func(f spdy.HeaderField) bool { return f.Name == drop })
			p.send(t, p.syn(id, 0, true, h))
			r := p.readResponse(t, id)
			if !strings.HasPrefix(r.status, "400") {
				t.Errorf("without %s: status %q; want 400", drop, r.status)
			}
			id += 2
		}
		// A bad request with a body: the body is dropped without a reset.
		h := slices.DeleteFunc(p.request("POST", "/echo"), func(f spdy.HeaderField) bool { return f.Name == required[1] })
		p.send(t, p.syn(id, 0, false, h))
		if r := p.readResponse(t, id); !strings.HasPrefix(r.status, "400") {
			t.Errorf("POST without %s: status %q; want 400", required[1], r.status)
		}
		p.send(t, &spdy.DataFrame{StreamID: id, Data: pattern(100)}, &spdy.DataFrame{StreamID: id, Flags: spdy.FlagFin})
		p.sync(t)
		p.noFrames(t, id, "the body of a request answered with 400")
		id += 2
		p.get(t, id, "/hello")
		p.readResponse(t, id)
		ts.waitNoStreams(t)
		if evs := ts.drainEvents(); len(evs) != 1 {
			t.Errorf("handler saw %d requests; want only the good one: %v", len(evs), evs)
		}
	})
}

// The DATA of a request must add up to its content-length (SPDY/3
// §3.2.1): the server answers 400 while no response has started, and
// resets the stream with PROTOCOL_ERROR once one has.
func TestContentLengthMismatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		path    string
		send    int
		waitFin bool // read the handler's full response before sending the body
		wantRst bool
	}{
		{"short at FIN", "/wait", 5, false, false},
		{"short at HEADERS FIN", "/wait", -5, false, false},
		{"too long", "/wait", 20, false, false},
		{"too long after response", "/noread", 20, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBubble(t, versions, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				p.send(t, p.syn(1, 0, false, p.request("POST", tc.path, spdy.HeaderField{Name: "content-length", Value: "10"})))
				if tc.waitFin {
					r := p.readResponse(t, 1)
					if string(r.body) != "ok\n" {
						t.Fatalf("/noread body %q", r.body)
					}
				}
				if tc.send < 0 {
					// The body ends with FIN on a HEADERS frame.
					p.send(t, &spdy.DataFrame{StreamID: 1, Data: pattern(-tc.send)},
						&spdy.HeadersFrame{StreamID: 1, Flags: spdy.FlagFin, Header: []spdy.HeaderField{{Name: "x-trailer", Value: "1"}}})
				} else {
					p.send(t, &spdy.DataFrame{StreamID: 1, Flags: spdy.FlagFin, Data: pattern(tc.send)})
				}
				if tc.wantRst {
					p.expectRst(t, 1, spdy.ProtocolError)
				} else {
					r := p.readResponse(t, 1)
					if !strings.HasPrefix(r.status, "400") {
						t.Errorf("status %q; want 400", r.status)
					}
				}
				p.get(t, 3, "/hello")
				p.readResponse(t, 3)
				ts.unblock()
				ts.waitNoStreams(t)
			})
		})
	}
}

// A PING with an odd id is echoed; an even one, which would be the
// server's, is ignored (SPDY/3 §2.6.5).
func TestPing(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, &spdy.PingFrame{ID: 2}, &spdy.PingFrame{ID: 0x7ffffffd}, &spdy.PingFrame{ID: 4}, &spdy.PingFrame{ID: 5})
		var got []uint32
		for len(got) < 2 {
			f := p.expect(t, "PING", isType[*spdy.PingFrame])
			id := f.(*spdy.PingFrame).ID
			got = append(got, id)
			if id == 5 {
				break
			}
		}
		if want := []uint32{0x7ffffffd, 5}; !slices.Equal(got, want) {
			t.Errorf("PING echoes %v; want %v (odd ids only, in order)", got, want)
		}
	})
}

// After the client's GOAWAY the server finishes the open streams.
func TestClientGoAway(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/bytes/100000")
		p.send(t, &spdy.GoAwayFrame{LastGoodStreamID: 0, Status: spdy.GoAwayOK})
		r := p.readResponse(t, 1)
		if !bytes.Equal(r.body, pattern(100000)) {
			t.Errorf("body of %d bytes; want /bytes/100000 exactly", len(r.body))
		}
		for _, f := range p.takeAll() {
			if _, ok := f.(*spdy.GoAwayFrame); ok {
				t.Errorf("server answered the client's GOAWAY with %s", describe(f))
			}
		}
	})
}

// Listener.Shutdown sends GOAWAY(OK) with the last stream taken, lets the
// open streams finish, ignores new ones and then closes the session
// (SPDY/3 §2.6.6).
func TestShutdown(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/wait")
		p.get(t, 3, "/wait")
		ts.waitEvent(t, "start", 1)
		ts.waitEvent(t, "start", 3)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			done <- ts.sl.Shutdown(ctx)
		}()
		g := p.expect(t, "GOAWAY", isType[*spdy.GoAwayFrame]).(*spdy.GoAwayFrame)
		if g.LastGoodStreamID != 3 || (proto != ProtoSPDY2 && g.Status != spdy.GoAwayOK) {
			t.Errorf("got %s; want GOAWAY(last 3, OK)", describe(g))
		}
		p.get(t, 5, "/hello")
		p.sync(t)
		ts.unblock()
		for _, id := range []spdy.StreamID{1, 3} {
			if r := p.readResponse(t, id); string(r.body) != "released\n" {
				t.Errorf("stream %d after GOAWAY: body %q; want %q", id, r.body, "released\n")
			}
		}
		rest := p.expectEnd(t)
		for _, f := range rest {
			if streamOf(f) == 5 {
				t.Errorf("stream 5, opened after GOAWAY, got %s; want it ignored", describe(f))
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Shutdown did not return once the session ended")
		}
		for _, e := range ts.drainEvents() {
			if e.stream == 5 {
				t.Errorf("stream 5, opened after GOAWAY, reached the handler")
			}
		}
	})
}

func TestStreamIDRules(t *testing.T) {
	t.Run("even id", func(t *testing.T) {
		forEachBubble(t, versions, func(t *testing.T, proto string) {
			ts := newTestServer(t, proto, nil)
			p := ts.dial(t)
			p.get(t, 1, "/hello")
			p.readResponse(t, 1)
			p.get(t, 4, "/hello")
			if last := p.expectGoAway(t, spdy.GoAwayProtocolError); last != 1 {
				t.Errorf("GOAWAY last-good-stream-id %d; want 1", last)
			}
			p.expectEnd(t)
		})
	})
	t.Run("decreasing id", func(t *testing.T) {
		forEachBubble(t, versions, func(t *testing.T, proto string) {
			ts := newTestServer(t, proto, nil)
			p := ts.dial(t)
			p.get(t, 5, "/hello")
			p.readResponse(t, 5)
			p.get(t, 3, "/hello")
			if last := p.expectGoAway(t, spdy.GoAwayProtocolError); last != 5 {
				t.Errorf("GOAWAY last-good-stream-id %d; want 5", last)
			}
			p.expectEnd(t)
		})
	})
	t.Run("id 0", func(t *testing.T) {
		forEachBubble(t, versions, func(t *testing.T, proto string) {
			ts := newTestServer(t, proto, nil)
			p := ts.dial(t)
			p.get(t, 0, "/hello")
			p.expectGoAway(t, spdy.GoAwayProtocolError)
			p.expectEnd(t)
		})
	})
	t.Run("unidirectional from the client", func(t *testing.T) {
		forEachBubble(t, versions, func(t *testing.T, proto string) {
			ts := newTestServer(t, proto, nil)
			p := ts.dial(t)
			f := p.syn(1, 0, true, p.request("GET", "/hello"))
			f.Flags |= spdy.FlagUnidirectional
			p.send(t, f)
			p.expectRst(t, 1, spdy.ProtocolError)
			p.get(t, 3, "/hello")
			p.readResponse(t, 3)
		})
	})
	t.Run("duplicate open id", func(t *testing.T) {
		forEachBubble(t, versions, func(t *testing.T, proto string) {
			ts := newTestServer(t, proto, nil)
			p := ts.dial(t)
			p.get(t, 1, "/wait")
			ts.waitEvent(t, "start", 1)
			p.get(t, 1, "/hello")
			p.expectRst(t, 1, spdy.ProtocolError)
			p.get(t, 3, "/hello")
			p.readResponse(t, 3)
		})
	})
}

// Streams over MaxConcurrentStreams are refused; DATA the client sent
// before it learned is dropped without an error (PROTOCOL.md §4.11).
func TestRefusedStream(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{MaxConcurrentStreams: 2})
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, false, p.request("POST", "/wait")), p.syn(3, 0, false, p.request("POST", "/wait")))
		p.send(t, p.syn(5, 0, false, p.request("POST", "/echo")))
		p.expectRst(t, 5, spdy.RefusedStream)
		p.send(t, &spdy.DataFrame{StreamID: 5, Data: []byte("late")}, &spdy.DataFrame{StreamID: 5, Flags: spdy.FlagFin})
		p.sync(t)
		p.noFrames(t, 5, "DATA for a refused stream")
		ts.unblock()
		p.send(t, &spdy.DataFrame{StreamID: 1, Flags: spdy.FlagFin}, &spdy.DataFrame{StreamID: 3, Flags: spdy.FlagFin})
		p.readResponse(t, 1)
		p.readResponse(t, 3)
		p.get(t, 7, "/hello")
		p.readResponse(t, 7)
	})
}

// DATA for a stream that never was gets INVALID_STREAM (SPDY/3 §2.2.2).
func TestDataUnknownStream(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, &spdy.DataFrame{StreamID: 7, Data: []byte("stray")})
		p.expectRst(t, 7, spdy.InvalidStream)
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
	})
}

// DATA or HEADERS after the client's FIN is a stream error:
// STREAM_ALREADY_CLOSED in SPDY/3 (§2.3.7). SPDY/2 defines RST_STREAM
// codes 1 to 7 only, and its draft (§2.3.6) asks for PROTOCOL_ERROR.
func TestFrameAfterFin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame spdy.Frame
	}{
		{"DATA", &spdy.DataFrame{StreamID: 1, Data: []byte("after fin")}},
		{"HEADERS", &spdy.HeadersFrame{StreamID: 1, Header: []spdy.HeaderField{{Name: "x-late", Value: "1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBubble(t, versions, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				p.get(t, 1, "/wait")
				ts.waitEvent(t, "start", 1)
				p.send(t, tc.frame)
				f := p.expect(t, "RST_STREAM for stream 1", func(f spdy.Frame) bool {
					return isType[*spdy.RstStreamFrame](f) && streamOf(f) == 1
				})
				got := f.(*spdy.RstStreamFrame).Status
				switch {
				case proto != ProtoSPDY2 && got != spdy.StreamAlreadyClosed:
					t.Errorf("%s after FIN: RST_STREAM status %v; want STREAM_ALREADY_CLOSED", tc.name, got)
				case proto == ProtoSPDY2 && got != spdy.ProtocolError:
					t.Errorf("%s after FIN on SPDY/2: RST_STREAM status %v (%d), which SPDY/2 does not define (its codes are 1-7); want PROTOCOL_ERROR", tc.name, got, got)
				}
				p.get(t, 3, "/hello")
				p.readResponse(t, 3)
			})
		})
	}
}

// DATA beyond the stream window advertised gets FLOW_CONTROL_ERROR.
func TestDataOverStreamWindow(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{InitialWindowSize: 1024})
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, false, p.request("POST", "/wait", spdy.HeaderField{Name: "content-length", Value: "5000"})))
		p.send(t, &spdy.DataFrame{StreamID: 1, Data: pattern(1000)})
		p.sync(t)
		p.noFrames(t, 1, "DATA within the window")
		p.send(t, &spdy.DataFrame{StreamID: 1, Data: pattern(25)})
		p.expectRst(t, 1, spdy.FlowControlError)
		p.get(t, 3, "/hello")
		p.readResponse(t, 3)
	})
}

// DATA beyond the SPDY/3.1 session window ends the session with GOAWAY
// PROTOCOL_ERROR (GOAWAY has no FLOW_CONTROL_ERROR; as mod_spdy).
//
// With SessionWindowSize 64 KiB the server credits the session window
// while it buffers at most 64 KiB, so a handler that reads nothing lets
// the client send 64 KiB plus the 64 KiB credited: 128 KiB in all.
func TestDataOverSessionWindow(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoSPDY31, &Config{SessionWindowSize: 64 << 10, InitialWindowSize: 1 << 20})
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, false, p.request("POST", "/wait", spdy.HeaderField{Name: "content-length", Value: "1000000"})))
		ts.waitEvent(t, "start", 1)
		p.sendBody(t, 1, pattern(128<<10), false)
		p.sync(t)
		if fs := p.takeAll(); slices.ContainsFunc(fs, isType[*spdy.GoAwayFrame]) {
			t.Fatalf("GOAWAY within the session window: %s", describeAll(fs))
		}
		p.flowMu.Lock()
		sess := p.sessWin
		p.flowMu.Unlock()
		if sess != 0 {
			t.Fatalf("client session window %d after 128 KiB; want 0 (64 KiB initial + 64 KiB credited)", sess)
		}
		p.send(t, &spdy.DataFrame{StreamID: 1, Data: []byte{1}})
		p.expectGoAway(t, spdy.GoAwayProtocolError)
		p.expectEnd(t)
	})
}

func TestWindowUpdateOverflow(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		forEachBubble(t, v3versions, func(t *testing.T, proto string) {
			ts := newTestServer(t, proto, nil)
			p := ts.dial(t)
			p.get(t, 1, "/wait")
			ts.waitEvent(t, "start", 1)
			p.send(t, &spdy.WindowUpdateFrame{StreamID: 1, Delta: 1<<31 - 1})
			p.expectRst(t, 1, spdy.FlowControlError)
			p.get(t, 3, "/hello")
			p.readResponse(t, 3)
		})
	})
	t.Run("session", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			ts := newTestServer(t, ProtoSPDY31, nil)
			p := ts.dial(t)
			p.send(t, &spdy.WindowUpdateFrame{StreamID: 0, Delta: 1<<31 - 1})
			p.expectGoAway(t, spdy.GoAwayProtocolError)
			p.expectEnd(t)
		})
	})
}

// SPDY/3 has no session window: WINDOW_UPDATE for stream 0 is a session
// error (mod_spdy: GOAWAY).
func TestWindowUpdateStreamZeroSPDY3(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoSPDY3, nil)
		p := ts.dial(t)
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 0, Delta: 1000})
		p.expectGoAway(t, spdy.GoAwayProtocolError)
		p.expectEnd(t)
	})
}

// dataTotal takes DATA frames of the given streams until n payload bytes
// came, and returns them per stream.
func (p *peer) dataTotal(t *testing.T, n int, ids ...spdy.StreamID) map[spdy.StreamID][]byte {
	t.Helper()
	got := make(map[spdy.StreamID][]byte)
	total := 0
	for total < n {
		f := p.expect(t, fmt.Sprintf("DATA for streams %v (%d of %d bytes so far)", ids, total, n), func(f spdy.Frame) bool {
			d, ok := f.(*spdy.DataFrame)
			return ok && slices.Contains(ids, d.StreamID)
		}).(*spdy.DataFrame)
		got[f.StreamID] = append(got[f.StreamID], f.Data...)
		total += len(f.Data)
	}
	if total != n {
		t.Fatalf("got %d DATA bytes; want exactly %d before the window closes", total, n)
	}
	return got
}

// noData fails if DATA of a stream in ids is pending.
func (p *peer) noData(t *testing.T, why string, ids ...spdy.StreamID) {
	t.Helper()
	for _, f := range p.pending {
		if d, ok := f.(*spdy.DataFrame); ok && slices.Contains(ids, d.StreamID) && (len(d.Data) > 0 || d.Flags&spdy.FlagFin != 0) {
			t.Errorf("%s: got %s", why, describe(f))
		}
	}
}

// The server sends no more DATA than the client's stream window (its
// SETTINGS INITIAL_WINDOW_SIZE) before a WINDOW_UPDATE.
func TestSendStreamWindow(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1000}}})
		p.get(t, 1, "/bytes/5000")
		p.readReply(t, 1)
		got := p.dataTotal(t, 1000, 1)[1]
		p.sync(t)
		p.noData(t, "DATA beyond the stream window of 1000", 1)
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 1, Delta: 4000})
		got = append(got, p.dataTotal(t, 4000, 1)[1]...)
		if !bytes.Equal(got, pattern(5000)) {
			t.Errorf("body differs from /bytes/5000")
		}
	})
}

// readReply takes the SYN_REPLY of stream id.
func (p *peer) readReply(t *testing.T, id spdy.StreamID) *spdy.SynReplyFrame {
	t.Helper()
	f := p.expect(t, fmt.Sprintf("SYN_REPLY for stream %d", id), func(f spdy.Frame) bool {
		return streamOf(f) == id && !isType[*spdy.WindowUpdateFrame](f)
	})
	sr, ok := f.(*spdy.SynReplyFrame)
	if !ok {
		t.Fatalf("stream %d: got %s; want SYN_REPLY", id, describe(f))
	}
	return sr
}

// Under SPDY/3.1 the server sends at most the 64 KiB session window over
// all streams before a WINDOW_UPDATE for stream 0.
func TestSendSessionWindow(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoSPDY31, nil)
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1 << 20}}})
		p.get(t, 1, "/bytes/100000")
		p.get(t, 3, "/bytes/100000")
		p.readReply(t, 1)
		p.readReply(t, 3)
		got := p.dataTotal(t, 65536, 1, 3)
		p.sync(t)
		p.noData(t, "DATA beyond the session window of 65536", 1, 3)
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 0, Delta: 200000 - 65536})
		for id, b := range p.dataTotal(t, 200000-65536, 1, 3) {
			got[id] = append(got[id], b...)
		}
		for _, id := range []spdy.StreamID{1, 3} {
			if !bytes.Equal(got[id], pattern(100000)) {
				t.Errorf("stream %d: %d bytes, not /bytes/100000", id, len(got[id]))
			}
		}
	})
}

// A change of SETTINGS INITIAL_WINDOW_SIZE applies the difference to open
// streams, and a window may go negative (SPDY/3 §2.6.8).
func TestSettingsWindowDelta(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1000}}})
		p.get(t, 1, "/bytes/3000")
		p.readReply(t, 1)
		got := p.dataTotal(t, 1000, 1)[1]
		// Window 0 → 0 + (500 - 1000) = -500; then +600 → 100.
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 500}}})
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 1, Delta: 600})
		got = append(got, p.dataTotal(t, 100, 1)[1]...)
		p.sync(t)
		p.noData(t, "DATA beyond a window of -500 + 600", 1)
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 1, Delta: 1900})
		got = append(got, p.dataTotal(t, 1900, 1)[1]...)
		if !bytes.Equal(got, pattern(3000)) {
			t.Errorf("body differs from /bytes/3000")
		}
	})
}

// A SPDY/3.1 upload on one stream goes on while the handler of another
// reads nothing: the session window is credited when data is buffered,
// not when a handler reads it (PROTOCOL.md §4.6, §1.8).
func TestUploadWhileOtherStreamStalls(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoSPDY31, &Config{SessionWindowSize: 64 << 10})
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, false, p.request("POST", "/wait", spdy.HeaderField{Name: "content-length", Value: "65536"})))
		ts.waitEvent(t, "start", 1)
		p.sendBody(t, 1, pattern(65536), true) // the whole session window, never read
		body := pattern(50000)
		p.send(t, p.syn(3, 0, false, p.request("POST", "/echo", spdy.HeaderField{Name: "content-length", Value: "50000"})))
		p.sendBody(t, 3, body, true)
		r := p.readResponse(t, 3)
		if !bytes.Equal(r.body, body) {
			t.Errorf("echo on stream 3: %d bytes back; want the 50000 sent", len(r.body))
		}
	})
}

// A client's RST_STREAM cancels the handler's context; the server sends
// nothing more on that stream and the session goes on.
func TestClientReset(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/block?pre=1000")
		p.readReply(t, 1)
		p.dataTotal(t, 1000, 1)
		p.send(t, &spdy.RstStreamFrame{StreamID: 1, Status: spdy.Cancel})
		ts.waitEvent(t, "cancelled", 1)
		p.sync(t)
		p.takeStream(1) // may have been on the wire before the reset
		p.get(t, 3, "/hello")
		p.readResponse(t, 3)
		p.sync(t)
		p.noFrames(t, 1, "after the client's RST_STREAM")
		ts.waitNoStreams(t)
	})
}

// A stream reset while it waits for a worker slot never runs.
func TestResetWhileQueued(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		pool := NewPool(1)
		ts := newTestServer(t, proto, &Config{Pool: pool})
		p := ts.dial(t)
		p.get(t, 1, "/wait")
		ts.waitEvent(t, "start", 1)
		p.get(t, 3, "/hello")
		ts.waitPool(t, 1, 1)
		p.send(t, &spdy.RstStreamFrame{StreamID: 3, Status: spdy.Cancel})
		ts.waitPool(t, 1, 0)
		ts.unblock()
		p.readResponse(t, 1)
		p.get(t, 5, "/hello")
		p.readResponse(t, 5)
		p.sync(t)
		p.noFrames(t, 3, "a stream reset while queued")
		for _, e := range ts.drainEvents() {
			if e.stream == 3 {
				t.Errorf("stream 3 was reset while queued but reached the handler: %+v", e)
			}
		}
	})
}

// The pool grants slots by priority (0 first), as the handler sees.
func TestPoolPriority(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		prios := []uint8{7, 3, 0, 5}
		if proto == ProtoSPDY2 {
			prios = []uint8{3, 1, 0, 2}
		}
		pool := NewPool(1)
		ts := newTestServer(t, proto, &Config{Pool: pool})
		p := ts.dial(t)
		p.get(t, 1, "/wait")
		ts.waitEvent(t, "start", 1)
		for i, prio := range prios {
			p.send(t, p.syn(spdy.StreamID(3+2*i), prio, true, p.request("GET", "/info")))
		}
		ts.waitPool(t, 1, len(prios))
		ts.unblock()
		p.readResponse(t, 1)
		var order []uint8
		for i := range prios {
			r := p.readResponse(t, spdy.StreamID(3+2*i))
			var info struct{ Priority uint8 }
			if err := json.Unmarshal(r.body, &info); err != nil {
				t.Fatalf("/info: %q: %v", r.body, err)
			}
			if info.Priority != prios[i] {
				t.Errorf("stream %d: StreamInfo.Priority %d; want %d", 3+2*i, info.Priority, prios[i])
			}
		}
		for _, e := range ts.drainEvents() {
			if e.kind == "start" && e.path == "/info" {
				order = append(order, e.prio)
			}
		}
		want := slices.Sorted(slices.Values(prios))
		if !slices.Equal(order, want) {
			t.Errorf("handlers ran in priority order %v; want %v", order, want)
		}
	})
}

// With data of several streams ready, the writer sends the higher
// priority first. The client's stream window of 1 byte holds each
// response back (one byte out shows its data is queued), then one
// SETTINGS opens every window at once.
func TestWriterPriority(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1}}})
		prio := map[spdy.StreamID]uint8{1: 7, 3: 0, 5: 3}
		for _, id := range []spdy.StreamID{1, 3, 5} {
			p.send(t, p.syn(id, prio[id], true, p.request("GET", "/bytes/3000")))
		}
		for _, id := range []spdy.StreamID{1, 3, 5} {
			p.readReply(t, id)
			p.dataTotal(t, 1, id)
		}
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1 << 20}}})
		var order []spdy.StreamID
		left := map[spdy.StreamID]int{1: 2999, 3: 2999, 5: 2999}
		for len(left) > 0 {
			d := p.expect(t, "DATA", func(f spdy.Frame) bool {
				d, ok := f.(*spdy.DataFrame)
				_, ours := prio[streamOf(f)]
				return ok && ours && len(d.Data) > 0
			}).(*spdy.DataFrame)
			if len(order) == 0 || order[len(order)-1] != d.StreamID {
				order = append(order, d.StreamID)
			}
			if left[d.StreamID] -= len(d.Data); left[d.StreamID] <= 0 {
				delete(left, d.StreamID)
			}
		}
		if want := []spdy.StreamID{3, 5, 1}; !slices.Equal(order, want) {
			t.Errorf("DATA order by stream %v; want %v (priorities 0, 3, 7)", order, want)
		}
	})
}

// A header block that inflates past MaxHeaderBytes ends the session.
func TestHeaderBlockTooLarge(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{MaxHeaderBytes: 4096})
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, true, p.request("GET", "/hello", spdy.HeaderField{Name: "x-big", Value: strings.Repeat("a", 10000)})))
		p.expectGoAway(t, spdy.GoAwayProtocolError)
		p.expectEnd(t)
	})
}

// A control frame longer than MaxControlFrameSize ends the session.
func TestControlFrameTooLarge(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{MaxControlFrameSize: 8192})
		p := ts.dial(t)
		settings := make([]spdy.Setting, 1100) // 4 + 8*1100 bytes
		for i := range settings {
			settings[i] = spdy.Setting{ID: spdy.SettingID(1000 + i), Value: uint32(i)}
		}
		p.write(&spdy.SettingsFrame{Settings: settings}) // the server may close while it reads
		p.expectGoAway(t, spdy.GoAwayProtocolError)
		p.expectEnd(t)
	})
}

// Handlers see the stream's facts through StreamInfoFromContext.
func TestStreamInfo(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		// A pipe with a TCP connection's addresses, so that the client's
		// address differs from the server's.
		client := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 43210}
		server := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443}
		p := ts.dialAddrs(t, client, server)
		p.send(t, p.syn(1, 2, true, p.request("GET", "/info")), p.syn(3, 1, true, p.request("GET", "/info")))
		type info struct {
			Protocol   string
			StreamID   uint32
			Priority   uint8
			SessionID  uint64
			ConnID     uint64
			RemoteAddr string
			TLS        bool
		}
		var got [2]info
		for i, id := range []spdy.StreamID{1, 3} {
			r := p.readResponse(t, id)
			if err := json.Unmarshal(r.body, &got[i]); err != nil {
				t.Fatalf("/info: %q: %v", r.body, err)
			}
		}
		for i, want := range []info{
			{Protocol: proto, StreamID: 1, Priority: 2, RemoteAddr: p.conn.LocalAddr().String()},
			{Protocol: proto, StreamID: 3, Priority: 1, RemoteAddr: p.conn.LocalAddr().String()},
		} {
			want.SessionID, want.ConnID = got[i].SessionID, got[i].ConnID
			if got[i] != want {
				t.Errorf("StreamInfo %+v; want %+v", got[i], want)
			}
		}
		if got[0].SessionID == 0 || got[0].SessionID != got[1].SessionID {
			t.Errorf("SessionIDs %d, %d; want one non-zero id for the session", got[0].SessionID, got[1].SessionID)
		}
		// A secondary connection may serve the second stream after the
		// first (TestSecondaryConnReuse); its id names the connection.
		if got[0].ConnID == 0 || got[1].ConnID == 0 {
			t.Errorf("ConnIDs %d, %d; want non-zero ids", got[0].ConnID, got[1].ConnID)
		}
		q := ts.dial(t)
		q.get(t, 1, "/info")
		var other info
		json.Unmarshal(q.readResponse(t, 1).body, &other)
		if other.SessionID == got[0].SessionID {
			t.Errorf("two sessions share SessionID %d", other.SessionID)
		}
	})
}

// A handler that fails before its response is complete gets its stream
// reset with INTERNAL_ERROR; the session goes on.
func TestIncompleteResponse(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		before     int // body bytes that come before the reset
	}{
		{"panic before writing", "/panic", -1},
		{"panic mid-body", "/panic?pre=100", 100},
		{"short body", "/short", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBubble(t, versions, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				p.get(t, 1, tc.path)
				before := tc.before
				if *handlerMode && tc.path == "/short" {
					// Handler mode has the whole short response in hand
					// when the handler returns: nothing of it goes out.
					before = -1
				}
				if before >= 0 {
					sr := p.readReply(t, 1)
					if sr.Flags&spdy.FlagFin != 0 {
						t.Fatalf("SYN_REPLY with FIN for an incomplete response")
					}
					p.dataTotal(t, before, 1)
				}
				p.expectRst(t, 1, spdy.InternalError)
				for _, f := range p.takeStream(1) {
					if d, ok := f.(*spdy.DataFrame); ok && d.Flags&spdy.FlagFin != 0 {
						t.Errorf("incomplete response ended with %s", describe(f))
					}
				}
				p.get(t, 3, "/hello")
				p.readResponse(t, 3)
				ts.waitNoStreams(t)
			})
		})
	}
}

// A session idle for IdleTimeout ends with GOAWAY(OK).
func TestIdleTimeout(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{IdleTimeout: 100 * time.Millisecond})
		p := ts.dial(t)
		start := time.Now()
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
		if last := p.expectGoAway(t, spdy.GoAwayOK); last != 1 {
			t.Errorf("GOAWAY last-good-stream-id %d; want 1", last)
		}
		// Time is fake: the request took none, so the session has been
		// idle since start.
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("idle GOAWAY %v after the request; want the 100ms idle timeout exactly", d)
		}
		p.expectEnd(t)
	})
}

// A malformed frame ends the session with GOAWAY PROTOCOL_ERROR; counts
// from the wire are checked before anything is allocated (checklist 13).
func TestMalformedFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  func(v byte) []byte
		v3   bool // SPDY/3 only
	}{
		{"RST_STREAM length 4", func(v byte) []byte { return []byte{0x80, v, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1} }, false},
		{"PING length 8", func(v byte) []byte { return []byte{0x80, v, 0, 6, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1} }, false},
		{"SETTINGS count over length", func(v byte) []byte { return []byte{0x80, v, 0, 4, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff} }, false},
		{"SYN_STREAM length 2", func(v byte) []byte { return []byte{0x80, v, 0, 1, 0, 0, 0, 2, 0, 1} }, false},
		{"WINDOW_UPDATE length 4", func(v byte) []byte { return []byte{0x80, v, 0, 9, 0, 0, 0, 4, 0, 0, 0, 1} }, true},
		{"wrong version", func(v byte) []byte { return []byte{0x80, 5 - v, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			protos := versions
			if tc.v3 {
				protos = v3versions
			}
			forEachBubble(t, protos, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				p.sendRaw(tc.raw(byte(p.version)))
				p.expectGoAway(t, spdy.GoAwayProtocolError)
				p.expectEnd(t)
			})
		})
	}
}

// A header block that breaks the name/value rules is a stream error:
// RST_STREAM PROTOCOL_ERROR, and the shared inflate context stays in step
// (PROTOCOL.md §4.4, §4.5).
func TestHeaderBlockStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field spdy.HeaderField
	}{
		{"empty name", spdy.HeaderField{Name: "", Value: "x"}},
		{"upper-case name", spdy.HeaderField{Name: "X-Upper", Value: "x"}},
		{"duplicate name", spdy.HeaderField{Name: "accept", Value: "x"}},
		{"NUL NUL", spdy.HeaderField{Name: "x-bad", Value: "a\x00\x00b"}},
		{"leading NUL", spdy.HeaderField{Name: "x-bad", Value: "\x00a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBubble(t, versions, func(t *testing.T, proto string) {
				ts := newTestServer(t, proto, nil)
				p := ts.dial(t)
				h := p.request("GET", "/hello", spdy.HeaderField{Name: "accept", Value: "*/*"}, tc.field)
				p.send(t, p.syn(1, 0, true, h))
				p.expectRst(t, 1, spdy.ProtocolError)
				p.get(t, 3, "/hello")
				p.readResponse(t, 3)
			})
		})
	}
}

// HEADERS for a stream that never was gets INVALID_STREAM (mod_spdy).
func TestHeadersUnknownStream(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, &spdy.HeadersFrame{StreamID: 9, Header: []spdy.HeaderField{{Name: "x-a", Value: "1"}}})
		p.expectRst(t, 9, spdy.InvalidStream)
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
	})
}

// Settings a server has no use for, unknown ids and the persistence flags
// are ignored, not answered with GOAWAY (PROTOCOL.md §4.7, §1.7).
func TestSettingsIgnored(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		var set []spdy.Setting
		for _, id := range []spdy.SettingID{1, 2, 3, 5, 6, 8, 0x123, 0xffffff} {
			set = append(set, spdy.Setting{ID: id, Flags: spdy.SettingFlagPersistValue, Value: 100})
		}
		set = append(set, spdy.Setting{ID: spdy.SettingMaxConcurrentStreams, Flags: spdy.SettingFlagPersisted, Value: 1})
		p.send(t, &spdy.SettingsFrame{Flags: spdy.FlagClearSettings, Settings: set})
		p.get(t, 1, "/hello")
		p.get(t, 3, "/hello")
		p.readResponse(t, 1)
		p.readResponse(t, 3)
		p.sync(t)
		if fs := p.takeAll(); len(fs) > 0 {
			t.Errorf("answered ignorable SETTINGS with %s", describeAll(fs))
		}
	})
}

// SETTINGS INITIAL_WINDOW_SIZE over 2^31-1 ends the session.
func TestSettingsWindowTooLarge(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1 << 31}}})
		p.expectGoAway(t, spdy.GoAwayProtocolError)
		p.expectEnd(t)
	})
}

// Control frames of a type the version does not define are ignored
// (SPDY/3 §2.2.1), as are NOOP (SPDY/2) and CREDENTIAL (deprecated).
func TestIgnoredControlFrames(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		v := byte(p.version)
		frames := [][]byte{
			{0x80, v, 0x00, 0xff, 0, 0, 0, 3, 1, 2, 3}, // unknown type 255
			{0x80, v, 0x00, 0x0b, 0, 0, 0, 0},          // unknown type 11
		}
		if p.version == spdy.V2 {
			frames = append(frames,
				[]byte{0x80, 2, 0, 5, 0, 0, 0, 0},                         // NOOP
				[]byte{0x80, 2, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1}, // WINDOW_UPDATE is not SPDY/2
			)
		} else {
			frames = append(frames, []byte{0x80, 3, 0, 10, 0, 0, 0, 4, 0, 0, 0, 0}) // CREDENTIAL
		}
		for _, b := range frames {
			if err := p.sendRaw(b); err != nil {
				t.Fatal(err)
			}
		}
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
		p.sync(t)
		if fs := p.takeAll(); len(fs) > 0 {
			t.Errorf("answered ignorable control frames with %s", describeAll(fs))
		}
	})
}

// WINDOW_UPDATE for a closed stream is ignored; a delta of 0 is a stream
// error, or a session error on stream 0 (SPDY/3 §2.6.8).
func TestWindowUpdateEdges(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 1, Delta: 100})
		p.sync(t)
		p.noFrames(t, 1, "WINDOW_UPDATE for a closed stream")
		p.get(t, 3, "/wait")
		ts.waitEvent(t, "start", 3)
		p.send(t, &spdy.WindowUpdateFrame{StreamID: 3, Delta: 0})
		p.expectRst(t, 3, spdy.ProtocolError)
		if proto == ProtoSPDY31 {
			p.send(t, &spdy.WindowUpdateFrame{StreamID: 0, Delta: 0})
			p.expectGoAway(t, spdy.GoAwayProtocolError)
			p.expectEnd(t)
		}
	})
}

// Shutting down an idle session sends GOAWAY(OK) with last-good-stream-id
// 0 and closes it.
func TestShutdownIdle(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- ts.sl.Shutdown(ctx) }()
		if last := p.expectGoAway(t, spdy.GoAwayOK); last != 0 {
			t.Errorf("GOAWAY last-good-stream-id %d; want 0", last)
		}
		p.expectEnd(t)
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// When the client connection drops, running handlers see their request
// context cancelled and their slots come back.
func TestConnectionDrop(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, "/block")
		p.send(t, p.syn(3, 0, false, p.request("POST", "/echo")))
		p.send(t, &spdy.DataFrame{StreamID: 3, Data: []byte("partial")})
		ts.waitEvent(t, "start", 1)
		ts.waitEvent(t, "start", 3)
		p.close()
		ts.waitEvent(t, "cancelled", 1)
	})
}

// A SPDY/2 upload larger than V2StreamBuffer goes through: the session
// stops reading until the handler catches up, and no byte is lost.
func TestV2UploadBackpressure(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoSPDY2, &Config{V2StreamBuffer: 4096})
		p := ts.dial(t)
		body := pattern(200000)
		p.send(t, p.syn(1, 0, false, p.request("POST", "/echo", spdy.HeaderField{Name: "content-length", Value: "200000"})))
		p.sendBody(t, 1, body, true)
		r := p.readResponse(t, 1)
		if !bytes.Equal(r.body, body) {
			t.Errorf("echo of 200000 bytes: %d bytes back, equal prefix %d", len(r.body), commonPrefix(r.body, body))
		}
	})
}

// DATA the server drops (for a refused stream) still counts against the
// SPDY/3.1 session window and must be credited back, or the client's
// window shrinks for good (PROTOCOL.md §4.6).
func TestSessionWindowCreditsDroppedData(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTestServer(t, ProtoSPDY31, &Config{SessionWindowSize: 64 << 10, MaxConcurrentStreams: 1})
		p := ts.dial(t)
		p.get(t, 1, "/wait")
		ts.waitEvent(t, "start", 1)
		p.send(t, p.syn(3, 0, false, p.request("POST", "/echo")))
		p.expectRst(t, 3, spdy.RefusedStream)
		p.sendBody(t, 3, pattern(65536), true) // sent "before it learned": dropped
		ts.unblock()
		p.readResponse(t, 1)
		body := pattern(30000)
		p.send(t, p.syn(5, 0, false, p.request("POST", "/echo", spdy.HeaderField{Name: "content-length", Value: "30000"})))
		p.sendBody(t, 5, body, true)
		if r := p.readResponse(t, 5); !bytes.Equal(r.body, body) {
			t.Errorf("echo on stream 5: %d bytes back; want the 30000 sent", len(r.body))
		}
	})
}

// RST_STREAM is never answered with RST_STREAM (SPDY/3 §2.4.2), even for
// a stream the server does not know.
func TestRstNotAnswered(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, &spdy.RstStreamFrame{StreamID: 99, Status: spdy.Cancel})
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
		p.send(t, &spdy.RstStreamFrame{StreamID: 1, Status: spdy.ProtocolError})
		p.sync(t)
		if fs := p.takeAll(); len(fs) > 0 {
			t.Errorf("answered RST_STREAM with %s", describeAll(fs))
		}
	})
}

// A handler that never reads its request body still sees its context
// cancelled at once when the client resets the stream, or when the
// session ends: net/http alone would notice only after the body. Until
// then it would hold its worker slot.
func TestResetCancelsHandlerNotReadingBody(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		// POSTs whose bodies never come (no FIN, no DATA).
		p.send(t, p.syn(1, 0, false, p.request("POST", "/block")))
		p.send(t, p.syn(3, 0, false, p.request("POST", "/block")))
		ts.waitEvent(t, "start", 1)
		ts.waitEvent(t, "start", 3)
		p.send(t, &spdy.RstStreamFrame{StreamID: 1, Status: spdy.Cancel})
		ts.waitEvent(t, "cancelled", 1)
		// The session's end cancels the other.
		p.close()
		ts.waitEvent(t, "cancelled", 3)
		ts.waitNoStreams(t)
	})
}

// A response whose queued output is dropped — the server's write deadline
// passed, or the server closed the connection during a Write — must reset
// the stream, never end it with FIN after a truncated body, and must not
// leave it open.
func TestDroppedOutputResets(t *testing.T) {
	for _, path := range []string{"/bytes/3000", "/chunked/3000"} {
		forEachBubble(t, v3versions, func(t *testing.T, proto string) {
			ts := newTestServerWith(t, proto, nil, func(srv *http.Server) {
				srv.WriteTimeout = 300 * time.Millisecond
			})
			p := ts.dial(t)
			p.setAutoCredit(false)
			p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1000}}})
			p.get(t, 1, path)
			p.readReply(t, 1)
			p.dataTotal(t, 1000, 1)
			p.expectRst(t, 1, spdy.InternalError)
			p.send(t, &spdy.WindowUpdateFrame{StreamID: 1, Delta: 4000})
			p.sync(t)
			p.noData(t, "DATA after the stream was reset", 1)
			ts.waitNoStreams(t)
		})
	}
}

// A stream whose window runs out just as its queued output is taken, and
// whose handler then writes more, is window-blocked with the writer idle:
// WindowTimeout must still reset it, not wait for some other frame to wake
// the writer.
func TestWindowTimeoutAfterWindowSpent(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		const windowTimeout = 300 * time.Millisecond
		ts := newTestServer(t, proto, &Config{WindowTimeout: windowTimeout})
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1000}}})
		start := time.Now()
		p.get(t, 1, "/chunked/2000") // two flushed halves of 1000 bytes
		p.readReply(t, 1)
		p.dataTotal(t, 1000, 1)
		p.expectRst(t, 1, spdy.Cancel)
		if d := time.Since(start); d < windowTimeout || d > 2*windowTimeout {
			t.Errorf("stream reset %v after the request; want WindowTimeout %v", d, windowTimeout)
		}
		if got := ts.sl.Stats().WindowTimeouts; got != 1 {
			t.Errorf("Stats.WindowTimeouts %d; want 1", got)
		}
		ts.waitNoStreams(t)
	})
}

// http.Server.Close during a Write closes the listener and with it every
// session: the client sees the connection end, never a FIN for the
// unfinished stream.
func TestServerCloseDuringWrite(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, nil)
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingInitialWindowSize, Value: 1000}}})
		p.get(t, 1, "/bytes/100000")
		p.readReply(t, 1)
		p.dataTotal(t, 1000, 1)
		ts.srv.Close()
		// In handler mode the Listener serves the streams itself, and
		// the http.Server may not have begun to serve the Listener yet:
		// then its Close does not reach the Listener, which it closes
		// only once Serve starts, after the window opened and the whole
		// response, FIN and all, went out.
		ts.sl.Close()
		p.write(&spdy.WindowUpdateFrame{StreamID: 1, Delta: 200000})
		for _, f := range p.expectEnd(t) {
			if d, ok := f.(*spdy.DataFrame); ok && d.StreamID == 1 && d.Flags&spdy.FlagFin != 0 {
				t.Errorf("stream 1 ended with FIN after the server closed: %s", describe(f))
			}
		}
	})
}

// theSession returns the one session the test server holds.
func (ts *testServer) theSession(t *testing.T) *session {
	t.Helper()
	ts.sl.mu.Lock()
	defer ts.sl.mu.Unlock()
	if len(ts.sl.sessions) != 1 {
		t.Fatalf("%d sessions; want 1", len(ts.sl.sessions))
	}
	for s := range ts.sl.sessions {
		return s
	}
	return nil
}

// writerParked reports whether s's writer goroutine has stopped.
func (s *session) writerIsParked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writerParked
}

// An idle session's writer goroutine stops after writerLinger; whatever
// there is to write next starts it again: a response, a PING's echo, the
// idle timeout's GOAWAY.
func TestWriterParksWhenIdle(t *testing.T) {
	forEachBubble(t, versions, func(t *testing.T, proto string) {
		ts := newTestServer(t, proto, &Config{IdleTimeout: 3 * writerLinger})
		p := ts.dial(t)
		p.get(t, 1, "/hello")
		p.readResponse(t, 1)
		synctest.Wait()
		s := ts.theSession(t)
		time.Sleep(writerLinger / 2) // other goroutines of the request end
		synctest.Wait()
		if s.writerIsParked() {
			t.Fatal("the writer stopped before writerLinger")
		}
		busy := ts.goroutines()
		time.Sleep(writerLinger / 2)
		synctest.Wait()
		if !s.writerIsParked() {
			t.Fatal("the writer of an idle session did not stop")
		}
		if n := ts.goroutines(); n != busy-1 {
			t.Errorf("%d goroutines once the writer stopped; want %d", n, busy-1)
		}

		p.sync(t)
		p.get(t, 3, "/hello")
		if r := p.readResponse(t, 3); string(r.body) != "hello, world\n" {
			t.Errorf("response after the writer stopped: %q", r.body)
		}
		time.Sleep(writerLinger)
		synctest.Wait()
		if !s.writerIsParked() {
			t.Fatal("the writer did not stop again")
		}
		// The idle timeout's GOAWAY starts it once more.
		if last := p.expectGoAway(t, spdy.GoAwayOK); last != 3 {
			t.Errorf("GOAWAY last-good-stream-id %d; want 3", last)
		}
		p.expectEnd(t)
	})
}

// The same over HTTP/2, where a stream open with nothing to write keeps
// the writer.
func TestH2WriterParksWhenIdle(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hold := make(chan struct{})
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				<-hold
			}
			io.WriteString(w, "ok\n")
		}))
		p := ts.dialH2(t)
		p.request(1, "GET", "/hold", true)
		time.Sleep(2 * writerLinger)
		synctest.Wait()
		s := ts.theSession(t)
		if s.writerIsParked() {
			t.Fatal("the writer stopped while a stream was open")
		}
		close(hold)
		if _, body, _ := p.response(1); string(body) != "ok\n" {
			t.Fatalf("held response: %q", body)
		}
		time.Sleep(writerLinger)
		synctest.Wait()
		if !s.writerIsParked() {
			t.Fatal("the writer of an idle session did not stop")
		}
		p.sync()
		p.request(3, "GET", "/", true)
		if _, body, _ := p.response(3); string(body) != "ok\n" {
			t.Fatalf("response after the writer stopped: %q", body)
		}
	})
}
