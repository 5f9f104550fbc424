package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/apachetest"
)

// The backend's faults, each against a real backend where one can make
// it (Apache httpd), otherwise a scripted TCP server; each through the
// whole stack, as `spdymux serve -backend` runs it: spdymux's listener
// (cleartext: h2c, SPDY/3.1, HTTP/1.1 told apart by the first bytes), an
// http.Server with ConfigureServer, and the gateway.

// stack is the gateway behind spdymux's listener on loopback.
type stack struct {
	g    *Gateway
	base string     // http://127.0.0.1:PORT
	log  *lockedBuf // what the gateway logged
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startStack(t *testing.T, backend string, cfg Config) *stack {
	t.Helper()
	s := &stack{log: &lockedBuf{}}
	cfg.Logger = slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s.g = newGateway(t, backend, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := spdymux.NewListener(ln, &spdymux.Config{Logger: discard()})
	front := &http.Server{Handler: s.g, ErrorLog: slog.NewLogLogger(discard().Handler(), slog.LevelError)}
	spdymux.ConfigureServer(front)
	served := make(chan struct{})
	go func() {
		defer close(served)
		front.Serve(sl)
	}()
	t.Cleanup(func() {
		front.Close()
		sl.Close()
		<-served
	})
	s.base = "http://" + ln.Addr().String()
	return s
}

// clients are one client of each protocol the stack serves; each keeps
// one connection (one session) for all its requests.
func clients(t *testing.T) map[string]*http.Client {
	t.Helper()
	h2c := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	spdy := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31}
	h1 := &http.Transport{}
	t.Cleanup(func() {
		h2c.CloseIdleConnections()
		spdy.CloseIdleConnections()
		h1.CloseIdleConnections()
	})
	return map[string]*http.Client{
		"h2c":      {Transport: h2c, Timeout: 20 * time.Second},
		"spdy/3.1": {Transport: spdy, Timeout: 20 * time.Second},
		"http/1.1": {Transport: h1, Timeout: 20 * time.Second},
	}
}

// scripted is a TCP server on loopback that reads each request head and
// answers with whatever answer returns for its path: raw bytes, after
// which it closes the connection.
func scripted(t *testing.T, answer func(path string) []byte) string {
	t.Helper()
	return scriptedRequests(t, func(r *http.Request) []byte { return answer(r.URL.Path) })
}

// scriptedRequests is scripted with the whole request (its body unread)
// given to answer.
func scriptedRequests(t *testing.T, answer func(r *http.Request) []byte) string {
	t.Helper()
	u, _ := scriptedCounted(t, answer)
	return u
}

// scriptedCounted is scriptedRequests that also counts the connections it
// has closed.
func scriptedCounted(t *testing.T, answer func(r *http.Request) []byte) (string, *atomic.Int64) {
	t.Helper()
	var closed atomic.Int64
	addr := serveLoopback(t, func(c net.Conn) {
		defer func() {
			c.Close()
			closed.Add(1)
		}()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		c.Write(answer(req))
	})
	return "http://" + addr, &closed
}

// serveLoopback serves each connection to a listener on loopback with
// serve, on a goroutine of its own, until the test ends, and returns the
// listener's address.
func serveLoopback(tb testing.TB, serve func(c net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(c) })
		}
	})
	return ln.Addr().String()
}

// pattern returns n bytes of the pattern, byte i being i mod 251.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// A backend that closes the connection in the middle of a body must not
// make a clean, shorter body at the client: the stream is reset (on
// HTTP/1.1 the connection is cut before the body is complete).
func TestBackendCutsResponse(t *testing.T) {
	chunked := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, p := range [][]byte{pattern(n / 2), pattern(n / 2)} {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		}
		return b.Bytes() // no last chunk: cut
	}
	backend := scripted(t, func(path string) []byte {
		switch path {
		case "/short":
			// Known length, cut within the first read of the answer.
			return append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"), pattern(2000)...)
		case "/long":
			// Known length, cut after more than the read-ahead buffer.
			return append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"), pattern(300000)...)
		case "/chunked":
			return chunked(200000)
		}
		return []byte("HTTP/1.1 204 No Content\r\n\r\n")
	})
	s := startStack(t, backend, Config{})
	for proto, c := range clients(t) {
		for _, path := range []string{"/short", "/long", "/chunked"} {
			t.Run(proto+path, func(t *testing.T) {
				resp, err := c.Get(s.base + path)
				if err != nil {
					t.Fatalf("the response head should arrive (the backend sent it): %v", err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatalf("%d: a body of %d bytes that ended cleanly; want it to fail, as the backend's did (it announced %d)",
						resp.StatusCode, len(body), resp.ContentLength)
				}
				checkReset(t, proto, err)
				t.Logf("%d bytes, then %v", len(body), err)
			})
		}
	}
	if !strings.Contains(s.log.String(), "response cut short") {
		t.Errorf("the gateway did not log the cut responses:\n%s", s.log)
	}
	checkIdle(t, s.g)
}

// checkReset fails unless err says the stream was reset by the server
// (INTERNAL_ERROR), or on HTTP/1.1 that the body ended before its end.
func checkReset(t *testing.T, proto string, err error) {
	t.Helper()
	var se http2.StreamError
	switch {
	case proto == "h2c" && errors.As(err, &se) && se.Code == http2.ErrCodeInternal:
	case proto == "spdy/3.1" && strings.Contains(err.Error(), "INTERNAL_ERROR"):
	case proto == "http/1.1" && errors.Is(err, io.ErrUnexpectedEOF):
	default:
		t.Errorf("body error %v (%T); want the stream reset with INTERNAL_ERROR (HTTP/1.1: unexpected EOF)", err, err)
	}
}

// checkIdle fails unless the gateway ends with no backend connection busy
// and no request waiting, and closes every connection when told to.
func checkIdle(t *testing.T, g *Gateway) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st := g.Stats()
		if st.Busy == 0 && st.Waiting == 0 && st.Sessions == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("gateway %+v; want no connection busy, no request waiting, no session", st)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.CloseIdleConnections()
	if st := g.Stats(); st.Open != 0 {
		t.Errorf("after CloseIdleConnections: %d backend connections open; want none", st.Open)
	}
}

// Apache's child dies in the middle of a 16 MiB file: the stream is
// reset, never a clean end.
func TestBackendCutsResponseApache(t *testing.T) {
	a := apachetest.Start(t)
	s := startStack(t, a.URL(), Config{})
	for proto, c := range clients(t) {
		t.Run(proto, func(t *testing.T) {
			resp, err := c.Get(s.base + apachetest.BigPath)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// Take some, then let the backend stall on us while its
			// children die.
			first := make([]byte, 100000)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatal(err)
			}
			a.KillChildren()
			rest, err := io.ReadAll(resp.Body)
			got := len(first) + len(rest)
			if err == nil {
				t.Fatalf("%d of %d bytes and a clean end after Apache's children were killed; want the stream reset", got, apachetest.BigSize)
			}
			checkReset(t, proto, err)
			t.Logf("%d of %d bytes, then %v", got, apachetest.BigSize, err)
		})
		// The next request is served by the new children.
		if code, body := fetch(t, c, s.base+apachetest.SmallPath(2)); code != 200 || body != apachetest.SmallBody(2) {
			t.Errorf("%s after the children died: %d %q; want 200", proto, code, body)
		}
	}
	checkIdle(t, s.g)
}

func fetch(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// A backend that answers something that is not an HTTP/1.1 response, or a
// response header over MaxResponseHeaderBytes, gets 502, and the gateway
// logs it; the next request is served.
func TestBackendBadResponse(t *testing.T) {
	const maxHead = 64 << 10
	answers := map[string]string{
		"/garbage":       "this is not HTTP\r\n\r\n",
		"/bad-status":    "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
		"/bad-version":   "HTTP/9.9 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/bad-header":    "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\nok",
		"/bad-length":    "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok",
		"/header-big":    "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 2*maxHead) + "\r\nContent-Length: 2\r\n\r\nok",
		"/header-many":   "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: aaaaaaaaaaaaaaaa\r\n", 8000) + "Content-Length: 2\r\n\r\nok",
		"/nothing":       "",
		"/half-a-header": "HTTP/1.1 200 OK\r\nContent-Len",
	}
	backend := scripted(t, func(path string) []byte {
		if a, ok := answers[path]; ok {
			return []byte(a)
		}
		return []byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
	})
	s := startStack(t, backend, Config{MaxResponseHeaderBytes: maxHead})
	for proto, c := range clients(t) {
		for path := range answers {
			t.Run(proto+path, func(t *testing.T) {
				code, body := fetch(t, c, s.base+path)
				if code != http.StatusBadGateway || !strings.Contains(body, "backend is unavailable") {
					t.Errorf("%d %.60q; want 502 with a short explanation", code, body)
				}
			})
		}
		if code, body := fetch(t, c, s.base+"/good"); code != 200 || body != "good" {
			t.Errorf("%s: a good answer after the bad ones: %d %q; want 200 good", proto, code, body)
		}
	}
	log := s.log.String()
	for path := range answers {
		if !strings.Contains(log, "path="+path) {
			t.Errorf("the gateway logged nothing for %s:\n%s", path, log)
		}
	}
	if !strings.Contains(log, "the response header is over") {
		t.Errorf("the log does not say the header was too large:\n%s", log)
	}
	checkIdle(t, s.g)
}

// Apache closes a kept-alive connection after KeepAliveTimeout; requests
// that come just as it does, or after, must not see 502: the gateway does
// not use a connection Apache has closed, and an idempotent request that
// fails on a kept-alive connection before any answer goes again on a new
// one.
func TestBackendKeepAliveTimeout(t *testing.T) {
	const keepAlive = 300 * time.Millisecond
	a := apachetest.StartWith(t, apachetest.Options{KeepAliveTimeout: keepAlive})
	s := startStack(t, a.URL(), Config{})
	cs := clients(t)
	codes := map[int]int{}
	var errs []string
	// One request at a time, each after the connection has been idle for
	// about the keep-alive timeout: a little longer (Apache has closed
	// it), just as long (Apache is closing it), a little shorter.
	pauses := []time.Duration{keepAlive + 50*time.Millisecond, keepAlive, keepAlive + 10*time.Millisecond,
		keepAlive - 10*time.Millisecond, keepAlive + 100*time.Millisecond, keepAlive + 5*time.Millisecond}
	const rounds = 6
	i := 0
	for proto, c := range cs {
		for r := range rounds {
			i++
			time.Sleep(pauses[i%len(pauses)])
			resp, err := c.Get(s.base + apachetest.SmallPath(i))
			if err != nil {
				errs = append(errs, proto+": "+err.Error())
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == 200 && string(b) != apachetest.SmallBody(i) {
				errs = append(errs, fmt.Sprintf("%s round %d: body %q", proto, r, b))
			}
		}
	}
	st := s.g.Stats()
	t.Logf("statuses %v; gateway: %d dialed, %d reused, %d found closed when taken, %d retried", codes, st.Dials, st.Reuses, st.Stale, st.Retries)
	if len(errs) > 0 || len(codes) != 1 || codes[200] != rounds*len(cs) {
		t.Errorf("statuses %v, errors %q; want %d × 200: a request that meets Apache's keep-alive timeout must go again on a new connection", codes, errs, rounds*len(cs))
	}
	if st.Stale+st.Retries == 0 {
		t.Errorf("no connection was found closed by Apache; the test did not meet the keep-alive timeout")
	}
	checkIdle(t, s.g)
}

// Apache stopped (SIGSTOP) for a while, then resumed: meanwhile every
// request gets 504 within ResponseHeaderTimeout, waiting for a connection
// included; then full service; afterwards no connection busy, no request
// waiting, no goroutine left.
func TestBackendPaused(t *testing.T) {
	const (
		timeout = 500 * time.Millisecond
		pause   = 3 * time.Second
		slack   = 750 * time.Millisecond // a loaded machine under the race detector
	)
	a := apachetest.Start(t)
	// Few connections, so that requests also wait for one while Apache
	// sleeps.
	s := startStack(t, a.URL(), Config{ResponseHeaderTimeout: timeout, MaxConns: 4})
	cs := clients(t)
	for proto, c := range cs {
		if code, _ := fetch(t, c, s.base+apachetest.SmallPath(1)); code != 200 {
			t.Fatalf("%s before the pause: %d", proto, code)
		}
	}
	baseG := runtime.NumGoroutine()

	type result struct {
		proto string
		code  int
		d     time.Duration
		err   error
	}
	run := func(until time.Time, each func(result)) {
		var wg sync.WaitGroup
		for proto, c := range cs {
			for range 3 {
				wg.Go(func() {
					for time.Now().Before(until) {
						start := time.Now()
						resp, err := c.Get(s.base + apachetest.SmallPath(2))
						r := result{proto: proto, err: err, d: time.Since(start)}
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							r.code = resp.StatusCode
						}
						each(r)
					}
				})
			}
		}
		wg.Wait()
	}

	a.Pause()
	paused := time.Now()
	var mu sync.Mutex
	var during []result
	run(paused.Add(pause), func(r result) {
		mu.Lock()
		during = append(during, r)
		mu.Unlock()
	})
	a.Resume()
	var slowest time.Duration
	for _, r := range during {
		slowest = max(slowest, r.d)
		if r.err != nil || r.code != http.StatusGatewayTimeout || r.d > timeout+slack {
			t.Errorf("%s with Apache stopped: status %d, error %v, after %v; want 504 within ResponseHeaderTimeout %v (+%v)",
				r.proto, r.code, r.err, r.d.Round(time.Millisecond), timeout, slack)
		}
	}
	t.Logf("%d requests while Apache was stopped for %v, each 504, the slowest after %v", len(during), pause, slowest.Round(time.Millisecond))

	// Apache has a backlog to drop; then every request is served.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := fetch(t, cs["h2c"], s.base+apachetest.SmallPath(3))
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 200 within 10s of Apache's resuming (last %d)", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resumed := time.Since(paused) - pause
	var after []result
	run(time.Now().Add(time.Second), func(r result) {
		mu.Lock()
		after = append(after, r)
		mu.Unlock()
	})
	for _, r := range after {
		if r.err != nil || r.code != 200 {
			t.Errorf("%s after Apache resumed: status %d, error %v; want 200", r.proto, r.code, r.err)
		}
	}
	t.Logf("full service %v after Apache resumed: %d requests, all 200", resumed.Round(time.Millisecond), len(after))
	checkIdle(t, s.g)
	for _, c := range cs {
		c.CloseIdleConnections()
	}
	deadline = time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseG && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseG {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the pause; want at most %d, as before it:\n%s", n, baseG, buf[:runtime.Stack(buf, true)])
	}
	if got := strconv.Itoa(len(during)); got == "0" {
		t.Error("no request was made while Apache was stopped")
	}
}

// A backend that closes every connection after its answer without saying
// so (no Connection: close): a GET on a connection back from its last
// exchange a moment ago is not checked before use, meets the close, and
// goes again on a new connection; a POST, which could not go again, gets
// the connection checked first. Every request gets its answer.
func TestBackendClosesUnannounced(t *testing.T) {
	backend, closed := scriptedCounted(t, func(req *http.Request) []byte {
		n, _ := io.Copy(io.Discard, req.Body)
		body := fmt.Sprintf("%s %d", req.Method, n)
		return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	s := startStack(t, backend, Config{})
	c := clients(t)["h2c"]
	for i := range 20 {
		// The backend closes a connection right after its answer, but
		// on a loaded machine its goroutine may get to the close after
		// the next request has taken the connection: a race no client
		// can win for a request it may not send again (RFC 9112 §9.3.1).
		// The test is of a close that came first.
		for deadline := time.Now().Add(5 * time.Second); closed.Load() < int64(i); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("request %d: the backend closed %d connections; want %d", i, closed.Load(), i)
			}
		}
		var resp *http.Response
		var err error
		want := "GET 0"
		if i%2 == 1 {
			resp, err = c.Post(s.base+"/p", "text/plain", strings.NewReader("hello"))
			want = "POST 5"
		} else {
			resp, err = c.Get(s.base + "/g")
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q; log:\n%s", i, resp.StatusCode, b, want, s.log)
		}
	}
	st := s.g.Stats()
	t.Logf("gateway: %d dialed, %d reused, %d found closed when taken, %d retried", st.Dials, st.Reuses, st.Stale, st.Retries)
	if st.Stale < 10 {
		t.Errorf("%d connections found closed when taken, want one before each of the 10 POSTs", st.Stale)
	}
	if st.Retries == 0 {
		t.Errorf("no GET went again: each was checked before use")
	}
	checkIdle(t, s.g)
}
