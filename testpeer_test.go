package spdymux

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// This file holds the harness of the session tests: a test server (a
// Listener over a channel-fed listener, served by an http.Server with the
// handlers below) and a scripted SPDY client, the peer.
//
// The peer's reader goroutine reads every frame the server sends into a
// channel; expect takes the first frame that matches a predicate, keeping
// the others pending for later calls, so that tests can wait for frames of
// one stream while frames of others arrive. Negative checks ("no frame
// for stream 3") are made after sync, a PING round trip: the server
// handles frames in order, so everything it did in answer to earlier
// frames is on the wire before the PING echo, or at least queued.
//
// The session tests run in testing/synctest bubbles (bubble,
// forEachBubble): the server, its sessions, the handlers and the peer are
// all goroutines of the bubble, talking over net.Pipe, and time is fake.
// A wait for a frame or an event that must come is then bounded by
// waitTimeout of fake time, which passes at once when nothing in the
// bubble can act any more. A state the server must reach without time
// passing (no open stream, a pool slot taken, a handler started or
// cancelled, no goroutine left after shutdown) is checked once
// synctest.Wait says every goroutine of the bubble is blocked, with no
// polling.

// waitTimeout bounds every wait for a frame or an event that must come: in
// a bubble, fake time.
const waitTimeout = 5 * time.Second

// versions lists the protocols the tests run under.
var versions = []string{ProtoSPDY31, ProtoSPDY3, ProtoSPDY2}

// v3versions lists the protocols with flow control.
var v3versions = []string{ProtoSPDY31, ProtoSPDY3}

// bubbled holds the *testing.T of each test running in a bubble, for the
// helpers that wait differently there.
var bubbled sync.Map

// bubble runs f in a synctest bubble. f may not call t.Run.
func bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		bubbled.Store(t, true)
		t.Cleanup(func() { bubbled.Delete(t) }) // runs after every later cleanup
		f(t)
	})
}

// inBubble reports whether t runs in a bubble.
func inBubble(t *testing.T) bool {
	_, ok := bubbled.Load(t)
	return ok
}

// waitState waits until ok holds and fails the test with what (and, in a
// bubble, the stacks of its goroutines) if it does not. In a bubble it
// checks once every goroutine of the bubble is blocked: nothing can change
// the state any more without fake time passing. Elsewhere it polls for
// waitTimeout.
func waitState(t *testing.T, ok func() bool, what func() string) bool {
	t.Helper()
	if inBubble(t) {
		synctest.Wait()
		if ok() {
			return true
		}
		_, stacks := bubbleGoroutines()
		t.Errorf("%s\n%s", what(), stacks)
		return false
	}
	deadline := time.Now().Add(waitTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%s\n%s", what(), buf)
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// goroutineBubble finds the synctest bubble of a goroutine in the first
// line of its stack dump: "goroutine 7 [select (durable), synctest bubble 1]:".
var goroutineBubble = regexp.MustCompile(`^goroutine \d+ \[[^\n]*, synctest bubble (\d+)\b`)

// bubbleGoroutines returns the number of goroutines in the caller's bubble,
// the caller included, and their stacks. It must be called in a bubble.
func bubbleGoroutines() (int, string) {
	self := make([]byte, 256)
	self = self[:runtime.Stack(self, false)]
	m := goroutineBubble.FindSubmatch(self)
	if m == nil {
		panic(fmt.Sprintf("bubbleGoroutines: no synctest bubble in %q", self))
	}
	id := string(m[1])
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var stacks strings.Builder
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if m := goroutineBubble.FindStringSubmatch(g); m != nil && m[1] == id {
			count++
			stacks.WriteString(g)
			stacks.WriteString("\n\n")
		}
	}
	return count, stacks.String()
}

// pipeListener is a net.Listener whose connections are pushed by the test.
type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// event is something a handler saw.
type event struct {
	kind    string // "start", "cancelled"
	path    string
	stream  uint32
	prio    uint8
	session uint64
}

// testServer is a Listener served by an http.Server, for one protocol.
type testServer struct {
	t       *testing.T
	proto   string
	ln      *pipeListener
	sl      *Listener
	srv     *http.Server
	pool    *Pool
	events  chan event
	seen    []event       // events passed over by waitEvent; test goroutine only
	release chan struct{} // closed to let /wait handlers answer
	relOnce sync.Once
	bubble  bool          // the test runs in a synctest bubble
	baseG   int           // goroutines before the server started: of the bubble, or of the process
	served  chan struct{} // closed when srv.Serve returns

	mu    sync.Mutex
	peers []*peer
}

// newTestServer starts a server for proto. cfg may be nil; its Pool
// defaults to a pool of its own, its Logger to a discarding one. The
// server is shut down when the test ends, and the test fails if a
// goroutine outlives it or a pool slot stays taken. In a bubble, only the
// bubble's goroutines count.
func newTestServer(t *testing.T, proto string, cfg *Config) *testServer {
	t.Helper()
	return newTestServerWith(t, proto, cfg, nil)
}

// newTestServerWith is newTestServer with configure applied to the
// http.Server before it starts serving.
func newTestServerWith(t *testing.T, proto string, cfg *Config, configure func(*http.Server)) *testServer {
	t.Helper()
	return startTestServer(t, proto, cfg, configure, nil)
}

// newDirectServer is newTestServer in handler mode with h as
// Config.Handler (and the http.Server's handler, for HTTP/1.x).
func newDirectServer(t *testing.T, proto string, cfg *Config, h http.Handler) *testServer {
	t.Helper()
	return startTestServer(t, proto, cfg, nil, h)
}

// startTestServer starts a server; with direct nil, the handler is
// ts.handler(), in handler mode when the -handler-mode flag is given and
// configure is nil.
func startTestServer(t *testing.T, proto string, cfg *Config, configure func(*http.Server), direct http.Handler) *testServer {
	t.Helper()
	ts := &testServer{
		t:       t,
		proto:   proto,
		ln:      newPipeListener(),
		events:  make(chan event, 1000),
		release: make(chan struct{}),
		bubble:  inBubble(t),
		served:  make(chan struct{}),
	}
	ts.baseG = ts.goroutines()
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Pool == nil {
		c.Pool = NewPool(64)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if proto == ProtoSPDY3 {
		c.CleartextV3 = ProtoSPDY3
	}
	ts.pool = c.Pool
	h := direct
	switch {
	case direct != nil:
		c.Handler = direct
	case *handlerMode && configure == nil:
		h = ts.handler()
		c.Handler = h
	default:
		h = ts.handler()
	}
	ts.sl = NewListener(ts.ln, &c)
	ts.srv = &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	ConfigureServer(ts.srv)
	if configure != nil {
		configure(ts.srv)
	}
	go func() {
		defer close(ts.served)
		ts.srv.Serve(ts.sl)
	}()
	t.Cleanup(ts.close)
	return ts
}

// unblock lets every /wait handler answer.
func (ts *testServer) unblock() { ts.relOnce.Do(func() { close(ts.release) }) }

func (ts *testServer) close() {
	t := ts.t
	ts.mu.Lock()
	peers := ts.peers
	ts.mu.Unlock()
	for _, p := range peers {
		p.close()
	}
	ts.unblock()
	ts.srv.Close()
	ts.sl.Close()
	<-ts.served
	var n, busy, waiting int
	var st Stats
	waitState(t, func() bool {
		n = ts.goroutines()
		busy, waiting = ts.pool.Stats()
		st = ts.sl.Stats()
		return n <= ts.baseG && busy == 0 && waiting == 0 && st.ActiveSessions == 0 && st.ActiveStreams == 0
	}, func() string {
		return fmt.Sprintf("after shutdown: %d goroutines (want <= %d), pool busy %d waiting %d, sessions %d, streams %d",
			n, ts.baseG, busy, waiting, st.ActiveSessions, st.ActiveStreams)
	})
}

// goroutines counts the goroutines of the bubble, or of the process.
func (ts *testServer) goroutines() int {
	if ts.bubble {
		n, _ := bubbleGoroutines()
		return n
	}
	return runtime.NumGoroutine()
}

// waitNoStreams checks that the server has no open stream while the
// session is still up: every stream the test finished is forgotten.
func (ts *testServer) waitNoStreams(t *testing.T) {
	t.Helper()
	var n int
	if !waitState(t, func() bool {
		n = ts.sl.Stats().ActiveStreams
		return n == 0
	}, func() string {
		return fmt.Sprintf("%d streams still open on the server after every stream ended", n)
	}) {
		t.FailNow()
	}
}

// waitPool checks that the pool has busy slots in use and waiting entries
// queued.
func (ts *testServer) waitPool(t *testing.T, busy, waiting int) {
	t.Helper()
	var b, w int
	if !waitState(t, func() bool {
		b, w = ts.pool.Stats()
		return b == busy && w == waiting
	}, func() string {
		return fmt.Sprintf("pool: %d busy, %d waiting; want %d, %d", b, w, busy, waiting)
	}) {
		t.FailNow()
	}
}

// handler is the test mux. Every request records a "start" event.
func (ts *testServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	})
	mux.HandleFunc("/chunked/{n}", func(w http.ResponseWriter, r *http.Request) {
		// No length: the body goes out chunked, in two flushed halves.
		n, _ := strconv.Atoi(r.PathValue("n"))
		b := pattern(n)
		w.Write(b[:n/2])
		http.NewResponseController(w).Flush()
		w.Write(b[n/2:])
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		// Echoes the body; answers with the request's trailer X-In as
		// the response trailer X-Out, and the body's length as X-Len.
		w.Header().Set("Trailer", "X-Out, X-Len")
		n, _ := io.Copy(w, r.Body)
		w.Header().Set("X-Out", r.Trailer.Get("X-In"))
		w.Header().Set("X-Len", strconv.FormatInt(n, 10))
	})
	mux.HandleFunc("/hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "after hints\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		if n, _ := strconv.Atoi(r.URL.Query().Get("pre")); n > 0 {
			w.Write(pattern(n))
			http.NewResponseController(w).Flush()
		}
		<-r.Context().Done()
		ts.record(r, "cancelled")
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-ts.release:
			io.WriteString(w, "released\n")
		case <-r.Context().Done():
			ts.record(r, "cancelled")
		}
	})
	mux.HandleFunc("/status/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.WriteHeader(n)
	})
	mux.HandleFunc("/noread", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h["Host"] = []string{r.Host}
		json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("/cookies", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2; Path=/")
		w.Header().Add("X-Multi", "x")
		w.Header().Add("X-Multi", "y")
		io.WriteString(w, "cookies\n")
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		info, ok := StreamInfoFromContext(r.Context())
		if !ok {
			http.Error(w, "no stream info", 500)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"Protocol":   info.Protocol,
			"StreamID":   info.StreamID,
			"Priority":   info.Priority,
			"SessionID":  info.SessionID,
			"ConnID":     info.ConnID,
			"RemoteAddr": info.RemoteAddr.String(),
			"TLS":        info.TLS != nil,
		})
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		if n, _ := strconv.Atoi(r.URL.Query().Get("pre")); n > 0 {
			w.Header().Set("Content-Length", "10000")
			w.Write(pattern(n))
			http.NewResponseController(w).Flush()
		}
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		// Declares more than it sends: net/http closes the connection.
		w.Header().Set("Content-Length", "10000")
		w.Write(pattern(100))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.record(r, "start")
		mux.ServeHTTP(w, r)
	})
}

func (ts *testServer) record(r *http.Request, kind string) {
	e := event{kind: kind, path: r.URL.Path}
	if info, ok := StreamInfoFromContext(r.Context()); ok {
		e.stream, e.prio, e.session = info.StreamID, info.Priority, info.SessionID
	}
	select {
	case ts.events <- e:
	default:
		panic("test server: event channel full")
	}
}

// waitEvent returns the first event of kind for stream, pending or new;
// the events it passes over stay pending. In a bubble the event must have
// come once every goroutine of the bubble is blocked: handlers start and
// see their cancellation without time passing.
func (ts *testServer) waitEvent(t *testing.T, kind string, stream uint32) event {
	t.Helper()
	match := func(e event) bool { return e.kind == kind && e.stream == stream }
	if i := slices.IndexFunc(ts.seen, match); i >= 0 {
		e := ts.seen[i]
		ts.seen = slices.Delete(ts.seen, i, i+1)
		return e
	}
	if ts.bubble {
		synctest.Wait()
		for {
			select {
			case e := <-ts.events:
				if match(e) {
					return e
				}
				ts.seen = append(ts.seen, e)
			default:
				_, stacks := bubbleGoroutines()
				t.Fatalf("no %q event for stream %d once the bubble had nothing left to do; other events: %v\n%s", kind, stream, ts.seen, stacks)
			}
		}
	}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case e := <-ts.events:
			if match(e) {
				return e
			}
			ts.seen = append(ts.seen, e)
		case <-timer.C:
			t.Fatalf("no %q event for stream %d within %v; other events: %v", kind, stream, waitTimeout, ts.seen)
		}
	}
}

// drainEvents returns and takes the events recorded so far.
func (ts *testServer) drainEvents() []event {
	evs := ts.seen
	ts.seen = nil
	for {
		select {
		case e := <-ts.events:
			evs = append(evs, e)
		default:
			return evs
		}
	}
}

// pattern returns n bytes, byte i being i mod 251.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// peer is a scripted SPDY client on one connection to a testServer.
type peer struct {
	t       *testing.T
	proto   string
	version spdy.Version
	conn    net.Conn
	fr      *spdy.Framer // writes into wbuf under wmu; reads on readLoop

	wmu  sync.Mutex
	wbuf bytes.Buffer

	frames     chan spdy.Frame // filled by readLoop, closed when it ends
	quit       chan struct{}
	readerDone chan struct{}
	closeOnce  sync.Once

	raw recording // the first bytes the server sent

	// Owned by the test goroutine:
	opening  []spdy.Frame // the server's frames before the first PING echo
	pending  []spdy.Frame // received and not yet taken by expect
	nextPing uint32

	// Flow control of the peer's sending side, kept by readLoop.
	flowMu     sync.Mutex
	readErr    error
	initWin    int64                   // the server's INITIAL_WINDOW_SIZE
	win        map[spdy.StreamID]int64 // stream send windows
	sessWin    int64                   // SPDY/3.1 session send window
	autoCredit bool                    // credit every received DATA at once
	flowWake   chan struct{}           // cap 1: a window grew
}

// recording keeps the first bytes read from a connection, to check the
// wire form without the codec.
type recording struct {
	mu  sync.Mutex
	buf []byte
}

const recordMax = 256

func (r *recording) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf)
}

type recordReader struct {
	r   io.Reader
	rec *recording
}

func (r *recordReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.rec.mu.Lock()
	if k := min(n, recordMax-len(r.rec.buf)); k > 0 {
		r.rec.buf = append(r.rec.buf, p[:k]...)
	}
	r.rec.mu.Unlock()
	return n, err
}

// dial connects a new peer over net.Pipe; see dialConn.
func (ts *testServer) dial(t *testing.T) *peer {
	t.Helper()
	client, server := net.Pipe()
	return ts.dialConn(t, client, server)
}

// dialAddrs connects a new peer over net.Pipe whose ends carry the
// addresses of a TCP connection from client to server, for tests that
// check what the server reports of them.
func (ts *testServer) dialAddrs(t *testing.T, client, server net.Addr) *peer {
	t.Helper()
	c, s := net.Pipe()
	return ts.dialConn(t, addrConn{c, client, server}, addrConn{s, server, client})
}

// addrConn is a connection with the addresses given.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// dialConn hands server to the listener and starts a peer on client. It
// sends PING 1 and waits for its echo, so the session is running and the
// server's first frames are in p.opening.
// The peer credits received DATA at once unless autoCredit is turned off.
func (ts *testServer) dialConn(t *testing.T, client, server net.Conn) *peer {
	t.Helper()
	v := spdy.V3
	if ts.proto == ProtoSPDY2 {
		v = spdy.V2
	}
	p := &peer{
		t:          t,
		proto:      ts.proto,
		version:    v,
		conn:       client,
		frames:     make(chan spdy.Frame, 1<<12),
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
		nextPing:   1,
		initWin:    DefaultInitialWindowSize,
		win:        make(map[spdy.StreamID]int64),
		sessWin:    DefaultInitialWindowSize,
		autoCredit: true,
		flowWake:   make(chan struct{}, 1),
	}
	p.fr = spdy.NewFramer(&p.wbuf, bufio.NewReader(&recordReader{r: client, rec: &p.raw}), v)
	ts.mu.Lock()
	ts.peers = append(ts.peers, p)
	ts.mu.Unlock()
	select {
	case ts.ln.ch <- server:
	case <-time.After(waitTimeout):
		t.Fatal("listener did not accept the connection")
	}
	go p.readLoop()
	p.sync(t)
	p.opening = p.takeAll()
	return p
}

// takeAll returns and takes every pending frame.
func (p *peer) takeAll() []spdy.Frame {
	fs := p.pending
	p.pending = nil
	return fs
}

func (p *peer) close() {
	p.closeOnce.Do(func() {
		close(p.quit)
		p.conn.Close()
	})
	<-p.readerDone
}

func (p *peer) setAutoCredit(on bool) {
	p.flowMu.Lock()
	p.autoCredit = on
	p.flowMu.Unlock()
}

func (p *peer) readLoop() {
	defer close(p.readerDone)
	defer close(p.frames)
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			p.flowMu.Lock()
			p.readErr = err
			p.flowMu.Unlock()
			return
		}
		if d, ok := f.(*spdy.DataFrame); ok {
			f = &spdy.DataFrame{StreamID: d.StreamID, Flags: d.Flags, Data: bytes.Clone(d.Data)}
		}
		p.track(f)
		select {
		case p.frames <- f:
		case <-p.quit:
			return
		}
	}
}

// track keeps the peer's send windows and credits received DATA.
func (p *peer) track(f spdy.Frame) {
	if p.version == spdy.V2 {
		return
	}
	p.flowMu.Lock()
	defer p.flowMu.Unlock()
	switch f := f.(type) {
	case *spdy.SettingsFrame:
		for _, s := range f.Settings {
			if s.ID == spdy.SettingInitialWindowSize {
				delta := int64(s.Value) - p.initWin
				p.initWin = int64(s.Value)
				for id := range p.win {
					p.win[id] += delta
				}
			}
		}
	case *spdy.WindowUpdateFrame:
		if f.StreamID == 0 {
			p.sessWin += int64(f.Delta)
		} else if _, ok := p.win[f.StreamID]; ok {
			p.win[f.StreamID] += int64(f.Delta)
		}
	case *spdy.DataFrame:
		if !p.autoCredit || len(f.Data) == 0 {
			return
		}
		var ws []spdy.Frame
		if f.Flags&spdy.FlagFin == 0 {
			ws = append(ws, &spdy.WindowUpdateFrame{StreamID: f.StreamID, Delta: uint32(len(f.Data))})
		}
		if p.proto == ProtoSPDY31 {
			ws = append(ws, &spdy.WindowUpdateFrame{StreamID: 0, Delta: uint32(len(f.Data))})
		}
		if len(ws) > 0 {
			p.write(ws...) // fails only once the server has closed
		}
		return
	default:
		return
	}
	select {
	case p.flowWake <- struct{}{}:
	default:
	}
}

// write encodes frames and writes them to the connection in one Write.
func (p *peer) write(frames ...spdy.Frame) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.wbuf.Reset()
	for _, f := range frames {
		var err error
		switch f := f.(type) {
		case *spdy.DataFrame:
			err = p.fr.WriteData(f.StreamID, f.Flags, f.Data)
		case *spdy.SynStreamFrame:
			err = p.fr.WriteSynStream(f)
		case *spdy.SynReplyFrame:
			err = p.fr.WriteSynReply(f)
		case *spdy.HeadersFrame:
			err = p.fr.WriteHeaders(f)
		case *spdy.RstStreamFrame:
			err = p.fr.WriteRstStream(f.StreamID, f.Status)
		case *spdy.SettingsFrame:
			err = p.fr.WriteSettings(f.Flags, f.Settings...)
		case *spdy.PingFrame:
			err = p.fr.WritePing(f.ID)
		case *spdy.GoAwayFrame:
			err = p.fr.WriteGoAway(f.LastGoodStreamID, f.Status)
		case *spdy.WindowUpdateFrame:
			err = p.fr.WriteWindowUpdate(f.StreamID, f.Delta)
		default:
			panic(fmt.Sprintf("peer cannot write %T", f))
		}
		if err != nil {
			return err
		}
	}
	return p.writeRawLocked(p.wbuf.Bytes())
}

func (p *peer) writeRawLocked(b []byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, err := p.conn.Write(b)
	return err
}

// send writes frames, failing the test on error.
func (p *peer) send(t *testing.T, frames ...spdy.Frame) {
	t.Helper()
	if err := p.write(frames...); err != nil {
		t.Fatalf("sending %s: %v", describeAll(frames), err)
	}
}

// sendRaw writes b as it is; the error is returned, as a server may close
// the connection while it reads a frame it rejects.
func (p *peer) sendRaw(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.writeRawLocked(b)
}

// request returns a request header block of the peer's version.
func (p *peer) request(method, path string, extra ...spdy.HeaderField) []spdy.HeaderField {
	var h []spdy.HeaderField
	if p.version == spdy.V2 {
		h = []spdy.HeaderField{
			{Name: "method", Value: method}, {Name: "url", Value: path},
			{Name: "version", Value: "HTTP/1.1"}, {Name: "host", Value: "example.com"},
			{Name: "scheme", Value: "https"},
		}
	} else {
		h = []spdy.HeaderField{
			{Name: ":method", Value: method}, {Name: ":path", Value: path},
			{Name: ":version", Value: "HTTP/1.1"}, {Name: ":host", Value: "example.com"},
			{Name: ":scheme", Value: "https"},
		}
	}
	return append(h, extra...)
}

// syn returns a SYN_STREAM and opens the peer's send window for id.
func (p *peer) syn(id spdy.StreamID, prio uint8, fin bool, header []spdy.HeaderField) *spdy.SynStreamFrame {
	var flags spdy.Flags
	if fin {
		flags = spdy.FlagFin
	}
	p.flowMu.Lock()
	p.win[id] = p.initWin
	p.flowMu.Unlock()
	return &spdy.SynStreamFrame{StreamID: id, Priority: prio, Flags: flags, Header: header}
}

// get sends a GET for path on stream id at priority 0.
func (p *peer) get(t *testing.T, id spdy.StreamID, path string) {
	t.Helper()
	p.send(t, p.syn(id, 0, true, p.request("GET", path)))
}

// sendBody sends data on stream id within the server's windows, in DATA
// frames of at most 16 KiB, with FIN on the last if fin.
func (p *peer) sendBody(t *testing.T, id spdy.StreamID, data []byte, fin bool) {
	t.Helper()
	sent := 0
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		n := min(len(data)-sent, 16<<10)
		if p.version != spdy.V2 && n > 0 {
			p.flowMu.Lock()
			avail := p.win[id]
			if p.proto == ProtoSPDY31 {
				avail = min(avail, p.sessWin)
			}
			if avail <= 0 {
				w, sw := p.win[id], p.sessWin
				p.flowMu.Unlock()
				select {
				case <-p.flowWake:
					continue
				case <-deadline.C:
					t.Fatalf("upload on stream %d stalled: %d of %d bytes sent; stream window %d, session window %d",
						id, sent, len(data), w, sw)
				}
			}
			n = int(min(int64(n), avail))
			p.win[id] -= int64(n)
			p.sessWin -= int64(n)
			p.flowMu.Unlock()
		}
		var flags spdy.Flags
		last := sent+n == len(data)
		if last && fin {
			flags = spdy.FlagFin
		}
		p.send(t, &spdy.DataFrame{StreamID: id, Flags: flags, Data: data[sent : sent+n]})
		sent += n
		if last {
			return
		}
	}
}

// expect returns the first frame, pending or new, that match accepts.
// Frames it passes over stay pending.
func (p *peer) expect(t *testing.T, what string, match func(spdy.Frame) bool) spdy.Frame {
	t.Helper()
	for i, f := range p.pending {
		if match(f) {
			p.pending = slices.Delete(p.pending, i, i+1)
			return f
		}
	}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-p.frames:
			if !ok {
				t.Fatalf("want %s; the connection ended (%v); frames passed over: %s", what, p.err(), describeAll(p.pending))
			}
			if match(f) {
				return f
			}
			p.pending = append(p.pending, f)
		case <-timer.C:
			t.Fatalf("want %s within %v; frames passed over: %s", what, waitTimeout, describeAll(p.pending))
		}
	}
}

func (p *peer) err() error {
	p.flowMu.Lock()
	defer p.flowMu.Unlock()
	return p.readErr
}

// sync sends a PING with the next odd id and waits for its echo.
func (p *peer) sync(t *testing.T) {
	t.Helper()
	id := p.nextPing
	p.nextPing += 2
	p.send(t, &spdy.PingFrame{ID: id})
	p.expect(t, fmt.Sprintf("PING(%d) echo", id), func(f spdy.Frame) bool {
		pf, ok := f.(*spdy.PingFrame)
		return ok && pf.ID == id
	})
}

// expectEnd waits until the server closes the connection and returns the
// frames that were not taken.
func (p *peer) expectEnd(t *testing.T) []spdy.Frame {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-p.frames:
			if !ok {
				return p.takeAll()
			}
			p.pending = append(p.pending, f)
		case <-timer.C:
			t.Fatalf("the server did not close the connection within %v; frames: %s", waitTimeout, describeAll(p.pending))
		}
	}
}

// takeStream returns the pending frames of stream id, taking them.
func (p *peer) takeStream(id spdy.StreamID) []spdy.Frame {
	var got []spdy.Frame
	p.pending = slices.DeleteFunc(p.pending, func(f spdy.Frame) bool {
		if streamOf(f) == id {
			got = append(got, f)
			return true
		}
		return false
	})
	return got
}

// noFrames fails the test if a frame of stream id is pending.
func (p *peer) noFrames(t *testing.T, id spdy.StreamID, why string) {
	t.Helper()
	if fs := p.takeStream(id); len(fs) > 0 {
		t.Errorf("%s: got %s; want no frame for stream %d", why, describeAll(fs), id)
	}
}

// response is a stream's answer as the peer read it.
type response struct {
	status     string
	header     map[string]string // names exactly as sent
	names      []string          // in order
	body       []byte
	finOnReply bool
	dataFrames int
}

// readResponse reads the SYN_REPLY of stream id and its DATA up to FIN.
// A RST_STREAM fails the test.
func (p *peer) readResponse(t *testing.T, id spdy.StreamID) *response {
	t.Helper()
	f := p.expect(t, fmt.Sprintf("SYN_REPLY or RST_STREAM for stream %d", id), func(f spdy.Frame) bool {
		switch f := f.(type) {
		case *spdy.SynReplyFrame:
			return f.StreamID == id
		case *spdy.RstStreamFrame:
			return f.StreamID == id
		}
		return false
	})
	sr, ok := f.(*spdy.SynReplyFrame)
	if !ok {
		t.Fatalf("stream %d: got %s; want SYN_REPLY", id, describe(f))
	}
	r := &response{header: make(map[string]string)}
	for _, h := range sr.Header {
		r.header[h.Name] = h.Value
		r.names = append(r.names, h.Name)
	}
	r.status = r.header[":status"]
	if p.version == spdy.V2 {
		r.status = r.header["status"]
	}
	checkResponseHeader(t, p.version, id, sr.Header)
	if sr.Flags&spdy.FlagFin != 0 {
		r.finOnReply = true
		return r
	}
	for {
		f := p.expect(t, fmt.Sprintf("DATA or RST_STREAM for stream %d (%d body bytes so far)", id, len(r.body)), func(f spdy.Frame) bool {
			switch f := f.(type) {
			case *spdy.DataFrame:
				return f.StreamID == id
			case *spdy.RstStreamFrame:
				return f.StreamID == id
			}
			return false
		})
		d, ok := f.(*spdy.DataFrame)
		if !ok {
			t.Fatalf("stream %d after %d body bytes: got %s; want DATA", id, len(r.body), describe(f))
		}
		r.body = append(r.body, d.Data...)
		r.dataFrames++
		if d.Flags&spdy.FlagFin != 0 {
			return r
		}
	}
}

// checkResponseHeader checks the rules every SYN_REPLY header block
// follows: the version's status and version names (SPDY/3 §3.2.2, SPDY/2
// status and version), lower-case names given once, no
// connection-specific header (PROTOCOL.md §4.4, checklist 9).
func checkResponseHeader(t *testing.T, v spdy.Version, id spdy.StreamID, h []spdy.HeaderField) {
	t.Helper()
	statusName, versionName := ":status", ":version"
	if v == spdy.V2 {
		statusName, versionName = "status", "version"
	}
	seen := make(map[string]bool)
	for _, f := range h {
		switch {
		case f.Name != strings.ToLower(f.Name):
			t.Errorf("stream %d: response header name %q is not lower case", id, f.Name)
		case seen[f.Name]:
			t.Errorf("stream %d: response header %q given twice; repeated values are NUL-joined", id, f.Name)
		case v == spdy.V2 && strings.HasPrefix(f.Name, ":"):
			t.Errorf("stream %d: SPDY/3 name %q in a SPDY/2 reply", id, f.Name)
		}
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding":
			t.Errorf("stream %d: connection-specific response header %q: %q", id, f.Name, f.Value)
		}
		seen[f.Name] = true
	}
	for _, n := range []string{statusName, versionName} {
		if !seen[n] {
			t.Errorf("stream %d: response header block without %q: %v", id, n, h)
		}
	}
}

// expectRst waits for RST_STREAM on id and checks its status.
func (p *peer) expectRst(t *testing.T, id spdy.StreamID, want spdy.RstStatus) {
	t.Helper()
	f := p.expect(t, fmt.Sprintf("RST_STREAM(%d, %v)", id, want), func(f spdy.Frame) bool {
		r, ok := f.(*spdy.RstStreamFrame)
		return ok && r.StreamID == id
	})
	if got := f.(*spdy.RstStreamFrame).Status; got != want {
		t.Errorf("RST_STREAM for stream %d: status %v; want %v", id, got, want)
	}
}

// expectGoAway waits for GOAWAY, checks its status (not on SPDY/2, which
// has none) and that the server then closes the connection. It returns the
// last-good-stream-id.
func (p *peer) expectGoAway(t *testing.T, want spdy.GoAwayStatus) spdy.StreamID {
	t.Helper()
	f := p.expect(t, fmt.Sprintf("GOAWAY(%v)", want), func(f spdy.Frame) bool {
		_, ok := f.(*spdy.GoAwayFrame)
		return ok
	})
	g := f.(*spdy.GoAwayFrame)
	if p.version != spdy.V2 && g.Status != want {
		t.Errorf("GOAWAY status %v; want %v", g.Status, want)
	}
	return g.LastGoodStreamID
}

func streamOf(f spdy.Frame) spdy.StreamID {
	switch f := f.(type) {
	case *spdy.DataFrame:
		return f.StreamID
	case *spdy.SynStreamFrame:
		return f.StreamID
	case *spdy.SynReplyFrame:
		return f.StreamID
	case *spdy.RstStreamFrame:
		return f.StreamID
	case *spdy.HeadersFrame:
		return f.StreamID
	case *spdy.WindowUpdateFrame:
		return f.StreamID
	}
	return 0
}

func isType[T spdy.Frame](f spdy.Frame) bool {
	_, ok := f.(T)
	return ok
}

func describeAll(fs []spdy.Frame) string {
	if len(fs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 20 {
			fmt.Fprintf(&b, "... (%d more)", len(fs)-i)
			break
		}
		b.WriteString(describe(f))
	}
	return b.String()
}

func describe(f spdy.Frame) string {
	fin := func(fl spdy.Flags) string {
		if fl&spdy.FlagFin != 0 {
			return ", FIN"
		}
		return ""
	}
	switch f := f.(type) {
	case *spdy.DataFrame:
		return fmt.Sprintf("DATA(%d, %d bytes%s)", f.StreamID, len(f.Data), fin(f.Flags))
	case *spdy.SynStreamFrame:
		return fmt.Sprintf("SYN_STREAM(%d%s)", f.StreamID, fin(f.Flags))
	case *spdy.SynReplyFrame:
		return fmt.Sprintf("SYN_REPLY(%d, %v%s)", f.StreamID, f.Header, fin(f.Flags))
	case *spdy.RstStreamFrame:
		return fmt.Sprintf("RST_STREAM(%d, %v)", f.StreamID, f.Status)
	case *spdy.SettingsFrame:
		return fmt.Sprintf("SETTINGS%v", f.Settings)
	case *spdy.PingFrame:
		return fmt.Sprintf("PING(%d)", f.ID)
	case *spdy.GoAwayFrame:
		return fmt.Sprintf("GOAWAY(last %d, %v)", f.LastGoodStreamID, f.Status)
	case *spdy.HeadersFrame:
		return fmt.Sprintf("HEADERS(%d%s)", f.StreamID, fin(f.Flags))
	case *spdy.WindowUpdateFrame:
		return fmt.Sprintf("WINDOW_UPDATE(%d, +%d)", f.StreamID, f.Delta)
	}
	return fmt.Sprintf("%T", f)
}

// forEach runs f as a subtest for each protocol.
func forEach(t *testing.T, protos []string, f func(t *testing.T, proto string)) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) { f(t, proto) })
	}
}

// forEachBubble runs f as a subtest for each protocol, each in a bubble of
// its own.
func forEachBubble(t *testing.T, protos []string, f func(t *testing.T, proto string)) {
	forEach(t, protos, func(t *testing.T, proto string) {
		bubble(t, func(t *testing.T) { f(t, proto) })
	})
}
