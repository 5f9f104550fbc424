package spdymux

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/gateway"
	"github.com/spdymux/spdymux/spdy"
)

// This file holds the harness of the attack tests (attack_test.go): a
// server on a real loopback TCP listener, a monitor that samples the heap
// and the goroutines while an attack runs, a well-behaved client on its own
// session, and a scripted attacker that writes raw frames.
//
// Every attack test checks three things: the server reacts as documented
// (the frame it sends and the Stats counter that moves); the heap and the
// goroutine count stay under a stated bound while the attack runs; and the
// well-behaved client keeps getting correct answers within
// goodLatencyBound.

// goodLatencyBound is the longest a well-behaved client's request may
// take while an attack runs. On an idle machine such a request takes about
// a millisecond; the bound is generous because the tests run under the race
// detector on a small machine shared with other jobs.
const goodLatencyBound = 2 * time.Second

// goodP99Bound is the most the 99th percentile of the well-behaved
// client's latencies may be during an attack that holds the server's
// resources (streams at a shut or dribbled window, empty DATA on open
// uploads, slow readers, slowloris, idle sessions, busy workers: the
// goodClient's holding set), in process and through the gateway alike.
// It holds without the race detector (CI runs the attack tests once
// without it, .ci/run); under it, which slows everything it watches
// several times over, the p99 is only logged and goodLatencyBound is the
// bar.
const goodP99Bound = 50 * time.Millisecond

// goodFloodP99Bound is the p99 bar during the other attacks: floods, in
// which the attacker sends frames back to back as fast as loopback takes
// them and each costs the server CPU until a limit ends the session
// (rapid reset, header and zlib bombs, CONTINUATION, PING and SETTINGS
// floods). The attacker runs in the test's own process on the same two
// cores, so the p99 of a few dozen answers there measures how the
// machine's CPU is shared out more than anything the server does; the
// limits' own bounds are checked exactly.
const goodFloodP99Bound = 250 * time.Millisecond

// goodInterval is the pause between two requests of the well-behaved
// client: it asks again every few milliseconds throughout the attack.
const goodInterval = 5 * time.Millisecond

// goodMinRequests is how many requests the well-behaved client must have
// completed, all correct, between the start of an attack and its end.
const goodMinRequests = 3

// reactBound bounds the wait for a reaction that is due now: a GOAWAY
// once a limit is crossed, the close that follows it.
const reactBound = 3 * time.Second

// monitorInterval is how often the monitor samples heap and goroutines;
// each sample is a full collection, so not more often.
const monitorInterval = 40 * time.Millisecond

// goodSizes are the body sizes the well-behaved client asks for in turn.
var goodSizes = []int{1, 1000, 16 << 10, 70000, 200000}

// patternBuf holds the body pattern of /bytes/{n}, byte i being i mod 251,
// shared by every handler so that a response costs no allocation of its
// size. Its length is a multiple of 251, so consecutive writes of a prefix
// continue the pattern.
var patternBuf = pattern(251 * 1024)

// attackServer is a Listener on loopback TCP served by an http.Server.
type attackServer struct {
	proto string
	l     *Listener
	srv   *http.Server
	pool  *Pool
	addr  string
	baseG int

	release  chan struct{} // closed when the test ends: /wait handlers return
	handlers atomic.Int64  // handlers running now
	waits    atomic.Int64  // /wait handlers started in all

	// Through the gateway (attack_gateway_test.go): the gateway the
	// server serves, nil in process, and what stops its backend.
	gateway     *gateway.Gateway
	stopBackend func()

	inner     net.Listener // the listening TCP socket
	smallSend bool         // startAttackServerSmallSend
	shrink    sync.Once    // attackerDials
}

// startAttackServer starts a server for proto on 127.0.0.1. cfg.Pool
// defaults to a pool of 64 slots of the test's own, cfg.Logger to a
// discarding one. When the test ends the server is closed and the test
// fails if a goroutine outlives it or a pool slot, waiting entry, stream or
// session remains.
func startAttackServer(t *testing.T, proto string, cfg Config) *attackServer {
	t.Helper()
	return startAttackServerOn(t, proto, cfg, &net.ListenConfig{})
}

// startAttackServerOn is startAttackServer with the listening socket made
// by lc, for socket options.
func startAttackServerOn(t *testing.T, proto string, cfg Config, lc *net.ListenConfig) *attackServer {
	t.Helper()
	as := &attackServer{proto: proto, baseG: serverGoroutines(), release: make(chan struct{})}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pool == nil {
		cfg.Pool = NewPool(64)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if proto == ProtoSPDY3 {
		cfg.CleartextV3 = ProtoSPDY3
	}
	as.pool = cfg.Pool
	as.inner = ln
	as.addr = ln.Addr().String()
	front := as.front(t)
	if *handlerMode {
		cfg.Handler = front
	}
	as.l = NewListener(ln, &cfg)
	as.srv = &http.Server{Handler: front, ErrorLog: log.New(io.Discard, "", 0)}
	ConfigureServer(as.srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		as.srv.Serve(as.l)
	}()
	t.Cleanup(func() {
		close(as.release)
		as.srv.Close()
		as.l.Close()
		<-served
		as.stopBackend()
		as.waitClean(t, "after the server closed", as.baseG, true)
	})
	return as
}

// waitClean waits until no pool slot is busy, no stream waits for one, no
// stream is open, no session either if noSessions, and at most maxG
// goroutines run.
func (as *attackServer) waitClean(t *testing.T, when string, maxG int, noSessions bool) {
	t.Helper()
	deadline := time.Now().Add(reactBound)
	for {
		n := serverGoroutines()
		busy, waiting := as.pool.Stats()
		st := as.l.Stats()
		if n <= maxG && busy == 0 && waiting == 0 && st.ActiveStreams == 0 && (!noSessions || st.ActiveSessions == 0) {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%s: %d goroutines (want <= %d), pool busy %d waiting %d (want 0 and 0), active streams %d (want 0), sessions %d\n%s",
				when, n, maxG, busy, waiting, st.ActiveStreams, st.ActiveSessions, buf)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handler serves:
//
//	/bytes/{n}    n bytes of the pattern, with a content-length
//	/wait         nothing until the request ends or the test does; the
//	              request body is never read
//	/slow?ms=d    "ok" after d milliseconds, or when the request ends
func (as *attackServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			k, err := w.Write(patternBuf[:min(n, len(patternBuf))])
			if err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		as.waits.Add(1)
		select {
		case <-r.Context().Done():
		case <-as.release:
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			io.WriteString(w, "ok")
		case <-r.Context().Done():
		case <-as.release:
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as.handlers.Add(1)
		defer as.handlers.Add(-1)
		mux.ServeHTTP(w, r)
	})
}

// heapNow returns the live heap after a full collection: the bytes that
// collection marked. MemStats.HeapAlloc would also count what the server's
// goroutines allocated between the end of the collection and the reading,
// which on a loaded machine is several MiB of fresh garbage (a header bomb
// grows its buffer by copying) and no part of what the server holds.
func heapNow() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// monitor samples the live heap and the goroutine count while an attack
// runs, and keeps the peaks above the baseline taken when it started.
type monitor struct {
	baseHeap uint64
	baseG    int
	stop     chan struct{}
	done     chan struct{}

	mu       sync.Mutex
	peakHeap uint64
	peakG    int
	samples  int
	extra    []func() // more samplers, run with each sample, under mu
}

// startMonitor takes the baseline and starts sampling; it stops when the
// test ends at the latest.
func startMonitor(t *testing.T) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { m.end() })
	m.baseHeap = heapNow()
	m.baseG = serverGoroutines()
	m.peakHeap, m.peakG = m.baseHeap, m.baseG
	go func() {
		defer close(m.done)
		tick := time.NewTicker(monitorInterval)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				m.sample()
			}
		}
	}()
	return m
}

// also runs f with every sample.
func (m *monitor) also(f func()) {
	m.mu.Lock()
	m.extra = append(m.extra, f)
	m.mu.Unlock()
}

func (m *monitor) sample() {
	h := heapNow()
	g := serverGoroutines()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peakHeap = max(m.peakHeap, h)
	m.peakG = max(m.peakG, g)
	m.samples++
	for _, f := range m.extra {
		f()
	}
}

// end stops sampling after one last sample and returns the peak growth of
// the heap (bytes) and of the goroutine count over the baseline.
func (m *monitor) end() (heap int64, goroutines int) {
	select {
	case <-m.stop:
	default:
		close(m.stop)
		<-m.done
		m.sample()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(m.peakHeap) - int64(m.baseHeap), m.peakG - m.baseG
}

// check stops the monitor and fails the test if the heap grew by more than
// heapBound bytes or the goroutines by more than gBound during the attack.
// A heap overrun's message ends with why, if given.
func (m *monitor) check(t *testing.T, heapBound int64, gBound int, why ...string) {
	t.Helper()
	heap, g := m.end()
	t.Logf("during the attack: heap grew by at most %s (bound %s), goroutines by at most %d (bound %d); %d samples",
		mib(heap), mib(heapBound), g, gBound, m.samples)
	if heap > heapBound {
		t.Errorf("heap grew by %s during the attack; want at most %s%s", mib(heap), mib(heapBound), strings.Join(append([]string{""}, why...), ": "))
	}
	if g > gBound {
		t.Errorf("goroutines grew by %d during the attack; want at most %d", g, gBound)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// goodClient is a well-behaved client on a session of its own: a
// spdymux.Transport that asks for /bytes/{n} every goodInterval and checks
// every answer byte for byte.
type goodClient struct {
	tr     *Transport
	client *http.Client
	base   string

	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	n      int             // correct answers
	maxLat time.Duration   // slowest correct answer
	lats   []time.Duration // the latency of every correct answer
	errs   []string        // the first failures
	nerrs  int
	markN  int // n when mark was called

	// unlimited, when set, says why the attack runs with the limit that
	// stops it turned off: its p99 is then the CPU's share left to the
	// well-behaved client, not a limit's effect, and goodP99Bound is not
	// checked (goodLatencyBound is).
	unlimited string
	// holding marks an attack that holds the server's resources rather
	// than floods it: the p99 bar is goodP99Bound, not goodFloodP99Bound.
	holding bool
}

// startGoodClient starts the well-behaved client and returns once it has
// had its first correct answer, so its session is up before the attack.
func (as *attackServer) startGoodClient(t *testing.T) *goodClient {
	t.Helper()
	g := &goodClient{
		tr: &Transport{
			PlainProtocol:   as.proto,
			Config:          &Config{Logger: slog.New(slog.DiscardHandler)},
			IdleConnTimeout: -1,
		},
		base: "http://" + as.addr,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	g.client = &http.Client{Transport: g.tr}
	go g.loop()
	t.Cleanup(func() {
		g.halt()
		g.tr.CloseIdleConnections()
	})
	deadline := time.Now().Add(reactBound)
	for {
		g.mu.Lock()
		n, errs := g.n, g.errs
		g.mu.Unlock()
		if n > 0 {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("the well-behaved client got no answer before the attack: %v", errs)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *goodClient) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}

func (g *goodClient) loop() {
	defer close(g.done)
	for i := 0; ; i++ {
		select {
		case <-g.stop:
			return
		default:
		}
		size := goodSizes[i%len(goodSizes)]
		start := time.Now()
		err := g.get(size)
		lat := time.Since(start)
		g.mu.Lock()
		if err != nil {
			g.nerrs++
			if len(g.errs) < 5 {
				g.errs = append(g.errs, fmt.Sprintf("GET /bytes/%d after %v: %v", size, lat.Round(time.Millisecond), err))
			}
		} else {
			g.n++
			g.maxLat = max(g.maxLat, lat)
			g.lats = append(g.lats, lat)
		}
		g.mu.Unlock()
		select {
		case <-g.stop:
			return
		case <-time.After(goodInterval):
		}
	}
}

func (g *goodClient) get(size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), goodLatencyBound+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", g.base+"/bytes/"+strconv.Itoa(size), nil)
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the body after %d bytes: %w", len(body), err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if len(body) != size {
		return fmt.Errorf("%d body bytes; want %d", len(body), size)
	}
	for i, b := range body {
		if b != byte(i%251) {
			return fmt.Errorf("body byte %d is %d; want %d", i, b, i%251)
		}
	}
	return nil
}

// quantile returns the q-quantile of lats (nearest rank), 0 for none.
func quantile(lats []time.Duration, q float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// failed reports whether a request failed or took longer than
// goodLatencyBound.
func (g *goodClient) failed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nerrs > 0 || g.maxLat > goodLatencyBound
}

// mark notes the start of the attack.
func (g *goodClient) mark() {
	g.mu.Lock()
	g.markN = g.n
	g.mu.Unlock()
}

// check fails the test unless every answer since the start was correct,
// each within goodLatencyBound, and at least goodMinRequests came after
// mark. It waits a little for the last of them if needed, then stops the
// client.
func (g *goodClient) check(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(goodLatencyBound)
	for {
		g.mu.Lock()
		n := g.n - g.markN
		g.mu.Unlock()
		if n >= goodMinRequests || time.Now().After(deadline) {
			break
		}
		time.Sleep(goodInterval)
	}
	g.halt()
	g.mu.Lock()
	defer g.mu.Unlock()
	p50, p99 := quantile(g.lats[g.markN:], 0.50), quantile(g.lats[g.markN:], 0.99)
	t.Logf("well-behaved client: %d correct answers (%d during the attack), slowest %v (bound %v), %d failures",
		g.n, g.n-g.markN, g.maxLat.Round(time.Millisecond), goodLatencyBound, g.nerrs)
	// One line per test in a fixed form, for the tables of BENCHMARKS.md.
	t.Logf("well-behaved latency: p50 %v p99 %v max %v n %d failures %d",
		p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), g.maxLat.Round(10*time.Microsecond), g.n-g.markN, g.nerrs)
	if g.unlimited != "" {
		t.Logf("no bar on the p99: %s", g.unlimited)
	}
	bar := goodFloodP99Bound
	if g.holding {
		bar = goodP99Bound
	}
	if p99 > bar && !raceEnabled && g.unlimited == "" {
		t.Errorf("the well-behaved client's p99 latency during the attack is %v (p50 %v, %d answers); want at most %v",
			p99.Round(time.Millisecond), p50.Round(time.Millisecond), g.n-g.markN, bar)
	}
	if g.nerrs > 0 {
		t.Errorf("the well-behaved client had %d failed requests during the attack; want none: %v", g.nerrs, g.errs)
	}
	if g.n-g.markN < goodMinRequests {
		t.Errorf("the well-behaved client got %d answers during the attack; want at least %d", g.n-g.markN, goodMinRequests)
	}
	if g.maxLat > goodLatencyBound {
		t.Errorf("the well-behaved client's slowest answer took %v; want at most %v", g.maxLat, goodLatencyBound)
	}
}

// attacker is a scripted SPDY client on a raw connection. It writes frames
// with its own spdy.Framer, or raw bytes; a reader goroutine, once started,
// reads and tallies what the server sends.
type attacker struct {
	conn    net.Conn
	version spdy.Version
	fr      *spdy.Framer // written under wmu, read by readLoop

	wmu  sync.Mutex
	wbuf bytes.Buffer

	readOnce sync.Once
	onFrame  func(spdy.Frame) // called by readLoop for every frame; set before startReading
	goAway   chan struct{}    // closed when GOAWAY arrives
	ended    chan struct{}    // closed when reading ends

	mu       sync.Mutex
	ga       *spdy.GoAwayFrame
	gaAt     time.Time
	endAt    time.Time
	readErr  error
	rst      map[spdy.RstStatus]int
	pingWait map[uint32]chan struct{} // sync's PINGs by id
	nextPing uint32
	pings    int
	data     int64 // DATA payload bytes received
}

// buffered returns the most request-body bytes buffered, unread, for one
// stream and for one session of as right now.
func (as *attackServer) buffered() (perStream, perSession int) {
	as.l.mu.Lock()
	ss := make([]*session, 0, len(as.l.sessions))
	for s := range as.l.sessions {
		ss = append(ss, s)
	}
	as.l.mu.Unlock()
	for _, s := range ss {
		s.mu.Lock()
		perSession = max(perSession, s.recvBuffered)
		for _, st := range s.streams {
			perStream = max(perStream, len(st.recv)-st.recvOff)
		}
		s.mu.Unlock()
	}
	return perStream, perSession
}

// attackerOpts tunes the attacker's socket.
type attackerOpts struct {
	// recvBuffer, when set, is the attacker's socket receive buffer,
	// set before connecting: a small one makes a peer that does not read
	// felt by the server after a few KiB instead of megabytes.
	recvBuffer int
}

// dialAttacker connects an attacker to as. It reads nothing until
// startReading.
func (as *attackServer) dialAttacker(t *testing.T, opts attackerOpts) *attacker {
	t.Helper()
	as.attackerDials(t)
	d := net.Dialer{}
	if opts.recvBuffer > 0 {
		d.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, opts.recvBuffer)
			})
			return errors.Join(err, serr)
		}
	}
	conn, err := d.Dial("tcp", as.addr)
	if err != nil {
		t.Fatal(err)
	}
	v := spdy.V3
	if as.proto == ProtoSPDY2 {
		v = spdy.V2
	}
	a := &attacker{
		conn:    conn,
		version: v,
		goAway:  make(chan struct{}),
		ended:   make(chan struct{}),
		rst:     make(map[spdy.RstStatus]int),

		pingWait: make(map[uint32]chan struct{}),
	}
	a.fr = spdy.NewFramer(&a.wbuf, bufio.NewReaderSize(conn, 16<<10), v)
	t.Cleanup(a.close)
	return a
}

// close closes the connection, waits for the reader and drops the
// attacker's buffers, which would otherwise count in the heap until the
// test ends.
func (a *attacker) close() {
	a.conn.Close()
	a.readOnce.Do(func() { close(a.ended) })
	<-a.ended
	a.wmu.Lock()
	a.fr, a.wbuf = nil, bytes.Buffer{}
	a.wmu.Unlock()
}

// startReading starts the reader goroutine.
func (a *attacker) startReading() {
	a.readOnce.Do(func() { go a.readLoop() })
}

func (a *attacker) readLoop() {
	defer close(a.ended)
	fr := a.fr
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			a.mu.Lock()
			a.readErr = err
			a.endAt = time.Now()
			a.mu.Unlock()
			return
		}
		a.mu.Lock()
		switch f := f.(type) {
		case *spdy.GoAwayFrame:
			if a.ga == nil {
				a.ga, a.gaAt = f, time.Now()
				close(a.goAway)
			}
		case *spdy.RstStreamFrame:
			a.rst[f.Status]++
		case *spdy.PingFrame:
			a.pings++
			if c := a.pingWait[f.ID]; c != nil {
				delete(a.pingWait, f.ID)
				close(c)
			}
		case *spdy.DataFrame:
			a.data += int64(len(f.Data))
		}
		a.mu.Unlock()
		if a.onFrame != nil {
			a.onFrame(f)
		}
	}
}

// gotGoAway reports whether GOAWAY has arrived.
func (a *attacker) gotGoAway() bool { return isClosedChan(a.goAway) }

// isEnded reports whether the connection has ended.
func (a *attacker) isEnded() bool { return isClosedChan(a.ended) }

// rstCount returns the RST_STREAMs received with status.
func (a *attacker) rstCount(status spdy.RstStatus) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rst[status]
}

// batch encodes frames with fn into one buffer and writes it in one Write.
func (a *attacker) batch(fn func(fr *spdy.Framer)) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if a.fr == nil {
		return net.ErrClosed
	}
	a.wbuf.Reset()
	fn(a.fr)
	return a.writeLocked(a.wbuf.Bytes())
}

// raw writes b as it is.
func (a *attacker) raw(b []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return a.writeLocked(b)
}

func (a *attacker) writeLocked(b []byte) error {
	a.conn.SetWriteDeadline(time.Now().Add(reactBound))
	_, err := a.conn.Write(b)
	return err
}

// request returns a GET or POST request header block of a's version.
func (a *attacker) request(method, path string) []spdy.HeaderField {
	return attackRequest(a.version, method, path)
}

func attackRequest(v spdy.Version, method, path string) []spdy.HeaderField {
	if v == spdy.V2 {
		return []spdy.HeaderField{
			{Name: "method", Value: method}, {Name: "url", Value: path},
			{Name: "version", Value: "HTTP/1.1"}, {Name: "host", Value: "example.com"},
			{Name: "scheme", Value: "http"},
		}
	}
	return []spdy.HeaderField{
		{Name: ":method", Value: method}, {Name: ":path", Value: path},
		{Name: ":version", Value: "HTTP/1.1"}, {Name: ":host", Value: "example.com"},
		{Name: ":scheme", Value: "http"},
	}
}

// expectGoAway waits up to within for GOAWAY, checks its status (SPDY/2
// has none), then waits for the server to close the connection. It
// returns the last-good-stream-id.
func (a *attacker) expectGoAway(t *testing.T, want spdy.GoAwayStatus, within time.Duration) spdy.StreamID {
	t.Helper()
	a.startReading()
	select {
	case <-a.goAway:
	case <-a.ended:
		if !a.gotGoAway() {
			a.mu.Lock()
			err := a.readErr
			a.mu.Unlock()
			t.Fatalf("the connection ended (%v) without GOAWAY(%v)", err, want)
		}
	case <-time.After(within):
		t.Fatalf("no GOAWAY(%v) within %v", want, within)
	}
	a.mu.Lock()
	ga := a.ga
	a.mu.Unlock()
	if a.version != spdy.V2 && ga.Status != want {
		t.Errorf("GOAWAY status %v; want %v", ga.Status, want)
	}
	select {
	case <-a.ended:
	case <-time.After(reactBound + closeGrace):
		t.Errorf("the server did not close the connection within %v of GOAWAY", reactBound+closeGrace)
	}
	return ga.LastGoodStreamID
}

// syncPingBase is the first PING id sync uses, far from the ids floods use.
const syncPingBase = 1<<31 - 1<<20 + 1

// ping sends a PING and returns a channel closed when it is echoed.
func (a *attacker) ping() (id uint32, echoed chan struct{}, err error) {
	echoed = make(chan struct{})
	a.mu.Lock()
	if a.nextPing == 0 {
		a.nextPing = syncPingBase
	}
	id = a.nextPing
	a.nextPing += 2
	a.pingWait[id] = echoed
	a.mu.Unlock()
	a.startReading()
	err = a.batch(func(fr *spdy.Framer) { fr.WritePing(id) })
	return id, echoed, err
}

// sync sends a PING and waits for its echo: the server has handled every
// frame sent before it.
func (a *attacker) sync(t *testing.T) {
	t.Helper()
	a.syncWithin(t, reactBound)
}

// syncWithin is sync for a server that may have a backlog: it waits up to
// d for the echo.
func (a *attacker) syncWithin(t *testing.T, d time.Duration) {
	t.Helper()
	id, echoed, err := a.ping()
	if err != nil {
		t.Fatalf("PING(%d): %v", id, err)
	}
	select {
	case <-echoed:
	case <-a.ended:
		t.Fatalf("the connection ended before PING(%d) was echoed", id)
	case <-time.After(d):
		t.Fatalf("PING(%d) not echoed within %v", id, d)
	}
}

// settle waits until the server has handled every frame sent so far (a
// PING echo), has sent GOAWAY, or has closed the connection, for at most
// reactBound.
func (a *attacker) settle() {
	_, echoed, err := a.ping()
	if err != nil {
		echoed = nil
	}
	select {
	case <-echoed:
	case <-a.goAway:
	case <-a.ended:
	case <-time.After(reactBound):
	}
}

// floodUntil calls step in a loop until stop reports true, step returns an
// error (the server closed the connection), maxSteps steps were made or
// maxTime passed. It returns the steps made.
func floodUntil(maxSteps int, maxTime time.Duration, stop func() bool, step func(i int) error) int {
	deadline := time.Now().Add(maxTime)
	i := 0
	for ; i < maxSteps && !stop() && time.Now().Before(deadline); i++ {
		if step(i) != nil {
			break
		}
	}
	return i
}

// rounds runs round until d has passed, at least once, and returns how
// many rounds ran. Attacks that the server cuts off quickly are repeated on
// new connections this way, so that the monitor and the well-behaved
// client see them at work.
func rounds(d time.Duration, round func(i int)) int {
	deadline := time.Now().Add(d)
	i := 0
	for ; i == 0 || time.Now().Before(deadline); i++ {
		round(i)
	}
	return i
}

// zlibHeader starts the header-block stream of a session that does not use
// the dictionary: deflate, 32 KiB window, no FDICT.
var zlibHeader = []byte{0x78, 0x01}

// storedBlock returns nv as deflate stored blocks followed by a sync flush:
// a header block that refers to nothing before it, so any count or length
// can be written exactly as it should be inflated. With first set it starts
// with the zlib header, for the first header block of a session.
func storedBlock(nv []byte, first bool) []byte {
	var b []byte
	if first {
		b = append(b, zlibHeader...)
	}
	for {
		n := min(len(nv), 0xffff)
		b = append(b, 0x00)
		b = binary.LittleEndian.AppendUint16(b, uint16(n))
		b = binary.LittleEndian.AppendUint16(b, ^uint16(n))
		b = append(b, nv[:n]...)
		nv = nv[n:]
		if len(nv) == 0 {
			break
		}
	}
	return append(b, 0x00, 0x00, 0x00, 0xff, 0xff) // sync flush
}

// deflater compresses a session's header blocks without the dictionary,
// for blocks whose inflated form the test chooses byte for byte.
type deflater struct {
	buf   bytes.Buffer
	w     *flate.Writer
	first bool
}

func newDeflater() *deflater {
	d := &deflater{first: true}
	d.w, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	return d
}

// block returns the compressed header block whose inflated form is nv.
func (d *deflater) block(nv []byte) []byte {
	d.buf.Reset()
	if d.first {
		d.buf.Write(zlibHeader)
		d.first = false
	}
	d.w.Write(nv)
	d.w.Flush()
	return bytes.Clone(d.buf.Bytes())
}

// nvBlock is an inflated name/value block of version v, written field by
// field; counts and lengths are whatever the test says.
type nvBlock struct {
	v spdy.Version
	b []byte
}

func (n *nvBlock) num(x uint32) *nvBlock {
	if n.v == spdy.V2 {
		n.b = binary.BigEndian.AppendUint16(n.b, uint16(x))
	} else {
		n.b = binary.BigEndian.AppendUint32(n.b, x)
	}
	return n
}

func (n *nvBlock) str(s string) *nvBlock {
	n.num(uint32(len(s)))
	n.b = append(n.b, s...)
	return n
}

// fields appends the fields of h with their true lengths.
func (n *nvBlock) fields(h []spdy.HeaderField) *nvBlock {
	for _, f := range h {
		n.str(f.Name).str(f.Value)
	}
	return n
}

// controlFrame returns a control frame of version v with payload p.
func controlFrame(v spdy.Version, t spdy.FrameType, flags spdy.Flags, p []byte) []byte {
	b := []byte{0x80, byte(v), byte(t >> 8), byte(t), byte(flags), byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p))}
	return append(b, p...)
}

// synStreamRaw returns a SYN_STREAM frame for stream id carrying the
// already compressed header block hb.
func synStreamRaw(v spdy.Version, id spdy.StreamID, flags spdy.Flags, hb []byte) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(id))
	p = append(p, 0, 0, 0, 0, 0, 0) // associated stream, priority, slot
	return controlFrame(v, spdy.TypeSynStream, flags, append(p, hb...))
}
