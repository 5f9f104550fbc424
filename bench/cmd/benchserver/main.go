// Command benchserver serves the demo site's handler (internal/demo: GET
// /hello answers 13 bytes, GET /bytes/N, GET /slow?ms=N) over the servers
// a Go user can choose between, for bench/run.sh:
//
//	-h1 ADDR        net/http, HTTP/1.1 over TCP
//	-h2c ADDR       net/http, HTTP/2 over TCP with prior knowledge (and HTTP/1.1)
//	-h2tls ADDR     net/http, HTTP/2 over TLS (ALPN h2, http/1.1)
//	-spdy ADDR      spdymux.Listener over TCP (SPDY/3.1 and HTTP/1.1)
//	-spdy-tls ADDR  spdymux.Listener over TLS (ALPN spdy/3.1, 3, 2, http/1.1)
//	-debug ADDR     expvar (/debug/vars: memstats, the SPDY listeners'
//	                Stats, goroutines), /debug/gc (a forced GC, then the
//	                figures as JSON) and net/http/pprof
//
// The SPDY listeners are configured as `spdymux serve` configures its
// own: one worker pool (-workers), -max-streams per session, and handler
// mode (Config.Handler) unless -secondary-conns is given. TLS uses a
// self-signed ECDSA P-256 certificate made at start. Once every listener
// is open it prints "ready" on stdout; it runs until SIGINT or SIGTERM.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"expvar"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/demo"
)

func main() {
	var (
		h1, h2c, h2tls, spdyPlain, spdyTLS, debug string
		workers                                   int
		maxStreams                                uint
		secondary                                 bool
	)
	flag.StringVar(&h1, "h1", "", "serve net/http HTTP/1.1 on `addr`")
	flag.StringVar(&h2c, "h2c", "", "serve net/http HTTP/2 with prior knowledge (and HTTP/1.1) over TCP on `addr`")
	flag.StringVar(&h2tls, "h2tls", "", "serve net/http HTTP/2 over TLS on `addr`")
	flag.StringVar(&spdyPlain, "spdy", "", "serve SPDY/3.1 and HTTP/1.1 over TCP (spdymux.Listener) on `addr`")
	flag.StringVar(&spdyTLS, "spdy-tls", "", "serve SPDY and HTTP/1.1 over TLS (spdymux.Listener) on `addr`")
	flag.StringVar(&debug, "debug", "", "serve /debug/vars, /debug/gc and /debug/pprof/ on `addr`")
	flag.IntVar(&workers, "workers", 1024, "worker slots shared by the SPDY listeners")
	flag.UintVar(&maxStreams, "max-streams", spdymux.DefaultMaxConcurrentStreams, "concurrent streams per SPDY session")
	flag.BoolVar(&secondary, "secondary-conns", false, "serve SPDY and HTTP/2 streams on secondary connections rather than in handler mode")
	flag.Parse()
	log.SetPrefix("benchserver: ")
	log.SetFlags(0)

	cert := selfSigned()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	handler := demo.Handler()
	errc := make(chan error, 6)
	listen := func(addr string) net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		return ln
	}
	plainServer := func() *http.Server {
		return &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)}
	}

	if h1 != "" {
		srv := plainServer()
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		ln := listen(h1)
		go func() { errc <- srv.Serve(ln) }()
	}
	if h2c != "" {
		srv := plainServer()
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		ln := listen(h2c)
		go func() { errc <- srv.Serve(ln) }()
	}
	if h2tls != "" {
		srv := plainServer()
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln := listen(h2tls)
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	}

	var spdyListeners []*spdymux.Listener
	pool := spdymux.NewPool(workers)
	spdyConfig := func() *spdymux.Config {
		cfg := &spdymux.Config{MaxConcurrentStreams: uint32(maxStreams), Pool: pool, Logger: quiet}
		if !secondary {
			cfg.Handler = handler
		}
		return cfg
	}
	spdyServe := func(addr string, cfg *spdymux.Config) {
		l := spdymux.NewListener(listen(addr), cfg)
		spdyListeners = append(spdyListeners, l)
		srv := plainServer()
		spdymux.ConfigureServer(srv)
		go func() { errc <- srv.Serve(l) }()
	}
	if spdyPlain != "" {
		spdyServe(spdyPlain, spdyConfig())
	}
	if spdyTLS != "" {
		cfg := spdyConfig()
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		spdyServe(spdyTLS, cfg)
	}

	if debug != "" {
		stats := func() any {
			var s []spdymux.Stats
			for _, l := range spdyListeners {
				s = append(s, l.Stats())
			}
			return s
		}
		expvar.Publish("spdymux", expvar.Func(stats))
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		http.HandleFunc("/debug/gc", func(w http.ResponseWriter, r *http.Request) {
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"heap_alloc":  m.HeapAlloc,
				"heap_inuse":  m.HeapInuse,
				"stack_inuse": m.StackInuse,
				"sys":         m.Sys,
				"goroutines":  runtime.NumGoroutine(),
				"spdymux":     stats(),
			})
		})
		ln := listen(debug)
		go func() { errc <- http.Serve(ln, nil) }()
	}

	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-errc:
		log.Fatal(err)
	}
}

// selfSigned makes an ECDSA P-256 certificate for localhost and 127.0.0.1.
func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
