// Package spdymux serves SPDY/3.1, SPDY/3 and SPDY/2 to any unmodified
// HTTP/1.1 server that serves a net.Listener, such as an http.Server.
//
// It follows mod_spdy's design ("Multiplexing SPDY in Apache"): every client
// connection that speaks SPDY becomes one master session, which reads frames,
// inflates every header block in arrival order and deflates every header
// block in write order; every stream of that session is handed to the inner
// server as a secondary connection of its own (a net.Conn whose Read yields
// an HTTP/1.1 request and whose Write takes the HTTP/1.1 response), through a
// process-wide pool of worker slots that hands out slots in priority order.
// Connections that speak HTTP/1.x are passed to the inner server untouched.
//
// A Listener wraps a net.Listener:
//
//	ln, _ := net.Listen("tcp", ":8443")
//	sl := spdymux.NewListener(ln, &spdymux.Config{TLSConfig: tlsConfig})
//	srv := &http.Server{Handler: handler}
//	spdymux.ConfigureServer(srv)
//	srv.Serve(sl)
//
// The wire rules the code follows are in docs/protocol.md. The codec lives in
// package spdy; this package owns sessions, streams, flow control, the
// worker pool and the listener.
package spdymux
