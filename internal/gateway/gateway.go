// Package gateway forwards HTTP requests to one HTTP/1.1 backend, such as
// an unmodified Apache httpd, over a bounded pool of keep-alive connections.
// It is what `spdymux serve -backend URL` puts behind the SPDY listener:
// every SPDY stream reaches the gateway as one request, and the gateway
// makes it one HTTP/1.1 exchange with the backend.
//
// Contract of the Gateway handler:
//
//   - Bodies stream both ways. The request body is sent to the backend as the
//     client sends it; the response body is flushed to the client as each
//     read from the backend returns. Neither is ever buffered whole.
//   - Hop-by-hop headers (RFC 9110 §7.6.1: Connection and the fields it
//     names, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
//     Upgrade) are removed in both directions.
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
//   - A backend that cannot be reached or breaks the exchange before the
//     response header gets 502 with a short text body. A backend that does
//     not send its response header within Config.ResponseHeaderTimeout gets
//     504. Either way only that request fails.
//   - When the request's context is cancelled (the client went away; for a
//     SPDY stream, the client sent RST_STREAM), the backend exchange is
//     aborted and its connection is closed, never returned to the pool.
//
// It is not a general proxy: there is one backend, no load balancing, no
// caching and no retries.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the Config fields.
const (
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultMaxConns              = 256
	DefaultMaxIdleConns          = 64
	DefaultDialTimeout           = 10 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
)

// Config configures a Gateway. Zero fields take the defaults above.
type Config struct {
	// Backend is the server requests go to, as returned by ParseBackend.
	// Its path, if any, is prefixed to every request path.
	Backend *url.URL

	// RewriteHost sends the backend's host (Backend's host and port) as
	// the request's Host instead of the client's.
	RewriteHost bool

	// ResponseHeaderTimeout bounds the wait for the backend's response
	// header once the request has been written; past it the client gets
	// 504. It does not bound the body. Default 30 s.
	ResponseHeaderTimeout time.Duration

	// MaxConns caps the connections open to the backend at once; requests
	// over it wait for a connection. Default 256.
	MaxConns int

	// MaxIdleConns caps the idle keep-alive connections kept for reuse.
	// Default 64.
	MaxIdleConns int

	// DialTimeout bounds connecting to the backend; past it the client
	// gets 504. Default 10 s.
	DialTimeout time.Duration

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
	// waiting for the answer. r is the request sent to the backend; its
	// context is the client request's. It is called on the request's
	// goroutine and must be quick.
	Observe func(r *http.Request, d time.Duration, err error)
}

// Gateway is an http.Handler that forwards every request to the backend.
// It is safe for concurrent use.
type Gateway struct {
	backend     *url.URL
	rewriteHost bool
	transport   *http.Transport
	proxy       *httputil.ReverseProxy
	secure      func(*http.Request) bool
	log         *slog.Logger
	observe     func(*http.Request, time.Duration, error)

	open, busy atomic.Int64 // backend connections open; exchanges holding one
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
	setDefault(&cfg.MaxIdleConns, DefaultMaxIdleConns)
	setDefault(&cfg.DialTimeout, DefaultDialTimeout)
	g := &Gateway{
		backend:     cfg.Backend,
		rewriteHost: cfg.RewriteHost,
		secure:      cfg.Secure,
		log:         cfg.Logger,
		observe:     cfg.Observe,
	}
	if g.secure == nil {
		g.secure = func(r *http.Request) bool { return r.TLS != nil }
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	g.transport = &http.Transport{
		// No Proxy: the backend is reached directly, whatever the
		// environment says.
		DialContext:           g.dialer(dialer),
		MaxConnsPerHost:       cfg.MaxConns,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		IdleConnTimeout:       DefaultIdleConnTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		// Bodies pass through as the backend encoded them.
		DisableCompression: true,
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      g.transport,
		FlushInterval:  -1, // flush after every read from the backend
		ErrorHandler:   g.fail,
		ModifyResponse: g.answered,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	return g, nil
}

func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// ServeHTTP forwards r to the backend and streams the answer back.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// An HTTP/1.x handler may not read the request body once it has
	// written the response unless full duplex is on; the backend may well
	// answer before the upload ends.
	_ = http.NewResponseController(w).EnableFullDuplex()
	ex := &exchange{start: time.Now()}
	ctx := context.WithValue(r.Context(), exchangeKey{}, ex)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		if ex.gotConn.CompareAndSwap(false, true) {
			g.busy.Add(1)
		}
	}})
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
	// The body is copied and closed: the connection is back in the pool,
	// or closed.
	if ex.gotConn.Load() {
		g.busy.Add(-1)
	}
}

// exchange is one request's backend exchange, in its context.
type exchange struct {
	start   time.Time
	gotConn atomic.Bool // it took a backend connection
}

type exchangeKey struct{}

// answered tells Observe of a response header from the backend.
func (g *Gateway) answered(resp *http.Response) error {
	if g.observe != nil {
		if ex, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange); ok {
			g.observe(resp.Request, time.Since(ex.start), nil)
		}
	}
	return nil
}

// CloseIdleConnections closes the idle connections to the backend.
func (g *Gateway) CloseIdleConnections() { g.transport.CloseIdleConnections() }

// Conns returns the connections open to the backend: busy with an
// exchange, and idle in the keep-alive pool. The two are read one after
// the other: a snapshot for a gauge, not an invariant.
func (g *Gateway) Conns() (busy, idle int) {
	b, open := g.busy.Load(), g.open.Load()
	return int(b), int(max(open-b, 0))
}

// dialer wraps d's DialContext to count the connections open.
func (g *Gateway) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		g.open.Add(1)
		return &countedConn{Conn: c, open: &g.open}, nil
	}
}

// countedConn takes itself off the count of open connections when closed.
type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// Kinds of failed backend exchanges, as ErrorKind names them.
const (
	ErrConnect  = "connect"  // the backend could not be reached: 502
	ErrTimeout  = "timeout"  // no connection or no response header in time: 504
	ErrBroken   = "broken"   // the connection broke before the response header: 502
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

// rewrite turns the client's request into the backend's. ReverseProxy has
// already removed the hop-by-hop headers and every Forwarded and
// X-Forwarded-* header from pr.Out.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(g.backend)
	if !g.rewriteHost {
		pr.Out.Host = pr.In.Host
	}
	proto := "http"
	if g.secure(pr.In) {
		proto = "https"
	}
	ip := clientIP(pr.In.RemoteAddr)

	if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = []string{strings.Join(prior, ", ")}
	}
	if ip != "" {
		appendValue(pr.Out.Header, "X-Forwarded-For", ip)
	}
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
	if pr.In.Host != "" {
		pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	}

	if prior := pr.In.Header.Values("Forwarded"); len(prior) > 0 {
		pr.Out.Header["Forwarded"] = []string{strings.Join(prior, ", ")}
	}
	appendValue(pr.Out.Header, "Forwarded", ForwardedElement(ip, pr.In.Host, proto))
}

// appendValue appends v to the comma-separated list in the single field
// name of h.
func appendValue(h http.Header, name, v string) {
	if prior := h.Get(name); prior != "" {
		v = prior + ", " + v
	}
	h.Set(name, v)
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

// ForwardedElement returns one forwarded-element of RFC 7239 §4 with the
// for, host and proto parameters. An IPv6 address is bracketed and quoted
// (§6); an empty ip is written as "unknown" (§6.3); host is quoted when it
// is not a token, as any host with a port is. An empty host is left out.
func ForwardedElement(ip, host, proto string) string {
	var b strings.Builder
	b.WriteString("for=")
	switch {
	case ip == "":
		b.WriteString("unknown")
	case strings.Contains(ip, ":"):
		b.WriteString(`"[` + ip + `]"`)
	default:
		b.WriteString(ip)
	}
	if host != "" {
		b.WriteString(";host=")
		b.WriteString(quoteIfNeeded(host))
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	return b.String()
}

// quoteIfNeeded returns s as an RFC 7230 token if it is one, else as a
// quoted-string.
func quoteIfNeeded(s string) string {
	token := s != ""
	for i := 0; i < len(s) && token; i++ {
		token = isTokenByte(s[i])
	}
	if token {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		if c < ' ' || c == 0x7f {
			continue // not allowed even in a quoted-string
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// fail answers a request whose backend exchange failed before the response
// header arrived.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	if g.observe != nil {
		if ex, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
			g.observe(r, time.Since(ex.start), err)
		}
	}
	status, msg := http.StatusBadGateway, "spdymux: the backend is unavailable\n"
	var ne net.Error
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		g.log.Debug("gateway: client went away", "path", r.URL.Path, "err", err)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		status, msg = http.StatusGatewayTimeout, "spdymux: the backend did not answer in time\n"
		g.log.Warn("gateway: backend timeout", "backend", g.backend.Host, "path", r.URL.Path, "err", err)
	default:
		g.log.Warn("gateway: backend failed", "backend", g.backend.Host, "path", r.URL.Path, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(msg)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}
