package spdymux_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
	"github.com/spdymux/spdymux/spdy"
)

var allProtos = []string{spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2}

// clientServer is a spdymux Listener with an http.Server on loopback, for
// the Transport to talk to.
type clientServer struct {
	l        *spdymux.Listener
	srv      *http.Server
	url      string // scheme://127.0.0.1:port
	cert     *x509.Certificate
	canceled chan string // paths whose handler saw its context end
}

// certificate makes a self-signed certificate for 127.0.0.1.
func certificate(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	certFile, keyFile := interop.WriteSelfSignedCert(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert, leaf
}

// startClientServer serves clientHandler over spdymux: TLS when useTLS,
// else cleartext, where version 3 frames mean proto (spdy/3.1 or spdy/3).
func startClientServer(t *testing.T, useTLS bool, proto string) *clientServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, useTLS, proto)
}

func serveOn(t *testing.T, ln net.Listener, useTLS bool, proto string) *clientServer {
	t.Helper()
	cs := &clientServer{canceled: make(chan string, 16)}
	cfg := &spdymux.Config{Logger: quietLogger()}
	scheme := "http"
	if useTLS {
		cert, leaf := certificate(t)
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		cs.cert = leaf
		scheme = "https"
	} else if proto == spdymux.ProtoSPDY3 {
		cfg.CleartextV3 = spdymux.ProtoSPDY3
	}
	cs.l = spdymux.NewListener(ln, cfg)
	cs.srv = &http.Server{Handler: cs.handler(), ErrorLog: nil}
	spdymux.ConfigureServer(cs.srv)
	go cs.srv.Serve(cs.l)
	t.Cleanup(func() { cs.srv.Close() })
	cs.url = scheme + "://" + ln.Addr().String()
	return cs
}

// transport returns a Transport for cs that offers (or speaks) proto.
func (cs *clientServer) transport(proto string) *spdymux.Transport {
	tr := &spdymux.Transport{PlainProtocol: proto, Protocols: []string{proto}}
	if cs.cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(cs.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return tr
}

func (cs *clientServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", testHandler())
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		info, _ := spdymux.StreamInfoFromContext(r.Context())
		json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	mux.HandleFunc("/bigheader", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("x", 70000))
		io.WriteString(w, "too big for SPDY/2\n")
	})
	// /block sends a first chunk, then waits for the request to end.
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("head") != "no" {
			w.Write([]byte("first chunk\n"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			cs.canceled <- r.URL.Path
		case <-time.After(10 * time.Second):
		}
	})
	return mux
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func patternSum(n int) string { return interop.PatternSHA256(n) }

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func get(t *testing.T, c *http.Client, ctx context.Context, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, b
}

// forModes runs f for every protocol, over TLS and cleartext.
func forModes(t *testing.T, f func(t *testing.T, proto string, useTLS bool)) {
	for _, proto := range allProtos {
		for _, useTLS := range []bool{false, true} {
			name := proto + "/plain"
			if useTLS {
				name = proto + "/tls"
			}
			t.Run(name, func(t *testing.T) { f(t, proto, useTLS) })
		}
	}
}

func TestTransportRequests(t *testing.T) {
	forModes(t, func(t *testing.T, proto string, useTLS bool) {
		cs := startClientServer(t, useTLS, proto)
		tr := cs.transport(proto)
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		ctx := context.Background()

		resp, body := get(t, c, ctx, cs.url+"/hello")
		if resp.StatusCode != 200 || string(body) != "hello, world\n" {
			t.Errorf("/hello: got %d %q; want 200 %q", resp.StatusCode, body, "hello, world\n")
		}
		wantProto := map[string]string{spdymux.ProtoSPDY31: "SPDY/3.1", spdymux.ProtoSPDY3: "SPDY/3", spdymux.ProtoSPDY2: "SPDY/2"}[proto]
		if resp.Proto != wantProto {
			t.Errorf("Proto: got %q; want %q", resp.Proto, wantProto)
		}
		if useTLS && (resp.TLS == nil || resp.TLS.NegotiatedProtocol != proto) {
			t.Errorf("TLS state: got %+v; want ALPN %s", resp.TLS, proto)
		}

		// Request headers: repeated values, lower case, Host.
		req, _ := http.NewRequest("GET", cs.url+"/headers", nil)
		req.Header.Add("X-Multi", "one")
		req.Header.Add("X-Multi", "two")
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "dropped")
		req.Host = "example.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var seen map[string][]string
		if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := seen["x-multi"]; len(got) != 2 || got[0] != "one" || got[1] != "two" {
			t.Errorf("x-multi at the server: got %q; want [one two]", got)
		}
		if got := seen["host"]; len(got) != 1 || got[0] != "example.test" {
			t.Errorf("host at the server: got %q; want example.test", got)
		}
		if got, ok := seen["x-hop"]; ok {
			t.Errorf("x-hop reached the server: %q", got)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
			t.Errorf("Set-Cookie: got %q; want [a=1 b=2]", got)
		}

		// Bodiless responses.
		req, _ = http.NewRequest("HEAD", cs.url+"/bytes/1000", nil)
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != 1000 || len(b) != 0 {
			t.Errorf("HEAD: got %d, length %d, %d body bytes; want 200, 1000, 0", resp.StatusCode, resp.ContentLength, len(b))
		}
		for _, code := range []int{204, 304} {
			resp, b := get(t, c, ctx, cs.url+"/status/"+strconv.Itoa(code))
			if resp.StatusCode != code || len(b) != 0 {
				t.Errorf("/status/%d: got %d with %d body bytes", code, resp.StatusCode, len(b))
			}
		}
		resp, _ = get(t, c, ctx, cs.url+"/status/418")
		if resp.StatusCode != 418 || resp.Status != "418 I'm a teapot" {
			t.Errorf("/status/418: got %q", resp.Status)
		}

		// Bodies of known and unknown length.
		for _, n := range []int{0, 1, 100000} {
			for _, known := range []bool{true, false} {
				var body io.Reader = bytes.NewReader(interop.PatternBytes(n))
				if !known {
					body = io.MultiReader(body) // hides the length
				}
				req, _ := http.NewRequest("POST", cs.url+"/echo", body)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("POST %d bytes (length known %v): %v", n, known, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || sum(b) != patternSum(n) {
					t.Errorf("POST %d bytes (length known %v): echo got %d bytes, err %v", n, known, len(b), err)
				}
			}
		}
		d, err := tr.Ping(ctx, cs.url)
		if err != nil || d <= 0 {
			t.Errorf("Ping: got %v, %v", d, err)
		}
		if st := cs.l.Stats(); st.Sessions != 1 {
			t.Errorf("sessions at the server: got %d; want 1", st.Sessions)
		}
	})
}

func TestTransportConcurrentOneSession(t *testing.T) {
	for _, proto := range allProtos {
		t.Run(proto, func(t *testing.T) {
			cs := startClientServer(t, true, proto)
			tr := cs.transport(proto)
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			// More than the server's 100 streams at once: the first ones
			// may go out before its SETTINGS arrive, and are refused and
			// sent again.
			const n = 250
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					size := i * 997
					resp, err := c.Get(fmt.Sprintf("%s/bytes/%d", cs.url, size))
					if err != nil {
						errs <- err
						return
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || sum(b) != patternSum(size) {
						errs <- fmt.Errorf("/bytes/%d: got %d bytes, %v", size, len(b), err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if st := cs.l.Stats(); st.Conns != 1 || st.Sessions != 1 {
				t.Errorf("server saw %d connections, %d sessions; want 1 and 1", st.Conns, st.Sessions)
			}
		})
	}
}

// TestTransportLargeBodies moves 16 MiB each way through the flow-control
// windows, plain and TLS.
func TestTransportLargeBodies(t *testing.T) {
	const size = 16 << 20
	pattern := interop.PatternBytes(size)
	forModes(t, func(t *testing.T, proto string, useTLS bool) {
		cs := startClientServer(t, useTLS, proto)
		tr := cs.transport(proto)
		// The smallest windows SPDY/3.1 starts with, so that the
		// download needs many WINDOW_UPDATEs.
		tr.Config = &spdymux.Config{InitialWindowSize: 64 << 10, SessionWindowSize: 64 << 10}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		resp, b := get(t, c, context.Background(), fmt.Sprintf("%s/bytes/%d", cs.url, size))
		if resp.StatusCode != 200 || sum(b) != patternSum(size) {
			t.Errorf("download: got %d, %d bytes; want 200, %d exact", resp.StatusCode, len(b), size)
		}
		resp, err := c.Post(cs.url+"/sink", "application/octet-stream", bytes.NewReader(pattern))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %s", size, patternSum(size)); string(b) != want {
			t.Errorf("upload: server got %q; want %q", b, want)
		}
	})
}

func TestTransportCancel(t *testing.T) {
	for _, proto := range allProtos {
		t.Run(proto, func(t *testing.T) {
			cs := startClientServer(t, false, proto)
			tr := cs.transport(proto)
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}

			// Cancelled mid-body: Read fails, the handler's context ends.
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", cs.url+"/block", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "first chunk\n" {
				t.Fatalf("first read: got %q, %v", buf[:n], err)
			}
			cancel()
			if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
				t.Errorf("read after cancel: got %v; want context.Canceled", err)
			}
			resp.Body.Close()
			waitCanceled(t, cs, "/block")

			// Body closed mid-body: the same.
			resp, err = c.Get(cs.url + "/block")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Read(buf)
			resp.Body.Close()
			if _, err := resp.Body.Read(buf); err == nil {
				t.Errorf("read after Close: no error")
			}
			waitCanceled(t, cs, "/block")

			// Cancelled before the reply.
			ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			req, _ = http.NewRequestWithContext(ctx, "GET", cs.url+"/block?head=no", nil)
			if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("request timed out before its reply: got %v; want context.DeadlineExceeded", err)
			}
			waitCanceled(t, cs, "/block")

			// The session is still good.
			resp, b := get(t, c, context.Background(), cs.url+"/hello")
			if resp.StatusCode != 200 || string(b) != "hello, world\n" {
				t.Errorf("after the cancellations: got %d %q", resp.StatusCode, b)
			}
			if st := cs.l.Stats(); st.Sessions != 1 {
				t.Errorf("sessions: got %d; want 1", st.Sessions)
			}
		})
	}
}

func waitCanceled(t *testing.T, cs *clientServer, path string) {
	t.Helper()
	select {
	case p := <-cs.canceled:
		if p != path {
			t.Errorf("cancelled handler: got %s; want %s", p, path)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the handler of %s never saw its context end", path)
	}
}

func TestTransportPriority(t *testing.T) {
	for _, proto := range allProtos {
		t.Run(proto, func(t *testing.T) {
			cs := startClientServer(t, false, proto)
			tr := cs.transport(proto)
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for _, tc := range []struct {
				set      bool
				p        uint8
				want     uint8
				wantV2   uint8
				wantName string
			}{
				{set: false, want: spdymux.DefaultPriority, wantV2: spdymux.DefaultPriorityV2},
				{set: true, p: 0, want: 0, wantV2: 0},
				{set: true, p: 5, want: 5, wantV2: 2},
				{set: true, p: 7, want: 7, wantV2: 3},
				{set: true, p: 200, want: 7, wantV2: 3},
			} {
				ctx := context.Background()
				if tc.set {
					ctx = spdymux.WithPriority(ctx, tc.p)
				}
				_, b := get(t, c, ctx, cs.url+"/info")
				var info struct {
					Protocol string
					Priority uint8
				}
				if err := json.Unmarshal(b, &info); err != nil {
					t.Fatalf("/info %q: %v", b, err)
				}
				want := tc.want
				if proto == spdymux.ProtoSPDY2 {
					want = tc.wantV2
				}
				if info.Priority != want || info.Protocol != proto {
					t.Errorf("priority %d (set %v): server saw %d over %s; want %d over %s", tc.p, tc.set, info.Priority, info.Protocol, want, proto)
				}
			}
		})
	}
}

// switchListener hands the connections of one TCP listener to whichever
// listener is current, so that a second spdymux Listener can take over the
// port after the first one's Shutdown.
type switchListener struct {
	inner net.Listener
	mu    sync.Mutex
	cur   *chanListener
}

type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

func (s *switchListener) next() *chanListener {
	l := &chanListener{addr: s.inner.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Lock()
	s.cur = l
	s.mu.Unlock()
	return l
}

func (s *switchListener) run() {
	for {
		c, err := s.inner.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		l := s.cur
		s.mu.Unlock()
		select {
		case l.ch <- c:
		case <-l.done:
			c.Close()
		}
	}
}

func TestTransportGoAway(t *testing.T) {
	for _, proto := range allProtos {
		t.Run(proto, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sw := &switchListener{inner: ln}
			first := serveOn(t, sw.next(), false, proto)
			go sw.run()
			tr := first.transport(proto)
			goAway := make(chan struct{}, 1)
			tr.Trace = func(e spdymux.FrameEvent) {
				if !e.Out && e.Type == spdy.TypeGoAway {
					goAway <- struct{}{}
				}
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}

			// A response in progress on the first session...
			resp, err := c.Get(first.url + "/block")
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "first chunk\n" {
				t.Fatalf("first read: got %q, %v", buf[:n], err)
			}
			// ...while its server goes away.
			second := serveOn(t, sw.next(), false, proto)
			shutdown := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				shutdown <- first.l.Shutdown(ctx)
			}()
			select {
			case <-goAway:
			case <-time.After(5 * time.Second):
				t.Fatal("no GOAWAY from the first server")
			}
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					resp, b := get(t, c, context.Background(), first.url+"/hello")
					if resp.StatusCode != 200 || string(b) != "hello, world\n" {
						t.Errorf("after GOAWAY: got %d %q", resp.StatusCode, b)
					}
				})
			}
			wg.Wait()
			if st := second.l.Stats(); st.Sessions != 1 || st.Streams != 10 {
				t.Errorf("second server: got %d sessions, %d streams; want 1, 10", st.Sessions, st.Streams)
			}
			// The old session finishes its stream, then closes.
			resp.Body.Close()
			waitCanceled(t, first, "/block")
			if err := <-shutdown; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if st := first.l.Stats(); st.Sessions != 1 || st.Streams != 1 {
				t.Errorf("first server: got %d sessions, %d streams; want 1, 1", st.Sessions, st.Streams)
			}
		})
	}
}

func TestTransportCloseIdleAndDialOnce(t *testing.T) {
	cs := startClientServer(t, true, spdymux.ProtoSPDY31)
	tr := cs.transport(spdymux.ProtoSPDY31)
	c := &http.Client{Transport: tr}
	var dials atomic.Int64
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		time.Sleep(50 * time.Millisecond) // let the first requests meet at the dial
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			resp, err := c.Get(cs.url + "/hello")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if got := dials.Load(); got != 1 {
		t.Errorf("dials for 10 concurrent first requests: got %d; want 1", got)
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for cs.l.Stats().ActiveSessions != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := cs.l.Stats().ActiveSessions; got != 0 {
		t.Errorf("server sessions after CloseIdleConnections: got %d; want 0", got)
	}
	// The next request dials again, with httptrace reporting it.
	var connects, tlsDone, firstByte bool
	trace := &httptrace.ClientTrace{
		ConnectDone:          func(string, string, error) { connects = true },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { tlsDone = true },
		GotFirstResponseByte: func() { firstByte = true },
	}
	_, b := get(t, c, httptrace.WithClientTrace(context.Background(), trace), cs.url+"/hello")
	if string(b) != "hello, world\n" || dials.Load() != 2 {
		t.Errorf("after CloseIdleConnections: got %q with %d dials; want hello and 2", b, dials.Load())
	}
	if !connects || !tlsDone || !firstByte {
		t.Errorf("httptrace: connect %v, TLS %v, first byte %v; want all", connects, tlsDone, firstByte)
	}
	tr.CloseIdleConnections()
}

func TestTransportErrors(t *testing.T) {
	cs := startClientServer(t, true, spdymux.ProtoSPDY31)
	c := &http.Client{Transport: &spdymux.Transport{Protocols: []string{"http/1.1"}, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, err := c.Get(cs.url + "/hello"); err == nil || !strings.Contains(err.Error(), "ALPN") {
		t.Errorf("server without an offered SPDY: got %v; want an ALPN error", err)
	}
	c = &http.Client{Transport: &spdymux.Transport{}}
	if _, err := c.Get(cs.url + "/hello"); err == nil {
		t.Errorf("untrusted certificate: no error")
	}
	if _, err := c.Get("ftp://127.0.0.1/"); err == nil {
		t.Errorf("ftp URL: no error")
	}
	req, _ := http.NewRequest("GET", cs.url, nil)
	req.Header.Set("X-Bad", "a\x00b")
	if _, err := c.Do(req); err == nil {
		t.Errorf("NUL in a header value: no error")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := c.Get("http://" + addr + "/"); err == nil {
		t.Errorf("connection refused: no error")
	}
}

// TestTransportBadReply answers with a SYN_REPLY that has no status: the
// request fails and the session goes on.
func TestTransportBadReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
			syn, ok := f.(*spdy.SynStreamFrame)
			if !ok {
				continue
			}
			var path string
			for _, h := range syn.Header {
				if h.Name == ":path" {
					path = h.Value
				}
			}
			header := []spdy.HeaderField{{Name: ":version", Value: "HTTP/1.1"}}
			if path == "/good" {
				header = append(header, spdy.HeaderField{Name: ":status", Value: "200"})
			}
			fr.WriteSynReply(&spdy.SynReplyFrame{Version: spdy.V3, StreamID: syn.StreamID, Flags: spdy.FlagFin, Header: header})
		}
	}()
	tr := &spdymux.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	base := "http://" + ln.Addr().String()
	if resp, err := c.Get(base + "/bad"); err == nil {
		resp.Body.Close()
		t.Errorf("reply without :status: got %d; want an error", resp.StatusCode)
	}
	resp, err := c.Get(base + "/good")
	if err != nil {
		t.Fatalf("after a bad reply: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 0 || resp.Status != "200 OK" {
		t.Errorf("/good: got %q with %d body bytes; want 200 OK, empty", resp.Status, len(b))
	}
}

// TestTransportNodeServer checks the client against node's spdy-transport
// server, which nobody here wrote.
func TestTransportNodeServer(t *testing.T) {
	interop.EnsureNode(t)
	const big = 16 << 20
	pattern := interop.PatternBytes(big)
	for _, proto := range allProtos {
		for _, useTLS := range []bool{true, false} {
			name := proto + "/plain"
			if useTLS {
				name = proto + "/tls"
			}
			t.Run(name, func(t *testing.T) {
				port := interop.StartNodeServer(t, useTLS, proto, "", "")
				tr := &spdymux.Transport{PlainProtocol: proto, Protocols: []string{proto}, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
				// spdy-transport forgets a stream once it has ended both
				// sides, even with DATA still queued, and answers a
				// WINDOW_UPDATE for it with RST_STREAM INVALID_STREAM,
				// which cuts off the rest of the response. A window no
				// response here fills keeps WINDOW_UPDATE out of it; the
				// tests against a Listener cover small windows.
				tr.Config = &spdymux.Config{InitialWindowSize: 1 << 30, SessionWindowSize: 1 << 30}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				base := fmt.Sprintf("http://127.0.0.1:%d", port)
				if useTLS {
					base = fmt.Sprintf("https://127.0.0.1:%d", port)
				}
				ctx := context.Background()
				resp, b := get(t, c, ctx, base+"/hello")
				if resp.StatusCode != 200 || string(b) != "hello, world\n" {
					t.Errorf("/hello: got %d %q", resp.StatusCode, b)
				}
				var wg sync.WaitGroup
				for i := range 40 {
					wg.Go(func() {
						size := i * 6007
						resp, err := c.Get(fmt.Sprintf("%s/bytes/%d", base, size))
						if err != nil {
							t.Error(err)
							return
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err != nil || sum(b) != patternSum(size) {
							t.Errorf("/bytes/%d: got %d bytes, %v", size, len(b), err)
						}
					})
				}
				wg.Wait()
				_, b = get(t, c, ctx, fmt.Sprintf("%s/bytes/%d", base, big))
				if sum(b) != patternSum(big) {
					t.Errorf("16 MiB download: got %d bytes", len(b))
				}
				resp, err := c.Post(base+"/echo", "application/octet-stream", bytes.NewReader(pattern))
				if err != nil {
					t.Fatal(err)
				}
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || sum(b) != patternSum(big) {
					t.Errorf("16 MiB echo: got %d bytes, %v", len(b), err)
				}
				req, _ := http.NewRequest("HEAD", base+"/bytes/1000", nil)
				resp, err = c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.ContentLength != 1000 {
					t.Errorf("HEAD: got %d, length %d", resp.StatusCode, resp.ContentLength)
				}
				for _, code := range []int{204, 304, 404} {
					resp, _ := get(t, c, ctx, fmt.Sprintf("%s/status/%d", base, code))
					if resp.StatusCode != code {
						t.Errorf("/status/%d: got %d", code, resp.StatusCode)
					}
				}
				req, _ = http.NewRequest("GET", base+"/headers", nil)
				req.Header.Add("X-Multi", "one")
				req.Header.Add("X-Multi", "two")
				resp, err = c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				var seen map[string]any
				if err := json.Unmarshal(b, &seen); err != nil {
					t.Fatalf("/headers %q: %v", b, err)
				}
				if got := fmt.Sprint(seen["x-multi"]); got != "one, two" && got != "[one two]" {
					t.Errorf("x-multi at node: got %q", got)
				}
				// A reset mid-download leaves the session usable.
				resp, err = c.Get(fmt.Sprintf("%s/bytes/%d", base, big))
				if err != nil {
					t.Fatal(err)
				}
				io.ReadFull(resp.Body, make([]byte, 100<<10))
				resp.Body.Close()
				if d, err := tr.Ping(ctx, base); err != nil || d <= 0 {
					t.Errorf("Ping: got %v, %v", d, err)
				}
				_, b = get(t, c, ctx, base+"/bytes/300000")
				if sum(b) != patternSum(300000) {
					t.Errorf("after a reset: got %d bytes", len(b))
				}
			})
		}
	}
}

// Requests keep flowing while their server shuts down: the streams it
// took finish, the ones above its GOAWAY's last-good-stream-id are
// retried, and new ones go to the server that takes the port over. No
// request may fail.
func TestTransportShutdownUnderLoad(t *testing.T) {
	for _, proto := range allProtos {
		t.Run(proto, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sw := &switchListener{inner: ln}
			first := serveOn(t, sw.next(), false, proto)
			go sw.run()
			tr := first.transport(proto)
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}

			stop := make(chan struct{})
			var wg sync.WaitGroup
			var done atomic.Int64
			for range 16 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						resp, err := c.Get(first.url + "/hello")
						if err != nil {
							t.Errorf("request failed across the shutdown: %v", err)
							return
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err != nil || resp.StatusCode != 200 || string(b) != "hello, world\n" {
							t.Errorf("got %d %q, %v", resp.StatusCode, b, err)
							return
						}
						done.Add(1)
					}
				})
			}
			time.Sleep(200 * time.Millisecond)
			serveOn(t, sw.next(), false, proto)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := first.l.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			cancel()
			time.Sleep(200 * time.Millisecond)
			close(stop)
			wg.Wait()
			t.Logf("%d requests, %d streams served by the first server", done.Load(), first.l.Stats().Streams)
		})
	}
}

// A receiver sends no stream WINDOW_UPDATE once the window covers the
// rest of a body of known length: for a response the client knows from
// its content-length, and for a request the server knows likewise.
func TestNoCreditBeyondKnownLength(t *testing.T) {
	cs := startClientServer(t, false, spdymux.ProtoSPDY31)
	tr := cs.transport(spdymux.ProtoSPDY31)
	tr.Config = &spdymux.Config{InitialWindowSize: 64 << 10, Logger: quietLogger()}
	var mu sync.Mutex
	updates := map[bool]int{} // by direction: sent by the client (true)
	tr.Trace = func(e spdymux.FrameEvent) {
		if e.Type == spdy.TypeWindowUpdate && e.StreamID != 0 {
			mu.Lock()
			updates[e.Out]++
			mu.Unlock()
		}
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	count := func() (client, server int) {
		mu.Lock()
		defer mu.Unlock()
		return updates[true], updates[false]
	}

	// 60,000 bytes fit the client's 64 KiB window: no credit.
	resp, b := get(t, c, context.Background(), cs.url+"/bytes/60000")
	if resp.StatusCode != 200 || len(b) != 60000 {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(b))
	}
	if client, _ := count(); client != 0 {
		t.Errorf("client sent %d stream WINDOW_UPDATEs for a body its window covered; want 0", client)
	}
	// 1 MB does not: credit until the rest fits, at most one per quarter
	// window read.
	resp, b = get(t, c, context.Background(), cs.url+"/bytes/1000000")
	if resp.StatusCode != 200 || len(b) != 1000000 {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(b))
	}
	if client, _ := count(); client == 0 || client > 1000000/(16<<10) {
		t.Errorf("client sent %d stream WINDOW_UPDATEs for 1 MB through a 64 KiB window; want between 1 and %d", client, 1000000/(16<<10))
	}
	// The server's window is 64 KiB too: a 60,000-byte upload earns no
	// credit from it.
	body := bytes.Repeat([]byte("x"), 60000)
	resp2, err := c.Post(cs.url+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatalf("upload echoed %d bytes; want 60000", len(b))
	}
	if _, server := count(); server != 0 {
		t.Errorf("server sent %d stream WINDOW_UPDATEs for a request body its window covered; want 0", server)
	}
}

// A request whose header cannot be sent in the protocol (a SPDY/2 value
// over 65,535 bytes) fails at once, and the session goes on.
func TestTransportHeaderTooLarge(t *testing.T) {
	cs := startClientServer(t, false, spdymux.ProtoSPDY2)
	c := &http.Client{Transport: cs.transport(spdymux.ProtoSPDY2)}
	req, _ := http.NewRequest("GET", cs.url+"/hello", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 70000))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Do(req.WithContext(ctx))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("70,000-byte header on SPDY/2: got %v (context %v); want an error at once", err, ctx.Err())
	}
	if resp, body := get(t, c, ctx, cs.url+"/hello"); resp.StatusCode != 200 || string(body) != "hello, world\n" {
		t.Errorf("after the failed request: %d %q", resp.StatusCode, body)
	}
}

// A response header the protocol cannot carry resets the stream with
// INTERNAL_ERROR instead of leaving the client waiting.
func TestResponseHeaderTooLarge(t *testing.T) {
	cs := startClientServer(t, false, spdymux.ProtoSPDY2)
	c := &http.Client{Transport: cs.transport(spdymux.ProtoSPDY2)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", cs.url+"/bigheader", nil)
	_, err := c.Do(req)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
		t.Fatalf("response with a 70,000-byte header on SPDY/2: got %v (context %v); want a reset at once", err, ctx.Err())
	}
	if resp, body := get(t, c, ctx, cs.url+"/hello"); resp.StatusCode != 200 || string(body) != "hello, world\n" {
		t.Errorf("after the failed request: %d %q", resp.StatusCode, body)
	}
}
