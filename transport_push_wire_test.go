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

// pushWireServer is a scripted SPDY/3.1 server for the Transport's push
// handling: for every request it sends the pushes push returns, then the
// reply "page" with FIN, and records the RST_STREAMs it gets.
type pushWireServer struct {
	ln     net.Listener
	mu     sync.Mutex
	resets map[spdy.StreamID]spdy.RstStatus
}

func startPushWireServer(t *testing.T, push func(fr *spdy.Framer, assoc spdy.StreamID, host string)) *pushWireServer {
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
		fr := spdy.NewFramer(c, c, spdy.V3)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *spdy.SynStreamFrame:
				push(fr, f.StreamID, ln.Addr().String())
				fr.WriteSynReply(&spdy.SynReplyFrame{StreamID: f.StreamID, Header: []spdy.HeaderField{
					{Name: ":status", Value: "200"}, {Name: ":version", Value: "HTTP/1.1"}}})
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
	srv := startPushWireServer(t, func(fr *spdy.Framer, assoc spdy.StreamID, host string) {
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
	srv := startPushWireServer(t, func(fr *spdy.Framer, assoc spdy.StreamID, host string) {
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
	for id, want := range map[spdy.StreamID]spdy.RstStatus{2: spdy.RefusedStream, 4: spdy.ProtocolError, 6: spdy.ProtocolError} {
		if got, ok := srv.reset(id); !ok || got != want {
			t.Errorf("push %d: reset %v (%v); want %v", id, got, ok, want)
		}
	}
	select {
	case s := <-got:
		t.Errorf("another push offered: %q", s)
	default:
	}
}
