package spdymux_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spdymux/spdymux"
)

// serveHandler serves h over a cleartext spdymux listener on loopback,
// version 3 frames read as proto, and returns its base URL.
func serveHandler(t *testing.T, proto string, cfg spdymux.Config, h http.Handler) (string, *spdymux.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if proto == spdymux.ProtoSPDY3 {
		cfg.CleartextV3 = spdymux.ProtoSPDY3
	}
	l := spdymux.NewListener(ln, &cfg)
	srv := &http.Server{Handler: h}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), l
}

// grpcLike answers as a gRPC server does: the status travels in the
// trailers, after a body of unknown length; the request's trailer
// X-Checksum comes back as X-Checksum-Seen.
func grpcLike(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message, X-Checksum-Seen")
	body, _ := io.ReadAll(r.Body)
	w.Write([]byte(strings.ToUpper(string(body))))
	w.(http.Flusher).Flush()
	w.Header().Set("Grpc-Status", "0")
	w.Header().Set("Grpc-Message", "all good")
	w.Header().Set("X-Checksum-Seen", r.Trailer.Get("X-Checksum"))
}

// The Transport sends req.Trailer after the request body and fills
// resp.Trailer at the end of the response body, as net/http does; on
// SPDY/2, which drops trailers, resp.Trailer keeps the announced names
// with no values.
func TestTransportTrailers(t *testing.T) {
	for _, proto := range allProtos {
		t.Run(proto, func(t *testing.T) {
			url, _ := serveHandler(t, proto, spdymux.Config{}, http.HandlerFunc(grpcLike))
			tr := &spdymux.Transport{PlainProtocol: proto}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("POST", url+"/svc/Method", io.NopCloser(strings.NewReader("ping")))
			req.ContentLength = -1
			req.Trailer = http.Header{"X-Checksum": nil}
			req.Body = &trailerSetter{r: strings.NewReader("ping"), set: func() { req.Trailer.Set("X-Checksum", "1234") }}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Trailer; len(got) != 3 || got.Get("Grpc-Status") != "" {
				t.Errorf("resp.Trailer before the body is read: %v; want the three announced names, no values", got)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "PING" {
				t.Fatalf("body %q, %v; want PING", body, err)
			}
			want := map[string]string{"Grpc-Status": "0", "Grpc-Message": "all good", "X-Checksum-Seen": "1234"}
			if proto == spdymux.ProtoSPDY2 {
				want = map[string]string{"Grpc-Status": "", "Grpc-Message": "", "X-Checksum-Seen": ""}
			}
			for k, v := range want {
				if got := resp.Trailer.Get(k); got != v {
					t.Errorf("trailer %s = %q; want %q (all: %v)", k, got, v, resp.Trailer)
				}
			}
		})
	}
}

// trailerSetter reads r and calls set at its end, as a body that computes
// its trailer while it is sent does.
type trailerSetter struct {
	r   io.Reader
	set func()
}

func (b *trailerSetter) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}

func (b *trailerSetter) Close() error { return nil }
