package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

// What serve puts between the TCP listener and the spdymux listener:
// the PROXY protocol (-proxy-protocol), so that every address the server
// sees is the client's behind an L4 balancer, and the counting of wire
// bytes for the metrics. Each is there only when asked for.

// proxyOptions are -proxy-protocol and -proxy-protocol-from.
type proxyOptions struct {
	// policy decides, by the address that connects, whether a PROXY
	// header must come (REQUIRE) or must not (REJECT); nil means REQUIRE
	// from everyone.
	policy proxyproto.ConnPolicyFunc
	log    *slog.Logger
	warned atomic.Int64 // unix nanoseconds of the last warning
}

// parseProxyFrom reads -proxy-protocol-from: comma-separated addresses or
// CIDR ranges that must send a PROXY header; other clients connect
// directly, and a PROXY header from them is refused.
func parseProxyFrom(s string) (proxyproto.ConnPolicyFunc, error) {
	var ranges []string
	for r := range strings.SplitSeq(s, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if !strings.Contains(r, "/") {
			ip := net.ParseIP(r)
			if ip == nil {
				return nil, fmt.Errorf("bad -proxy-protocol-from %q: %q is neither an address nor a CIDR range", s, r)
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			r = fmt.Sprintf("%s/%d", r, bits)
		}
		if _, _, err := net.ParseCIDR(r); err != nil {
			return nil, fmt.Errorf("bad -proxy-protocol-from %q: %v", s, err)
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("bad -proxy-protocol-from %q: no address or range", s)
	}
	return proxyproto.PolicyFromRanges(ranges, proxyproto.REQUIRE, proxyproto.REJECT)
}

// wireCounter counts the bytes read from and written to the client
// connections of one listener.
type wireCounter struct{ in, out atomic.Uint64 }

// wrapListener returns ln with the PROXY protocol read from each
// connection (proxy set) and the bytes counted (wire set); ln itself when
// neither is.
func wrapListener(ln net.Listener, proxy *proxyOptions, wire *wireCounter) net.Listener {
	if proxy == nil && wire == nil {
		return ln
	}
	if proxy != nil {
		// The header must come within the handshake timeout spdymux sets
		// as a read deadline; proxyproto's own bound is the same 10 s.
		ln = &proxyproto.Listener{Listener: ln, ConnPolicy: proxy.policy, ReadHeaderTimeout: 10 * time.Second}
	}
	return &serverListener{Listener: ln, proxy: proxy, wire: wire}
}

type serverListener struct {
	net.Listener
	proxy *proxyOptions
	wire  *wireCounter
}

func (l *serverListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: c, l: l}, nil
}

// serverConn counts bytes, reports a missing PROXY header, and keeps
// CloseWrite (for a session's half-close after GOAWAY) reachable through
// proxyproto's connection.
type serverConn struct {
	net.Conn
	l       *serverListener
	checked bool // the first read is done; owned by the reader
}

func (c *serverConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if w := c.l.wire; w != nil {
		w.in.Add(uint64(n))
	}
	if !c.checked {
		c.checked = true
		if err != nil && c.l.proxy != nil {
			c.l.proxy.headerFailed(c.Conn, err)
		}
	}
	return n, err
}

func (c *serverConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if w := c.l.wire; w != nil {
		w.out.Add(uint64(n))
	}
	return n, err
}

// NetConn returns the connection under c, as tls.Conn's does: the
// Listener looks through it for the socket it sets options on.
func (c *serverConn) NetConn() net.Conn { return c.Conn }

func (c *serverConn) CloseWrite() error {
	inner := c.Conn
	if pc, ok := inner.(*proxyproto.Conn); ok {
		inner = pc.Raw()
	}
	if cw, ok := inner.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// headerFailed warns, at most every 10 seconds, of a connection closed
// for its PROXY header: a balancer that does not send one (HAProxy's
// send-proxy) is a configuration mistake an operator must see.
func (p *proxyOptions) headerFailed(c net.Conn, err error) {
	var raw net.Conn = c
	if pc, ok := c.(*proxyproto.Conn); ok {
		raw = pc.Raw()
	}
	var why string
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		why = "no PROXY protocol header (-proxy-protocol requires one: HAProxy's send-proxy or send-proxy-v2)"
	case errors.Is(err, proxyproto.ErrSuperfluousProxyHeader):
		why = "a PROXY protocol header from an address not in -proxy-protocol-from"
	case errors.Is(err, proxyproto.ErrInvalidUpstream), isProxyHeaderError(err):
		why = "a bad PROXY protocol header"
	default:
		return // the client went away, or timed out: not a PROXY matter
	}
	now := time.Now().UnixNano()
	last := p.warned.Load()
	if now-last < int64(10*time.Second) || !p.warned.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("connection closed: "+why, "remote", raw.RemoteAddr().String(), "err", err)
}

func isProxyHeaderError(err error) bool {
	for _, e := range []error{proxyproto.ErrCantReadVersion1Header, proxyproto.ErrCantReadProtocolVersionAndCommand,
		proxyproto.ErrCantReadAddressFamilyAndProtocol, proxyproto.ErrCantReadLength, proxyproto.ErrInvalidLength,
		proxyproto.ErrInvalidAddress, proxyproto.ErrInvalidPortNumber, proxyproto.ErrUnsupportedProtocolVersionAndCommand,
		proxyproto.ErrUnsupportedAddressFamilyAndProtocol, proxyproto.ErrLineMustEndWithCrlf, proxyproto.ErrVersion1HeaderTooLong,
		proxyproto.ErrUnknownProxyProtocolVersion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
