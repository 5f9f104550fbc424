package spdymux

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
)

// StreamInfo describes the SPDY stream behind one secondary connection.
// Handlers get it with StreamInfoFromContext.
type StreamInfo struct {
	// Protocol is the negotiated protocol: ProtoH2 (over TLS), ProtoH2C
	// (cleartext), ProtoSPDY31, ProtoSPDY3 or ProtoSPDY2.
	Protocol string
	// SessionID is unique within the process for each SPDY session.
	SessionID uint64
	// StreamID is the SPDY stream id.
	StreamID uint32
	// ConnID is unique within the process for each secondary connection,
	// the seed's "unique id for the fake connection".
	ConnID uint64
	// Priority is the stream's priority, 0 (highest) to 7; SPDY/2
	// priorities 0 to 3 are reported as they came.
	Priority uint8
	// AssociatedStreamID is, for a stream the server pushed (StreamID is
	// then even), the stream whose response asked for the push; 0 for the
	// client's own streams.
	AssociatedStreamID uint32
	// TLS is the client connection's TLS state, nil on cleartext.
	TLS *tls.ConnectionState
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
}

// HTTPProto returns the protocol as an access log writes it: "HTTP/2.0",
// "SPDY/3.1", "SPDY/3" or "SPDY/2".
func (i *StreamInfo) HTTPProto() string {
	switch i.Protocol {
	case ProtoSPDY31:
		return "SPDY/3.1"
	case ProtoSPDY3:
		return "SPDY/3"
	case ProtoSPDY2:
		return "SPDY/2"
	case ProtoH2, ProtoH2C:
		return "HTTP/2.0"
	}
	return i.Protocol
}

type streamInfoKey struct{}

// ConnContext, set as http.Server.ConnContext, puts the StreamInfo of a
// secondary connection into the context of its request, and ties that
// context to the stream: when the client resets the stream or the session
// ends, the request's context is cancelled at once, even for a handler
// that does not read its request body (net/http alone notices a vanished
// client only once the body is read). Other connections get ctx
// unchanged.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	sc, ok := c.(*StreamConn)
	if !ok {
		return ctx
	}
	ctx, cancel := context.WithCancel(context.WithValue(ctx, streamInfoKey{}, sc))
	sc.bindContext(cancel)
	return ctx
}

// StreamInfoFromContext returns the facts of the stream that carries the
// request whose context is ctx, if there is one. A secondary connection
// serves one stream after another: called by the request's handler, it
// returns the facts of the handler's stream.
func StreamInfoFromContext(ctx context.Context) (*StreamInfo, bool) {
	switch v := ctx.Value(streamInfoKey{}).(type) {
	case *StreamConn:
		i := v.Info()
		return i, i != nil
	case *StreamInfo:
		return v, true // handler mode
	}
	return nil, false
}

// ConfigureServer sets srv.ConnContext to ConnContext, keeping any
// ConnContext already set: handlers can call StreamInfoFromContext, and a
// stream's reset cancels its request's context.
func ConfigureServer(srv *http.Server) {
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		return ConnContext(ctx, c)
	}
}
