// Package gateway forwards HTTP requests to one HTTP/1.1 backend, such as
// an unmodified Apache httpd, over a bounded pool of keep-alive connections
// shared fairly between the clients. It is what `spdymux serve -backend
// URL` puts behind the listener: every HTTP/2 or SPDY stream reaches the
// gateway as one request, and the gateway makes it one HTTP/1.1 exchange
// with the backend.
//
// Contract of the Gateway handler:
//
//   - Bodies stream both ways. The request body is sent to the backend as the
//     client sends it; the response body is flushed to the client as it
//     comes from the backend. Neither is ever buffered whole, except a
//     response of known length up to ResponseBuffer, read whole before it
//     is sent.
//   - Hop-by-hop headers (RFC 9110 §7.6.1: Connection and the fields it
//     names, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
//     Upgrade) are removed in both directions, and Expect is not
//     forwarded (the gateway asks for the body itself).
//   - The backend learns who the client is: a Forwarded element (RFC 7239)
//     "for=IP;host=HOST;proto=http|https" is appended to any Forwarded
//     fields the client sent, the client IP is appended to X-Forwarded-For,
//     and X-Forwarded-Host and X-Forwarded-Proto are set. An IPv6 address is
//     written as for="[2001:db8::1]" (RFC 7239 §6).
//   - The request's Host is the client's, as it sent it, so that a backend
//     with name-based virtual hosts (Apache's <VirtualHost>) serves the
//     right site; with Config.RewriteHost it is the backend's host instead.
//     Either way the client's Host also travels in X-Forwarded-Host and in
//     Forwarded's host parameter.
//   - A path in the backend URL is a prefix: a request for /a/b to the
//     backend http://host/app goes to /app/a/b.
//   - Backend connections are shared fairly (docs/limits.md, "The gateway"):
//     at most MaxConns are open; one client connection (an HTTP/2 or SPDY
//     session, or an HTTP/1.x connection) holds at most MaxConnsPerSession
//     of them at once; a request that finds none it may take waits, and a
//     connection that comes free goes to the waiting request whose session
//     holds the fewest, then to the one that waited longest.
//   - A client slower than the backend does not hold a backend connection
//     for long: up to ResponseBuffer bytes of the response are read ahead of
//     it, so a response that fits frees its connection as soon as the
//     backend has sent it; when the buffer is full and the client takes
//     less than half of it within StallTimeout, or when a request body
//     brings no byte for StallTimeout, the exchange is cut: the backend
//     connection is closed and the stream reset.
//   - A backend that cannot be reached, breaks the exchange before the
//     response header, or answers something that is not an HTTP/1.x
//     response (garbage, a bad status line, a header over
//     MaxResponseHeaderBytes) gets 502 with a short text body, logged. A
//     backend that does not answer within ResponseHeaderTimeout (waiting
//     for a connection included), or keeps silent that long in the middle
//     of a body, gets 504 (or, once the response has begun, a reset).
//     Either way only that request fails.
//   - A kept-alive connection the backend closed while it was idle is not
//     used: it is checked when taken (for a request that could go again,
//     only if it has been idle for 100 ms or more); and an idempotent
//     request without a body (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) that
//     fails on a kept-alive connection before any byte of answer came is
//     sent once more, on a new connection.
//   - A response body the backend breaks off (the connection closed before
//     its Content-Length, or a chunked body without its last chunk) is not
//     passed on as a shorter body: the client sees the stream reset
//     (RST_STREAM; on HTTP/1.1 the connection cut).
//   - When the request's context is cancelled (the client went away; for a
//     stream, the client sent RST_STREAM), the backend exchange is
//     aborted and its connection is closed, never returned to the pool.
//
// It is not a general proxy: there is one backend, no load balancing, no
// caching, no protocol upgrade (WebSocket) and no retry but the one above.
package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the Config fields.
const (
	DefaultResponseHeaderTimeout  = 30 * time.Second
	DefaultMaxConns               = 256
	DefaultMaxIdleConns           = 64
	DefaultDialTimeout            = 10 * time.Second
	DefaultIdleConnTimeout        = 90 * time.Second
	DefaultResponseBuffer         = 64 << 10
	DefaultStallTimeout           = 10 * time.Second
	DefaultMaxResponseHeaderBytes = 1 << 20
	DefaultPipelineWait           = time.Millisecond
	// DefaultPipelineDepth is the PipelineDepth spdymux serve sets unless
	// told otherwise (-backend-pipeline); a Config's zero PipelineDepth
	// pipelines nothing.
	DefaultPipelineDepth = 32
)

// Config configures a Gateway. Zero fields take the defaults above, except
// PipelineDepth, whose zero pipelines nothing.
type Config struct {
	// Backend is the server requests go to, as returned by ParseBackend.
	// Its path, if any, is prefixed to every request path.
	Backend *url.URL

	// RewriteHost sends the backend's host (Backend's host and port) as
	// the request's Host instead of the client's.
	RewriteHost bool

	// ResponseHeaderTimeout bounds the wait for the backend's response
	// header, from the request's arrival (the wait for a connection
	// included) or from the last byte of request body sent; past it the
	// client gets 504. It also bounds how long the backend may keep
	// silent in the middle of a response body, and take to accept a write.
	// A request still waiting for a connection gets its 504 up to a
	// hundredth of the timeout late. Default 30 s.
	ResponseHeaderTimeout time.Duration

	// MaxConns caps the connections open to the backend at once, idle
	// ones included; requests over it wait for a connection. Default 256.
	MaxConns int

	// MaxConnsPerSession caps the connections one client connection (an
	// HTTP/2 or SPDY session, or an HTTP/1.x connection) holds at once;
	// its other requests wait for one of its own. Default MaxConns / 8
	// (32 with the default MaxConns), at least 1.
	MaxConnsPerSession int

	// MaxIdleConns caps the idle keep-alive connections kept for reuse:
	// those beyond it are closed, least recently used first, once they
	// have been idle for a second. Default 64.
	MaxIdleConns int

	// PipelineDepth, when above zero, lets a GET or HEAD request without
	// a body that would wait for a backend connection (its session holds
	// its limit of them, or MaxConns are open) queue instead on one its
	// session holds, behind at most PipelineDepth others: HTTP/1.1
	// pipelining (RFC 9112 §9.3.2). The backend reads several requests at
	// a time and the gateway several answers, which costs both less CPU
	// per request; but an answer waits for the answers ahead of it on its
	// connection, however slow, where it would have waited for the first
	// connection to come free. Requests queued on a connection that
	// fails, or that the backend closes, go again on a new one; none is
	// queued to be answered past the most answers the backend was seen to
	// give a connection before closing it. An answer whose client went
	// away while its request waited is read and dropped. 0: one request
	// at a time on a connection; spdymux serve sets DefaultPipelineDepth.
	PipelineDepth int

	// PipelineWait, with PipelineDepth above zero, lets such a request
	// queue also when it could have a connection of its own: on a
	// connection of its session whose answers ahead of it are expected
	// within PipelineWait, each as long as the backend took lately to
	// answer its path, without the query (an estimate that falls at once
	// to a quicker answer and rises an eighth of the way to a slower one,
	// kept in a table of 1,024 slots, each for the latest path whose hash
	// falls in it; a path not in the table is not expected soon, and
	// nothing queues behind it). Requests that
	// would be answered at once then share connections, and the backend
	// and the gateway work less per request under load; the price is at
	// most about PipelineWait more for the answer, unless an answer ahead
	// takes far longer than its path did lately. Default 1 ms; negative:
	// a request queues only instead of waiting.
	PipelineWait time.Duration

	// DialTimeout bounds connecting to the backend. Default 10 s.
	DialTimeout time.Duration

	// ResponseBuffer is how many bytes of a response body are read from
	// the backend ahead of a slower client, per request. A response of
	// known length up to this size is read whole, and its connection
	// freed, before it is sent. Default 64 KiB.
	ResponseBuffer int

	// StallTimeout bounds how long a client may keep its backend
	// connection waiting: with the response buffer full, the client must
	// take half of it within StallTimeout; a request body must bring a
	// byte within StallTimeout. Past it the exchange is cut: the backend
	// connection is closed and the stream reset (a request whose response
	// has not begun gets 408). Default 10 s.
	StallTimeout time.Duration

	// MaxResponseHeaderBytes caps the backend's response header; a longer
	// one gets 502. Default 1 MiB.
	MaxResponseHeaderBytes int

	// Session returns the client connection a request came on, for
	// MaxConnsPerSession and the order of waiting requests. Default the
	// request's RemoteAddr: every stream of an HTTP/2 or SPDY session
	// comes from the client address of its connection.
	Session func(*http.Request) string

	// Secure reports whether the client's request came over TLS, for the
	// proto parameter of Forwarded and X-Forwarded-Proto. Default: the
	// request's TLS field is set.
	Secure func(*http.Request) bool

	// Logger receives a line for every failed backend exchange.
	// Default slog.Default().
	Logger *slog.Logger

	// Observe, when set, is told of every backend exchange once its
	// response header has arrived (err nil) or it has failed before that
	// (see ErrorKind), with the time since the gateway took the request:
	// waiting for a connection, connecting, sending the request header and
	// waiting for the answer. r is the client's request. It is called on
	// the request's goroutine and must be quick.
	Observe func(r *http.Request, d time.Duration, err error)
}

// Gateway is an http.Handler that forwards every request to the backend.
// It is safe for concurrent use.
type Gateway struct {
	backend     *url.URL
	rewriteHost bool
	pool        *connPool
	dialer      net.Dialer
	tls         *tls.Config // nil for an http backend
	addr        string      // host:port to dial

	timeout, stall, dialTimeout time.Duration
	bufSize, maxHead            int

	session func(*http.Request) string
	secure  func(*http.Request) bool
	log     *slog.Logger
	observe func(*http.Request, time.Duration, error)

	retries, stalled, failed atomic.Uint64
}

// Stats is a snapshot of a Gateway's backend connections and counters.
type Stats struct {
	PoolStats
	Retries uint64 // requests sent again on a new connection after a kept-alive one failed
	Stalled uint64 // exchanges cut because the client kept the backend waiting past StallTimeout
	Failed  uint64 // requests answered 502, 504 or 408 by the gateway
}

// Stats returns the gateway's backend connections and counters now.
func (g *Gateway) Stats() Stats {
	return Stats{PoolStats: g.pool.stats(), Retries: g.retries.Load(), Stalled: g.stalled.Load(), Failed: g.failed.Load()}
}

// ParseBackend parses and checks a backend URL: the scheme must be http or
// https, the host must be set, and there must be no user information, query
// or fragment.
func ParseBackend(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("gateway: bad backend URL %q: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("gateway: bad backend URL %q: the scheme must be http or https", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("gateway: bad backend URL %q: no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("gateway: bad backend URL %q: user information is not supported", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("gateway: bad backend URL %q: a query or fragment is not supported", s)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return nil, fmt.Errorf("gateway: bad backend URL %q: bad port %q", s, p)
		}
	}
	return u, nil
}

// New returns a Gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	if cfg.Backend == nil {
		return nil, errors.New("gateway: no backend")
	}
	if _, err := ParseBackend(cfg.Backend.String()); err != nil {
		return nil, err
	}
	setDefault(&cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDefault(&cfg.MaxConns, DefaultMaxConns)
	setDefault(&cfg.MaxConnsPerSession, max(1, cfg.MaxConns/8))
	setDefault(&cfg.MaxIdleConns, DefaultMaxIdleConns)
	setDefault(&cfg.DialTimeout, DefaultDialTimeout)
	setDefault(&cfg.ResponseBuffer, DefaultResponseBuffer)
	setDefault(&cfg.StallTimeout, DefaultStallTimeout)
	setDefault(&cfg.MaxResponseHeaderBytes, DefaultMaxResponseHeaderBytes)
	g := &Gateway{
		backend:     cfg.Backend,
		rewriteHost: cfg.RewriteHost,
		observe:     cfg.Observe,
		timeout:     cfg.ResponseHeaderTimeout,
		stall:       cfg.StallTimeout,
		dialTimeout: cfg.DialTimeout,
		bufSize:     max(cfg.ResponseBuffer, 2),
		maxHead:     cfg.MaxResponseHeaderBytes,
		session:     cfg.Session,
		secure:      cfg.Secure,
		log:         cfg.Logger,
		dialer:      net.Dialer{KeepAlive: 30 * time.Second},
	}
	if g.session == nil {
		g.session = func(r *http.Request) string { return r.RemoteAddr }
	}
	if g.secure == nil {
		g.secure = func(r *http.Request) bool { return r.TLS != nil }
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	port := cfg.Backend.Port()
	if port == "" {
		port = "80"
		if cfg.Backend.Scheme == "https" {
			port = "443"
		}
	}
	g.addr = net.JoinHostPort(cfg.Backend.Hostname(), port)
	if cfg.Backend.Scheme == "https" {
		// No proxy from the environment: the backend is reached directly.
		g.tls = &tls.Config{ServerName: cfg.Backend.Hostname(), NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	g.pool = newConnPool(g.dial, cfg.MaxConns, cfg.MaxIdleConns, cfg.MaxConnsPerSession, DefaultIdleConnTimeout)
	g.pool.depth = max(cfg.PipelineDepth, 0)
	if g.pool.depth > 0 {
		g.pool.wait = cmp.Or(cfg.PipelineWait, DefaultPipelineWait)
		if g.pool.wait < 0 {
			g.pool.wait = 0
		}
	}
	// A wait for a connection is timed by ResponseHeaderTimeout: it may
	// end a hundredth of that late (300 ms of 30 s), so that an overloaded
	// pool whose waits expire one after another looks at its waiters at
	// most a hundred times a timeout.
	g.pool.expirySlack = max(minExpirySlack, cfg.ResponseHeaderTimeout/100)
	return g, nil
}

// dial opens a new connection to the backend.
func (g *Gateway) dial(ctx context.Context) (*backendConn, error) {
	ctx, cancel := context.WithTimeout(ctx, g.dialTimeout)
	defer cancel()
	conn, err := g.dialer.DialContext(ctx, "tcp", g.addr)
	if err != nil {
		return nil, err
	}
	if g.tls != nil {
		tc := tls.Client(conn, g.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return newBackendConn(conn, g.timeout), nil
}

func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// ServeHTTP forwards r to the backend and streams the answer back.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchanges.Get().(*exchange)
	x.g, x.start, x.w, x.in, x.session = g, time.Now(), w, r, g.session(r)
	x.rc = *http.NewResponseController(w)
	// An HTTP/1.x handler may not read the request body once it has
	// written the response unless full duplex is on; the backend may well
	// answer before the upload ends.
	_ = x.rc.EnableFullDuplex()
	x.serve()
	if !x.detached {
		*x = exchange{}
		exchanges.Put(x)
	}
}

// exchanges are the exchanges no goroutine holds once their handler
// returned, for the next requests.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// requestTarget returns the request-target the backend gets: the
// client's, joined to the backend's URL as httputil.ProxyRequest.SetURL
// joins them.
func (g *Gateway) requestTarget(in *http.Request) string {
	if in.RequestURI == "*" {
		return "*"
	}
	u := *in.URL
	out := http.Request{URL: &u}
	(&httputil.ProxyRequest{In: in, Out: &out}).SetURL(g.backend)
	return u.RequestURI()
}

// CloseIdleConnections closes the idle connections to the backend.
func (g *Gateway) CloseIdleConnections() { g.pool.closeIdle(false) }

// Conns returns the connections open to the backend: busy with an
// exchange, and idle in the keep-alive pool.
func (g *Gateway) Conns() (busy, idle int) {
	st := g.pool.stats()
	return st.Busy, st.Idle
}

// Kinds of failed backend exchanges, as ErrorKind names them.
const (
	ErrConnect  = "connect"  // the backend could not be reached: 502
	ErrTimeout  = "timeout"  // no connection or no response header in time: 504
	ErrBroken   = "broken"   // the connection broke before the response header, or the answer was not HTTP: 502
	ErrCanceled = "canceled" // the client went away first
)

// ErrorKind names the kind of a failed backend exchange, as passed to
// Config.Observe: ErrConnect, ErrTimeout, ErrBroken or ErrCanceled.
func ErrorKind(r *http.Request, err error) string {
	var ne net.Error
	var op *net.OpError
	var rec tls.RecordHeaderError
	switch {
	case r.Context().Err() != nil && !errors.Is(err, context.DeadlineExceeded):
		return ErrCanceled
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.As(err, &op) && op.Op == "dial" || errors.As(err, &rec):
		return ErrConnect
	}
	return ErrBroken
}

// appendForwarding appends the gateway's forwarding fields for the
// client's request in: X-Forwarded-For, -Proto and -Host, and Forwarded
// (RFC 7239), each after what the client's own field of that name said.
func (g *Gateway) appendForwarding(b []byte, in *http.Request) []byte {
	proto := "http"
	if g.secure(in) {
		proto = "https"
	}
	ip := clientIP(in.RemoteAddr)
	mark := len(b)
	b = append(b, "X-Forwarded-For: "...)
	b, listed := appendList(b, in.Header["X-Forwarded-For"])
	switch {
	case ip != "":
		if listed {
			b = append(b, ", "...)
		}
		b = append(b, ip...)
		b = append(b, "\r\n"...)
	case listed:
		b = append(b, "\r\n"...)
	default:
		b = b[:mark] // nothing to say
	}
	b = append(b, "X-Forwarded-Proto: "...)
	b = append(b, proto...)
	b = append(b, "\r\n"...)
	if in.Host != "" {
		b = append(b, "X-Forwarded-Host: "...)
		b = appendFieldValue(b, in.Host)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Forwarded: "...)
	if b, listed = appendList(b, in.Header["Forwarded"]); listed {
		b = append(b, ", "...)
	}
	b = appendForwardedElement(b, ip, in.Host, proto)
	return append(b, "\r\n"...)
}

// appendList appends the values of one field as one comma-separated list,
// each as appendFieldValue writes it, leaving out empty ones (RFC 9110
// §5.6.1); listed reports whether it appended any.
func appendList(b []byte, vv []string) (_ []byte, listed bool) {
	for _, v := range vv {
		if textproto.TrimString(v) == "" {
			continue
		}
		if listed {
			b = append(b, ", "...)
		}
		b, listed = appendFieldValue(b, v), true
	}
	return b, listed
}

// clientIP returns the IP address part of a RemoteAddr, or "" if it has
// none.
func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // drop an IPv6 zone
		host = host[:i]
	}
	if net.ParseIP(host) == nil {
		return ""
	}
	return host
}

// appendForwardedElement appends one forwarded-element of RFC 7239 §4
// with the for, host and proto parameters. An IPv6 address is bracketed
// and quoted (§6); an empty ip is written as "unknown" (§6.3); host is
// quoted when it is not a token, as any host with a port is. An empty
// host is left out.
func appendForwardedElement(b []byte, ip, host, proto string) []byte {
	b = append(b, "for="...)
	switch {
	case ip == "":
		b = append(b, "unknown"...)
	case strings.Contains(ip, ":"):
		b = append(b, `"[`...)
		b = append(b, ip...)
		b = append(b, `]"`...)
	default:
		b = append(b, ip...)
	}
	if host != "" {
		b = append(b, ";host="...)
		b = appendQuotedIfNeeded(b, host)
	}
	b = append(b, ";proto="...)
	return append(b, proto...)
}

// appendQuotedIfNeeded appends s as an RFC 7230 token if it is one, else
// as a quoted-string.
func appendQuotedIfNeeded(b []byte, s string) []byte {
	token := s != ""
	for i := 0; i < len(s) && token; i++ {
		token = isTokenByte(s[i])
	}
	if token {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		if c < ' ' || c == 0x7f {
			continue // not allowed even in a quoted-string
		}
		b = append(b, c)
	}
	return append(b, '"')
}

func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// fail answers a request whose backend exchange failed before the response
// header was passed on: 504 for a backend that did not answer in time, 408
// for a client whose request body stalled, 502 for the rest.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusBadGateway, "spdymux: the backend is unavailable\n"
	var ne net.Error
	switch {
	case errors.Is(err, errStalled):
		// Checked first: net/http cancels the request's context when a
		// body read fails, our read deadline's included.
		g.failed.Add(1)
		status, msg = http.StatusRequestTimeout, "spdymux: the request body stalled\n"
		g.log.Info("gateway: request body stalled", "backend", g.backend.Host, "path", r.URL.Path, "err", err)
	case r.Context().Err() != nil:
		// The client went away; nobody reads this answer, but an answer
		// there must be (net/http would send 200 for none).
		g.log.Debug("gateway: client went away", "path", r.URL.Path, "err", err)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		g.failed.Add(1)
		status, msg = http.StatusGatewayTimeout, "spdymux: the backend did not answer in time\n"
		g.log.Warn("gateway: backend timeout", "backend", g.backend.Host, "path", r.URL.Path, "err", err)
	default:
		g.failed.Add(1)
		g.log.Warn("gateway: backend failed", "backend", g.backend.Host, "path", r.URL.Path, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(msg)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}
