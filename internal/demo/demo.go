// Package demo is the site `spdymux serve` shows when it has neither -dir
// nor -backend: a page that makes multiplexing visible, and diagnostic
// endpoints for trying SPDY and HTTP/2 clients. It is a plain http.Handler;
// the stream facts it shows come from spdymux.StreamInfoFromContext, so it
// must be served by an http.Server configured with
// spdymux.ConfigureServer. It is not a test of the protocols: it only
// shows what the server saw.
//
// # The diagnostic endpoints
//
// These paths and answers are a stable contract that users and tests rely
// on. Every GET endpoint also answers HEAD (headers only); other methods get
// 405 with an Allow header; a malformed or out-of-range number gets 400.
//
//	GET /hello          "hello, world\n" (13 bytes), text/plain.
//	GET /bytes/N        N bytes (0 <= N <= MaxBytes, 1 GiB) where byte i is
//	                    i mod 251, application/octet-stream, with
//	                    Content-Length.
//	POST|PUT /echo      The request body, streamed back as it arrives, with
//	                    the request's Content-Type (default
//	                    application/octet-stream), and Content-Length when
//	                    the request had one.
//	GET /status/N       Status N for 200 <= N <= 599, with the body
//	                    "N Status Text\n" (no body for 204 and 304).
//	GET /slow?ms=N      Waits N milliseconds (default 1000, at most MaxSlow,
//	                    60 s) before the response header, then "slept N ms\n".
//	GET /headers        The request headers as a JSON object mapping each
//	                    canonical header name to its value, or to a list of
//	                    values when it came more than once; "Host" is
//	                    included. Over SPDY and HTTP/2, "Connection" is
//	                    left out: those clients do not send it; it is
//	                    added when the stream is handed over as HTTP/1.1.
//	GET /info           JSON describing the connection the request came
//	                    over: protocol, session and stream ids (SPDY or
//	                    HTTP/2 through spdymux), priority, remote address,
//	                    TLS.
//
// The index page "/" shows a grid of Tiles images, "/tile/N.svg" for
// 0 <= N < 1000, each drawn with the protocol, session and stream it was
// served over (or, over HTTP/1.x, the client's port, which tells its
// connection), so one can see them all arrive over one session. The page
// says what the browser sees: HTTP/2 streams of one connection, or
// HTTP/1.1 with one request at a time per connection, and that SPDY, which
// browsers no longer speak, is shown by `spdymux get`. Its response names
// every tile in X-Associated-Content, mod_spdy's push header: where push
// is on, the tiles are pushed with the page, and each says "push" instead
// of "stream".
//
// # Serving files
//
// Files serves a directory and nothing else: a GET or HEAD for a path that
// names a file or directory under DIR is served from DIR (a directory's
// index.html, or a listing); other paths get 404, other methods 405. Only
// when asked (`spdymux serve -dir DIR -demo-endpoints`) are the diagnostic
// endpoints served beside the files, for the paths no file answers; a file
// shadows an endpoint of the same path, and "/" is DIR's.
package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spdymux/spdymux"
)

// Limits of the diagnostic endpoints.
const (
	MaxBytes = 1 << 30          // largest N of /bytes/N
	MaxSlow  = 60 * time.Second // longest wait of /slow
	Tiles    = 100              // tiles on the index page
	maxTile  = 1000
)

// Hello is the body of /hello.
const Hello = "hello, world\n"

// PatternByte returns byte i of a /bytes/N body.
func PatternByte(i int64) byte { return byte(i % 251) }

// patternChunk holds the pattern from offset 0; its length is a multiple
// of 251, so consecutive copies continue the pattern. It is never written.
var patternChunk = func() []byte {
	b := make([]byte, 251*128)
	for i := range b {
		b[i] = PatternByte(int64(i))
	}
	return b
}()

// Handler returns the demo site: the index page, the tiles and the
// diagnostic endpoints. It is safe for concurrent use.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", index)
	mux.HandleFunc("GET /tile/{name}", tile)
	mux.HandleFunc("GET /hello", hello)
	mux.HandleFunc("GET /bytes/{n}", patternBytes)
	mux.HandleFunc("POST /echo", echo)
	mux.HandleFunc("PUT /echo", echo)
	mux.HandleFunc("GET /status/{n}", status)
	mux.HandleFunc("GET /slow", slow)
	mux.HandleFunc("GET /headers", headers)
	mux.HandleFunc("GET /info", info)
	return mux
}

// Files returns a handler that serves the files under dir and, with
// diagnostics, the diagnostic endpoints for the requests no file answers
// (see the package doc). It fails if dir is not a readable directory.
func Files(dir string, diagnostics bool) (http.Handler, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir) // no path, symlink or ".." escapes dir
	if err != nil {
		return nil, err
	}
	fsys := root.FS()
	if _, err := fs.ReadDir(fsys, "."); err != nil {
		root.Close()
		return nil, err
	}
	files := http.FileServerFS(fsys)
	if !diagnostics {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
				return
			}
			files.ServeHTTP(w, r)
		}), nil
	}
	site := Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
			if name == "" {
				name = "."
			}
			if _, err := fs.Stat(fsys, name); err == nil {
				files.ServeHTTP(w, r)
				return
			}
		}
		site.ServeHTTP(w, r)
	}), nil
}

// Conn describes the connection a request came over.
type Conn struct {
	// Protocol is "HTTP/2" for an HTTP/2 stream, "SPDY/3.1", "SPDY/3" or
	// "SPDY/2" for a SPDY stream, else the request's protocol, such as
	// "HTTP/1.1" (or "HTTP/2" from a server that speaks it itself).
	Protocol string `json:"protocol"`
	// Stream is true when the request came as a stream of a spdymux
	// session, SPDY or HTTP/2; SessionID, StreamID and Priority are
	// known then.
	Stream bool `json:"stream"`
	// SPDY is true when that stream is a SPDY one.
	SPDY      bool   `json:"spdy"`
	SessionID uint64 `json:"session_id,omitempty"`
	StreamID  uint32 `json:"stream_id,omitempty"`
	// Pushed is true for a stream the server pushed (spdymux's
	// StreamInfo.AssociatedStreamID is set).
	Pushed   bool   `json:"pushed,omitempty"`
	Priority uint8  `json:"priority"`
	Remote   string `json:"remote_addr"`
	TLS      bool   `json:"tls"`
	ALPN     string `json:"alpn,omitempty"`
}

// ConnOf returns the facts of the connection r came over.
func ConnOf(r *http.Request) Conn {
	si, _ := spdymux.StreamInfoFromContext(r.Context())
	return connOf(r, si)
}

// connOf returns the facts of r's connection, where si is the stream r came
// over, or nil for an HTTP/1.x connection.
func connOf(r *http.Request, si *spdymux.StreamInfo) Conn {
	c := Conn{Protocol: r.Proto, Remote: r.RemoteAddr}
	if r.ProtoMajor == 2 {
		c.Protocol = "HTTP/2" // r.Proto is "HTTP/2.0"
	}
	tls := r.TLS
	if si != nil {
		c.Protocol, c.Stream = streamProto(si), true
		c.SPDY = strings.HasPrefix(si.Protocol, "spdy/")
		c.SessionID, c.StreamID, c.Priority = si.SessionID, si.StreamID, si.Priority
		c.Pushed = si.AssociatedStreamID != 0
		tls = si.TLS
	}
	if tls != nil {
		c.TLS, c.ALPN = true, tls.NegotiatedProtocol
	}
	return c
}

// streamProto returns the protocol of a stream as people write it:
// "HTTP/2" for h2 and h2c, "SPDY/3.1", "SPDY/3" or "SPDY/2".
func streamProto(si *spdymux.StreamInfo) string {
	switch si.Protocol {
	case "h2", "h2c":
		return "HTTP/2"
	}
	return si.HTTPProto()
}

// String returns c in a few words, such as "SPDY/3.1 session 2 stream 7"
// or "HTTP/1.1 over TLS".
func (c Conn) String() string {
	if !c.Stream {
		if c.TLS {
			return c.Protocol + " over TLS"
		}
		return c.Protocol
	}
	return fmt.Sprintf("%s session %d stream %d", c.Protocol, c.SessionID, c.StreamID)
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(Hello)))
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, Hello)
	}
}

// number parses the path value name as a decimal in [lo, hi].
func number(r *http.Request, name string, lo, hi int64) (int64, error) {
	s := r.PathValue(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, lo, hi)
	}
	return n, nil
}

func badRequest(w http.ResponseWriter, err error) {
	http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
}

func patternBytes(w http.ResponseWriter, r *http.Request) {
	n, err := number(r, "n", 0, MaxBytes)
	if err != nil {
		badRequest(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	if r.Method == http.MethodHead {
		return
	}
	for n > 0 {
		k := min(n, int64(len(patternChunk)))
		if _, err := w.Write(patternChunk[:k]); err != nil {
			return
		}
		n -= k
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	// Echo while the body still arrives: without full duplex an HTTP/1.x
	// handler may not read the body once it has written.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

func status(w http.ResponseWriter, r *http.Request) {
	n, err := number(r, "n", 200, 599)
	if err != nil {
		badRequest(w, err)
		return
	}
	code := int(n)
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	body := fmt.Sprintf("%d %s\n", code, http.StatusText(code))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

func slow(w http.ResponseWriter, r *http.Request) {
	ms := int64(1000)
	if s := r.URL.Query().Get("ms"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			badRequest(w, fmt.Errorf("ms=%q is not a number of milliseconds", s))
			return
		}
		ms = min(n, MaxSlow.Milliseconds())
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "slept %d ms\n", ms)
}

func headers(w http.ResponseWriter, r *http.Request) {
	m := make(map[string]any, len(r.Header)+1)
	for k, v := range r.Header {
		if len(v) == 1 {
			m[k] = v[0]
		} else {
			m[k] = v
		}
	}
	m["Host"] = r.Host
	if _, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
		// SPDY and HTTP/2 have no Connection header (SPDY/3 §3.2.1,
		// RFC 9113 §8.2.2); the one here comes from the conversion of
		// the stream to HTTP/1.1.
		delete(m, "Connection")
	}
	writeJSON(w, r, m)
}

func info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, ConnOf(r))
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// errTileName is returned for a tile path that is not N.svg.
var errTileName = errors.New("a tile is named N.svg with N from 0 to 999")
