package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux"
)

// The HTTP/2 client of get and bench is golang.org/x/net/http2's
// Transport: over TLS it offers h2 alone by ALPN, over cleartext it speaks
// HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3). This file only dials
// its connections, so that get can time and trace them and bench can
// count their bytes.

// clientFlags are the flags get and bench share, with the same names and
// meanings: -proto, -k, -H, -X, -d, -connect-timeout.
type clientFlags struct {
	proto          string
	insecure       bool
	headers        headerFlags
	method         string
	data           string
	connectTimeout time.Duration
}

// register defines the shared flags on fs: -proto (with its default and
// what it means for the command), -k, -H, -X, -d and -connect-timeout.
func (c *clientFlags) register(fs *flag.FlagSet, defaultProto, protoUsage string) {
	fs.StringVar(&c.proto, "proto", defaultProto, protoUsage)
	fs.BoolVar(&c.insecure, "k", false, "do not verify the server's TLS certificate")
	fs.Var(&c.headers, "H", "add the request header 'Name: value' (repeatable)")
	fs.StringVar(&c.method, "X", "", "request `METHOD` (default GET, or POST with -d)")
	fs.StringVar(&c.data, "d", "", "send `DATA` as the request body, or the contents of a file with @FILE; the method becomes POST unless -X says otherwise")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second,
		"give up on connecting (TCP connect and TLS handshake) after this `duration`; 0 for none")
}

// checkShared validates the shared flags.
func (c *clientFlags) checkShared() error {
	if c.method != "" && !validMethod(c.method) {
		return fmt.Errorf("bad -X %q", c.method)
	}
	if c.connectTimeout < 0 {
		return fmt.Errorf("bad -connect-timeout %v", c.connectTimeout)
	}
	return nil
}

// requestMethod is the method of the requests: -X, else POST with a body,
// else GET.
func (c *clientFlags) requestMethod() string {
	switch {
	case c.method != "":
		return c.method
	case c.data != "":
		return http.MethodPost
	}
	return http.MethodGet
}

// checkProto validates -proto against the protocols a command speaks and
// against the URLs' schemes: h2c is HTTP/2 over cleartext and takes only
// http URLs (h2 speaks h2c on those by itself).
func (c *clientFlags) checkProto(valid []string, urls ...*url.URL) error {
	if !slices.Contains(valid, c.proto) {
		return fmt.Errorf("bad -proto %q: want %s", c.proto, orList(valid))
	}
	if c.proto == spdymux.ProtoH2C {
		for _, u := range urls {
			if u.Scheme != "http" {
				return fmt.Errorf("-proto h2c is HTTP/2 over cleartext: want an http URL, not %q (-proto h2 speaks HTTP/2 over TLS)", u)
			}
		}
	}
	return nil
}

// orList writes ps as "a, b or c".
func orList(ps []string) string {
	if len(ps) < 2 {
		return strings.Join(ps, "")
	}
	return strings.Join(ps[:len(ps)-1], ", ") + " or " + ps[len(ps)-1]
}

// isH2 reports whether proto is HTTP/2, over TLS or cleartext.
func isH2(proto string) bool { return proto == spdymux.ProtoH2 || proto == spdymux.ProtoH2C }

// wireProto is the protocol proto speaks to a URL of scheme: h2c for
// HTTP/2 on http URLs.
func wireProto(proto, scheme string) string {
	if isH2(proto) {
		if scheme == "http" {
			return spdymux.ProtoH2C
		}
		return spdymux.ProtoH2
	}
	return proto
}

// tlsConfig is the client TLS configuration for -k.
func (c *clientFlags) tlsConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: c.insecure}
}

// dialFunc dials a TCP connection.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// h2Client is an HTTP/2 RoundTripper for both schemes: golang.org/x/net's
// Transport, once for TLS and once for cleartext (it would dial both
// through one DialTLSContext, which cannot tell them apart).
type h2Client struct {
	tls, plain *http2.Transport
}

// h2Options configure newH2Client.
type h2Options struct {
	tls  *tls.Config
	dial dialFunc // the TCP connection; nil for a plain net.Dialer
	// connectTimeout bounds the dial and the TLS handshake; 0 for none.
	connectTimeout time.Duration
	// wrap, when set, wraps each connection once it speaks HTTP/2 (after
	// the TLS handshake); proto is h2 or h2c.
	wrap func(c net.Conn, proto string) net.Conn
	// oneConn keeps each Transport to one connection per origin: requests
	// over the server's stream limit wait for a stream to end instead of
	// opening another connection.
	oneConn            bool
	disableCompression bool
}

func newH2Client(o h2Options) *h2Client {
	if o.dial == nil {
		o.dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	mk := func(cleartext bool) *http2.Transport {
		return &http2.Transport{
			TLSClientConfig:            o.tls,
			AllowHTTP:                  cleartext,
			StrictMaxConcurrentStreams: o.oneConn,
			DisableCompression:         o.disableCompression,
			DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
				if cleartext {
					cfg = nil
				}
				if o.connectTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, o.connectTimeout)
					defer cancel()
				}
				return dialH2(ctx, network, addr, cfg, o.dial, o.wrap)
			},
		}
	}
	return &h2Client{tls: mk(false), plain: mk(true)}
}

func (c *h2Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" {
		return c.plain.RoundTrip(req)
	}
	return c.tls.RoundTrip(req)
}

func (c *h2Client) CloseIdleConnections() {
	c.tls.CloseIdleConnections()
	c.plain.CloseIdleConnections()
}

// dialH2 dials addr and, with cfg (from the Transport, offering h2 by
// ALPN), does the TLS handshake and insists on h2. It reports the connect
// and the handshake to the request's httptrace.ClientTrace, as net/http's
// own dialer does; the Transport passes the context of the request that
// made it dial.
func dialH2(ctx context.Context, network, addr string, cfg *tls.Config, dial dialFunc, wrap func(net.Conn, string) net.Conn) (net.Conn, error) {
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.ConnectStart != nil {
		trace.ConnectStart(network, addr)
	}
	c, err := dial(ctx, network, addr)
	if trace != nil && trace.ConnectDone != nil {
		trace.ConnectDone(network, addr, err)
	}
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		if wrap != nil {
			return wrap(c, spdymux.ProtoH2C), nil
		}
		return c, nil
	}
	if trace != nil && trace.TLSHandshakeStart != nil {
		trace.TLSHandshakeStart()
	}
	tc := tls.Client(c, cfg)
	err = tc.HandshakeContext(ctx)
	if trace != nil && trace.TLSHandshakeDone != nil {
		trace.TLSHandshakeDone(tc.ConnectionState(), err)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		c.Close()
		if p == "" {
			p = "none"
		}
		return nil, &alpnError{got: p}
	}
	if wrap != nil {
		return wrap(tc, spdymux.ProtoH2), nil
	}
	return tc, nil
}

// alpnError is a server's refusal of h2: it chose another protocol by
// ALPN, or none.
type alpnError struct{ got string }

func (e *alpnError) Error() string {
	return fmt.Sprintf("the server did not choose h2 by ALPN (it chose %s)", e.got)
}

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New("want 'Name: value'")
	}
	*h = append(*h, v)
	return nil
}

// header returns the collected headers.
func (h headerFlags) header() http.Header {
	out := http.Header{}
	for _, v := range h {
		name, value, _ := strings.Cut(v, ":")
		out.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return out
}

// parseURL accepts an absolute http or https URL with a host.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("bad URL %q: want an http or https URL with a host", s)
	}
	return u, nil
}
