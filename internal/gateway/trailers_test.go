package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux"
)

// grpcBackend answers as a gRPC server over HTTP/1.1 would: a body of
// unknown length (chunked), then the status in the trailers. It echoes the
// request's trailer X-Checksum as X-Checksum-Seen.
func grpcBackend(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message, X-Checksum-Seen")
	body, _ := io.ReadAll(r.Body)
	w.Write([]byte("reply to " + string(body)))
	w.(http.Flusher).Flush()
	w.Header().Set("Grpc-Status", "7")
	w.Header().Set("Grpc-Message", "permission denied")
	w.Header().Set("X-Checksum-Seen", r.Trailer.Get("X-Checksum"))
}

// gRPC-style trailers go both ways through spdymux and the gateway to an
// HTTP/1.1 backend: the client's request trailers reach the backend, and
// the backend's grpc-status and grpc-message reach the client after the
// body, over HTTP/2 and over SPDY/3.1.
func TestGRPCTrailersThroughGateway(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(grpcBackend))
	defer backend.Close()
	g := newGateway(t, backend.URL, Config{Logger: discard()})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := spdymux.NewListener(ln, &spdymux.Config{Logger: discard()})
	front := &http.Server{Handler: g}
	spdymux.ConfigureServer(front)
	go front.Serve(sl)
	defer front.Close()
	url := "http://" + ln.Addr().String() + "/pkg.Service/Method"

	h2c := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer h2c.CloseIdleConnections()
	spdy := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31}
	defer spdy.CloseIdleConnections()

	for name, rt := range map[string]http.RoundTripper{"h2c": h2c, "spdy/3.1": spdy} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", url, nil)
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			req.Trailer = http.Header{"X-Checksum": nil}
			src := strings.NewReader("the call")
			req.Body = io.NopCloser(readerFunc(func(p []byte) (int, error) {
				n, err := src.Read(p)
				if err == io.EOF {
					req.Trailer.Set("X-Checksum", "c0ffee")
				}
				return n, err
			}))
			req.ContentLength = -1
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "reply to the call" {
				t.Fatalf("body %q, %v", body, err)
			}
			for k, want := range map[string]string{"Grpc-Status": "7", "Grpc-Message": "permission denied", "X-Checksum-Seen": "c0ffee"} {
				if got := resp.Trailer.Get(k); got != want {
					t.Errorf("trailer %s = %q; want %q (trailers %v, header %v)", k, got, want, resp.Trailer, resp.Header)
				}
			}
		})
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
