package spdymux_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux"
)

// BenchmarkH2Requests measures HTTP/2 requests per second over one
// cleartext connection with 100 streams in flight, the handler returning
// 13 bytes, for spdymux in front of net/http's HTTP/1.1 server and, in the
// same run, for net/http's own HTTP/2 server with the same handler and the
// same client (golang.org/x/net/http2's ClientConn): a side-by-side ratio.
// Client and servers share the process, so req/s is the cost of both.
func BenchmarkH2Requests(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	b.Run("spdymux", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		l := spdymux.NewListener(ln, &spdymux.Config{Logger: quietLogger()})
		srv := &http.Server{Handler: handler}
		spdymux.ConfigureServer(srv)
		go srv.Serve(l)
		defer srv.Close()
		benchH2(b, ln.Addr().String())
	})
	b.Run("spdymux-handler", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		l := spdymux.NewListener(ln, &spdymux.Config{Logger: quietLogger(), Handler: handler})
		srv := &http.Server{Handler: handler}
		go srv.Serve(l)
		defer srv.Close()
		benchH2(b, ln.Addr().String())
	})
	b.Run("nethttp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: handler, Protocols: new(http.Protocols)}
		srv.Protocols.SetUnencryptedHTTP2(true)
		go srv.Serve(ln)
		defer srv.Close()
		benchH2(b, ln.Addr().String())
	})
}

func benchH2(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(context.Context, string, string, *tls.Config) (net.Conn, error) {
		return nil, io.EOF // one connection only
	}}
	cc, err := tr.NewClientConn(c)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	const inFlight = 100
	var wg sync.WaitGroup
	work := make(chan struct{}, inFlight)
	errs := make(chan error, 1)
	b.ReportAllocs()
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			buf := make([]byte, 64)
			for range work {
				req, _ := http.NewRequest("GET", "http://"+addr+"/hello", nil)
				resp, err := cc.RoundTrip(req)
				if err == nil {
					var n int
					n, err = io.ReadFull(resp.Body, buf[:13])
					resp.Body.Close()
					if err == nil && n != 13 {
						err = io.ErrUnexpectedEOF
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
