// Package spdymux serves HTTP/2, SPDY/3.1, SPDY/3 and SPDY/2 to any
// unmodified HTTP/1.1 server that serves a net.Listener, such as an
// http.Server.
//
// It follows mod_spdy's design ("Multiplexing SPDY in Apache"), and the road
// Apache took from it to mod_http2: every client connection that speaks
// HTTP/2 or SPDY becomes one master session, which reads frames and decodes
// every header block in arrival order and encodes every header block in
// write order; every stream of that session is handed to the inner server on
// a secondary connection (a net.Conn whose Read yields an HTTP/1.1 request
// and whose Write takes the HTTP/1.1 response), through a process-wide pool
// of worker slots that hands out slots in priority order. With
// ConfigureServer, net/http keeps a secondary connection alive and it serves
// the session's streams one after another, as mod_http2 reuses its
// secondary connections. Connections that speak HTTP/1.x are passed to the
// inner server untouched.
//
// A Listener wraps a net.Listener:
//
//	ln, _ := net.Listen("tcp", ":8443")
//	sl := spdymux.NewListener(ln, &spdymux.Config{TLSConfig: tlsConfig})
//	srv := &http.Server{Handler: handler}
//	spdymux.ConfigureServer(srv)
//	srv.Serve(sl)
//
// When the server is an http.Handler in the same process, Config.Handler
// skips the HTTP/1.1 round trip (handler mode): each stream's request is
// built from its header block and passed to the handler, and the response
// is framed as the handler writes it, as net/http's HTTP/2 server does. The
// session, the pool and every limit stay the same; docs/handler-mode.md
// tells what differs.
//
// The wire rules the code follows are in docs/protocol.md, the design in
// docs/architecture.md. The SPDY codec lives in package spdy, HTTP/2's comes
// from golang.org/x/net/http2; this package owns sessions, streams, flow
// control, the worker pool and the listener.
package spdymux
