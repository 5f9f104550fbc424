package h2interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
)

const (
	mib = 1 << 20
	// bigBody is the size of the large downloads and uploads.
	bigBody = 4 * mib
	// manyFields is the number of X-Many-NNN fields /headers answers with.
	manyFields = 100
)

// cookies are the set-cookie fields /headers answers with, in order; the
// last holds a comma, which joining the fields into one would break.
var cookies = []string{
	"a=1; Path=/",
	"b=2; Path=/; HttpOnly",
	"c=3; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure",
}

// earlyLink and finalLink are the Link fields of /early-hints: the first
// in the 103, both in the 200.
const (
	earlyLink = "</style.css>; rel=preload; as=style"
	finalLink = "</script.js>; rel=preload; as=script"
)

// A server is one http.Server on two spdymux listeners: TLS (h2 by ALPN,
// as well as SPDY and HTTP/1.1) and cleartext (h2c by prior knowledge).
type server struct {
	tlsURL   string // https://127.0.0.1:PORT
	h2cURL   string // http://127.0.0.1:PORT
	certFile string // PEM, for localhost and 127.0.0.1
	roots    *x509.CertPool
	tlsLn    *spdymux.Listener
	plainLn  *spdymux.Listener

	mu       sync.Mutex
	sessions map[uint64]string // session id → protocol, of every request
	other    int               // requests that came over no multiplexed stream
	gates    map[string]*gate
}

// A gate holds the requests of one group until n have arrived.
type gate struct {
	n, in int
	open  chan struct{}
}

// handlerMode runs the tests with the server in handler mode
// (Config.Handler): go test -args -handler-mode.
var handlerMode = flag.Bool("handler-mode", false, "serve streams with Config.Handler instead of secondary connections")

// handlerProto is the request protocol the handler sees for an HTTP/2
// stream: HTTP/1.1 on a secondary connection, HTTP/2.0 in handler mode.
func handlerProto() string {
	if *handlerMode {
		return "HTTP/2.0"
	}
	return "HTTP/1.1"
}

// startServer starts a server; it is shut down when the test ends, after
// checking that no session ended in error.
func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := interop.WriteSelfSignedCert(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &server{certFile: certFile, roots: roots, sessions: map[uint64]string{}, gates: map[string]*gate{}}
	h := s.handler()
	listen := func(cfg *spdymux.Config) *spdymux.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger = logger
		if *handlerMode {
			cfg.Handler = h
		}
		return spdymux.NewListener(ln, cfg)
	}
	s.tlsLn = listen(&spdymux.Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	s.plainLn = listen(&spdymux.Config{})
	s.tlsURL = "https://" + s.tlsLn.Addr().String()
	s.h2cURL = "http://" + s.plainLn.Addr().String()

	srv := &http.Server{Handler: h}
	spdymux.ConfigureServer(srv)
	done := make(chan struct{}, 2)
	for _, ln := range []net.Listener{s.tlsLn, s.plainLn} {
		go func() {
			srv.Serve(ln)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, ln := range []*spdymux.Listener{s.tlsLn, s.plainLn} {
			if err := ln.Shutdown(ctx); err != nil {
				t.Errorf("listener shutdown: %v", err)
			}
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		<-done
		<-done
		for name, ln := range map[string]*spdymux.Listener{"tls": s.tlsLn, "cleartext": s.plainLn} {
			st := ln.Stats()
			if st.SessionErrors != 0 || st.StreamErrors != 0 || st.RefusedStreams != 0 || st.RateLimited != 0 || st.WindowTimeouts != 0 {
				t.Errorf("%s listener: %+v; want no errors, refusals or timeouts", name, st)
			}
		}
		if t.Failed() {
			t.Logf("spdymux log:\n%s", logs.String())
		}
	})
	return s
}

// url returns the base URL of the server over h2 (TLS) or h2c.
func (s *server) url(h2c bool) string {
	if h2c {
		return s.h2cURL
	}
	return s.tlsURL
}

// protocol returns the protocol the handler is expected to see.
func protocol(h2c bool) string {
	if h2c {
		return spdymux.ProtoH2C
	}
	return spdymux.ProtoH2
}

// sessionsSeen returns the sessions that carried requests, by protocol,
// and the number of requests that came over none, and forgets them.
func (s *server) sessionsSeen() (map[uint64]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, n := s.sessions, s.other
	s.sessions, s.other = map[uint64]string{}, 0
	return m, n
}

// checkOneSession checks that every request since the last check came
// over one session of protocol proto, and forgets them.
func (s *server) checkOneSession(t *testing.T, proto string) {
	t.Helper()
	m, other := s.sessionsSeen()
	if len(m) != 1 || other != 0 {
		t.Errorf("requests came over sessions %v and %d over no stream; want one %s session", m, other, proto)
		return
	}
	for _, p := range m {
		if p != proto {
			t.Errorf("the session's protocol is %q; want %q", p, proto)
		}
	}
}

// handler serves:
//
//	GET|HEAD /bytes/N   N pattern bytes with content-length
//	GET /stream/N       N pattern bytes without content-length, flushed in pieces
//	POST /echo          the body streamed back; trailers X-Echo-Bytes and
//	                    X-Echo-Sha256 (declared), and X-Got-NAME for each
//	                    request trailer NAME (http.TrailerPrefix); header
//	                    X-Request-Content-Length is r.ContentLength
//	GET /trailers       a body and trailers X-Trailer-One (declared) and
//	                    X-Trailer-Two (http.TrailerPrefix)
//	GET /status/N       status N (204, 304 with an ETag, ...), no body
//	GET /headers        manyFields X-Many-NNN fields, the set-cookie list;
//	                    the body is the request header as JSON
//	GET /early-hints    103 with Link, then 200 with both Links
//	GET /proto          JSON: what the handler knows of its stream
//
// Every response carries X-Session and X-Stream-Protocol. A query
// gate=NAME&n=N holds the request before its handler until N requests of
// gate NAME have arrived (503 after 20 s).
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := size(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		writePattern(w, n, false)
	})
	mux.HandleFunc("GET /stream/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := size(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		writePattern(w, n, true)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		// Echo while the body arrives: without full duplex an HTTP/1.x
		// handler may not read the body once it has written.
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Request-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("Trailer", "X-Echo-Bytes, X-Echo-Sha256")
		w.WriteHeader(http.StatusOK)
		h := sha256.New()
		buf := make([]byte, 32<<10)
		var n int64
		for {
			k, err := r.Body.Read(buf)
			if k > 0 {
				n += int64(k)
				h.Write(buf[:k])
				if _, werr := w.Write(buf[:k]); werr != nil {
					return
				}
				_ = rc.Flush()
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		w.Header().Set("X-Echo-Bytes", strconv.FormatInt(n, 10))
		w.Header().Set("X-Echo-Sha256", hex.EncodeToString(h.Sum(nil)))
		for k, v := range r.Trailer {
			for _, x := range v {
				w.Header().Add(http.TrailerPrefix+"X-Got-"+k, x)
			}
		}
	})
	mux.HandleFunc("GET /trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Trailer-One")
		io.WriteString(w, "trailers follow\n")
		w.Header().Set("X-Trailer-One", "one")
		w.Header().Set(http.TrailerPrefix+"X-Trailer-Two", "two")
	})
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "bad status", http.StatusBadRequest)
			return
		}
		if code == http.StatusNotModified {
			w.Header().Set("ETag", `"v1"`)
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		for i := range manyFields {
			w.Header().Set(fmt.Sprintf("X-Many-%03d", i), fmt.Sprintf("value %d of %d", i, manyFields))
		}
		for _, c := range cookies {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	})
	mux.HandleFunc("GET /early-hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", earlyLink)
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Add("Link", finalLink)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "early hints sent\n")
	})
	mux.HandleFunc("GET /proto", func(w http.ResponseWriter, r *http.Request) {
		p := protoReport{Proto: r.Proto}
		if info, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
			p.Protocol, p.Session, p.Stream, p.HTTPProto = info.Protocol, info.SessionID, info.StreamID, info.HTTPProto()
			if info.TLS != nil {
				p.ALPN = info.TLS.NegotiatedProtocol
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := spdymux.StreamInfoFromContext(r.Context())
		s.mu.Lock()
		if ok {
			s.sessions[info.SessionID] = info.Protocol
			w.Header().Set("X-Session", strconv.FormatUint(info.SessionID, 10))
			w.Header().Set("X-Stream-Protocol", info.Protocol)
		} else {
			s.other++
			w.Header().Set("X-Stream-Protocol", "none")
		}
		s.mu.Unlock()
		if name := r.URL.Query().Get("gate"); name != "" {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			if !s.wait(r.Context(), name, n) {
				http.Error(w, "the gate did not open", http.StatusServiceUnavailable)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// protoReport is the body of /proto.
type protoReport struct {
	Protocol  string `json:"protocol"`  // StreamInfo.Protocol: h2 or h2c
	HTTPProto string `json:"httpProto"` // StreamInfo.HTTPProto()
	Proto     string `json:"proto"`     // r.Proto: what net/http parsed
	Session   uint64 `json:"session"`
	Stream    uint32 `json:"stream"`
	ALPN      string `json:"alpn"` // the connection's, over TLS
}

// wait holds the caller until n requests of gate name have arrived; it
// reports false if that takes 20 s or ctx ends first.
func (s *server) wait(ctx context.Context, name string, n int) bool {
	s.mu.Lock()
	g := s.gates[name]
	if g == nil {
		g = &gate{n: n, open: make(chan struct{})}
		s.gates[name] = g
	}
	g.in++
	if g.in == g.n {
		close(g.open)
	}
	s.mu.Unlock()
	select {
	case <-g.open:
		return true
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
	}
	return false
}

// size reads the {n} of the path, at most 64 MiB.
func size(w http.ResponseWriter, r *http.Request) (int, bool) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n > 64*mib {
		http.Error(w, "bad size", http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

// writePattern writes n pattern bytes in pieces, flushing each when flush.
func writePattern(w http.ResponseWriter, n int, flush bool) {
	const piece = 40000 // not a multiple of 251, nor of a frame size
	p := patternBytes(n)
	for off := 0; off < n; off += piece {
		if _, err := w.Write(p[off:min(off+piece, n)]); err != nil {
			return
		}
		if flush {
			http.NewResponseController(w).Flush()
		}
	}
}

// patternReader yields n pattern bytes.
type patternReader struct{ off, n int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := copy(b, patternBytes(p.n)[p.off:])
	p.off += k
	return k, nil
}

var (
	patternMu    sync.Mutex
	patternCache []byte
)

// patternBytes returns n pattern bytes (byte i is i mod 251); callers
// must not modify them.
func patternBytes(n int) []byte {
	patternMu.Lock()
	defer patternMu.Unlock()
	if len(patternCache) < n {
		patternCache = interop.PatternBytes(max(n, 2*bigBody))
	}
	return patternCache[:n:n]
}

// patternSHA returns the hex SHA-256 of n pattern bytes.
func patternSHA(n int) string { return interop.PatternSHA256(n) }

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// logBuffer collects spdymux's log for a failing test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sizes returns n body sizes from 0 up to max, varied so that they cross
// frame, window and buffer boundaries at different points.
func sizes(n, max int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (i*7919 + i*i*613) % (max + 1)
	}
	if n > 1 {
		out[n-1] = max
	}
	return out
}
