package cli

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Slowloris on the HTTP/1.1 side of `spdymux serve -backend`'s listeners:
// many connections send a request line, then a header byte every
// slowlorisEvery, over cleartext and over TLS. Each is closed by the
// read-header timeout (-read-header-timeout); meanwhile HTTP/1.1 and
// HTTP/2 clients are served as usual.
func TestSlowlorisHTTP1(t *testing.T) {
	const (
		perListener    = 100
		headerTimeout  = 2 * time.Second
		slowlorisEvery = 500 * time.Millisecond
	)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the backend")
	}))
	defer backend.Close()
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-backend", backend.URL,
		"-read-header-timeout", headerTimeout.String(), "-log-level", "error")

	type loris struct {
		conn   net.Conn
		start  time.Time
		closed atomic.Int64 // when the server closed it, in Unix nanoseconds
		sent   atomic.Int64 // header bytes sent
	}
	var all []*loris
	dial := func(tlsConn bool) net.Conn {
		if tlsConn {
			c, err := tls.Dial("tcp", s.addrs.tls.String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		c, err := net.Dial("tcp", s.addrs.plain.String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * perListener {
		l := &loris{conn: dial(i%2 == 1), start: time.Now()}
		all = append(all, l)
		if _, err := io.WriteString(l.conn, "GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { // the server's close ends the read
			var b [512]byte
			for {
				if _, err := l.conn.Read(b[:]); err != nil {
					l.closed.Store(time.Now().UnixNano())
					return
				}
			}
		})
		wg.Go(func() {
			tick := time.NewTicker(slowlorisEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if l.closed.Load() != 0 {
					return
				}
				if _, err := l.conn.Write([]byte{'a'}); err != nil {
					return
				}
				l.sent.Add(1)
			}
		})
	}
	defer func() {
		close(stop)
		for _, l := range all {
			l.conn.Close()
		}
		wg.Wait()
	}()

	// Meanwhile, the others.
	h1 := tlsClient()
	h2 := lorisH2Client(t)
	var worst time.Duration
	for deadline := time.Now().Add(headerTimeout + time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, c := range []*http.Client{h1, h2} {
			start := time.Now()
			code, body := get(t, c, "https://"+s.addrs.tls.String()+"/x")
			worst = max(worst, time.Since(start))
			if code != 200 || body != "hello from the backend" {
				t.Fatalf("a well-behaved client during the slowloris: %d %q", code, body)
			}
		}
	}
	t.Logf("well-behaved HTTP/1.1 and HTTP/2 clients during the slowloris: the slowest answer took %v", worst.Round(time.Millisecond))
	if worst > time.Second {
		t.Errorf("a well-behaved request took %v during the slowloris; want well under a second", worst)
	}

	// Every slow connection is closed at the read-header timeout, not
	// before, after sending a byte every slowlorisEvery all along.
	deadline := time.Now().Add(headerTimeout + 5*time.Second)
	for _, l := range all {
		for l.closed.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		closed := l.closed.Load()
		if closed == 0 {
			t.Fatalf("a slowloris connection is open %v after it began (%d header bytes sent); want it closed at -read-header-timeout %v",
				time.Since(l.start).Round(time.Millisecond), l.sent.Load(), headerTimeout)
		}
		if d := time.Unix(0, closed).Sub(l.start); d < headerTimeout-100*time.Millisecond {
			t.Errorf("a slowloris connection closed %v after it began; want no sooner than %v", d, headerTimeout)
		}
	}
	t.Logf("%d slowloris connections closed by the read-header timeout", len(all))
}

// lorisH2Client is an HTTP/2 client over TLS that trusts any certificate.
func lorisH2Client(t *testing.T) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Timeout: 10 * time.Second, Transport: lorisH2Only{tr}}
	return c
}

type lorisH2Only struct{ rt http.RoundTripper }

func (h lorisH2Only) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(r)
	if err == nil && resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, &net.OpError{Op: "h2", Err: io.ErrUnexpectedEOF}
	}
	return resp, err
}
