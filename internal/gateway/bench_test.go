package gateway

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
)

// BenchmarkExchange forwards GET requests one at a time through the
// gateway's ServeHTTP to a keep-alive backend on loopback that answers
// each with the same 13 bytes, as benchserver -h1 does, without parsing
// more than the head's end: the allocations are the gateway's, with
// those of the backend's buffers reused. ns/op is a round trip on
// loopback; cpu-ns/op is the CPU the process spent, the small backend's
// included.
func BenchmarkExchange(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Date: Thu, 03 Dec 2026 12:00:00 GMT\r\nContent-Length: 13\r\n\r\nHello, world!")
	addr := serveLoopback(b, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			// Each request is a head alone: read to its empty line.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
	u, _ := ParseBackend("http://" + addr)
	g, err := New(Config{Backend: u, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer g.CloseIdleConnections()
	r := httptest.NewRequest("GET", "http://front.example/hello", nil)
	r.RemoteAddr = "192.0.2.1:40000"
	r.Header.Set("User-Agent", "h2load nghttp2/1.52.0")
	r.Header.Set("Accept", "*/*")
	w := &benchWriter{h: make(http.Header)}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		clear(w.h)
		w.body.Reset()
		w.status = 0
		g.ServeHTTP(w, r)
		if w.status != 200 || w.body.Len() != 13 {
			b.Fatalf("%d %q", w.status, w.body.Bytes())
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time the process has used, in
// nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchWriter is a ResponseWriter that keeps what it is given, reused
// from one request to the next.
type benchWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.body.Write(p)
}
func (w *benchWriter) Flush() {}

// EnableFullDuplex is there as on spdymux's and net/http's writers.
func (w *benchWriter) EnableFullDuplex() error { return nil }
