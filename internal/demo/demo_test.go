package demo

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
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
	// mod_spdy's push header names every tile, in order (spdymux takes it
	// out of the response it sends).
	xac := resp.Header.Get("X-Associated-Content")
	if n := strings.Count(xac, `"/tile/`); n != Tiles || !strings.HasPrefix(xac, `"/tile/0.svg", "/tile/1.svg"`) {
		t.Errorf("X-Associated-Content names %d tiles (%.60s...); want all %d", n, xac, Tiles)
	}
	page := string(body)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, want := range []string{
		"This page came over <b>HTTP/1.1</b>.",
		"one request at a time per connection",
		"2016",
		"<pre>spdymux get -v http://" + host + "/</pre>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index does not say %q", want)
		}
	}
	checkSelfContained(t, page)
	_, svg := fetch(t, srv, "GET", "/tile/3.svg", nil)
	if !strings.Contains(string(svg), ">HTTP/1.1<") || !strings.Contains(string(svg), ">#3<") || !strings.Contains(string(svg), ">port ") {
		t.Errorf("tile does not show its number, protocol and client port:\n%s", svg)
	}
}

// checkSelfContained fails unless every src and href of page names a path
// of this site or a data URL, and page has no script.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	if strings.Contains(page, "<script") {
		t.Error("index has a script")
	}
	for _, attr := range []string{` src="`, ` href="`} {
		for rest := page; ; {
			i := strings.Index(rest, attr)
			if i < 0 {
				break
			}
			rest = rest[i+len(attr):]
			if !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "data:") || strings.HasPrefix(rest, "//") {
				t.Errorf("index loads or links %s%.30s...; want a path of this site", attr, rest)
			}
		}
	}
}

// TestIndexPage checks what the page tells the reader for each way it can
// come: over an HTTP/2 or SPDY stream of spdymux, over HTTP/2 from a
// server that speaks it itself, and over HTTP/1.1.
func TestIndexPage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      Conn
		host   string
		want   []string
		unwant []string
	}{
		{
			"h2", Conn{Protocol: "HTTP/2", Stream: true, SessionID: 4, StreamID: 1, TLS: true, ALPN: "h2"}, "127.0.0.1:8443",
			[]string{
				"This page came over <b>HTTP/2 session 4 stream 1</b>.",
				"came over <b>one connection</b>, as many streams of one HTTP/2 session",
				"the session (<code>s4</code>)",
				"sN · stream M",
				"Browsers no longer speak SPDY: they dropped it in 2016",
				"<pre>spdymux get -k -v https://127.0.0.1:8443/</pre>",
				"<code>-k</code> accepts",
			},
			[]string{"one request at a time"},
		},
		{
			"h2c", Conn{Protocol: "HTTP/2", Stream: true, SessionID: 1, StreamID: 3}, "localhost:8080",
			[]string{"This page came over <b>HTTP/2 session 1 stream 3</b>.", "<pre>spdymux get -v http://localhost:8080/</pre>"},
			[]string{"-k"},
		},
		{
			"spdy", Conn{Protocol: "SPDY/3.1", Stream: true, SPDY: true, SessionID: 2, StreamID: 7, TLS: true}, "",
			[]string{"This page came over <b>SPDY/3.1 session 2 stream 7</b>.", "streams of one SPDY/3.1 session", "https://127.0.0.1:8443/"},
			nil,
		},
		{
			"native h2", Conn{Protocol: "HTTP/2", TLS: true}, "127.0.0.1:1234",
			[]string{"This page came over <b>HTTP/2 over TLS</b>.", "speaks HTTP/2 itself, not through spdymux"},
			[]string{"sN · stream M", "one request at a time"},
		},
		{
			"http/1.1", Conn{Protocol: "HTTP/1.1", TLS: true}, "127.0.0.1:8443",
			[]string{
				"This page came over <b>HTTP/1.1 over TLS</b>.",
				"HTTP/1.1 carries <b>one request at a time per connection</b>",
				"tiles with the same port, and colour, shared a connection",
				"2016",
				"<pre>spdymux get -k -v https://127.0.0.1:8443/</pre>",
			},
			[]string{"sN · stream M", "one connection</b>"},
		},
		{
			"hostile host", Conn{Protocol: "HTTP/1.1"}, "<x>",
			[]string{"http://&lt;x&gt;/"},
			[]string{"<x>"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := indexPage(tc.c, tc.host)
			for _, want := range tc.want {
				if !strings.Contains(page, want) {
					t.Errorf("page does not say %q", want)
				}
			}
			for _, unwant := range tc.unwant {
				if strings.Contains(page, unwant) {
					t.Errorf("page says %q", unwant)
				}
			}
			if n := strings.Count(page, `<img src="/tile/`); n != Tiles {
				t.Errorf("page has %d tiles; want %d", n, Tiles)
			}
			checkSelfContained(t, page)
		})
	}
}

func TestTileSVG(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		c    Conn
		want []string
	}{
		{"h2", 5, Conn{Protocol: "HTTP/2", Stream: true, SessionID: 3, StreamID: 11, Remote: "127.0.0.1:5000"}, []string{">#5<", ">HTTP/2<", ">s3 · stream 11<"}},
		{"spdy", 0, Conn{Protocol: "SPDY/2", Stream: true, SPDY: true, SessionID: 1, StreamID: 1}, []string{">#0<", ">SPDY/2<", ">s1 · stream 1<"}},
		{"pushed", 7, Conn{Protocol: "SPDY/3.1", Stream: true, SPDY: true, Pushed: true, SessionID: 4, StreamID: 16}, []string{">#7<", ">SPDY/3.1<", ">s4 · push 16<"}},
		{"http/1.1", 99, Conn{Protocol: "HTTP/1.1", Remote: "[::1]:40123"}, []string{">#99<", ">HTTP/1.1<", ">port 40123<"}},
		{"no port", 1, Conn{Protocol: "HTTP/1.1", TLS: true, Remote: "pipe"}, []string{">over TLS<"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := tileSVG(tc.n, tc.c)
			for _, want := range tc.want {
				if !strings.Contains(svg, want) {
					t.Errorf("tile does not say %q:\n%s", want, svg)
				}
			}
		})
	}
}

func TestConnOf(t *testing.T) {
	h1 := httptest.NewRequest("GET", "/", nil)
	h2 := httptest.NewRequest("GET", "/", nil)
	h2.Proto, h2.ProtoMajor, h2.ProtoMinor = "HTTP/2.0", 2, 0
	h2.TLS = &tls.ConnectionState{NegotiatedProtocol: "h2"}
	state := &tls.ConnectionState{NegotiatedProtocol: "h2"}
	for _, tc := range []struct {
		name string
		r    *http.Request
		si   *spdymux.StreamInfo
		want Conn
	}{
		{"http/1.1", h1, nil, Conn{Protocol: "HTTP/1.1", Remote: h1.RemoteAddr}},
		{"net/http h2", h2, nil, Conn{Protocol: "HTTP/2", TLS: true, ALPN: "h2", Remote: h2.RemoteAddr}},
		{"h2", h1, &spdymux.StreamInfo{Protocol: "h2", SessionID: 2, StreamID: 5, Priority: 3, TLS: state},
			Conn{Protocol: "HTTP/2", Stream: true, SessionID: 2, StreamID: 5, Priority: 3, TLS: true, ALPN: "h2", Remote: h1.RemoteAddr}},
		{"h2c", h1, &spdymux.StreamInfo{Protocol: "h2c", SessionID: 1, StreamID: 1},
			Conn{Protocol: "HTTP/2", Stream: true, SessionID: 1, StreamID: 1, Remote: h1.RemoteAddr}},
		{"spdy/3.1", h1, &spdymux.StreamInfo{Protocol: spdymux.ProtoSPDY31, SessionID: 7, StreamID: 9},
			Conn{Protocol: "SPDY/3.1", Stream: true, SPDY: true, SessionID: 7, StreamID: 9, Remote: h1.RemoteAddr}},
		{"spdy/2", h1, &spdymux.StreamInfo{Protocol: spdymux.ProtoSPDY2, SessionID: 1, StreamID: 3},
			Conn{Protocol: "SPDY/2", Stream: true, SPDY: true, SessionID: 1, StreamID: 3, Remote: h1.RemoteAddr}},
		{"pushed", h1, &spdymux.StreamInfo{Protocol: spdymux.ProtoSPDY31, SessionID: 7, StreamID: 4, AssociatedStreamID: 1},
			Conn{Protocol: "SPDY/3.1", Stream: true, SPDY: true, Pushed: true, SessionID: 7, StreamID: 4, Remote: h1.RemoteAddr}},
	} {
		if got := connOf(tc.r, tc.si); got != tc.want {
			t.Errorf("%s: got %+v; want %+v", tc.name, got, tc.want)
		}
	}
}

// TestOverSPDY serves the demo through a spdymux listener and fetches the
// page and its tiles with spdymux's client: one session, every tile on a
// stream of its own, and the page saying so.
func TestOverSPDY(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := spdymux.NewListener(ln, &spdymux.Config{})
	srv := &http.Server{Handler: Handler()}
	spdymux.ConfigureServer(srv)
	go func() { _ = srv.Serve(sl) }()
	defer srv.Close()
	tr := &spdymux.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "http://" + ln.Addr().String()
	get := func(path string) string {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		return string(b)
	}
	page := get("/")
	if !strings.Contains(page, "This page came over <b>SPDY/3.1 session ") || !strings.Contains(page, "<b>one connection</b>") {
		t.Errorf("page does not say it came over a SPDY/3.1 stream:\n%s", page)
	}
	tiles := make([]string, 20)
	var wg sync.WaitGroup
	for i := range tiles {
		wg.Go(func() { tiles[i] = get(fmt.Sprintf("/tile/%d.svg", i)) })
	}
	wg.Wait()
	sessions, streams := map[string]bool{}, map[string]bool{}
	for i, svg := range tiles {
		j := strings.Index(svg, ">s")
		if j < 0 || !strings.Contains(svg, ">SPDY/3.1<") {
			t.Errorf("tile %d does not name SPDY/3.1, its session and stream:\n%s", i, svg)
			continue
		}
		line, _, _ := strings.Cut(svg[j+1:], "<") // "s1 · stream 3"
		f := strings.Fields(line)
		sessions[f[0]], streams[f[len(f)-1]] = true, true
	}
	if len(sessions) != 1 || len(streams) != len(tiles) {
		t.Errorf("tiles came over sessions %v, %d streams; want one session, %d streams", sessions, len(streams), len(tiles))
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

	for _, diagnostics := range []bool{false, true} {
		h, err := Files(dir, diagnostics)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		// Without diagnostics, the directory and nothing else.
		onlyDiag := func(status int) int {
			if diagnostics {
				return status
			}
			return 404
		}
		for _, tc := range []struct {
			method, path, want string
			status             int
		}{
			{"GET", "/", "<p>mine", 200},
			{"GET", "/hello", "shadowed\n", 200},
			{"GET", "/docs/a.txt", "a\n", 200},
			{"GET", "/docs/../docs/a.txt", "a\n", 200},
			{"GET", "/bytes/5", string(pattern(5)), onlyDiag(200)},
			{"GET", "/slow?ms=1", "slept 1 ms\n", onlyDiag(200)},
			{"GET", "/status/201", "201 Created\n", onlyDiag(201)},
			{"GET", "/missing.txt", "", 404},
		} {
			resp, got := fetch(t, srv, tc.method, tc.path, nil)
			if tc.status == 404 {
				tc.want = ""
			}
			if resp.StatusCode != tc.status || (tc.want != "" && string(got) != tc.want) {
				t.Errorf("diagnostics %v: %s %s: %d %q; want %d %q", diagnostics, tc.method, tc.path, resp.StatusCode, trim(got), tc.status, tc.want)
			}
		}
		resp, got := fetch(t, srv, "POST", "/echo", strings.NewReader("x"))
		if want := map[bool]int{false: 405, true: 200}[diagnostics]; resp.StatusCode != want {
			t.Errorf("diagnostics %v: POST /echo: %d %q; want %d", diagnostics, resp.StatusCode, trim(got), want)
		}
		srv.Close()
	}

	if _, err := Files(filepath.Join(dir, "nope"), false); err == nil {
		t.Error("Files of a missing directory: no error")
	}
	if _, err := Files(filepath.Join(dir, "hello"), false); err == nil {
		t.Error("Files of a regular file: no error")
	}
}
