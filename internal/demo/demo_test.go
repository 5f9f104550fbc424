package demo

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fetch does one request against srv and returns the response with its
// body read.
func fetch(t *testing.T, srv *httptest.Server, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = PatternByte(int64(i))
	}
	return b
}

func TestEndpoints(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	big := pattern(300000)
	for _, tc := range []struct {
		method, path string
		body         string
		wantStatus   int
		wantBody     []byte // nil: not checked
		wantHeader   map[string]string
	}{
		{"GET", "/hello", "", 200, []byte("hello, world\n"), map[string]string{"Content-Length": "13"}},
		{"HEAD", "/hello", "", 200, []byte{}, map[string]string{"Content-Length": "13"}},
		{"POST", "/hello", "", 405, nil, map[string]string{"Allow": "GET, HEAD"}},
		{"GET", "/bytes/0", "", 200, []byte{}, map[string]string{"Content-Length": "0"}},
		{"GET", "/bytes/1000", "", 200, pattern(1000), map[string]string{"Content-Length": "1000"}},
		{"GET", "/bytes/300000", "", 200, big, map[string]string{"Content-Type": "application/octet-stream"}},
		{"HEAD", "/bytes/1073741824", "", 200, []byte{}, map[string]string{"Content-Length": "1073741824"}},
		{"GET", "/bytes/1073741825", "", 400, nil, nil},
		{"GET", "/bytes/-1", "", 400, nil, nil},
		{"GET", "/bytes/ten", "", 400, nil, nil},
		{"POST", "/echo", "ping", 200, []byte("ping"), map[string]string{"Content-Length": "4"}},
		{"PUT", "/echo", "pong", 200, []byte("pong"), map[string]string{"Content-Length": "4"}},
		{"GET", "/echo", "", 405, nil, nil},
		{"DELETE", "/echo", "", 405, nil, nil},
		{"GET", "/status/418", "", 418, []byte("418 I'm a teapot\n"), nil},
		{"GET", "/status/204", "", 204, []byte{}, nil},
		{"GET", "/status/503", "", 503, []byte("503 Service Unavailable\n"), nil},
		{"GET", "/status/199", "", 400, nil, nil},
		{"GET", "/status/600", "", 400, nil, nil},
		{"GET", "/slow?ms=20", "", 200, []byte("slept 20 ms\n"), nil},
		{"GET", "/slow?ms=-5", "", 400, nil, nil},
		{"GET", "/slow?ms=x", "", 400, nil, nil},
		{"GET", "/tile/7.svg", "", 200, nil, map[string]string{"Content-Type": "image/svg+xml"}},
		{"GET", "/tile/1000.svg", "", 400, nil, nil},
		{"GET", "/tile/7.png", "", 400, nil, nil},
		{"GET", "/nothing", "", 404, nil, nil},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, got := fetch(t, srv, tc.method, tc.path, body)
		name := tc.method + " " + tc.path
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("%s: status %d; want %d", name, resp.StatusCode, tc.wantStatus)
			continue
		}
		if tc.wantBody != nil && !bytes.Equal(got, tc.wantBody) {
			t.Errorf("%s: body %q (%d bytes); want %q (%d bytes)", name, trim(got), len(got), trim(tc.wantBody), len(tc.wantBody))
		}
		for k, want := range tc.wantHeader {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: %s %q; want %q", name, k, got, want)
			}
		}
	}
}

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func TestIndex(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, body := fetch(t, srv, "GET", "/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, type %q; want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := strings.Count(string(body), `<img src="/tile/`); n != Tiles {
		t.Errorf("index has %d tiles; want %d", n, Tiles)
	}
	if !strings.Contains(string(body), "HTTP/1.1") {
		t.Errorf("index does not name the protocol it came over")
	}
	_, svg := fetch(t, srv, "GET", "/tile/3.svg", nil)
	if !strings.Contains(string(svg), "HTTP/1.1") || !strings.Contains(string(svg), "#3") {
		t.Errorf("tile does not show its number and protocol:\n%s", svg)
	}
}

func TestHeadersJSON(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/headers", nil)
	req.Header.Set("X-One", "1")
	req.Header.Add("X-Two", "a")
	req.Header.Add("X-Two", "b")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if got := m["X-One"]; got != "1" {
		t.Errorf("X-One: %v; want \"1\"", got)
	}
	if got, ok := m["X-Two"].([]any); !ok || len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Two: %v; want [a b]", m["X-Two"])
	}
	if got := m["Host"]; got != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("Host: %v; want the server address", got)
	}
}

func TestInfo(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	_, body := fetch(t, srv, "GET", "/info", nil)
	var c Conn
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Protocol != "HTTP/1.1" || c.SPDY || c.TLS {
		t.Errorf("info %+v; want HTTP/1.1 without SPDY or TLS", c)
	}
}

// TestEchoStreams checks that /echo answers the first part of a body of
// unknown length before the client has sent the rest.
func TestEchoStreams(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("first ")) }()
	req, _ := http.NewRequest("POST", srv.URL+"/echo", pr)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		t.Errorf("Content-Length %q for a body of unknown length; want none", cl)
	}
	buf := make([]byte, 6)
	read := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, buf); read <- err }()
	select {
	case err := <-read:
		if err != nil || string(buf) != "first " {
			t.Fatalf("read %q, %v; want \"first \"", buf, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the echo did not stream: nothing came back while the upload was open")
	}
	go func() { _, _ = pw.Write([]byte("second")); pw.Close() }()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("rest %q, %v; want second", rest, err)
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", "<p>mine")
	write("hello", "shadowed\n")
	write("docs/a.txt", "a\n")

	h, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		method, path, want string
		status             int
	}{
		{"GET", "/", "<p>mine", 200},
		{"GET", "/hello", "shadowed\n", 200},
		{"GET", "/docs/a.txt", "a\n", 200},
		{"GET", "/docs/../docs/a.txt", "a\n", 200},
		{"GET", "/bytes/5", string(pattern(5)), 200},
		{"POST", "/echo", "x", 200},
		{"GET", "/status/201", "201 Created\n", 201},
		{"GET", "/missing.txt", "", 404},
	} {
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader(tc.want)
		}
		resp, got := fetch(t, srv, tc.method, tc.path, body)
		if resp.StatusCode != tc.status || (tc.want != "" && string(got) != tc.want) {
			t.Errorf("%s %s: %d %q; want %d %q", tc.method, tc.path, resp.StatusCode, trim(got), tc.status, tc.want)
		}
	}

	if _, err := Files(filepath.Join(dir, "nope")); err == nil {
		t.Error("Files of a missing directory: no error")
	}
	if _, err := Files(filepath.Join(dir, "hello")); err == nil {
		t.Error("Files of a regular file: no error")
	}
}
