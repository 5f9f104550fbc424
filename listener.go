package spdymux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// Listener wraps a net.Listener. Its Accept returns two kinds of
// connections: HTTP/1.x connections, untouched (a *tls.Conn under TLS), and
// one *StreamConn per SPDY stream, in the order the worker pool grants them
// slots. Serve it with an http.Server (see ConfigureServer), or any server
// that serves a net.Listener.
//
// Shutting down takes two steps: Shutdown sends GOAWAY to every session and
// waits for their streams to finish, while Accept keeps handing out the
// streams the sessions already took; then the inner server's own shutdown
// (http.Server.Shutdown) closes the listener and waits for its connections.
type Listener struct {
	inner net.Listener
	cfg   *settings

	// conns carries HTTP/1.x connections from the goroutines that tell the
	// protocol to Accept.
	conns chan net.Conn

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop, protocol detection, sessions

	mu           sync.Mutex
	ready        []*StreamConn // streams granted a slot, waiting for Accept
	readyWake    chan struct{} // cap 1: ready is not empty
	sessions     map[*session]struct{}
	acceptErr    error
	goingAway    bool
	sessionsGone chan struct{} // closed when goingAway and no sessions are left

	stats listenerCounters
}

// NewListener returns a Listener that accepts connections from inner and
// serves SPDY on them as cfg says; cfg may be nil.
func NewListener(inner net.Listener, cfg *Config) *Listener {
	return newListener(inner, cfg.settings())
}

func newListener(inner net.Listener, cfg *settings) *Listener {
	l := &Listener{
		inner:     inner,
		cfg:       cfg,
		conns:     make(chan net.Conn),
		done:      make(chan struct{}),
		readyWake: make(chan struct{}, 1),
		sessions:  make(map[*session]struct{}),
	}
	if l.cfg.tls != nil {
		l.cfg.tls = l.tlsConfig(l.cfg.tls)
	}
	if l.cfg.handler != nil {
		l.cfg.workers = newDirectWorkers(l.done)
		if l.cfg.baseContextFn != nil {
			l.cfg.baseContext = l.cfg.baseContextFn(l)
			if l.cfg.baseContext == nil {
				panic("spdymux: Config.BaseContext returned a nil context")
			}
		}
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// tlsConfig returns a copy of c that offers by ALPN the multiplexed
// protocols, then what else c offered in its order, then http/1.1.
func (l *Listener) tlsConfig(c *tls.Config) *tls.Config {
	c = c.Clone()
	protos := slices.Clone(l.cfg.protocols)
	for _, p := range c.NextProtos {
		if !slices.Contains(protos, p) {
			protos = append(protos, p)
		}
	}
	if !slices.Contains(protos, ProtoHTTP11) {
		protos = append(protos, ProtoHTTP11)
	}
	c.NextProtos = protos
	return c
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Accept waits for the next HTTP/1.x connection or SPDY stream. After Close
// it returns an error matching net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if len(l.ready) > 0 {
			c := l.ready[0]
			l.ready[0] = nil
			l.ready = l.ready[1:]
			if len(l.ready) > 0 {
				l.wakeAcceptLocked()
			}
			l.mu.Unlock()
			if c.accepted() {
				return c, nil
			}
			continue // reset while it waited for Accept
		}
		l.mu.Unlock()
		select {
		case c := <-l.conns:
			return c, nil
		case <-l.readyWake:
		case <-l.done:
			l.mu.Lock()
			err := l.acceptErr
			l.mu.Unlock()
			if err == nil {
				err = net.ErrClosed
			}
			return nil, &net.OpError{Op: "accept", Net: "spdymux", Addr: l.Addr(), Err: err}
		}
	}
}

func (l *Listener) wakeAcceptLocked() {
	select {
	case l.readyWake <- struct{}{}:
	default:
	}
}

// enqueue makes c the next stream Accept returns. The pool calls it when c
// is granted a slot.
func (l *Listener) enqueue(c *StreamConn) {
	l.mu.Lock()
	if isClosedChan(l.done) {
		// Closed: nobody will Accept it, so free its slot now.
		l.mu.Unlock()
		c.Close()
		return
	}
	l.ready = append(l.ready, c)
	l.wakeAcceptLocked()
	l.mu.Unlock()
}

// Close stops accepting, closes the inner listener and every SPDY session
// at once. Streams already accepted fail; use Shutdown first to drain.
func (l *Listener) Close() error {
	err := l.closeAccept(nil)
	l.mu.Lock()
	ss := make([]*session, 0, len(l.sessions))
	for s := range l.sessions {
		ss = append(ss, s)
	}
	l.mu.Unlock()
	for _, s := range ss {
		s.close(errListenerClosed)
	}
	return err
}

func (l *Listener) closeAccept(cause error) error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.acceptErr = cause
		going := l.goingAway
		ready := l.ready
		l.ready = nil
		close(l.done) // under mu: enqueue sees either the queue or done
		l.mu.Unlock()
		err = l.inner.Close()
		if going && errors.Is(err, net.ErrClosed) {
			err = nil // Shutdown closed it already
		}
		for _, c := range ready {
			c.Close()
		}
	})
	return err
}

var errListenerClosed = errors.New("spdymux: listener closed")

// Shutdown stops accepting new client connections, sends GOAWAY to every
// SPDY session and waits until their streams have finished and the
// sessions are closed, or until ctx is done, when it closes the rest at
// once and returns ctx.Err(). Accept goes on returning the streams the
// sessions had taken before GOAWAY until Close.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if l.goingAway {
		l.mu.Unlock()
	} else {
		l.goingAway = true
		l.sessionsGone = make(chan struct{})
		if len(l.sessions) == 0 {
			close(l.sessionsGone)
		}
		ss := make([]*session, 0, len(l.sessions))
		for s := range l.sessions {
			ss = append(ss, s)
		}
		l.mu.Unlock()
		l.inner.Close() // new clients get connection refused
		for _, s := range ss {
			s.goAway(codeNo, nil)
		}
	}
	select {
	case <-l.sessionsGone:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		ss := make([]*session, 0, len(l.sessions))
		for s := range l.sessions {
			ss = append(ss, s)
		}
		l.mu.Unlock()
		for _, s := range ss {
			s.close(ctx.Err())
		}
		return ctx.Err()
	}
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A temporary failure such as EMFILE: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.cfg.log.Warn("spdymux: accept failed; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.mu.Lock()
			going := l.goingAway
			l.mu.Unlock()
			if going {
				// Shutdown closed the inner listener: Accept goes on for the
				// streams of the draining sessions.
				return
			}
			l.closeAccept(err)
			return
		}
		delay = 0
		l.stats.conns.Add(1)
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake tells the protocol of a new client connection and hands it to
// a session or to Accept.
func (l *Listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	c := &wakeConn{Conn: raw}
	deadline := time.Now().Add(l.cfg.handshakeTimeout)
	c.SetDeadline(deadline)
	proto, conn, err := l.detect(c)
	if err != nil {
		l.stats.handshakeErrors.Add(1)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			l.stats.limitHit(limitHandshakeTimeout)
		}
		l.cfg.log.Debug("spdymux: handshake failed", "remote", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	if proto == "" { // HTTP/1.x or another TLS protocol: the inner server's
		c.SetDeadline(time.Time{})
		select {
		case l.conns <- conn:
		case <-l.done:
			conn.Close()
		}
		return
	}
	setNotSentLowat(raw, l.cfg.notSentLowat)
	// ConnContext sees the TLS connection, or the one accepted.
	user := raw
	if tc, ok := conn.(*tls.Conn); ok {
		user = tc
	}
	// The first frame must arrive within the handshake deadline; the
	// session clears the deadline when it has read it.
	l.serveSession(conn, user, proto, newReadWaker(c, deadline))
}

// detect reads the first bytes of c (and does the TLS handshake) to tell
// which protocol it speaks. proto is "" for a connection the inner server
// gets; conn is the connection to use from now on.
func (l *Listener) detect(c net.Conn) (proto string, conn net.Conn, err error) {
	br := bufio.NewReaderSize(c, 16)
	first, err := br.Peek(1)
	if err != nil {
		return "", nil, fmt.Errorf("reading the first byte: %w", err)
	}
	if l.cfg.tls != nil && !l.cfg.allowCleartext && first[0] != 0x16 && isPrintable(first[0]) {
		// Plain HTTP on a TLS port: say so, as net/http does.
		io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		return "", nil, errors.New("plain HTTP on a TLS port")
	}
	if l.cfg.tls != nil && (first[0] == 0x16 || !l.cfg.allowCleartext) {
		// A TLS record of type handshake (0x16) starts the ClientHello.
		tc := tls.Server(&prefixConn{Conn: c, r: br}, l.cfg.tls)
		if err := tc.HandshakeContext(context.Background()); err != nil {
			return "", nil, fmt.Errorf("tls handshake: %w", err)
		}
		p := tc.ConnectionState().NegotiatedProtocol
		if slices.Contains(l.cfg.protocols, p) {
			return p, tc, nil
		}
		return "", tc, nil
	}
	if first[0] == h2Preface[0] {
		// "PRI " starts the HTTP/2 client preface and no HTTP/1.x
		// request (RFC 9113 §3.4: the PRI method is reserved for it).
		if b, _ := br.Peek(4); string(b) == h2Preface[:4] {
			if !slices.Contains(l.cfg.protocols, ProtoH2) {
				return "", nil, errors.New("cleartext HTTP/2 is not enabled")
			}
			return ProtoH2C, &prefixConn{Conn: c, r: br}, nil
		}
	}
	b, err := br.Peek(2)
	if err != nil && len(b) < 1 {
		return "", nil, fmt.Errorf("reading the first bytes: %w", err)
	}
	if v, ok := spdy.IsControlFrameStart(b); ok {
		var p string
		switch v {
		case spdy.V2:
			p = ProtoSPDY2
		default:
			p = l.cfg.cleartextV3
		}
		if !slices.Contains(l.cfg.protocols, p) && v == spdy.V3 && slices.Contains(l.cfg.protocols, ProtoSPDY3) {
			p = ProtoSPDY3
		}
		if !slices.Contains(l.cfg.protocols, p) {
			return "", nil, fmt.Errorf("cleartext %s is not enabled", p)
		}
		return p, &prefixConn{Conn: c, r: br}, nil
	}
	if !isPrintable(first[0]) {
		return "", nil, fmt.Errorf("first byte %#x is neither SPDY nor HTTP/1.x", first[0])
	}
	lr := bufio.NewReaderSize(&prefixConn{Conn: c, r: br}, maxSniffedLine)
	if err := checkRequestLine(lr); err != nil {
		return "", nil, err
	}
	return "", &prefixConn{Conn: c, r: lr}, nil
}

// maxSniffedLine bounds the request line checkRequestLine waits for; a
// longer one goes to the inner server unchecked.
const maxSniffedLine = 4096

// checkRequestLine waits for the first line of a cleartext connection that
// is neither SPDY nor HTTP/2 and fails unless it is an HTTP/1.x request
// line: anything else (a mangled HTTP/2 preface, another protocol) is
// closed unanswered rather than given an HTTP/1.1 error the client cannot
// read (RFC 9113 §3.4: an invalid preface ends the connection).
func checkRequestLine(r *bufio.Reader) error {
	for {
		b, _ := r.Peek(r.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line := bytes.TrimSuffix(b[:i], []byte("\r"))
			sp := bytes.LastIndexByte(line, ' ')
			if sp < 0 || !bytes.HasPrefix(line[sp+1:], []byte("HTTP/1.")) {
				return fmt.Errorf("first line %.40q is not an HTTP/1.x request", line)
			}
			return nil
		}
		if len(b) >= maxSniffedLine {
			return nil // the inner server has the last word
		}
		if _, err := r.Peek(len(b) + 1); err != nil {
			return nil
		}
	}
}

// isPrintable reports whether b can start an HTTP/1.x request line.
func isPrintable(b byte) bool { return b >= 0x20 && b < 0x7f }

// prefixConn replays the bytes read while telling the protocol.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

// CloseWrite half-closes the connection where the underlying one can.
func (c *prefixConn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite half-closes c where it can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

func (l *Listener) serveSession(c, user net.Conn, proto string, waker *readWaker) {
	defer waker.release()
	l.mu.Lock()
	if l.goingAway {
		l.mu.Unlock()
		c.Close()
		return
	}
	select {
	case <-l.done:
		l.mu.Unlock()
		c.Close()
		return
	default:
	}
	var s *session
	if proto == ProtoH2 || proto == ProtoH2C {
		s = newH2Session(c, proto, l.cfg, &l.stats)
	} else {
		s = newSPDYSession(c, proto, l.cfg, &l.stats, false)
	}
	s.deliver = l.enqueue
	s.waker = waker
	if l.cfg.handler != nil && l.cfg.connContext != nil {
		if s.baseContext = l.cfg.connContext(s.baseContext, user); s.baseContext == nil {
			panic("spdymux: Config.ConnContext returned a nil context")
		}
	}
	l.sessions[s] = struct{}{}
	l.mu.Unlock()
	l.stats.sessions.Add(1)
	pi := protoIndex(proto)
	l.stats.protoSessions[pi].Add(1)
	l.stats.protoActive[pi].Add(1)
	s.serve() // returns when the session is closed
	l.stats.protoActive[pi].Add(-1)
	l.mu.Lock()
	delete(l.sessions, s)
	if l.goingAway && len(l.sessions) == 0 {
		close(l.sessionsGone)
	}
	l.mu.Unlock()
}

// Stats is a snapshot of a Listener's counters.
type Stats struct {
	Conns           uint64 // client connections accepted
	HandshakeErrors uint64 // connections closed before a protocol was told
	Sessions        uint64 // SPDY sessions started
	ActiveSessions  int    // SPDY sessions open now
	Streams         uint64 // streams opened by clients
	ActiveStreams   int    // streams open now
	RefusedStreams  uint64 // streams refused (REFUSED_STREAM)
	StreamErrors    uint64 // RST_STREAM sent for a protocol error
	SessionErrors   uint64 // sessions ended for an error: GOAWAY sent, or a write to a client that does not read timed out
	Glitches        uint64 // client frames that did nothing (Config.GlitchBurst)
	RateLimited     uint64 // sessions cut off for too many resets or glitches
	WindowTimeouts  uint64 // streams reset because the client kept its window shut
	Pushes          uint64 // pushed streams opened (their frame to the client may not have gone yet)

	// SessionsByProto and ActiveSessionsByProto split Sessions and
	// ActiveSessions by protocol: ProtoH2, ProtoH2C, ProtoSPDY31,
	// ProtoSPDY3 and ProtoSPDY2, each present.
	SessionsByProto       map[string]uint64
	ActiveSessionsByProto map[string]int

	// LimitHits counts how often clients ran into each limit, by the
	// name of the Config field that sets it: MaxConcurrentStreams
	// (stream refused), MaxHeaderBytes and MaxHeaderFields (431,
	// RST_STREAM or GOAWAY), MaxContinuationFrames, MaxControlFrameSize,
	// MaxDataFrameSize, MaxSettingsEntries (GOAWAY), ResetBurst and
	// GlitchBurst (session cut off), WindowTimeout (stream reset),
	// HandshakeTimeout (connection closed), MaxQueuedControlFrames and
	// WriteTimeout (session cut off), IdleTimeout (idle session closed),
	// MaxPushesPerStream and MaxPushesPerSession (a push not made) and
	// MaxPushBytes (a push held back, counted once per push). Every name
	// is present.
	LimitHits map[string]uint64
}

type listenerCounters struct {
	conns, handshakeErrors, sessions, streams atomic.Uint64
	refused, streamErrors, sessionErrors      atomic.Uint64
	glitches, rateLimited, windowTimeouts     atomic.Uint64
	pushes                                    atomic.Uint64
	activeStreams                             atomic.Int64

	// By the index of the session's protocol in statProtos.
	protoSessions [len(statProtos)]atomic.Uint64
	protoActive   [len(statProtos)]atomic.Int64
	limits        [numLimits]atomic.Uint64 // by limit
}

// statProtos are the protocols Stats tells apart.
var statProtos = [...]string{ProtoH2, ProtoH2C, ProtoSPDY31, ProtoSPDY3, ProtoSPDY2}

func protoIndex(proto string) int {
	for i, p := range statProtos {
		if p == proto {
			return i
		}
	}
	return 0
}

// limitHit counts one client that ran into l. It is called off the hot
// path only: where a limit refuses, resets or cuts off.
func (c *listenerCounters) limitHit(l limit) { c.limits[l].Add(1) }

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	active := len(l.sessions)
	l.mu.Unlock()
	st := Stats{
		Conns:           l.stats.conns.Load(),
		HandshakeErrors: l.stats.handshakeErrors.Load(),
		Sessions:        l.stats.sessions.Load(),
		ActiveSessions:  active,
		Streams:         l.stats.streams.Load(),
		ActiveStreams:   int(l.stats.activeStreams.Load()),
		RefusedStreams:  l.stats.refused.Load(),
		StreamErrors:    l.stats.streamErrors.Load(),
		SessionErrors:   l.stats.sessionErrors.Load(),
		Glitches:        l.stats.glitches.Load(),
		RateLimited:     l.stats.rateLimited.Load(),
		WindowTimeouts:  l.stats.windowTimeouts.Load(),
		Pushes:          l.stats.pushes.Load(),

		SessionsByProto:       make(map[string]uint64, len(statProtos)),
		ActiveSessionsByProto: make(map[string]int, len(statProtos)),
		LimitHits:             make(map[string]uint64, numLimits+1),
	}
	for i, p := range statProtos {
		st.SessionsByProto[p] = l.stats.protoSessions[i].Load()
		st.ActiveSessionsByProto[p] = int(l.stats.protoActive[i].Load())
	}
	for i, name := range limitNames {
		st.LimitHits[name] = l.stats.limits[i].Load()
	}
	st.LimitHits["MaxConcurrentStreams"] = st.RefusedStreams
	st.LimitHits["WindowTimeout"] = st.WindowTimeouts
	return st
}
