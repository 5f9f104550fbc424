package spdymux

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux/spdy"
)

// Protocol names as negotiated by ALPN. SPDY/3.1 is version 3 on the wire;
// only the negotiated name tells it apart from SPDY/3. ProtoH2C is HTTP/2
// over cleartext with prior knowledge, told by the client preface.
const (
	ProtoH2     = "h2"
	ProtoH2C    = "h2c"
	ProtoSPDY31 = "spdy/3.1"
	ProtoSPDY3  = "spdy/3"
	ProtoSPDY2  = "spdy/2"
	ProtoHTTP11 = "http/1.1"
)

// Defaults for the Config fields. Each limit is documented on its field.
const (
	DefaultMaxConcurrentStreams   = 100
	DefaultInitialWindowSize      = 64 << 10 // SPDY/3 §2.6.8: the initial stream window is 64 KiB
	DefaultSessionWindowSize      = 1 << 20
	DefaultMaxHeaderBytes         = 1 << 20 // as golang.org/x/net/http2's header budget
	DefaultMaxHeaderFields        = 1000
	DefaultMaxControlFrameSize    = 1 << 16
	DefaultMaxDataFrameSize       = 1 << 20
	DefaultMaxQueuedControlFrames = 1000 // as nghttp2
	DefaultV2StreamBuffer         = 256 << 10
	DefaultHandshakeTimeout       = 10 * time.Second
	DefaultIdleTimeout            = 3 * time.Minute
	DefaultWriteTimeout           = 30 * time.Second
	DefaultMaxDataFrame           = 16 << 10
	DefaultMaxSettingsEntries     = 32
	DefaultResetBurst             = 1000 // as nghttp2's stream reset rate limit
	DefaultResetRate              = 33   // per second, as nghttp2
	DefaultGlitchBurst            = 1000 // as nghttp2's glitch rate limit
	DefaultGlitchRate             = 33   // per second, as nghttp2
	DefaultWindowTimeout          = 30 * time.Second
	DefaultMaxContinuationFrames  = 32
	DefaultMaxPushesPerStream     = 100
	DefaultMaxPushesPerSession    = 1000
	DefaultMaxPushBytes           = 1 << 20
)

// Config configures a Listener. The zero value (or a nil *Config) is a
// cleartext listener with the defaults above.
type Config struct {
	// TLSConfig, when set, makes the listener terminate TLS and choose the
	// protocol by ALPN: h2, spdy/3.1, spdy/3, spdy/2 (as enabled by
	// Protocols), then any other NextProtos already in TLSConfig, then
	// http/1.1. TLS connections that negotiate none of Protocols are handed
	// to the inner server as *tls.Conn.
	TLSConfig *tls.Config

	// AllowCleartext, with TLSConfig set, also accepts cleartext HTTP/2
	// (prior knowledge), SPDY and HTTP/1.x on the same port; a TLS
	// ClientHello is told apart by its first byte. Without TLSConfig the
	// listener is cleartext only.
	AllowCleartext bool

	// CleartextV3 is the protocol assumed for cleartext SPDY frames of
	// version 3, which look the same for SPDY/3 and SPDY/3.1: ProtoSPDY31
	// (the default) or ProtoSPDY3. A SPDY/3 client sending WINDOW_UPDATE for
	// stream 0 only happens under 3.1, so a 3.1 session degrades gracefully
	// with a SPDY/3 client that never sends one only if its uploads stay
	// below the session window; choose ProtoSPDY3 for such clients.
	CleartextV3 string

	// Protocols lists the multiplexed protocols served, in order of
	// preference for ALPN: ProtoH2, ProtoSPDY31, ProtoSPDY3, ProtoSPDY2.
	// Default: all four, in that order. Cleartext HTTP/2 (h2c) is served
	// when ProtoH2 is listed.
	Protocols []string

	// MaxConcurrentStreams is the number of streams a client may have open
	// on one session, advertised in SETTINGS; streams over it are refused
	// with REFUSED_STREAM. Default 100.
	MaxConcurrentStreams uint32

	// InitialWindowSize is the stream receive window advertised in SETTINGS
	// (SPDY/3 and 3.1): the most request-body bytes buffered per stream.
	// Default 64 KiB.
	InitialWindowSize int32

	// SessionWindowSize bounds the request-body bytes one session buffers.
	// On SPDY/3.1 it is the session receive window, credited as soon as
	// data is buffered for a stream while the session holds less than
	// this, so a slow handler never stalls the uploads of the other
	// streams. SPDY/3 and SPDY/2 have no session window: there the session
	// stops reading the connection while it holds this much, until
	// handlers read. Default 1 MiB.
	SessionWindowSize int32

	// V2StreamBuffer bounds the request-body bytes buffered for one SPDY/2
	// stream, which has no flow control. When it is full the session stops
	// reading the connection until the handler reads. Default 256 KiB.
	V2StreamBuffer int

	// MaxHeaderBytes caps the inflated size of one header block (for
	// HTTP/2, each field counted as name, value and 32 bytes, and the
	// compressed block too; advertised as SETTINGS_MAX_HEADER_LIST_SIZE).
	// A larger SPDY block ends the session with GOAWAY PROTOCOL_ERROR; a
	// larger HTTP/2 request gets 431, a compressed block over it ends the
	// connection with ENHANCE_YOUR_CALM. Default 1 MiB.
	MaxHeaderBytes int

	// MaxHeaderFields caps the name/value pairs in one header block: a
	// larger SPDY block gets RST_STREAM PROTOCOL_ERROR, a larger HTTP/2
	// request 431 (every field counts, cookie crumbs included, so that
	// many tiny indexed fields cannot pin memory). Default 1000.
	MaxHeaderFields int

	// MaxContinuationFrames caps the CONTINUATION frames of one HTTP/2
	// header block; more ends the connection with ENHANCE_YOUR_CALM
	// (CONTINUATION flood, CVE-2024-27316). Default 32: 512 KiB of block at
	// the 16 KiB frame size (nghttp2 allows 8).
	MaxContinuationFrames int

	// MaxControlFrameSize caps the length of a control frame (at least
	// 8192, SPDY/3.1 §2.2.1); a larger one ends the session. Default 64 KiB.
	MaxControlFrameSize int

	// MaxDataFrameSize caps the payload of one received DATA frame; a
	// larger one ends the session. Default 1 MiB.
	MaxDataFrameSize int

	// MaxQueuedControlFrames caps the control frames (PING replies,
	// RST_STREAM, WINDOW_UPDATE) waiting to be written on one session.
	// Once half of them are queued the session reads no more until the
	// writer sends some; a peer that does not read what it asks for (the
	// writer takes nothing for a second, or half of WriteTimeout), or that
	// fills the queue anyway, is cut off with GOAWAY. Default 1000, as
	// nghttp2.
	MaxQueuedControlFrames int

	// MaxSettingsEntries caps the entries of one SETTINGS frame; SPDY/3
	// defines eight ids. More ends the session. Default 32.
	MaxSettingsEntries int

	// ResetBurst and ResetRate bound the streams a client may reset: a
	// budget of ResetBurst resets, refilled at ResetRate per second. A
	// client that spends it all (HTTP/2's "rapid reset", CVE-2023-44487)
	// is cut off with GOAWAY. Defaults 1000 and 33/s, as nghttp2; a
	// negative ResetBurst disables the limit.
	ResetBurst int
	ResetRate  float64

	// GlitchBurst and GlitchRate bound the frames a client sends that do
	// nothing useful (CVE-2019-9511..9518): empty DATA without FIN, DATA,
	// HEADERS or WINDOW_UPDATE for streams that are gone, RST_STREAM for
	// unknown streams, unknown control frames, NOOP, CREDENTIAL, a PING
	// of the server's parity, SETTINGS after the first, refused streams,
	// frames that earn a RST_STREAM, and DATA frames the server must send
	// under 64 bytes because the client keeps its window that small. A
	// budget of GlitchBurst, refilled at GlitchRate per second; a client
	// that spends it is cut off with GOAWAY. Defaults 1000 and 33/s, as
	// nghttp2; a negative GlitchBurst disables the limit.
	GlitchBurst int
	GlitchRate  float64

	// WindowTimeout bounds how long a response may wait for a client that
	// does not open its flow-control window (a zero-window hold): its
	// stream is then reset with CANCEL, freeing the handler. Default 30 s;
	// negative disables it.
	WindowTimeout time.Duration

	// DisableSPDYPush turns off server push on SPDY/3.1, SPDY/3 and
	// SPDY/2. Push is on by default there, as mod_spdy had it on SPDY/3:
	// SPDY clients were built around it and take it (Chromium used pushed
	// resources, node's spdy-transport emits them), and the server pushes
	// only what the unmodified server asks for (X-Associated-Content,
	// Link rel=preload). SPDY/2 pushes as its draft 2 has it, the full
	// URL in "url" (mod_spdy refused push there). docs/push.md has the
	// rules.
	DisableSPDYPush bool

	// EnableH2Push turns on server push on HTTP/2 (PUSH_PROMISE), off by
	// default: browsers dropped it (Chrome 106, Firefox 132), so a push
	// would mostly be bytes a browser throws away, but other clients
	// still take it. A client that sends SETTINGS_ENABLE_PUSH 0 is never
	// pushed to.
	EnableH2Push bool

	// MaxPushesPerStream caps the pushes one response may start; the
	// rest of what it asks for is not pushed. Default 100.
	MaxPushesPerStream int

	// MaxPushesPerSession caps the pushes over a session's life; it also
	// bounds the memory of the URLs pushed, which are not pushed twice on
	// a session. Default 1000.
	MaxPushesPerSession int

	// MaxPushBytes caps the pushed bytes in flight on a session: DATA of
	// open pushes written to the client and not yet credited back by its
	// WINDOW_UPDATE. Pushes wait while it is reached, and the responses
	// the client asked for are not held back by pushes it does not read.
	// Default 1 MiB.
	MaxPushBytes int

	// Pool hands out worker slots for streams. Default: the process-wide
	// DefaultPool.
	Pool *Pool

	// Handler, when set, serves the SPDY and HTTP/2 streams itself
	// (handler mode): each stream's request is built from its header
	// block and passed to Handler on a goroutine holding a worker slot of
	// Pool, and the response is framed as the handler writes it, without
	// a secondary connection or HTTP/1.1 in between, the way net/http's
	// own HTTP/2 server calls its handler. Accept then returns only the
	// HTTP/1.x connections (and TLS connections of other protocols), for
	// an http.Server with the same handler. Everything else is as for a
	// secondary connection: priorities, flow control, limits, push from
	// the response's Link and X-Associated-Content fields, trailers,
	// interim responses, StreamInfoFromContext, the request's context
	// cancelled when the client resets the stream. What an http.Server
	// adds to a connection does not apply to streams: its timeouts
	// (use http.ResponseController's deadlines, and WriteTimeout and
	// WindowTimeout here), its BaseContext and ConnContext (use those
	// here), ConnState, ErrorLog (panics are logged to Logger), and
	// Hijack. See docs/handler-mode.md.
	Handler http.Handler

	// BaseContext, in handler mode, returns the context that every
	// request's context derives from, as http.Server.BaseContext does: it
	// is called once, by NewListener, with the Listener. Cancelling it
	// cancels the contexts of all requests, those under way included.
	// It must not return nil. Default: context.Background.
	BaseContext func(net.Listener) context.Context

	// ConnContext, in handler mode, derives the base of one session's
	// request contexts from BaseContext's, as http.Server.ConnContext
	// does for a connection; it is called once per session, before its
	// first request, with the session's connection: the *tls.Conn over
	// TLS, else the connection the inner listener accepted. It must not
	// return nil.
	ConnContext func(ctx context.Context, c net.Conn) context.Context

	// HandshakeTimeout bounds the TLS handshake and the wait for the first
	// bytes that tell the protocol. Default 10 s.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a SPDY session (GOAWAY OK) that has had no open
	// stream for this long. Default 3 minutes; negative disables it.
	IdleTimeout time.Duration

	// WriteTimeout bounds one write of buffered frames to the client
	// connection; a client that does not read for this long is cut off.
	// Default 30 s; negative disables it.
	WriteTimeout time.Duration

	// NotSentLowat sets TCP_NOTSENT_LOWAT on the socket of every session
	// (Linux and macOS; elsewhere it does nothing): the kernel holds at
	// most about this many bytes that are written but not yet sent. The
	// rest of a response stays in the session's queues, where the writer
	// serves streams by priority; without it the kernel takes megabytes
	// (its send buffer grows to tcp_wmem's maximum, 4 MiB by default)
	// and a response of higher priority waits behind all of them.
	// Default 16 KiB (Cloudflare's advice for HTTP/2 prioritization);
	// negative leaves the system's setting (no limit, unless
	// net.ipv4.tcp_notsent_lowat says otherwise).
	NotSentLowat int

	// Logger receives one line per protocol error and session event.
	// Default: slog.Default().
	Logger *slog.Logger

	// Trace, when set, is called for every frame a session reads or
	// writes, on the session's reader and writer goroutines: it must be
	// quick and safe for concurrent use.
	Trace func(FrameEvent)
}

// FrameEvent describes one frame read or written by a session.
type FrameEvent struct {
	SessionID uint64
	Proto     string // the session's protocol, e.g. ProtoSPDY31 or ProtoH2
	Out       bool   // written by this side
	// Name is the frame type as its spec names it: "DATA", "SYN_STREAM",
	// "HEADERS", …
	Name string
	// Type is a SPDY frame's type (0 for DATA, and for HTTP/2 frames).
	Type     spdy.FrameType
	StreamID uint32 // 0 for frames of the session
	Flags    uint8
	Length   int // the frame's length field: its size after the frame header
	// Code is the error code of a RST_STREAM or GOAWAY frame (a SPDY
	// status code, an HTTP/2 error code; CodeName names it), 0 for other
	// frames and for SPDY/2's GOAWAY, which has none.
	Code uint32
	// AssociatedID is the Associated-To-Stream-ID of a SYN_STREAM that
	// opens a pushed stream, 0 for other frames.
	AssociatedID uint32
	// PromisedID is the stream a PUSH_PROMISE reserves (StreamID is the
	// associated stream it is sent on), 0 for other frames.
	PromisedID uint32
}

// HasCode reports whether e is a frame that carries an error code:
// RST_STREAM or GOAWAY.
func (e FrameEvent) HasCode() bool { return e.Name == "RST_STREAM" || e.Name == "GOAWAY" }

// CodeName names e.Code as the protocol's spec does ("CANCEL",
// "PROTOCOL_ERROR", "NO_ERROR", "OK", ...), or returns "" for a frame
// without an error code.
func (e FrameEvent) CodeName() string {
	switch {
	case !e.HasCode():
		return ""
	case e.Proto == ProtoH2 || e.Proto == ProtoH2C:
		return http2.ErrCode(e.Code).String()
	case e.Name == "RST_STREAM":
		return spdy.RstStatus(e.Code).String()
	}
	return spdy.GoAwayStatus(e.Code).String()
}

// String formats e as one line of a frame trace.
func (e FrameEvent) String() string {
	dir := "recv"
	if e.Out {
		dir = "send"
	}
	s := fmt.Sprintf("[session %d] %s %s stream=%d flags=%#02x length=%d", e.SessionID, dir, e.Name, e.StreamID, e.Flags, e.Length)
	if e.HasCode() {
		s += " code=" + e.CodeName()
	}
	if e.AssociatedID != 0 {
		s += fmt.Sprintf(" associated=%d", e.AssociatedID)
	}
	if e.PromisedID != 0 {
		s += fmt.Sprintf(" promised=%d", e.PromisedID)
	}
	return s
}

// settings is a Config with every default applied.
type settings struct {
	tls                    *tls.Config
	allowCleartext         bool
	cleartextV3            string
	protocols              []string
	maxConcurrentStreams   uint32
	initialWindowSize      int32
	sessionWindowSize      int32
	v2StreamBuffer         int
	maxHeaderBytes         int
	maxHeaderFields        int
	maxControlFrameSize    int
	maxDataFrameSize       int
	maxQueuedControlFrames int
	maxSettingsEntries     int
	maxContinuations       int
	resetBurst             int
	resetRate              float64
	glitchBurst            int
	glitchRate             float64
	windowTimeout          time.Duration
	spdyPush, h2Push       bool
	clientPushes           uint32 // a client: the pushes it takes at once (Transport.PushHandler)
	maxPushesPerStream     int
	maxPushesPerSession    int
	maxPushBytes           int
	pool                   *Pool
	handler                http.Handler
	workers                *directWorkers  // handler mode's goroutines
	baseContext            context.Context // handler mode: the requests' base, set by newListener
	baseContextFn          func(net.Listener) context.Context
	connContext            func(context.Context, net.Conn) context.Context
	handshakeTimeout       time.Duration
	idleTimeout            time.Duration
	writeTimeout           time.Duration
	notSentLowat           int
	log                    *slog.Logger
	trace                  func(FrameEvent)
}

func (c *Config) settings() *settings {
	if c == nil {
		c = &Config{}
	}
	s := &settings{
		tls:                    c.TLSConfig,
		allowCleartext:         c.AllowCleartext || c.TLSConfig == nil,
		cleartextV3:            c.CleartextV3,
		protocols:              c.Protocols,
		maxConcurrentStreams:   c.MaxConcurrentStreams,
		initialWindowSize:      c.InitialWindowSize,
		sessionWindowSize:      c.SessionWindowSize,
		v2StreamBuffer:         c.V2StreamBuffer,
		maxHeaderBytes:         c.MaxHeaderBytes,
		maxHeaderFields:        c.MaxHeaderFields,
		maxControlFrameSize:    c.MaxControlFrameSize,
		maxDataFrameSize:       c.MaxDataFrameSize,
		maxQueuedControlFrames: c.MaxQueuedControlFrames,
		maxSettingsEntries:     c.MaxSettingsEntries,
		maxContinuations:       c.MaxContinuationFrames,
		resetBurst:             c.ResetBurst,
		resetRate:              c.ResetRate,
		glitchBurst:            c.GlitchBurst,
		glitchRate:             c.GlitchRate,
		windowTimeout:          c.WindowTimeout,
		spdyPush:               !c.DisableSPDYPush,
		h2Push:                 c.EnableH2Push,
		maxPushesPerStream:     c.MaxPushesPerStream,
		maxPushesPerSession:    c.MaxPushesPerSession,
		maxPushBytes:           c.MaxPushBytes,
		pool:                   c.Pool,
		handler:                c.Handler,
		baseContextFn:          c.BaseContext,
		connContext:            c.ConnContext,
		handshakeTimeout:       c.HandshakeTimeout,
		idleTimeout:            c.IdleTimeout,
		writeTimeout:           c.WriteTimeout,
		notSentLowat:           c.NotSentLowat,
		log:                    c.Logger,
		trace:                  c.Trace,
	}
	if s.cleartextV3 != ProtoSPDY3 {
		s.cleartextV3 = ProtoSPDY31
	}
	if len(s.protocols) == 0 {
		s.protocols = []string{ProtoH2, ProtoSPDY31, ProtoSPDY3, ProtoSPDY2}
	}
	setDefault(&s.maxConcurrentStreams, DefaultMaxConcurrentStreams)
	setDefault(&s.initialWindowSize, DefaultInitialWindowSize)
	setDefault(&s.sessionWindowSize, DefaultSessionWindowSize)
	setDefault(&s.v2StreamBuffer, DefaultV2StreamBuffer)
	setDefault(&s.maxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&s.maxHeaderFields, DefaultMaxHeaderFields)
	setDefault(&s.maxControlFrameSize, DefaultMaxControlFrameSize)
	s.maxControlFrameSize = max(s.maxControlFrameSize, 8192)
	setDefault(&s.maxDataFrameSize, DefaultMaxDataFrameSize)
	setDefault(&s.maxQueuedControlFrames, DefaultMaxQueuedControlFrames)
	setDefault(&s.maxSettingsEntries, DefaultMaxSettingsEntries)
	setDefault(&s.maxContinuations, DefaultMaxContinuationFrames)
	setDefault(&s.resetBurst, DefaultResetBurst)
	setDefault(&s.resetRate, DefaultResetRate)
	setDefault(&s.glitchBurst, DefaultGlitchBurst)
	setDefault(&s.glitchRate, DefaultGlitchRate)
	setDefault(&s.windowTimeout, DefaultWindowTimeout)
	setDefault(&s.maxPushesPerStream, DefaultMaxPushesPerStream)
	setDefault(&s.maxPushesPerSession, DefaultMaxPushesPerSession)
	setDefault(&s.maxPushBytes, DefaultMaxPushBytes)
	if s.initialWindowSize < 0 {
		s.initialWindowSize = DefaultInitialWindowSize
	}
	if s.sessionWindowSize < DefaultInitialWindowSize {
		s.sessionWindowSize = DefaultInitialWindowSize
	}
	setDefault(&s.handshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&s.idleTimeout, DefaultIdleTimeout)
	setDefault(&s.writeTimeout, DefaultWriteTimeout)
	setDefault(&s.notSentLowat, DefaultNotSentLowat)
	if s.pool == nil {
		s.pool = DefaultPool
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.handler != nil {
		s.baseContext = context.Background()
	}
	return s
}

func setDefault[T int | int32 | uint32 | float64 | time.Duration](p *T, v T) {
	if *p == 0 {
		*p = v
	}
}

// discardLogger drops every record.
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
