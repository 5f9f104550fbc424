package spdymux_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
	"github.com/spdymux/spdymux/spdy"
)

// protoHandler answers with how the request came: "HTTP/1.1 tls=true" or
// "SPDY/3.1 tls=false".
func protoHandler(w http.ResponseWriter, r *http.Request) {
	proto := r.Proto
	tls := r.TLS != nil
	if info, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
		proto = info.HTTPProto()
		tls = info.TLS != nil
	}
	fmt.Fprintf(w, "%s tls=%v", proto, tls)
}

func serveProto(t *testing.T, cfg *spdymux.Config, http2 bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(protoHandler)}
	if !http2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	spdymux.ConfigureServer(srv)
	go srv.Serve(spdymux.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func testTLSConfig(t *testing.T, nextProtos ...string) *tls.Config {
	certFile, keyFile := interop.WriteSelfSignedCert(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: nextProtos}
}

// spdyGet sends one GET over a fresh SPDY session on conn and returns the
// body.
func spdyGet(t *testing.T, conn net.Conn, v spdy.Version) string {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	bw := bufio.NewWriter(conn)
	fr := spdy.NewFramer(bw, bufio.NewReader(conn), v)
	hdr := []spdy.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/"}, {Name: ":version", Value: "HTTP/1.1"}, {Name: ":host", Value: "localhost"}, {Name: ":scheme", Value: "https"}}
	if v == spdy.V2 {
		hdr = []spdy.HeaderField{{Name: "method", Value: "GET"}, {Name: "url", Value: "/"}, {Name: "version", Value: "HTTP/1.1"}, {Name: "host", Value: "localhost"}, {Name: "scheme", Value: "https"}}
	}
	if err := fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: hdr}); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	var body []byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		if d, ok := f.(*spdy.DataFrame); ok && d.StreamID == 1 {
			body = append(body, d.Data...)
			if d.Flags&spdy.FlagFin != 0 {
				return string(body)
			}
		}
	}
}

func http1Get(t *testing.T, conn net.Conn) string {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestListenerDetectsProtocol(t *testing.T) {
	tlsAddr := serveProto(t, &spdymux.Config{TLSConfig: testTLSConfig(t)}, false)
	plainAddr := serveProto(t, nil, false)
	bothAddr := serveProto(t, &spdymux.Config{TLSConfig: testTLSConfig(t), AllowCleartext: true}, false)
	h2Addr := serveProto(t, &spdymux.Config{TLSConfig: testTLSConfig(t, "h2")}, true)

	dialTLS := func(addr string, protos ...string) net.Conn {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: protos})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial := func(addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	cases := []struct {
		name string
		get  func() string
		want string
	}{
		{"tls spdy/3.1", func() string { return spdyGet(t, dialTLS(tlsAddr, "spdy/3.1"), spdy.V3) }, "SPDY/3.1 tls=true"},
		{"tls spdy/3", func() string { return spdyGet(t, dialTLS(tlsAddr, "spdy/3"), spdy.V3) }, "SPDY/3 tls=true"},
		{"tls spdy/2", func() string { return spdyGet(t, dialTLS(tlsAddr, "spdy/2"), spdy.V2) }, "SPDY/2 tls=true"},
		{"tls prefers spdy/3.1", func() string { return spdyGet(t, dialTLS(tlsAddr, "http/1.1", "spdy/2", "spdy/3.1"), spdy.V3) }, "SPDY/3.1 tls=true"},
		{"tls http/1.1 by ALPN", func() string { return http1Get(t, dialTLS(tlsAddr, "http/1.1")) }, "HTTP/1.1 tls=true"},
		{"tls without ALPN", func() string { return http1Get(t, dialTLS(tlsAddr)) }, "HTTP/1.1 tls=true"},
		{"plain spdy/3", func() string { return spdyGet(t, dial(plainAddr), spdy.V3) }, "SPDY/3.1 tls=false"},
		{"plain spdy/2", func() string { return spdyGet(t, dial(plainAddr), spdy.V2) }, "SPDY/2 tls=false"},
		{"plain http/1.1", func() string { return http1Get(t, dial(plainAddr)) }, "HTTP/1.1 tls=false"},
		{"one port: tls spdy/3.1", func() string { return spdyGet(t, dialTLS(bothAddr, "spdy/3.1"), spdy.V3) }, "SPDY/3.1 tls=true"},
		{"one port: tls http/1.1", func() string { return http1Get(t, dialTLS(bothAddr, "http/1.1")) }, "HTTP/1.1 tls=true"},
		{"one port: plain spdy/3", func() string { return spdyGet(t, dial(bothAddr), spdy.V3) }, "SPDY/3.1 tls=false"},
		{"one port: plain http/1.1", func() string { return http1Get(t, dial(bothAddr)) }, "HTTP/1.1 tls=false"},
		{"h2 kept for the inner server", func() string {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
			resp, err := c.Get("https://" + h2Addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}, "HTTP/2.0 tls=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.get(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestListenerRejects(t *testing.T) {
	tlsAddr := serveProto(t, &spdymux.Config{TLSConfig: testTLSConfig(t)}, false)
	plainAddr := serveProto(t, &spdymux.Config{Protocols: []string{spdymux.ProtoSPDY31}}, false)
	cases := []struct {
		name, addr string
		send       []byte
		want       string // what the server says before it closes
	}{
		{"binary garbage on cleartext", plainAddr, []byte{0x00, 0x01, 0x02, 0x03}, ""},
		{"cleartext on a TLS-only port", tlsAddr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"},
		{"SPDY/2 where only 3.1 is enabled", plainAddr, []byte{0x80, 0x02, 0x00, 0x04, 0, 0, 0, 4, 0, 0, 0, 0}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.send)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection not closed: %v", err)
			}
			if string(b) != tc.want {
				t.Errorf("got %q; want %q, then the connection closed", b, tc.want)
			}
		})
	}
}

// Config.ConnContext sees the connection a session runs on as a user of
// net/http would: the *tls.Conn over TLS, the *net.TCPConn accepted in
// cleartext; what it returns reaches the session's requests.
func TestConnContextConnection(t *testing.T) {
	type key struct{}
	var mu sync.Mutex
	var got []string
	cfg := &spdymux.Config{
		TLSConfig:      testTLSConfig(t),
		AllowCleartext: true,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, r.Context().Value(key{}))
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%T", c))
			return context.WithValue(ctx, key{}, fmt.Sprintf("%T", c))
		},
	}
	addr := serveProto(t, cfg, false)
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"spdy/3.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if body := spdyGet(t, tc, spdy.V3); body != "*tls.Conn" {
		t.Errorf("over TLS the handler saw %q; want *tls.Conn", body)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if body := spdyGet(t, c, spdy.V3); body != "*net.TCPConn" {
		t.Errorf("in cleartext the handler saw %q; want *net.TCPConn", body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Errorf("ConnContext called for %v; want one call per session", got)
	}
}
