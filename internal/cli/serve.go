package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/demo"
	"github.com/spdymux/spdymux/internal/gateway"
)

// serveOptions are the flags of `spdymux serve`.
type serveOptions struct {
	listen        string
	listenPlain   string
	cert, key     string
	dir           string
	demoEndpoints bool
	backend       string

	protocols    string
	maxStreams   uint
	workers      int
	window       int
	lowat        int
	plainVersion string
	push, pushH2 bool
	secondary    bool

	accessLog       string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	readHeader      time.Duration
	metrics         string
	proxyProtocol   bool
	proxyFrom       string

	backendTimeout     time.Duration
	backendMaxConns    int
	backendMaxIdle     int
	backendPipeline    int
	backendPipeWait    time.Duration
	backendRewriteHost bool
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
		"serve the files in `directory`, and nothing else")
	fs.BoolVar(&o.demoEndpoints, "demo-endpoints", false,
		"with -dir, also serve the demo's diagnostic endpoints (/hello, /bytes/N, /echo, /slow, ...) where no file answers")
	fs.StringVar(&o.backend, "backend", "",
		"gateway mode: send every request to the HTTP/1.1 server at `URL`, such as http://127.0.0.1:8080; "+
			"a path in URL is a prefix of every request's path; the backend gets the client's Host")
	fs.BoolVar(&o.backendRewriteHost, "backend-rewrite-host", false,
		"gateway: send the backend's host and port as Host instead of the client's Host")
	fs.UintVar(&o.maxStreams, "max-streams", spdymux.DefaultMaxConcurrentStreams,
		"concurrent streams per session (SPDY and HTTP/2), advertised in SETTINGS")
	fs.IntVar(&o.workers, "workers", 1024,
		"worker slots for the whole process: streams served at once; the rest wait in priority order")
	fs.IntVar(&o.window, "window", spdymux.DefaultInitialWindowSize,
		"initial stream flow-control window in `bytes` advertised to clients (HTTP/2, SPDY/3 and 3.1)")
	fs.IntVar(&o.lowat, "notsent-lowat", spdymux.DefaultNotSentLowat,
		"TCP_NOTSENT_LOWAT of session sockets in `bytes` (Linux, macOS): the most written-but-unsent bytes the kernel holds, "+
			"so that urgent responses do not wait behind megabytes of queued downloads; -1 leaves the system's setting")
	fs.StringVar(&o.plainVersion, "plain-version", "3.1",
		"protocol of version 3 frames on -listen-plain, where nothing tells them apart: 3.1 or 3")
	fs.BoolVar(&o.push, "push", true,
		"SPDY server push (SPDY/3.1, 3 and 2) of what the server names in X-Associated-Content or Link rel=preload (mod_spdy pushed by default, "+
			"and SPDY clients take pushes; -push=false turns it off)")
	fs.BoolVar(&o.pushH2, "push-h2", false,
		"HTTP/2 server push (PUSH_PROMISE) of the same; off by default, as browsers dropped it")
	fs.BoolVar(&o.secondary, "secondary-conns", false,
		"serve each SPDY and HTTP/2 stream as an HTTP/1.1 exchange on a secondary connection of the built-in http.Server "+
			"(mod_spdy's design) rather than calling the site or gateway handler directly (handler mode, faster; see docs/handler-mode.md)")
	fs.StringVar(&o.accessLog, "access-log", "",
		"write an access log to `file`, \"-\" for stdout (off unless given): Combined Log Format with HTTP/2.0, SPDY/3.1, SPDY/3, SPDY/2 or "+
			"HTTP/1.1 as the protocol, then proto, session, stream, duration_ms and (gateway) backend_ms; JSON with -log-format json. "+
			"SIGHUP reopens it")
	fs.StringVar(&o.logLevel, "log-level", "info", "`level` of the log on stderr: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", logText, "`format` of the log on stderr and of the access log: text (key=value lines; "+
		"the access log in Combined Log Format) or json (one object per line)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second,
		"on SIGINT or SIGTERM, how long sessions may drain after GOAWAY before they are cut")
	fs.DurationVar(&o.readHeader, "read-header-timeout", 30*time.Second,
		"how long an HTTP/1.x client may take to send a request's header once its connection is told apart "+
			"(slowloris); the connection is closed past it")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 0,
		"on SIGINT or SIGTERM, how long to go on serving, with /healthz at 503, before GOAWAY and closing the listeners: "+
			"time for a load balancer's health checks to take the instance out")
	fs.StringVar(&o.metrics, "metrics", "",
		"serve Prometheus metrics at http://`address`/metrics, with /healthz (503 while draining) and /debug/pprof/ (off unless given; "+
			"keep it off the public network)")
	fs.BoolVar(&o.proxyProtocol, "proxy-protocol", false,
		"read a PROXY protocol header (v1 or v2, as HAProxy's send-proxy and send-proxy-v2 send) at the start of every connection on "+
			"-listen and -listen-plain: the client address it carries is the one the server, the access log and the backend see; "+
			"a connection without one is closed")
	fs.StringVar(&o.proxyFrom, "proxy-protocol-from", "",
		"with -proxy-protocol, the balancers: comma-separated `addresses` or CIDR ranges that must send a PROXY header; "+
			"other clients connect directly and may not send one (default: every connection must)")
	fs.DurationVar(&o.backendTimeout, "backend-timeout", gateway.DefaultResponseHeaderTimeout,
		"gateway: how long to wait for the backend's response header before answering 504")
	fs.IntVar(&o.backendMaxConns, "backend-max-conns", gateway.DefaultMaxConns,
		"gateway: most connections open to the backend at once")
	fs.IntVar(&o.backendMaxIdle, "backend-max-idle", gateway.DefaultMaxIdleConns,
		"gateway: most idle keep-alive connections kept to the backend (those beyond it are closed after a second idle)")
	fs.IntVar(&o.backendPipeline, "backend-pipeline", gateway.DefaultPipelineDepth,
		"gateway: a GET or HEAD that would wait for a backend connection queues instead on one its client session holds, behind at most `N` others "+
			"(HTTP/1.1 pipelining: less CPU per request; an answer waits for those ahead of it, so none queues behind answers expected to take longer than another line's); "+
			"0 sends one request at a time on each backend connection")
	fs.DurationVar(&o.backendPipeWait, "backend-pipeline-wait", gateway.DefaultPipelineWait,
		"gateway, with -backend-pipeline: a GET or HEAD queues also when it could have a connection of its own, on one whose answers ahead "+
			"are expected within this `duration` (by how long the backend took lately for their paths); 0: only instead of waiting")
	return fs
}

const serveUsageHead = `Usage: spdymux serve [flags]

Serve HTTP/2 (h2 by ALPN over TLS, h2c with prior knowledge on -listen-plain),
SPDY/3.1, SPDY/3 and SPDY/2, and HTTP/1.1, with one of:

  the built-in demo site (the default): a page of tiles that load over one
      connection (a browser speaks HTTP/2), and the diagnostic endpoints
      GET /hello, GET /bytes/N, POST|PUT /echo, GET /status/N,
      GET /slow?ms=N, GET /headers, GET /info
  -dir DIR       the files in DIR, and nothing else (-demo-endpoints adds
                 the diagnostic endpoints)
  -backend URL   an unmodified HTTP/1.1 server (gateway mode); it gets the
                 client's Host, and learns the client from Forwarded and
                 X-Forwarded-For/-Proto/-Host

Flags:
`

const serveUsageTail = `
Signals: SIGINT or SIGTERM turns /healthz to 503 (and, with -shutdown-delay,
serves on for that long), sends GOAWAY to every session, lets the open
streams finish for up to -shutdown-timeout, and exits 0; a second one exits
at once. SIGHUP reloads -cert and -key (new handshakes get the new
certificate, open sessions go on; unreadable files keep the old one and say
why) and reopens the -access-log file (for logrotate).

Exit status 1: the server could not start (port in use, unreadable
certificate, missing directory); 2: bad flags.
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
	log := newLogger(e.stderr, cfg.logFormat, cfg.level)
	s, err := newServer(e, &o, cfg, log)
	if err != nil {
		log.Error(err.Error())
		return exitFailure, loggedError{err}
	}
	code, err := s.run(ctx)
	if err != nil {
		log.Error(err.Error())
		return code, loggedError{err}
	}
	return code, nil
}

// defaultProtocols are -protocols' default: every multiplexed protocol,
// HTTP/2 first.
var defaultProtocols = []string{spdymux.ProtoH2, spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2}

// checked holds the flag values that check parsed.
type checked struct {
	level       slog.Level
	logFormat   string
	backend     *gateway.Config
	cleartextV3 string
	protocols   []string
	proxyPolicy proxyproto.ConnPolicyFunc
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
	var err error
	if c.logFormat, err = parseLogFormat(o.logFormat); err != nil {
		return c, err
	}
	if o.listen == "" && o.listenPlain == "" {
		return c, errors.New("nothing to listen on: -listen and -listen-plain are both empty")
	}
	for _, a := range []struct{ flag, addr string }{{"listen", o.listen}, {"listen-plain", o.listenPlain}, {"metrics", o.metrics}} {
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
	if o.demoEndpoints && o.dir == "" {
		return c, errors.New("-demo-endpoints goes with -dir (the demo site has them; a -backend has its own)")
	}
	if o.proxyFrom != "" {
		if !o.proxyProtocol {
			return c, errors.New("-proxy-protocol-from goes with -proxy-protocol")
		}
		if c.proxyPolicy, err = parseProxyFrom(o.proxyFrom); err != nil {
			return c, err
		}
	}
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
	case o.lowat == 0 || o.lowat < -1:
		return c, fmt.Errorf("bad -notsent-lowat %d: want a positive number of bytes, or -1", o.lowat)
	case o.shutdownTimeout <= 0:
		return c, fmt.Errorf("bad -shutdown-timeout %v: want a positive duration", o.shutdownTimeout)
	case o.shutdownDelay < 0:
		return c, fmt.Errorf("bad -shutdown-delay %v", o.shutdownDelay)
	case o.readHeader <= 0:
		return c, fmt.Errorf("bad -read-header-timeout %v: want a positive duration", o.readHeader)
	}
	if o.backend != "" {
		if !strings.Contains(o.backend, "://") {
			// "127.0.0.1:8080" parses as a URL of scheme "127.0.0.1", or
			// not at all: say what was meant.
			return c, fmt.Errorf("bad -backend %q: want a URL, such as http://%s", o.backend, strings.TrimPrefix(o.backend, "//"))
		}
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
		case o.backendPipeline < 0:
			return c, fmt.Errorf("bad -backend-pipeline %d: want 0 or more", o.backendPipeline)
		case o.backendPipeWait < 0:
			return c, fmt.Errorf("bad -backend-pipeline-wait %v: want 0 or more", o.backendPipeWait)
		}
		pipeWait := o.backendPipeWait
		if pipeWait == 0 {
			pipeWait = -1 // the Config's "never"
		}
		c.backend = &gateway.Config{
			Backend:               u,
			ResponseHeaderTimeout: o.backendTimeout,
			MaxConns:              o.backendMaxConns,
			MaxIdleConns:          o.backendMaxIdle,
			PipelineDepth:         o.backendPipeline,
			PipelineWait:          pipeWait,
			RewriteHost:           o.backendRewriteHost,
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

	srv        *http.Server
	tlsLn      *spdymux.Listener // nil without -listen
	plainLn    *spdymux.Listener // nil without -listen-plain
	gateway    *gateway.Gateway  // nil unless -backend
	certs      *certStore        // nil without -listen
	access     *accessLog        // nil without -access-log
	accessFile *os.File          // the -access-log file, if not stdout
	metrics    *metrics          // nil without -metrics
	metricsSrv *http.Server
	metricsLn  net.Listener
}

// newServer opens everything the flags name and starts listening. On error
// everything opened so far is closed again.
func newServer(e *env, o *serveOptions, c checked, log *slog.Logger) (*server, error) {
	s := &server{e: e, o: o, log: log}
	started := false
	defer func() {
		if !started {
			s.closeAll()
		}
	}()
	var err error
	if o.metrics != "" {
		s.metrics = newMetrics()
	}

	var h http.Handler
	var what string
	switch {
	case c.backend != nil:
		c.backend.Logger = s.log
		if s.metrics != nil {
			c.backend.Observe = s.observeBackend
		} else {
			c.backend.Observe = noteBackend
		}
		if s.gateway, err = gateway.New(*c.backend); err != nil {
			return nil, err
		}
		h, what = s.gateway, "as a gateway to the HTTP/1.1 backend "+c.backend.Backend.String()
		if o.backendRewriteHost {
			what += " (Host rewritten to the backend's)"
		}
	case o.dir != "":
		if h, err = demo.Files(o.dir, o.demoEndpoints); err != nil {
			return nil, fmt.Errorf("-dir: %w", err)
		}
		what = "the files in " + o.dir
		if o.demoEndpoints {
			what += " and the diagnostic endpoints where no file shadows them"
		}
	default:
		h, what = demo.Handler(), "the demo site"
	}
	switch o.accessLog {
	case "":
	case "-":
		s.access = newAccessLog(e.stdout, c.logFormat, s.gateway != nil)
	default:
		f, err := openAccessLog(o.accessLog)
		if err != nil {
			return nil, err
		}
		s.accessFile = f
		s.access = newAccessLog(f, c.logFormat, s.gateway != nil)
	}
	if s.access != nil || s.metrics != nil {
		h = observe(h, s.access, s.metrics)
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
	if o.metrics != "" {
		if s.metricsLn, err = net.Listen("tcp", o.metrics); err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
	}

	var tlsConfig *tls.Config
	if o.listen != "" {
		s.certs = &certStore{certFile: o.cert, keyFile: o.key, log: s.log, m: s.metrics}
		if o.cert != "" {
			if err := s.certs.load(); err != nil {
				return nil, err
			}
			s.log.Info("certificate loaded", append([]any{"cert", o.cert}, s.certs.describe()...)...)
		} else {
			cert, err := selfSigned(time.Now())
			if err != nil {
				return nil, fmt.Errorf("making a self-signed certificate: %w", err)
			}
			s.certs.set(&cert)
			s.log.Info("no -cert/-key: made a self-signed certificate for "+strings.Join(selfSignedHosts, ", "), s.certs.describe()...)
		}
		tlsConfig = &tls.Config{GetCertificate: s.certs.getCertificate, MinVersion: tls.VersionTLS12}
	}

	var proxy *proxyOptions
	if o.proxyProtocol {
		proxy = &proxyOptions{policy: c.proxyPolicy, log: s.log}
	}
	pool := spdymux.NewPool(o.workers)
	config := func() *spdymux.Config {
		cfg := &spdymux.Config{
			Protocols:            c.protocols,
			MaxConcurrentStreams: uint32(o.maxStreams),
			InitialWindowSize:    int32(o.window),
			NotSentLowat:         o.lowat,
			DisableSPDYPush:      !o.push,
			EnableH2Push:         o.pushH2,
			Pool:                 pool,
			Logger:               s.log,
		}
		if !o.secondary {
			cfg.Handler = h
		}
		if s.metrics != nil {
			cfg.Trace = s.metrics.trace
		}
		return cfg
	}
	wire := func(name string) *wireCounter {
		if s.metrics == nil {
			return nil
		}
		return &wireCounter{}
	}
	if o.listen != "" {
		cfg := config()
		cfg.TLSConfig = tlsConfig
		w := wire("tls")
		s.tlsLn = spdymux.NewListener(wrapListener(tlsInner, proxy, w), cfg)
		if s.metrics != nil {
			s.metrics.listeners = append(s.metrics.listeners, metricsListener{"tls", s.tlsLn, w})
		}
	}
	if o.listenPlain != "" {
		cfg := config()
		cfg.CleartextV3 = c.cleartextV3
		w := wire("plain")
		s.plainLn = spdymux.NewListener(wrapListener(plainInner, proxy, w), cfg)
		if s.metrics != nil {
			s.metrics.listeners = append(s.metrics.listeners, metricsListener{"plain", s.plainLn, w})
		}
	}
	if s.metrics != nil {
		s.metrics.pool = pool
		s.metrics.gateway = s.gateway
		s.metricsSrv = &http.Server{
			Handler:           s.metrics.handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}

	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.readHeader,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	spdymux.ConfigureServer(s.srv)

	v, facts := buildVersion()
	s.log.Info("serving "+what, "version", v, "build", strings.Trim(facts, "()"))
	path := "" // a directory or a backend may have no /hello
	if s.gateway == nil && o.dir == "" {
		path = "hello"
	}
	proxyNote := ""
	if o.proxyProtocol {
		proxyNote = " behind the PROXY protocol"
	}
	if s.tlsLn != nil {
		u := displayURL("https", s.tlsLn.Addr())
		s.log.Info("listening for TLS"+proxyNote, "url", u, "alpn", strings.Join(append(slices.Clone(c.protocols), "http/1.1"), ","))
		if o.cert == "" && !o.proxyProtocol {
			// With -cert the URL's host may not be the certificate's.
			s.logTry(c.protocols, u, path)
		}
	}
	if s.plainLn != nil {
		u := displayURL("http", s.plainLn.Addr())
		s.log.Info("listening for cleartext"+proxyNote, "url", u, "protocols", cleartextWhat(c.protocols, c.cleartextV3))
		if !o.proxyProtocol {
			s.logTry(c.protocols, u, path)
		}
	}
	if s.metricsLn != nil {
		u := displayURL("http", s.metricsLn.Addr())
		s.log.Info("metrics", "url", u+"metrics", "healthz", u+"healthz", "pprof", u+"debug/pprof/")
	}
	if s.gateway != nil {
		s.probeBackend(c.backend.Backend.Host, c.backend.Backend.Scheme)
	}
	started = true
	return s, nil
}

// openAccessLog opens (or creates) the -access-log file for appending.
func openAccessLog(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("-access-log: %w", err)
	}
	return f, nil
}

// observeBackend is the gateway's Observe with -metrics: the metrics and
// the access log's backend time.
func (s *server) observeBackend(r *http.Request, d time.Duration, err error) {
	s.metrics.observeBackend(r, d, err)
	noteBackend(r, d, err)
}

// noteBackend gives the access log the backend's time to its response
// header.
func noteBackend(r *http.Request, d time.Duration, err error) {
	if rec := recordOf(r.Context()); rec != nil && err == nil {
		rec.backend, rec.backed = d, true
	}
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

// logTry tells how to try the listener at base (ending in "/", with a
// self-signed certificate if https): a browser and curl speak HTTP/2,
// spdymux get SPDY.
func (s *server) logTry(protocols []string, base, path string) {
	secure := strings.HasPrefix(base, "https:")
	k := ""
	if secure {
		k = "-k "
	}
	try := func(cmd, speaks string) { s.log.Info("try", "with", cmd, "speaks", speaks) }
	if slices.Contains(protocols, spdymux.ProtoH2) {
		if secure {
			try("a browser on "+base+" (accept the self-signed certificate)", "HTTP/2")
			try("curl -k --http2 "+base+path, "HTTP/2")
		} else {
			try("curl --http2-prior-knowledge "+base+path, "h2c")
		}
	}
	for _, p := range protocols {
		if p != spdymux.ProtoH2 {
			try("spdymux get "+k+"-v "+base+path, "SPDY")
			break
		}
	}
	if !slices.Contains(protocols, spdymux.ProtoH2) {
		try("curl "+k+base+path, "HTTP/1.1")
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

// run serves until ctx is done or a listener fails, then shuts down. Each
// SIGHUP (or value of e.hup) reloads.
func (s *server) run(ctx context.Context) (int, error) {
	hup := s.e.hup
	if hup == nil {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP)
		defer signal.Stop(sig)
		c := make(chan struct{})
		go func() {
			for {
				select {
				case <-sig:
					select {
					case c <- struct{}{}:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		hup = c
	}

	lns := s.listeners()
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- s.srv.Serve(l) }()
	}
	if s.metricsSrv != nil {
		go func() {
			if err := s.metricsSrv.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server failed", "err", err)
			}
		}()
	}
	if s.e.ready != nil {
		var a listening
		if s.tlsLn != nil {
			a.tls = s.tlsLn.Addr()
		}
		if s.plainLn != nil {
			a.plain = s.plainLn.Addr()
		}
		if s.metricsLn != nil {
			a.metrics = s.metricsLn.Addr()
		}
		s.e.ready(a)
	}

	running := len(lns)
	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-errc:
			running--
			break wait
		case <-hup:
			s.reload()
		}
	}
	s.shutdown()
	for range running {
		<-errc
	}
	s.closeAll()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return exitFailure, fmt.Errorf("serving: %w", serveErr)
	}
	s.log.Info("stopped")
	return exitOK, nil
}

// reload is SIGHUP's work: the certificate and key read again, the access
// log file reopened.
func (s *server) reload() {
	s.log.Info("SIGHUP: reloading")
	if s.certs != nil {
		s.certs.reload()
	}
	if s.accessFile != nil {
		f, err := openAccessLog(s.o.accessLog)
		if err != nil {
			s.log.Error("SIGHUP: reopening the access log failed; it goes on in the old file", "err", err)
			return
		}
		s.access.setOutput(f)
		s.accessFile.Close()
		s.accessFile = f
		s.log.Info("SIGHUP: access log reopened", "file", s.o.accessLog)
	}
}

// shutdown turns /healthz unhealthy, sends GOAWAY to every session and
// waits, up to -shutdown-timeout, for their streams and then for the
// HTTP/1.x connections to finish; what is left then is cut.
func (s *server) shutdown() {
	if s.metrics != nil {
		s.metrics.draining.Store(true)
	}
	if d := s.o.shutdownDelay; d > 0 {
		s.log.Info("shutting down: /healthz unhealthy, serving on for -shutdown-delay", "delay", d)
		time.Sleep(d)
	}
	s.log.Info("shutting down: GOAWAY to every session, draining", "timeout", s.o.shutdownTimeout)
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
	if s.metricsSrv != nil {
		s.metricsSrv.Close()
	} else if s.metricsLn != nil {
		s.metricsLn.Close()
	}
	if s.gateway != nil {
		s.gateway.CloseIdleConnections()
	}
	if s.accessFile != nil {
		s.accessFile.Close()
		s.accessFile = nil
	}
}
