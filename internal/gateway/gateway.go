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
//   - The request's Host is the backend's host; the client's Host travels in
//     X-Forwarded-Host and in Forwarded's host parameter.
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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
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
}

// Gateway is an http.Handler that forwards every request to the backend.
// It is safe for concurrent use.
type Gateway struct {
	backend   *url.URL
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	secure    func(*http.Request) bool
	log       *slog.Logger
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
		backend: cfg.Backend,
		secure:  cfg.Secure,
		log:     cfg.Logger,
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
		DialContext:           dialer.DialContext,
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
		Rewrite:       g.rewrite,
		Transport:     g.transport,
		FlushInterval: -1, // flush after every read from the backend
		ErrorHandler:  g.fail,
		ErrorLog:      slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
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
	g.proxy.ServeHTTP(w, r)
}

// CloseIdleConnections closes the idle connections to the backend.
func (g *Gateway) CloseIdleConnections() { g.transport.CloseIdleConnections() }

// rewrite turns the client's request into the backend's. ReverseProxy has
// already removed the hop-by-hop headers and every Forwarded and
// X-Forwarded-* header from pr.Out.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(g.backend)
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
