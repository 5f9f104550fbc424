package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newGateway returns a gateway to backend with cfg's other fields.
func newGateway(t *testing.T, backend string, cfg Config) *Gateway {
	t.Helper()
	u, err := ParseBackend(backend)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backend = u
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.CloseIdleConnections)
	return g
}

// headerEcho answers with the request headers it received, as JSON.
func headerEcho(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(h)
}

func TestParseBackend(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://localhost", true},
		{"https://[::1]:8443/prefix", true},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
		{"http://", false},
		{"http://:80", false},
		{"http://u:p@host", false},
		{"http://host/?q=1", false},
		{"http://host/#f", false},
		{"http://host:99999", false},
		{"http://host:http", false},
		{"http://bad host", false},
	} {
		_, err := ParseBackend(tc.in)
		if got := err == nil; got != tc.ok {
			t.Errorf("ParseBackend(%q): err %v; want ok %v", tc.in, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseBackend(%q): error %q spans lines", tc.in, err)
		}
	}
}

func TestAppendForwardedElement(t *testing.T) {
	for _, tc := range []struct {
		ip, host, proto, want string
	}{
		{"192.0.2.60", "example.com", "https", "for=192.0.2.60;host=example.com;proto=https"},
		{"2001:db8::1", "example.com", "http", `for="[2001:db8::1]";host=example.com;proto=http`},
		{"127.0.0.1", "localhost:8443", "https", `for=127.0.0.1;host="localhost:8443";proto=https`},
		{"", "", "http", "for=unknown;proto=http"},
		{"::1", `a"b`, "http", `for="[::1]";host="a\"b";proto=http`},
	} {
		if got := string(appendForwardedElement(nil, tc.ip, tc.host, tc.proto)); got != tc.want {
			t.Errorf("appendForwardedElement(%q, %q, %q) = %s; want %s", tc.ip, tc.host, tc.proto, got, tc.want)
		}
	}
}

func TestForwardingHeaders(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(headerEcho))
	defer backend.Close()
	g := newGateway(t, backend.URL, Config{})

	for _, tc := range []struct {
		name       string
		remote     string
		tls        bool
		header     http.Header
		want       map[string]string
		wantAbsent []string
	}{{
		name:   "ipv4",
		remote: "192.0.2.7:5555",
		want: map[string]string{
			"Forwarded":         "for=192.0.2.7;host=site.example;proto=http",
			"X-Forwarded-For":   "192.0.2.7",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "site.example",
		},
	}, {
		name:   "ipv6 over tls",
		remote: "[2001:db8::17]:5555",
		tls:    true,
		want: map[string]string{
			"Forwarded":         `for="[2001:db8::17]";host=site.example;proto=https`,
			"X-Forwarded-For":   "2001:db8::17",
			"X-Forwarded-Proto": "https",
		},
	}, {
		name:   "appended to what the client sent",
		remote: "192.0.2.7:5555",
		header: http.Header{
			"X-Forwarded-For":   {"198.51.100.1", "198.51.100.2"},
			"Forwarded":         {"for=198.51.100.1"},
			"X-Forwarded-Proto": {"gopher"},
			"X-Forwarded-Host":  {"evil.example"},
		},
		want: map[string]string{
			"Forwarded":         "for=198.51.100.1, for=192.0.2.7;host=site.example;proto=http",
			"X-Forwarded-For":   "198.51.100.1, 198.51.100.2, 192.0.2.7",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "site.example",
		},
	}, {
		name:   "empty values in the client's lists left out",
		remote: "192.0.2.7:5555",
		header: http.Header{
			"X-Forwarded-For": {"", " "},
			"Forwarded":       {"\t"},
		},
		want: map[string]string{
			"Forwarded":       "for=192.0.2.7;host=site.example;proto=http",
			"X-Forwarded-For": "192.0.2.7",
		},
	}, {
		name:   "hop-by-hop removed",
		remote: "192.0.2.7:5555",
		header: http.Header{
			"Connection":       {"close, X-Private"},
			"X-Private":        {"secret"},
			"Keep-Alive":       {"timeout=5"},
			"Proxy-Connection": {"keep-alive"},
			"Upgrade":          {"websocket"},
			"X-End-To-End":     {"kept"},
		},
		want:       map[string]string{"X-End-To-End": "kept"},
		wantAbsent: []string{"Connection", "X-Private", "Keep-Alive", "Proxy-Connection", "Upgrade"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://site.example/x", nil)
			req.RemoteAddr = tc.remote
			if !tc.tls {
				req.TLS = nil
			} else {
				req.TLS = &tls.ConnectionState{}
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("status %d; want 200", rec.Code)
			}
			var seen http.Header
			if err := json.Unmarshal(rec.Body.Bytes(), &seen); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := strings.Join(seen.Values(k), ", "); got != want {
					t.Errorf("backend saw %s: %q; want %q", k, got, want)
				}
			}
			for _, k := range tc.wantAbsent {
				if v := seen.Values(k); len(v) > 0 {
					t.Errorf("backend saw %s: %q; want it removed", k, v)
				}
			}
			if got, want := seen.Get("Host"), "site.example"; got != want {
				t.Errorf("backend saw Host %q; want the client's, %q", got, want)
			}
		})
	}
}

func TestResponseHopByHopRemoved(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End-To-End", "kept")
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	g := newGateway(t, backend.URL, Config{})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	for _, k := range []string{"Connection", "X-Private", "Keep-Alive"} {
		if v := rec.Header().Values(k); len(v) > 0 {
			t.Errorf("client saw %s: %q; want it removed", k, v)
		}
	}
	if got := rec.Header().Get("X-End-To-End"); got != "kept" {
		t.Errorf("client saw X-End-To-End %q; want kept", got)
	}
}

// TestStreamingDownload checks that the first bytes of a response reach the
// client while the backend is still holding back the rest.
func TestStreamingDownload(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2048")
		_, _ = w.Write(bytes.Repeat([]byte("a"), 1024))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("b"), 1024))
	}))
	defer backend.Close()
	front := httptest.NewServer(newGateway(t, backend.URL, Config{}))
	defer front.Close()

	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1024)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first 1024 bytes did not arrive while the backend held back the rest")
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != 1024 || rest[0] != 'b' {
		t.Fatalf("rest: %d bytes, err %v; want 1024 b's", len(rest), err)
	}
}

// TestStreamingUpload checks that the backend reads the first part of an
// upload and answers while the client is still sending.
func TestStreamingUpload(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(200)
		_, _ = w.Write(buf)
		w.(http.Flusher).Flush()
		_, _ = io.Copy(w, r.Body)
	}))
	defer backend.Close()
	front := httptest.NewServer(newGateway(t, backend.URL, Config{}))
	defer front.Close()

	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("first")) }()
	req, _ := http.NewRequest("POST", front.URL, pr)
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		got <- result{resp, err}
	}()
	var resp *http.Response
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		resp = r.resp
	case <-time.After(5 * time.Second):
		t.Fatal("no response while the upload is still open: the upload does not stream")
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("read %q, %v; want first", buf, err)
	}
	go func() { _, _ = pw.Write([]byte(" second")); pw.Close() }()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != " second" {
		t.Fatalf("rest %q, %v; want \" second\"", rest, err)
	}
}

func TestBackendRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	g := newGateway(t, "http://"+addr, Config{Logger: discard()})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("status %d; want 502", rec.Code)
	}
	if got := rec.Body.String(); !strings.Contains(got, "backend is unavailable") {
		t.Errorf("body %q; want a short explanation", got)
	}
}

func TestBackendSlow(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer backend.Close()
	g := newGateway(t, backend.URL, Config{ResponseHeaderTimeout: 100 * time.Millisecond, Logger: discard()})
	rec := httptest.NewRecorder()
	start := time.Now()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
	if rec.Code != http.StatusGatewayTimeout {
		t.Errorf("status %d; want 504", rec.Code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v; want about 100ms", d)
	}
}

// TestClientCancelAbortsBackend checks that a client going away mid-body
// aborts the backend exchange and that its connection is not reused, while
// completed exchanges do reuse theirs.
func TestClientCancelAbortsBackend(t *testing.T) {
	var conns atomic.Int32
	aborted := make(chan struct{}, 1)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hang" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write(make([]byte, 100))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			aborted <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	backend.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	front := httptest.NewServer(newGateway(t, backend.URL, Config{Logger: discard()}))
	defer front.Close()
	client := front.Client()

	get := func(path string) {
		t.Helper()
		resp, err := client.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("/a")
	get("/b")
	if n := conns.Load(); n != 1 {
		t.Fatalf("backend connections after two requests: %d; want 1 (kept alive)", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/hang", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-aborted:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend exchange was not aborted when the client went away")
	}

	get("/c")
	if n := conns.Load(); n != 2 {
		t.Errorf("backend connections after the aborted exchange: %d; want 2 (the aborted one not reused)", n)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The request-target the backend gets is the one httputil.ProxyRequest's
// SetURL makes of the client's URL and the backend's.
func TestRequestTarget(t *testing.T) {
	for _, backend := range []string{
		"http://b.example", "http://b.example/", "http://b.example/app", "http://b.example/app/",
		"http://b.example/a%2Fb", "http://b.example/a%2Fb/",
	} {
		g := newGateway(t, backend, Config{})
		for _, target := range []string{
			"/", "/x", "/x/y?q=1", "/a%2Fb/c", "/sp%20ace?", "http://site.example/abs?z", "*",
		} {
			in := httptest.NewRequest("OPTIONS", target, nil)
			want := "*"
			if target != "*" {
				out := in.Clone(in.Context())
				(&httputil.ProxyRequest{In: in, Out: out}).SetURL(g.backend)
				want = out.URL.RequestURI()
			}
			if got := g.requestTarget(in); got != want {
				t.Errorf("backend %s, target %s: %q; want %q", backend, target, got, want)
			}
		}
	}
}
