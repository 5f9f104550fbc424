package spdymux_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/gateway"
)

// benchServer serves, over cleartext spdy/3.1 on loopback, "/" with the
// 13 bytes "hello, world\n" and "/blob/N" with N bytes from a shared
// buffer.
func benchServer(b *testing.B) string { return benchServerMode(b, false) }

// benchServerMode is benchServer; with handler set the streams are served
// in handler mode (Config.Handler) rather than over secondary
// connections.
func benchServerMode(b *testing.B, handler bool) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	blob := make([]byte, 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "13")
		io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("/blob/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			k := min(n, len(blob))
			w.Write(blob[:k])
			n -= k
		}
	})
	cfg := &spdymux.Config{Logger: quietLogger()}
	if handler {
		cfg.Handler = mux
	}
	l := spdymux.NewListener(ln, cfg)
	srv := &http.Server{Handler: mux}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkRequests100InFlight measures end-to-end requests over one
// session with 100 streams in flight: a fixed pool of 100 goroutines
// shares b.N requests.
func BenchmarkRequests100InFlight(b *testing.B) {
	b.Run("secondary", func(b *testing.B) { benchRequests(b, benchServerMode(b, false)+"/") })
	b.Run("handler", func(b *testing.B) { benchRequests(b, benchServerMode(b, true)+"/") })
}

// BenchmarkGatewayRequests100InFlight is BenchmarkRequests100InFlight
// through the gateway: the session's server is gateway.Gateway, in front
// of a net/http HTTP/1.1 backend on loopback serving the same 13 bytes.
// Client, gateway and backend share the process: allocs/op counts all
// three (the backend's net/http request costs about 10 of them).
func BenchmarkGatewayRequests100InFlight(b *testing.B) {
	b.Run("secondary", func(b *testing.B) { benchGateway(b, false) })
	b.Run("handler", func(b *testing.B) { benchGateway(b, true) })
}

func benchGateway(b *testing.B, handler bool) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "13")
		io.WriteString(w, "hello, world\n")
	}))
	b.Cleanup(backend.Close)
	u, err := gateway.ParseBackend(backend.URL)
	if err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Backend: u, PipelineDepth: gateway.DefaultPipelineDepth, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.CloseIdleConnections)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := &spdymux.Config{Logger: quietLogger()}
	if handler {
		cfg.Handler = g
	}
	l := spdymux.NewListener(ln, cfg)
	srv := &http.Server{Handler: g}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	benchRequests(b, "http://"+ln.Addr().String()+"/")
}

// benchRequests fetches url b.N times over one spdy/3.1 session, 100 at a
// time, and reports the rate.
func benchRequests(b *testing.B, url string) {
	tr := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Open the session before timing.
	if err := fetch(c, req); err != nil {
		b.Fatal(err)
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range 100 {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := fetch(c, req); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

func fetch(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// BenchmarkDownload measures one 64 MiB response over one stream.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	base := benchServer(b)
	tr := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	req, err := http.NewRequest("GET", base+"/blob/"+strconv.Itoa(size), nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("got %d bytes, %v", n, err)
		}
	}
}
