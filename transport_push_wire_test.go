package spdymux_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/spdy"
)

// pushWireServer is a scripted SPDY/3.1 (or, with version V2, SPDY/2)
// server for the Transport's push handling: for every request it sends
// the pushes push writes, then the reply "page" with FIN, and records the
// checkResets fails t unless each pushed stream of want was reset with its
// status, and no push other than those already taken from got was offered.
func (s *pushWireServer) checkResets(t *testing.T, got <-chan string, want map[spdy.StreamID]spdy.RstStatus) {
	t.Helper()
	for id, status := range want {
		if rst, ok := s.reset(id); !ok || rst != status {
			t.Errorf("push %d: reset %v (%v); want %v", id, rst, ok, status)
		}
	}
	select {
	case p := <-got:
		t.Errorf("another push offered: %q", p)
	default:
	}
}

// RST_STREAMs it gets.
type pushWireServer struct {
	ln     net.Listener
	mu     sync.Mutex
	resets map[spdy.StreamID]spdy.RstStatus
}

func startPushWireServer(t *testing.T, v spdy.Version, push func(fr *spdy.Framer, assoc spdy.StreamID, host string)) *pushWireServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := &pushWireServer{ln: ln, resets: map[spdy.StreamID]spdy.RstStatus{}}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := spdy.NewFramer(c, c, v)
		status, version := ":status", ":version"
		if v == spdy.V2 {
			status, version = "status", "version"
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *spdy.SynStreamFrame:
				push(fr, f.StreamID, ln.Addr().String())
				fr.WriteSynReply(&spdy.SynReplyFrame{StreamID: f.StreamID, Header: []spdy.HeaderField{
					{Name: status, Value: "200"}, {Name: version, Value: "HTTP/1.1"}}})
				fr.WriteData(f.StreamID, spdy.FlagFin, []byte("page"))
			case *spdy.RstStreamFrame:
				srv.mu.Lock()
				srv.resets[f.StreamID] = f.Status
				srv.mu.Unlock()
			}
		}
	}()
	return srv
}

func (s *pushWireServer) reset(id spdy.StreamID) (spdy.RstStatus, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		st, ok := s.resets[id]
		s.mu.Unlock()
		if ok {
			return st, true
		}
		time.Sleep(time.Millisecond)
	}
	return 0, false
}

func synPush(id, assoc spdy.StreamID, flags spdy.Flags, kv ...string) *spdy.SynStreamFrame {
	f := &spdy.SynStreamFrame{StreamID: id, AssociatedStreamID: assoc, Flags: flags | spdy.FlagUnidirectional}
	for i := 0; i < len(kv); i += 2 {
		f.Header = append(f.Header, spdy.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return f
}

// mod_spdy's form: the push's SYN_STREAM names the resource alone, its
// status and headers follow in HEADERS (SPDY/3 §3.3.1). The Transport
// takes it as it takes the form with the head in the SYN_STREAM.
func TestTransportPushSplitForm(t *testing.T) {
	srv := startPushWireServer(t, spdy.V3, func(fr *spdy.Framer, assoc spdy.StreamID, host string) {
		fr.WriteSynStream(synPush(2, assoc, 0, ":scheme", "http", ":host", host, ":path", "/split"))
		fr.WriteHeaders(&spdy.HeadersFrame{StreamID: 2, Header: []spdy.HeaderField{
			{Name: ":status", Value: "200"}, {Name: ":version", Value: "HTTP/1.1"}, {Name: "content-type", Value: "text/css"}}})
		fr.WriteData(2, spdy.FlagFin, []byte("body {}"))
	})
	got := make(chan string, 1)
	tr := &spdymux.Transport{PushHandler: func(p *spdymux.Push) {
		resp, err := p.Response()
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		go func() {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- p.Request.URL.Path + " " + resp.Header.Get("Content-Type") + " " + string(b)
		}()
	}}
	defer tr.CloseIdleConnections()
	resp, body := get(t, &http.Client{Transport: tr}, context.Background(), "http://"+srv.ln.Addr().String()+"/")
	if resp.StatusCode != 200 || string(body) != "page" {
		t.Fatalf("page %d %q", resp.StatusCode, body)
	}
	select {
	case s := <-got:
		if s != "/split text/css body {}" {
			t.Errorf("push: %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no push offered")
	}
}

// Pushes the Transport cannot take are refused, each alone: off the
// page's origin (REFUSED_STREAM), without FLAG_UNIDIRECTIONAL or :path
// (PROTOCOL_ERROR); the page and a good push go through.
func TestTransportPushRefused(t *testing.T) {
	srv := startPushWireServer(t, spdy.V3, func(fr *spdy.Framer, assoc spdy.StreamID, host string) {
		head := []string{":status", "200", ":version", "HTTP/1.1"}
		fr.WriteSynStream(synPush(2, assoc, 0, append([]string{":scheme", "http", ":host", "other.example", ":path", "/x", ":method", "GET"}, head...)...))
		fr.WriteData(2, spdy.FlagFin, []byte("not mine"))
		f := synPush(4, assoc, spdy.FlagFin, append([]string{":scheme", "http", ":host", host, ":path", "/y", ":method", "GET"}, head...)...)
		f.Flags &^= spdy.FlagUnidirectional
		fr.WriteSynStream(f)
		fr.WriteSynStream(synPush(6, assoc, spdy.FlagFin, append([]string{":scheme", "http", ":host", host, ":method", "GET"}, head...)...))
		fr.WriteSynStream(synPush(8, assoc, 0, append([]string{":scheme", "http", ":host", host, ":path", "/good", ":method", "GET"}, head...)...))
		fr.WriteData(8, spdy.FlagFin, []byte("good"))
	})
	got := make(chan string, 4)
	tr := &spdymux.Transport{PushHandler: func(p *spdymux.Push) {
		resp, err := p.Response()
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		go func() {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- p.Request.URL.Path + " " + string(b)
		}()
	}}
	defer tr.CloseIdleConnections()
	resp, body := get(t, &http.Client{Transport: tr}, context.Background(), "http://"+srv.ln.Addr().String()+"/")
	if resp.StatusCode != 200 || string(body) != "page" {
		t.Fatalf("page %d %q", resp.StatusCode, body)
	}
	select {
	case s := <-got:
		if s != "/good good" {
			t.Errorf("push: %q; want /good alone", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no push offered")
	}
	srv.checkResets(t, got, map[spdy.StreamID]spdy.RstStatus{2: spdy.RefusedStream, 4: spdy.ProtocolError, 6: spdy.ProtocolError})
}

// SPDY/2 pushes (draft 2, "Server Push Transactions") in both forms the
// Transport takes: url the full URL (Chromium's) and url a path beside
// host and scheme (node's spdy-transport's server). A push without url,
// or with a url path and no host, is reset with PROTOCOL_ERROR; one off
// the page's origin is refused. The promised request's fields are not
// taken for the pushed response's headers.
func TestTransportPushSPDY2(t *testing.T) {
	srv := startPushWireServer(t, spdy.V2, func(fr *spdy.Framer, assoc spdy.StreamID, host string) {
		head := []string{"status", "200 OK", "version", "HTTP/1.1", "content-type", "text/css"}
		fr.WriteSynStream(synPush(2, assoc, 0, append([]string{"method", "GET", "url", "http://" + host + "/abs?q=1", "host", host, "scheme", "http"}, head...)...))
		fr.WriteData(2, spdy.FlagFin, []byte("full URL"))
		fr.WriteSynStream(synPush(4, assoc, 0, append([]string{"method", "GET", "url", "/rel", "host", host, "scheme", "http"}, head...)...))
		fr.WriteData(4, spdy.FlagFin, []byte("path"))
		fr.WriteSynStream(synPush(6, assoc, spdy.FlagFin, append([]string{"method", "GET", "host", host, "scheme", "http"}, head...)...))
		fr.WriteSynStream(synPush(8, assoc, spdy.FlagFin, append([]string{"method", "GET", "url", "/nohost", "scheme", "http"}, head...)...))
		fr.WriteSynStream(synPush(10, assoc, 0, append([]string{"method", "GET", "url", "http://other.example/x"}, head...)...))
		fr.WriteData(10, spdy.FlagFin, []byte("not mine"))
	})
	got := make(chan string, 4)
	tr := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY2, PushHandler: func(p *spdymux.Push) {
		resp, err := p.Response()
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		for _, k := range []string{"Method", "Url", "Host", "Scheme"} {
			if v := resp.Header.Get(k); v != "" {
				t.Errorf("push %s: response header %s: %q", p.Request.URL, k, v)
			}
		}
		go func() {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- p.Request.URL.String() + " " + resp.Status + " " + resp.Header.Get("Content-Type") + " " + string(b)
		}()
	}}
	defer tr.CloseIdleConnections()
	base := "http://" + srv.ln.Addr().String()
	resp, body := get(t, &http.Client{Transport: tr}, context.Background(), base+"/")
	if resp.StatusCode != 200 || string(body) != "page" {
		t.Fatalf("page %d %q", resp.StatusCode, body)
	}
	want := map[string]bool{base + "/abs?q=1 200 OK text/css full URL": true, base + "/rel 200 OK text/css path": true}
	for n := len(want); n > 0; n-- {
		select {
		case s := <-got:
			if !want[s] {
				t.Errorf("push: %q; want one of %v", s, want)
			}
			delete(want, s)
		case <-time.After(5 * time.Second):
			t.Fatalf("pushes missing: %v", want)
		}
	}
	srv.checkResets(t, got, map[spdy.StreamID]spdy.RstStatus{6: spdy.ProtocolError, 8: spdy.ProtocolError, 10: spdy.RefusedStream})
}
