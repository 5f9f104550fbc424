package spdymux

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
	"github.com/spdymux/spdymux/spdy"
)

// Transport is an http.RoundTripper that speaks SPDY/3.1, SPDY/3 and
// SPDY/2: over TLS for https URLs, the version chosen by ALPN, and over
// plain TCP for http URLs, the version fixed by PlainProtocol. Use it as
// http.Client{Transport: &spdymux.Transport{...}}.
//
// A Transport keeps one session (one TCP connection) per origin, scheme
// plus host plus port, and sends every request to that origin over it as
// its own stream, as many at once as the server's MAX_CONCURRENT_STREAMS
// allows; more wait for a stream to end. Concurrent first requests to an
// origin share one dial. A session that is going away (GOAWAY sent or
// received) or closed takes no new requests: the next request dials a new
// one. A request the server did not process, refused with RST_STREAM
// REFUSED_STREAM or above the last-good-stream-id of its GOAWAY, is sent
// once more when its body can be replayed: no body, or GetBody set.
//
// Request bodies are streamed as DATA within the server's flow-control
// windows; response bodies are read from DATA, and the receive windows are
// credited as the caller reads. Trailers go both ways on SPDY/3 and 3.1,
// as net/http has them: Request.Trailer is sent after the request body in
// a HEADERS frame, then FIN, and Response.Trailer, which holds the names the
// server announced, gets their values once the body has been read to its
// end. Cancelling a request's context, or closing its response body
// before the end, resets the stream with CANCEL; the session stays usable.
// Server push is taken by PushHandler, if set, and refused otherwise.
//
// The Transport takes part in net/http/httptrace: GetConn, ConnectStart
// and ConnectDone, TLSHandshakeStart and TLSHandshakeDone (for the request
// that made the dial), GotConn, WroteHeaders, WroteRequest and
// GotFirstResponseByte.
//
// A Transport is safe for concurrent use. Its fields must not change after
// its first use. The zero value is ready to use.
type Transport struct {
	// TLSClientConfig configures TLS for https URLs. Its NextProtos are
	// replaced by Protocols; an empty ServerName is the URL's host.
	// Default: a zero tls.Config.
	TLSClientConfig *tls.Config

	// Protocols is the ALPN offer for https URLs, in order of preference.
	// A server that chooses none of them fails the dial. Default:
	// spdy/3.1, spdy/3, spdy/2.
	Protocols []string

	// PlainProtocol is the protocol spoken over plain TCP for http URLs,
	// where nothing negotiates it: ProtoSPDY31, ProtoSPDY3 or ProtoSPDY2.
	// Default: ProtoSPDY31.
	PlainProtocol string

	// DialContext dials the TCP connection of a new session. Default: a
	// net.Dialer with a 30 s timeout and TCP keep-alive. The dial of a
	// session is shared by the requests waiting for it, so its context is
	// not cancelled with the request that started it; it ends after
	// DialTimeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// DialTimeout bounds the dial and TLS handshake of a session.
	// Default 30 s.
	DialTimeout time.Duration

	// Config sets the session limits: InitialWindowSize and
	// SessionWindowSize are the receive windows this side advertises (the
	// response bytes buffered per stream and per session; the defaults
	// here are DefaultClientWindowSize and DefaultClientSessionWindowSize),
	// V2StreamBuffer
	// bounds a SPDY/2 stream, MaxHeaderBytes, MaxHeaderFields,
	// MaxControlFrameSize, MaxDataFrameSize and MaxQueuedControlFrames
	// bound what the server sends, HandshakeTimeout bounds the TLS
	// handshake, IdleTimeout, WriteTimeout, Logger and Trace act as for a
	// Listener. Fields that only concern a server are ignored. Nil means
	// the defaults.
	Config *Config

	// Trace, when set, is called for every frame a session reads or
	// writes, as Config.Trace (which is called too, if set).
	Trace func(FrameEvent)

	// IdleConnTimeout closes a session (GOAWAY) that has had no open
	// stream for this long. Zero means Config.IdleTimeout, whose default
	// is 3 minutes; negative keeps idle sessions open.
	IdleConnTimeout time.Duration

	// PushHandler, when set, takes the responses servers push (SPDY/3
	// §3.3, and SPDY/2 as its draft 2 has them). It is called for each
	// push once its response head has come, on the session's reader,
	// before any later frame is read: when the server sends the head in
	// the push's SYN_STREAM (spdymux, node's spdy-transport), a
	// response's pushes are all offered before its body ends. It takes
	// the push with Push.Response or refuses it with Push.Cancel; a push
	// it does neither with is cancelled when it returns. It must not
	// block: the pushed body, like every frame after it, is read once it
	// returns, so read it on another goroutine.
	//
	// Config's MaxConcurrentStreams (default 100) bounds the pushes taken
	// at once, advertised to the server as SETTINGS_MAX_CONCURRENT_STREAMS.
	// Without a PushHandler the Transport advertises 0 and refuses any
	// push with RST_STREAM REFUSED_STREAM. A push must be on the origin of
	// the request it came with; others are refused.
	PushHandler func(*Push)

	// DisableCompression stops the Transport from asking for gzip and
	// deflate. SPDY/3 §3.2.1 has every client accept both, so by default
	// a request without its own Accept-Encoding is sent with
	// "accept-encoding: gzip, deflate" and a compressed response body is
	// decoded transparently (Response.Uncompressed is set). With it set,
	// response bodies are handed over as they come.
	DisableCompression bool

	initOnce sync.Once
	cfg      *settings

	mu    sync.Mutex
	conns map[string]*clientConn // the session taking new requests, by origin
	dials map[string]*dialCall   // dials in progress, by origin
}

// clientConn is one session of a Transport.
type clientConn struct {
	s        *session
	w        *spdyWire // s.w
	key      string
	proto    string
	tls      *tls.ConnectionState
	noDecode bool // Transport.DisableCompression
}

// dialCall is one dial shared by the requests waiting for it; cc and err
// are set before done is closed.
type dialCall struct {
	done chan struct{}
	cc   *clientConn
	err  error
}

// Transport defaults.
const (
	DefaultDialTimeout = 30 * time.Second

	// DefaultClientWindowSize is the stream receive window a Transport
	// advertises unless Config says otherwise. It is larger than a
	// Listener's: it bounds only the client's own memory, most responses
	// then need no WINDOW_UPDATE at all, and some servers (node's
	// spdy-transport) send slowly through a 64 KiB window and reset a
	// stream that gets WINDOW_UPDATE after they have ended it.
	DefaultClientWindowSize = 1 << 20

	// DefaultClientSessionWindowSize is the SPDY/3.1 session receive
	// window a Transport advertises unless Config says otherwise.
	DefaultClientSessionWindowSize = 16 << 20
)

// Default request priorities, on each version's own scale.
const (
	DefaultPriority   = 3 // SPDY/3 and 3.1: 0 (highest) to 7
	DefaultPriorityV2 = 1 // SPDY/2: 0 (highest) to 3
)

type priorityKey struct{}

// WithPriority returns a context that makes a Transport send the request
// with priority p, on SPDY/3's scale of 0 (highest) to 7; values above 7
// are 7. On SPDY/2, whose scale is 0 to 3, p/2 is sent. Without it a
// request gets DefaultPriority (DefaultPriorityV2 on SPDY/2).
func WithPriority(ctx context.Context, p uint8) context.Context {
	return context.WithValue(ctx, priorityKey{}, min(p, 7))
}

func (t *Transport) init() {
	t.initOnce.Do(func() {
		t.cfg = t.Config.settings()
		if t.Config == nil || t.Config.InitialWindowSize == 0 {
			t.cfg.initialWindowSize = DefaultClientWindowSize
		}
		if t.Config == nil || t.Config.SessionWindowSize == 0 {
			t.cfg.sessionWindowSize = DefaultClientSessionWindowSize
		}
		if t.Config == nil || t.Config.Logger == nil {
			t.cfg.log = discardLogger
		}
		if t.IdleConnTimeout != 0 {
			t.cfg.idleTimeout = t.IdleConnTimeout
		}
		if t.PushHandler != nil {
			t.cfg.clientPushes = t.cfg.maxConcurrentStreams
		}
		if tr := t.Trace; tr != nil {
			if prev := t.cfg.trace; prev != nil {
				t.cfg.trace = func(e FrameEvent) { prev(e); tr(e) }
			} else {
				t.cfg.trace = tr
			}
		}
		t.conns = make(map[string]*clientConn)
		t.dials = make(map[string]*dialCall)
	})
}

func (t *Transport) protocols() []string {
	if len(t.Protocols) > 0 {
		return t.Protocols
	}
	return []string{ProtoSPDY31, ProtoSPDY3, ProtoSPDY2}
}

// origin returns the key of u's origin, the address to dial and the host
// name for TLS.
func origin(scheme, host string) (key, addr, name string, err error) {
	var port string
	switch scheme {
	case "https":
		port = "443"
	case "http":
		port = "80"
	default:
		return "", "", "", fmt.Errorf("spdymux: unsupported URL scheme %q", scheme)
	}
	if host == "" {
		return "", "", "", errors.New("spdymux: URL has no host")
	}
	name = host
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		name = host[1 : len(host)-1]
	}
	addr = net.JoinHostPort(name, port)
	return scheme + "://" + addr, addr, name, nil
}

// getConn returns the session for an origin, dialing it when there is
// none that takes new streams.
func (t *Transport) getConn(ctx context.Context, scheme, host string) (*clientConn, error) {
	t.init()
	key, addr, name, err := origin(scheme, host)
	if err != nil {
		return nil, err
	}
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(addr)
	}
	for {
		t.mu.Lock()
		if cc := t.conns[key]; cc != nil {
			if cc.s.usable() {
				t.mu.Unlock()
				if trace != nil && trace.GotConn != nil {
					trace.GotConn(httptrace.GotConnInfo{Conn: cc.s.conn, Reused: true})
				}
				return cc, nil
			}
			delete(t.conns, key)
			t.mu.Unlock()
			cc.retire()
			continue
		}
		d := t.dials[key]
		if d == nil {
			d = &dialCall{done: make(chan struct{})}
			t.dials[key] = d
			t.mu.Unlock()
			go t.dial(ctx, d, key, scheme, addr, name, trace)
			// This request waits like any other, so that cancelling it
			// does not cancel the dial the others share.
		} else {
			t.mu.Unlock()
		}
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.err != nil {
			return nil, d.err
		}
		if trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Conn: d.cc.s.conn})
		}
		return d.cc, nil
	}
}

// dial makes a session for key and publishes it in t.conns. ctx is the
// context of the request that asked first; only its values are used.
func (t *Transport) dial(ctx context.Context, d *dialCall, key, scheme, addr, name string, trace *httptrace.ClientTrace) {
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	d.cc, d.err = t.connect(ctx, key, scheme, addr, name, trace)
	t.mu.Lock()
	delete(t.dials, key)
	if d.err == nil {
		t.conns[key] = d.cc
	}
	t.mu.Unlock()
	close(d.done)
	if d.err == nil {
		cc := d.cc
		go func() {
			<-cc.s.done
			t.mu.Lock()
			if t.conns[key] == cc {
				delete(t.conns, key)
			}
			t.mu.Unlock()
		}()
	}
}

func (t *Transport) connect(ctx context.Context, key, scheme, addr, name string, trace *httptrace.ClientTrace) (*clientConn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	if trace != nil && trace.ConnectStart != nil {
		trace.ConnectStart("tcp", addr)
	}
	c, err := dial(ctx, "tcp", addr)
	if trace != nil && trace.ConnectDone != nil {
		trace.ConnectDone("tcp", addr, err)
	}
	if err != nil {
		if _, ok := errors.AsType[*net.OpError](err); ok {
			return nil, fmt.Errorf("spdymux: %w", err) // it names the address already
		}
		return nil, fmt.Errorf("spdymux: dial %s: %w", addr, err)
	}
	proto := t.PlainProtocol
	var state *tls.ConnectionState
	if scheme == "https" {
		protos := t.protocols()
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		cfg.NextProtos = protos
		if cfg.ServerName == "" {
			cfg.ServerName = name
		}
		tc := tls.Client(c, cfg)
		if trace != nil && trace.TLSHandshakeStart != nil {
			trace.TLSHandshakeStart()
		}
		hctx, cancel := context.WithTimeout(ctx, t.cfg.handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		st := tc.ConnectionState()
		if trace != nil && trace.TLSHandshakeDone != nil {
			trace.TLSHandshakeDone(st, err)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("spdymux: tls handshake with %s: %w", addr, err)
		}
		proto = st.NegotiatedProtocol
		if !slices.Contains(protos, proto) || !isSPDY(proto) {
			tc.Close()
			if proto == "" {
				return nil, fmt.Errorf("spdymux: %s negotiated no protocol by ALPN; offered %s", addr, strings.Join(protos, ", "))
			}
			return nil, fmt.Errorf("spdymux: %s negotiated %q by ALPN; offered %s", addr, proto, strings.Join(protos, ", "))
		}
		state = &st
		c = tc
	} else {
		if proto == "" {
			proto = ProtoSPDY31
		}
		if !isSPDY(proto) {
			c.Close()
			return nil, fmt.Errorf("spdymux: PlainProtocol %q is not spdy/3.1, spdy/3 or spdy/2", proto)
		}
	}
	s := newSPDYSession(c, proto, t.cfg, &listenerCounters{}, true)
	cc := &clientConn{s: s, w: s.w.(*spdyWire), key: key, proto: proto, tls: state, noDecode: t.DisableCompression}
	if h := t.PushHandler; h != nil {
		s.onPush = func(st *stream) bool { return cc.onPush(h, st) }
	}
	go s.serve()
	return cc, nil
}

func isSPDY(proto string) bool {
	return proto == ProtoSPDY31 || proto == ProtoSPDY3 || proto == ProtoSPDY2
}

// retire stops cc from taking new streams: it sends GOAWAY, unless it
// already did, and closes once its open streams are done.
func (cc *clientConn) retire() { cc.s.goAway(codeNo, nil) }

// CloseIdleConnections closes the sessions that have no open stream.
// Sessions in use are left alone.
func (t *Transport) CloseIdleConnections() {
	t.init()
	t.mu.Lock()
	var idle []*clientConn
	for key, cc := range t.conns {
		if cc.s.closeIfIdle() {
			delete(t.conns, key)
			idle = append(idle, cc)
		}
	}
	t.mu.Unlock()
	for _, cc := range idle {
		<-cc.s.done
	}
}

// Ping sends a PING over the session for rawURL's origin, dialing one if
// there is none, and returns the round-trip time.
func (t *Transport) Ping(ctx context.Context, rawURL string) (time.Duration, error) {
	scheme, host, ok := strings.Cut(rawURL, "://")
	if !ok {
		return 0, fmt.Errorf("spdymux: URL %q has no scheme", rawURL)
	}
	host, _, _ = strings.Cut(host, "/")
	cc, err := t.getConn(ctx, strings.ToLower(scheme), host)
	if err != nil {
		return 0, err
	}
	return cc.w.ping(ctx)
}

// RoundTrip sends req over a SPDY stream and returns the response once its
// SYN_REPLY has come. The body, if any, is still being sent and the
// response body received as the caller reads it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	fail := func(err error) (*http.Response, error) {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if req.URL == nil {
		return fail(errors.New("spdymux: request has no URL"))
	}
	if err := httpconv.CheckHeader(req.Header); err != nil {
		return fail(err)
	}
	ctx := req.Context()
	retried := false
	for attempt := 0; ; attempt++ {
		resp, err := t.roundTrip(ctx, req, body)
		if err == nil {
			return resp, nil
		}
		var ue *unprocessedError
		if !errors.As(err, &ue) || ctx.Err() != nil {
			return nil, err
		}
		// The server did not process the request: send it again, once when
		// it reached the server, a few times when it never left.
		if ue.sent {
			if retried {
				return nil, ue.err
			}
			retried = true
		}
		if attempt >= 5 {
			return nil, ue.err
		}
		if ue.bodyUsed {
			if req.GetBody == nil {
				return nil, ue.err
			}
			if body, err = req.GetBody(); err != nil {
				return nil, err
			}
			if body == http.NoBody {
				body = nil
			}
		}
	}
}

// unprocessedError is the failure of an attempt the server did not
// process: the request can be sent again.
type unprocessedError struct {
	err      error
	sent     bool // the SYN_STREAM went out
	bodyUsed bool // the request body was read from (and closed)
}

func (e *unprocessedError) Error() string { return e.err.Error() }
func (e *unprocessedError) Unwrap() error { return e.err }

// roundTrip makes one attempt at req with body. It owns body: it closes it
// in every case, except that it returns an *unprocessedError with bodyUsed
// false when it never touched it.
func (t *Transport) roundTrip(ctx context.Context, req *http.Request, body io.ReadCloser) (*http.Response, error) {
	closeBody := func() {
		if body != nil {
			body.Close()
		}
	}
	cc, err := t.getConn(ctx, req.URL.Scheme, req.URL.Host)
	if err != nil {
		closeBody()
		return nil, err
	}
	s := cc.s
	priority := uint8(DefaultPriority)
	if p, ok := ctx.Value(priorityKey{}).(uint8); ok {
		priority = p
	}
	if cc.w.version == spdy.V2 {
		priority /= 2
	}
	decode := !t.DisableCompression && req.Header.Get("Accept-Encoding") == "" && req.Method != http.MethodHead
	header, err := httpconv.AppendRequestFields(nil, s.dialect, req, decode)
	if err != nil {
		closeBody()
		return nil, err
	}
	if len(req.Trailer) > 0 && body != nil && req.Header.Get("Trailer") == "" {
		// Announce the trailers, as net/http does over HTTP/1.1.
		header = append(header, httpconv.HeaderField{Name: "trailer", Value: trailerNames(req.Trailer)})
	}
	openCtx := ctx
	if t.PushHandler != nil {
		openCtx = pushContext(ctx, req)
	}
	st, err := s.openStream(openCtx, header, priority, body == nil)
	if err != nil {
		if errors.Is(err, errGoingAway) || errors.Is(err, net.ErrClosed) {
			// The request never left: any session will do.
			return nil, &unprocessedError{err: err}
		}
		closeBody()
		return nil, err
	}
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.WroteHeaders != nil {
		trace.WroteHeaders()
	}
	cs := &clientStream{rc: newRawConn(st), ctx: ctx}
	if body != nil {
		var trailer func() []httpconv.HeaderField
		if len(req.Trailer) > 0 {
			// Read once the body is sent: its values may be set while
			// the body is read (net/http's contract for Request.Trailer).
			trailer = func() []httpconv.HeaderField { return httpconv.TrailerFields(nil, s.dialect, req.Trailer) }
		}
		go cs.writeBody(body, req.ContentLength, trailer, trace)
	} else if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{})
	}
	reply, err := st.waitReply(ctx)
	if err != nil {
		if ctx.Err() != nil {
			cs.rc.reset(codeCancel)
			return nil, ctx.Err()
		}
		if berr := cs.bodyError(); berr != nil {
			return nil, berr
		}
		cs.rc.Close()
		if sent, ok := st.unprocessed(err); ok {
			return nil, &unprocessedError{err: err, sent: sent, bodyUsed: body != nil}
		}
		var lost *sessionClosedError
		if errors.As(err, &lost) && idempotent(req.Method) {
			// The connection broke before the reply: the server may or
			// may not have seen the request, which is harmless to repeat
			// (RFC 9110 §9.2.2), as net/http does for HTTP/1.1.
			return nil, &unprocessedError{err: err, sent: true, bodyUsed: body != nil}
		}
		return nil, fmt.Errorf("spdymux: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	resp, err := cc.response(req, reply)
	if err != nil {
		s.resetStream(st, codeProtocol)
		cs.rc.Close()
		return nil, err
	}
	switch {
	case req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified:
		// No body (RFC 9110 §6.4.1); whatever DATA comes is dropped.
		resp.Body = http.NoBody
		cs.Close()
		if resp.StatusCode != http.StatusNotModified && req.Method != http.MethodHead {
			resp.ContentLength = 0
		}
		return resp, nil
	}
	cs.stop = context.AfterFunc(ctx, func() { cs.rc.reset(codeCancel) })
	cs.resp = resp
	resp.Body = cs
	if decode {
		if ce := resp.Header.Get("Content-Encoding"); ce == "gzip" || ce == "deflate" {
			resp.Body = &decodedBody{cs: cs, coding: ce}
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
			resp.Uncompressed = true
		}
	}
	return resp, nil
}

func idempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// response builds the http.Response of reply, a SYN_REPLY header block.
func (cc *clientConn) response(req *http.Request, reply []httpconv.HeaderField) (*http.Response, error) {
	resp, err := httpconv.ResponseFromFields(cc.s.dialect, reply)
	if err != nil {
		return nil, err
	}
	resp.Request, resp.TLS = req, cc.tls
	if cc.proto == ProtoSPDY31 {
		resp.Proto, resp.ProtoMinor = "SPDY/3.1", 1
	}
	// The trailers the server announces, with nil values until the body
	// has been read to its end (as net/http's Response.Trailer).
	resp.Trailer = httpconv.AnnouncedTrailers(resp.Header["Trailer"])
	return resp, nil
}

// trailerNames lists the names of a request's trailers for its Trailer
// header.
func trailerNames(t http.Header) string {
	names := make([]string, 0, len(t))
	for k := range t {
		if !httpconv.ForbiddenTrailer(k) {
			names = append(names, http.CanonicalHeaderKey(k))
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// clientStream is the client's side of one stream after SYN_STREAM: it
// sends the request body and, as the response's Body, reads the response.
type clientStream struct {
	rc      *rawConn
	ctx     context.Context
	resp    *http.Response // its Trailer is filled at the end of the body; nil without a body
	stop    func() bool    // stops the context's reset; nil if none
	bodyErr atomic.Pointer[error]
	closed  atomic.Bool
}

// writeBody sends body as DATA, then the fields trailer returns if it is
// not nil in a HEADERS frame (SPDY/3 and 3.1: SPDY/2 drops them), then
// FIN; it closes body. A body that fails to read, or whose length is not
// the content-length it was given, resets the stream so the server never
// takes it for complete.
func (cs *clientStream) writeBody(body io.ReadCloser, contentLength int64, trailer func() []httpconv.HeaderField, trace *httptrace.ClientTrace) {
	defer body.Close()
	w := &countingWriter{w: cs.rc}
	n, err := io.Copy(w, body)
	if err == nil && contentLength > 0 && n != contentLength {
		err = fmt.Errorf("spdymux: request body is %d bytes, content-length says %d", n, contentLength)
	}
	if err != nil && w.err == nil {
		// A failure of the body itself, not of the stream.
		cs.bodyErr.Store(&err)
		cs.rc.reset(codeCancel)
	}
	if err == nil {
		var fields []httpconv.HeaderField
		if trailer != nil {
			fields = trailer()
		}
		cs.rc.closeWriteTrailers(fields)
	}
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
}

func (cs *clientStream) bodyError() error {
	if p := cs.bodyErr.Load(); p != nil {
		return *p
	}
	return nil
}

// countingWriter counts what it passes to w and keeps w's error.
type countingWriter struct {
	w   io.Writer
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

var errBodyClosed = errors.New("spdymux: read on closed response body")

// Read reads the response body. At its end the response's trailers are
// in resp.Trailer.
func (cs *clientStream) Read(p []byte) (int, error) {
	n, err := cs.rc.Read(p)
	if err == io.EOF {
		if cs.stop != nil {
			cs.stop()
		}
		cs.takeTrailers()
	}
	if err != nil && err != io.EOF {
		switch {
		case cs.closed.Load():
			err = errBodyClosed
		case cs.ctx.Err() != nil:
			err = cs.ctx.Err()
		}
	}
	return n, err
}

// takeTrailers moves the trailers the server sent, if any, into
// resp.Trailer.
func (cs *clientStream) takeTrailers() {
	fields := cs.rc.st.takeTrailers()
	if len(fields) == 0 || cs.resp == nil {
		return
	}
	if cs.resp.Trailer == nil {
		cs.resp.Trailer = make(http.Header, len(fields))
	}
	maps.Copy(cs.resp.Trailer, httpconv.TrailerFromFields(fields))
}

// Close ends the response body. Before the end of the response it resets
// the stream with CANCEL, as it does while the request body is still
// being sent.
func (cs *clientStream) Close() error {
	if cs.closed.Swap(true) {
		return nil
	}
	if cs.stop != nil {
		cs.stop()
	}
	if cs.rc.st.finished() {
		cs.rc.Close()
	} else {
		cs.rc.reset(codeCancel)
	}
	return nil
}

// decodedBody decodes a gzip or deflate response body as it is read.
type decodedBody struct {
	cs     *clientStream
	coding string
	r      io.ReadCloser
	err    error
}

func (d *decodedBody) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.r == nil {
		if d.coding == "gzip" {
			d.r, d.err = gzip.NewReader(d.cs)
		} else {
			d.r, d.err = zlib.NewReader(d.cs)
		}
		if d.err != nil {
			return 0, d.err
		}
	}
	n, err := d.r.Read(p)
	if err != nil {
		d.err = err
	}
	return n, err
}

func (d *decodedBody) Close() error { return d.cs.Close() }
