package spdymux_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/spdymux/spdymux"
)

// An existing http.Server, unchanged, served over SPDY/3.1, 3 and 2 (and
// HTTP/1.1) on one TLS port: only the listener is new.
func Example() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := r.Proto
		if info, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
			proto = fmt.Sprintf("%s, stream %d", info.HTTPProto(), info.StreamID)
		}
		fmt.Fprintf(w, "hello over %s\n", proto)
	})
	cert, err := tls.LoadX509KeyPair("cert.pem", "key.pem")
	if err != nil {
		log.Fatal(err)
	}

	ln, err := net.Listen("tcp", ":8443")
	if err != nil {
		log.Fatal(err)
	}
	sl := spdymux.NewListener(ln, &spdymux.Config{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	srv := &http.Server{Handler: handler}
	spdymux.ConfigureServer(srv) // stream facts in the request context; a reset cancels it
	log.Fatal(srv.Serve(sl))
}
