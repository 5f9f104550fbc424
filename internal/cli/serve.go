package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/demo"
	"github.com/spdymux/spdymux/internal/gateway"
)

// serveOptions are the flags of `spdymux serve`.
type serveOptions struct {
	listen      string
	listenPlain string
	cert, key   string
	dir         string
	backend     string

	protocols    string
	maxStreams   uint
	workers      int
	window       int
	plainVersion string

	accessLog       string
	logLevel        string
	shutdownTimeout time.Duration

	backendTimeout  time.Duration
	backendMaxConns int
	backendMaxIdle  int
}

func (o *serveOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("spdymux serve", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8443",
		"`address` to serve TLS on; ALPN chooses one of -protocols, or http/1.1 (\"\" for none)")
	fs.StringVar(&o.listenPlain, "listen-plain", "",
		"`address` to serve cleartext on: HTTP/2 with prior knowledge (h2c), SPDY and HTTP/1.1, told apart by the first bytes (off unless given)")
	fs.StringVar(&o.protocols, "protocols", strings.Join(defaultProtocols, ","),
		"the multiplexed protocols served, comma-separated, in order of preference for ALPN: h2, spdy/3.1, spdy/3, spdy/2 "+
			"(h2 also enables h2c on -listen-plain); http/1.1 is always served")
	fs.StringVar(&o.cert, "cert", "",
		"PEM certificate `file` (chain) for -listen; with neither -cert nor -key a self-signed certificate for localhost is made at start")
	fs.StringVar(&o.key, "key", "", "PEM private key `file` for -cert")
	fs.StringVar(&o.dir, "dir", "",
		"serve the files in `directory`; the diagnostic endpoints stay available where no file shadows them")
	fs.StringVar(&o.backend, "backend", "",
		"gateway mode: send every request to the HTTP/1.1 server at `URL`, such as http://127.0.0.1:8080")
	fs.UintVar(&o.maxStreams, "max-streams", spdymux.DefaultMaxConcurrentStreams,
		"concurrent streams per session (SPDY and HTTP/2), advertised in SETTINGS")
	fs.IntVar(&o.workers, "workers", 1024,
		"worker slots for the whole process: streams served at once; the rest wait in priority order")
	fs.IntVar(&o.window, "window", spdymux.DefaultInitialWindowSize,
		"initial stream flow-control window in `bytes` advertised to clients (HTTP/2, SPDY/3 and 3.1)")
	fs.StringVar(&o.plainVersion, "plain-version", "3.1",
		"protocol of version 3 frames on -listen-plain, where nothing tells them apart: 3.1 or 3")
	fs.StringVar(&o.accessLog, "access-log", "",
		"write an access log (Common Log Format, with HTTP/2.0, SPDY/3.1, SPDY/3, SPDY/2 or HTTP/1.1 as the protocol) to `file`, \"-\" for stdout (off unless given)")
	fs.StringVar(&o.logLevel, "log-level", "info", "`level` of the log on stderr: debug, info, warn or error")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second,
		"on SIGINT or SIGTERM, how long sessions may drain after GOAWAY before they are cut")
	fs.DurationVar(&o.backendTimeout, "backend-timeout", gateway.DefaultResponseHeaderTimeout,
		"gateway: how long to wait for the backend's response header before answering 504")
	fs.IntVar(&o.backendMaxConns, "backend-max-conns", gateway.DefaultMaxConns,
		"gateway: most connections open to the backend at once")
	fs.IntVar(&o.backendMaxIdle, "backend-max-idle", gateway.DefaultMaxIdleConns,
		"gateway: most idle keep-alive connections kept to the backend")
	return fs
}

const serveUsageHead = `Usage: spdymux serve [flags]

Serve HTTP/2 (h2 by ALPN over TLS, h2c with prior knowledge on -listen-plain),
SPDY/3.1, SPDY/3 and SPDY/2, and HTTP/1.1, with one of:

  the built-in demo site (the default): a page of tiles that load over one
      connection (a browser speaks HTTP/2), and the diagnostic endpoints
      GET /hello, GET /bytes/N, POST|PUT /echo, GET /status/N,
      GET /slow?ms=N, GET /headers, GET /info
  -dir DIR       the files in DIR
  -backend URL   an unmodified HTTP/1.1 server (gateway mode); it learns the
                 client from Forwarded and X-Forwarded-For/-Proto/-Host

Flags:
`

const serveUsageTail = `
SIGINT or SIGTERM sends GOAWAY to every session, lets the open streams finish
for up to -shutdown-timeout, and exits 0. Exit status 1: the server could not
start (port in use, unreadable certificate, missing directory); 2: bad flags.
`

func runServe(ctx context.Context, e *env, args []string) (int, error) {
	var o serveOptions
	fs := o.flags()
	if err := parseFlags(e, fs, args, serveUsageHead, serveUsageTail); err != nil {
		return exitUsage, err
	}
	if fs.NArg() > 0 {
		return exitUsage, fmt.Errorf("unexpected argument %q (run 'spdymux serve -h')", fs.Arg(0))
	}
	cfg, err := o.check()
	if err != nil {
		return exitUsage, err
	}
	s, err := newServer(e, &o, cfg)
	if err != nil {
		return exitFailure, err
	}
	return s.run(ctx)
}

// defaultProtocols are -protocols' default: every multiplexed protocol,
// HTTP/2 first.
var defaultProtocols = []string{spdymux.ProtoH2, spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2}

// checked holds the flag values that check parsed.
type checked struct {
	level       slog.Level
	backend     *gateway.Config
	cleartextV3 string
	protocols   []string
}

// parseProtocols reads -protocols: a comma-separated list of
// defaultProtocols, each once.
func parseProtocols(s string) ([]string, error) {
	var ps []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			continue
		case !slices.Contains(defaultProtocols, p):
			return nil, fmt.Errorf("bad -protocols %q: %q is not one of %s", s, p, strings.Join(defaultProtocols, ", "))
		case slices.Contains(ps, p):
			return nil, fmt.Errorf("bad -protocols %q: %s twice", s, p)
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("bad -protocols %q: want one or more of %s", s, strings.Join(defaultProtocols, ", "))
	}
	return ps, nil
}

// check validates the flags on their own, before anything is opened.
func (o *serveOptions) check() (checked, error) {
	var c checked
	if err := c.level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return c, fmt.Errorf("bad -log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.listen == "" && o.listenPlain == "" {
		return c, errors.New("nothing to listen on: -listen and -listen-plain are both empty")
	}
	for _, a := range []struct{ flag, addr string }{{"listen", o.listen}, {"listen-plain", o.listenPlain}} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			return c, fmt.Errorf("bad -%s %q: want HOST:PORT, such as 127.0.0.1:8443", a.flag, a.addr)
		}
	}
	if (o.cert == "") != (o.key == "") {
		return c, errors.New("-cert and -key must be given together")
	}
	if o.cert != "" && o.listen == "" {
		return c, errors.New("-cert and -key need -listen")
	}
	if o.dir != "" && o.backend != "" {
		return c, errors.New("-dir and -backend cannot be used together")
	}
	var err error
	if c.protocols, err = parseProtocols(o.protocols); err != nil {
		return c, err
	}
	switch o.plainVersion {
	case "3.1":
		c.cleartextV3 = spdymux.ProtoSPDY31
	case "3":
		c.cleartextV3 = spdymux.ProtoSPDY3
	default:
		return c, fmt.Errorf("bad -plain-version %q: want 3.1 or 3", o.plainVersion)
	}
	switch {
	case o.maxStreams < 1 || o.maxStreams > math.MaxInt32:
		return c, fmt.Errorf("bad -max-streams %d: want 1 to %d", o.maxStreams, math.MaxInt32)
	case o.workers < 1:
		return c, fmt.Errorf("bad -workers %d: want at least 1", o.workers)
	case o.window < 1 || o.window > math.MaxInt32:
		// SPDY/3 §2.6.8: a window may not exceed 2^31 - 1.
		return c, fmt.Errorf("bad -window %d: want 1 to %d bytes", o.window, math.MaxInt32)
	case o.shutdownTimeout <= 0:
		return c, fmt.Errorf("bad -shutdown-timeout %v: want a positive duration", o.shutdownTimeout)
	}
	if o.backend != "" {
		u, err := gateway.ParseBackend(o.backend)
		if err != nil {
			return c, errors.New(strings.Replace(err.Error(), "gateway: bad backend URL", "bad -backend", 1))
		}
		switch {
		case o.backendTimeout <= 0:
			return c, fmt.Errorf("bad -backend-timeout %v: want a positive duration", o.backendTimeout)
		case o.backendMaxConns < 1:
			return c, fmt.Errorf("bad -backend-max-conns %d: want at least 1", o.backendMaxConns)
		case o.backendMaxIdle < 1:
			return c, fmt.Errorf("bad -backend-max-idle %d: want at least 1", o.backendMaxIdle)
		}
		c.backend = &gateway.Config{
			Backend:               u,
			ResponseHeaderTimeout: o.backendTimeout,
			MaxConns:              o.backendMaxConns,
			MaxIdleConns:          o.backendMaxIdle,
			Secure:                viaTLS,
		}
	}
	return c, nil
}

// viaTLS reports whether r reached us over TLS, as an HTTP/2 or SPDY
// stream or as HTTP/1.x.
func viaTLS(r *http.Request) bool {
	if si, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
		return si.TLS != nil
	}
	return r.TLS != nil
}

// server is one running `spdymux serve`.
type server struct {
	e   *env
	o   *serveOptions
	log *slog.Logger

	srv       *http.Server
	tlsLn     *spdymux.Listener // nil without -listen
	plainLn   *spdymux.Listener // nil without -listen-plain
	gateway   *gateway.Gateway  // nil unless -backend
	accessOut io.Closer         // the -access-log file, if any
}

// newServer opens everything the flags name and starts listening. On error
// everything opened so far is closed again.
func newServer(e *env, o *serveOptions, c checked) (*server, error) {
	s := &server{e: e, o: o}
	started := false
	defer func() {
		if !started {
			s.closeAll()
		}
	}()
	var err error
	s.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: c.level}))

	var h http.Handler
	var what string
	switch {
	case c.backend != nil:
		c.backend.Logger = s.log
		if s.gateway, err = gateway.New(*c.backend); err != nil {
			return nil, err
		}
		h, what = s.gateway, "as a gateway to the HTTP/1.1 backend "+c.backend.Backend.String()
	case o.dir != "":
		if h, err = demo.Files(o.dir); err != nil {
			return nil, fmt.Errorf("-dir: %w", err)
		}
		what = "the files in " + o.dir + " (and the diagnostic endpoints where no file shadows them)"
	default:
		h, what = demo.Handler(), "the demo site"
	}
	switch o.accessLog {
	case "":
	case "-":
		h = (&accessLog{out: e.stdout}).wrap(h)
	default:
		f, err := os.OpenFile(o.accessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("-access-log: %w", err)
		}
		s.accessOut = f
		h = (&accessLog{out: f}).wrap(h)
	}

	// Take the ports first, so that a port in use is the only message.
	var tlsInner, plainInner net.Listener
	defer func() {
		if !started {
			for _, l := range []net.Listener{tlsInner, plainInner} {
				if l != nil {
					l.Close()
				}
			}
		}
	}()
	if o.listen != "" {
		if tlsInner, err = net.Listen("tcp", o.listen); err != nil {
			return nil, fmt.Errorf("-listen: %w", err)
		}
	}
	if o.listenPlain != "" {
		if plainInner, err = net.Listen("tcp", o.listenPlain); err != nil {
			return nil, fmt.Errorf("-listen-plain: %w", err)
		}
	}

	var tlsConfig *tls.Config
	if o.listen != "" {
		var cert tls.Certificate
		if o.cert != "" {
			if cert, err = tls.LoadX509KeyPair(o.cert, o.key); err != nil {
				return nil, fmt.Errorf("-cert/-key: %w", err)
			}
		} else {
			if cert, err = selfSigned(time.Now()); err != nil {
				return nil, fmt.Errorf("making a self-signed certificate: %w", err)
			}
			fmt.Fprintf(e.stdout, "spdymux: no -cert/-key: made a self-signed certificate for %s\n", strings.Join(selfSignedHosts, ", "))
			fmt.Fprintf(e.stdout, "spdymux: certificate SHA-256 fingerprint %s\n", fingerprint(cert.Certificate[0]))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	pool := spdymux.NewPool(o.workers)
	config := func() *spdymux.Config {
		return &spdymux.Config{
			Protocols:            c.protocols,
			MaxConcurrentStreams: uint32(o.maxStreams),
			InitialWindowSize:    int32(o.window),
			Pool:                 pool,
			Logger:               s.log,
		}
	}
	if o.listen != "" {
		cfg := config()
		cfg.TLSConfig = tlsConfig
		s.tlsLn = spdymux.NewListener(tlsInner, cfg)
	}
	if o.listenPlain != "" {
		cfg := config()
		cfg.CleartextV3 = c.cleartextV3
		s.plainLn = spdymux.NewListener(plainInner, cfg)
	}

	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	spdymux.ConfigureServer(s.srv)

	fmt.Fprintf(e.stdout, "spdymux: serving %s\n", what)
	path := "" // a directory or a backend may have no /hello
	if s.gateway == nil && o.dir == "" {
		path = "hello"
	}
	if s.tlsLn != nil {
		u := displayURL("https", s.tlsLn.Addr())
		fmt.Fprintf(e.stdout, "spdymux: TLS (ALPN %s, http/1.1) on %s\n", strings.Join(c.protocols, ", "), u)
		if o.cert == "" {
			// With -cert the URL's host may not be the certificate's.
			printTry(e.stdout, c.protocols, u, path)
		}
	}
	if s.plainLn != nil {
		u := displayURL("http", s.plainLn.Addr())
		fmt.Fprintf(e.stdout, "spdymux: cleartext %s on %s\n", cleartextWhat(c.protocols, c.cleartextV3), u)
		printTry(e.stdout, c.protocols, u, path)
	}
	if s.gateway != nil {
		s.probeBackend(c.backend.Backend.Host, c.backend.Backend.Scheme)
	}
	started = true
	return s, nil
}

// cleartextWhat says which protocols a cleartext listener tells apart.
func cleartextWhat(protocols []string, v3 string) string {
	var what []string
	if slices.Contains(protocols, spdymux.ProtoH2) {
		what = append(what, "HTTP/2 with prior knowledge (h2c)")
	}
	var spdy []string
	if slices.Contains(protocols, spdymux.ProtoSPDY2) {
		spdy = append(spdy, spdymux.ProtoSPDY2)
	}
	if slices.Contains(protocols, v3) || slices.Contains(protocols, spdymux.ProtoSPDY3) {
		if !slices.Contains(protocols, v3) {
			v3 = spdymux.ProtoSPDY3
		}
		spdy = append(spdy, "version 3 as "+v3)
	}
	if len(spdy) > 0 {
		what = append(what, "SPDY ("+strings.Join(spdy, ", ")+")")
	}
	return strings.Join(append(what, "HTTP/1.1"), ", ")
}

// printTry tells how to try the listener at base (ending in "/", with a
// self-signed certificate if https): a browser and curl speak HTTP/2,
// spdymux get SPDY.
func printTry(w io.Writer, protocols []string, base, path string) {
	secure := strings.HasPrefix(base, "https:")
	k := ""
	if secure {
		k = "-k "
	}
	var try []string
	if slices.Contains(protocols, spdymux.ProtoH2) {
		if secure {
			try = append(try, "a browser on "+base+"  (HTTP/2; accept the self-signed certificate)",
				"curl -k --http2 "+base+path+"  (HTTP/2)")
		} else {
			try = append(try, "curl --http2-prior-knowledge "+base+path+"  (h2c)")
		}
	}
	for _, p := range protocols {
		if p != spdymux.ProtoH2 {
			try = append(try, "spdymux get "+k+"-v "+base+path+"  (SPDY)")
			break
		}
	}
	if !slices.Contains(protocols, spdymux.ProtoH2) {
		try = append(try, "curl "+k+base+path+"  (HTTP/1.1)")
	}
	for i, t := range try {
		lead := "spdymux: try: "
		if i > 0 {
			lead = "spdymux:   or "
		}
		fmt.Fprintln(w, lead+t)
	}
}

// displayURL returns the URL a client on this machine would use for a.
func displayURL(scheme string, a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return scheme + "://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// probeBackend warns when the backend does not take connections at start;
// the gateway answers 502 until it does.
func (s *server) probeBackend(host, scheme string) {
	if _, _, err := net.SplitHostPort(host); err != nil {
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(host, port)
	}
	c, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		s.log.Warn("backend not reachable yet; requests get 502 until it is", "backend", host, "err", err)
		return
	}
	c.Close()
}

// listeners returns the listeners in use.
func (s *server) listeners() []*spdymux.Listener {
	var ls []*spdymux.Listener
	for _, l := range []*spdymux.Listener{s.tlsLn, s.plainLn} {
		if l != nil {
			ls = append(ls, l)
		}
	}
	return ls
}

// run serves until ctx is done or a listener fails, then shuts down.
func (s *server) run(ctx context.Context) (int, error) {
	lns := s.listeners()
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- s.srv.Serve(l) }()
	}
	if s.e.ready != nil {
		var a listening
		if s.tlsLn != nil {
			a.tls = s.tlsLn.Addr()
		}
		if s.plainLn != nil {
			a.plain = s.plainLn.Addr()
		}
		s.e.ready(a)
	}

	running := len(lns)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		running--
	}
	s.shutdown()
	for range running {
		<-errc
	}
	s.closeAll()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return exitFailure, fmt.Errorf("serving: %w", serveErr)
	}
	fmt.Fprintln(s.e.stdout, "spdymux: stopped")
	return exitOK, nil
}

// shutdown sends GOAWAY to every session and waits, up to
// -shutdown-timeout, for their streams and then for the HTTP/1.x
// connections to finish; what is left then is cut.
func (s *server) shutdown() {
	fmt.Fprintf(s.e.stdout, "spdymux: shutting down: GOAWAY to every session, draining for up to %v\n", s.o.shutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), s.o.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range s.listeners() {
		wg.Go(func() {
			if err := l.Shutdown(ctx); err != nil {
				s.log.Warn("sessions cut at the shutdown timeout", "addr", l.Addr().String(), "err", err)
			}
		})
	}
	wg.Wait()
	// Shutdown returns ctx's error when connections were still open at
	// the deadline; any other error is from closing the listeners, which
	// the SPDY listeners' Shutdown may already have closed.
	switch err := s.srv.Shutdown(ctx); {
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("connections cut at the shutdown timeout")
		s.srv.Close()
	case err != nil:
		s.log.Debug("closing the listeners", "err", err)
	}
}

// closeAll closes whatever is open; it may be called more than once.
func (s *server) closeAll() {
	for _, l := range s.listeners() {
		l.Close()
	}
	if s.gateway != nil {
		s.gateway.CloseIdleConnections()
	}
	if s.accessOut != nil {
		s.accessOut.Close()
		s.accessOut = nil
	}
}
