package spdymux

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/spdymux/spdymux/spdy"
)

// trailerHandler echoes the request body and answers with trailers: X-Out
// is the request's trailer X-In, X-Len the body's length, X-Auth the
// request's trailer Authorization (which must never arrive: a trailer
// section may not hold it), and Content-Type, which net/http refuses to
// send as a trailer (its Trailer-prefixed form sends it anyway).
func trailerHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "X-Out, X-Len, X-Auth")
	n, _ := io.Copy(w, r.Body)
	w.Header().Set("X-Out", r.Trailer.Get("X-In"))
	w.Header().Set("X-Len", strconv.FormatInt(n, 10))
	w.Header().Set("X-Auth", r.Trailer.Get("Authorization"))
	w.Header().Set(http.TrailerPrefix+"Content-Type", "text/evil")
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
}

func newTrailerServer(t *testing.T, proto string) *testServer {
	return newTestServerWith(t, proto, nil, func(srv *http.Server) {
		srv.Handler = http.HandlerFunc(trailerHandler)
	})
}

// On SPDY/3 and 3.1 request trailers (a HEADERS frame after DATA) reach
// the server as chunked trailers, and response trailers come back as a
// HEADERS frame after the body, FIN following on an empty DATA frame;
// fields a trailer section must not hold are dropped both ways.
func TestSPDYTrailers(t *testing.T) {
	forEachBubble(t, v3versions, func(t *testing.T, proto string) {
		for _, fin := range []bool{true, false} {
			ts := newTrailerServer(t, proto)
			p := ts.dial(t)
			p.send(t, p.syn(1, 0, false, p.request("POST", "/trailers")))
			p.sendBody(t, 1, []byte("some body"), false)
			trailers := &spdy.HeadersFrame{StreamID: 1, Header: []spdy.HeaderField{
				{Name: "x-in", Value: "sent after the body"},
				{Name: "authorization", Value: "secret"},
			}}
			if fin {
				trailers.Flags = spdy.FlagFin
				p.send(t, trailers)
			} else {
				// HEADERS, then FIN on DATA: the form spdymux sends.
				p.send(t, trailers, &spdy.DataFrame{StreamID: 1, Flags: spdy.FlagFin})
			}
			checkTrailerReply(t, p)
			ts.waitNoStreams(t)
		}
	})
}

func checkTrailerReply(t *testing.T, p *peer) {
	t.Helper()
	reply := p.expect(t, "SYN_REPLY(1)", func(f spdy.Frame) bool { return isType[*spdy.SynReplyFrame](f) && streamOf(f) == 1 })
	checkResponseHeader(t, p.version, 1, reply.(*spdy.SynReplyFrame).Header)
	var body []byte
	var trailers *spdy.HeadersFrame
	for done := false; !done; {
		f := p.expect(t, "DATA or HEADERS on stream 1", func(f spdy.Frame) bool { return streamOf(f) == 1 })
		switch f := f.(type) {
		case *spdy.DataFrame:
			if trailers != nil && len(f.Data) > 0 {
				t.Errorf("DATA after the trailers")
			}
			body = append(body, f.Data...)
			done = f.Flags&spdy.FlagFin != 0
		case *spdy.HeadersFrame:
			if f.Flags&spdy.FlagFin != 0 {
				t.Errorf("FIN on the trailers' HEADERS frame: node's spdy-transport would never end the stream")
			}
			trailers = f
		default:
			t.Fatalf("got %s; want DATA or HEADERS", describe(f))
		}
	}
	if string(body) != "some body" {
		t.Errorf("body %q; want the request body back", body)
	}
	if trailers == nil {
		t.Fatal("no trailers")
	}
	got := map[string]string{}
	for _, h := range trailers.Header {
		got[h.Name] = h.Value
	}
	want := map[string]string{"x-out": "sent after the body", "x-len": "9", "x-auth": "", "grpc-status": "0"}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("trailer %s: %q (present %v); want %q", k, g, ok, v)
		}
	}
	if _, ok := got["content-type"]; ok {
		t.Errorf("trailer content-type sent; RFC 9110 §6.5.1 keeps it out (trailers %v)", trailers.Header)
	}
	if len(got) != len(want) {
		t.Errorf("trailers %v; want exactly %v", got, want)
	}
}

// SPDY/2 takes request trailers but sends none: the response ends with
// FIN on an empty DATA frame.
func TestSPDY2TrailersDropped(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newTrailerServer(t, ProtoSPDY2)
		p := ts.dial(t)
		p.send(t, p.syn(1, 0, false, p.request("POST", "/trailers")))
		p.sendBody(t, 1, []byte("abc"), false)
		p.send(t, &spdy.HeadersFrame{StreamID: 1, Flags: spdy.FlagFin, Header: []spdy.HeaderField{{Name: "x-in", Value: "v2"}}})
		r := p.readResponse(t, 1)
		if string(r.body) != "abc" {
			t.Errorf("body %q; want abc", r.body)
		}
		p.sync(t)
		p.noFrames(t, 1, "after FIN")
	})
}
