package spdymux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 side of the attack harness (attack_h2_test.go): a
// well-behaved HTTP/2 client (golang.org/x/net/http2's Transport, cleartext
// with prior knowledge) on a connection of its own, and a scripted attacker
// that writes HTTP/2 frames with x/net/http2's Framer and hpack.Encoder over
// a raw TCP connection. The server, the monitor and the well-behaved
// client's checks are those of attack_helpers_test.go.

// startGoodH2Client starts a well-behaved HTTP/2 client: x/net/http2's
// Transport over one cleartext connection (h2c, prior knowledge), asking
// for /bytes/{n} every goodInterval and checking every byte, as
// goodClient does. It returns once the first answer is in, so its
// connection is up before the attack.
func (as *attackServer) startGoodH2Client(t *testing.T) *goodClient {
	t.Helper()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	g := &goodClient{
		base: "http://" + as.addr,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	g.client = &http.Client{Transport: h2Only{tr}}
	go g.loop()
	t.Cleanup(func() {
		g.halt()
		tr.CloseIdleConnections()
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
			t.Fatalf("the well-behaved HTTP/2 client got no answer before the attack: %v", errs)
		}
		time.Sleep(time.Millisecond)
	}
}

// startAttackServerSmallSend is startAttackServer with the server's socket
// send buffers at their least for the attackers' connections, so that a
// client that does not read is felt after a few KiB of the small frames it
// asks for, not after the megabytes a loopback socket buffers otherwise
// (tcp_wmem), which under the race detector take seconds of tiny frames to
// fill. The well-behaved client's connection, made before the first
// attacker's, keeps the usual buffers: with 4 KiB, every response over a
// window would wait on the client's delayed ACKs (40 ms) and the attack's
// cost could not be told from the buffer's.
func startAttackServerSmallSend(t *testing.T, proto string, cfg Config) *attackServer {
	t.Helper()
	as := startAttackServer(t, proto, cfg)
	as.smallSend = true
	return as
}

// attackerDials is called before an attacker connects: with smallSend set,
// the listening socket's send buffer shrinks, and the connections it
// accepts from then on inherit it.
func (as *attackServer) attackerDials(t *testing.T) {
	t.Helper()
	if !as.smallSend {
		return
	}
	as.shrink.Do(func() {
		rc, err := as.inner.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		}); err != nil || serr != nil {
			t.Fatal(errors.Join(err, serr))
		}
	})
}

// h2Only fails a response that did not come over HTTP/2.
type h2Only struct{ rt http.RoundTripper }

func (h h2Only) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(req)
	if err == nil && resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, errors.New("response over " + resp.Proto + "; want HTTP/2")
	}
	return resp, err
}

// h2Attacker is a scripted HTTP/2 client on a raw connection: it writes
// frames with its own Framer and HPACK encoder; a reader goroutine, once
// started, reads and tallies what the server sends.
type h2Attacker struct {
	conn net.Conn

	wmu  sync.Mutex
	wbuf bytes.Buffer
	fr   *http2.Framer  // writes into wbuf; guarded by wmu
	enc  *hpack.Encoder // writes into hbuf; guarded by wmu
	hbuf bytes.Buffer

	readOnce sync.Once
	rfr      *http2.Framer     // reads conn; owned by readLoop
	onFrame  func(http2.Frame) // called by readLoop for every frame; set before startReading
	goAway   chan struct{}     // closed when GOAWAY arrives
	ended    chan struct{}     // closed when reading ends
	pingSeq  atomic.Uint64     // the attacker's sync PINGs

	mu          sync.Mutex // guards what follows
	gaCode      http2.ErrCode
	gaLast      uint32
	readErr     error
	rst         map[http2.ErrCode]int    // RST_STREAMs by code
	status      map[string]int           // responses by status
	statuses    map[uint32]string        // the response status of each stream
	pingWait    map[uint64]chan struct{} // sync's PINGs by data
	pingAcks    int                      // PING ACKs received
	settingsAck int                      // SETTINGS ACKs received
}

// h2AttackerOpts tunes the attacker's connection.
type h2AttackerOpts struct {
	// recvBuffer, when set, is the socket receive buffer, set before
	// connecting: the server feels a peer that does not read sooner.
	recvBuffer int
	// settings go in the SETTINGS frame that ends the client preface.
	settings []http2.Setting
}

// dialH2 connects an attacker to as and writes the client connection
// preface: the magic string and a SETTINGS frame with opts.settings. It
// reads nothing until startReading.
func (as *attackServer) dialH2(t *testing.T, opts h2AttackerOpts) *h2Attacker {
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
	a := &h2Attacker{
		conn:     conn,
		goAway:   make(chan struct{}),
		ended:    make(chan struct{}),
		rst:      make(map[http2.ErrCode]int),
		pingWait: make(map[uint64]chan struct{}),
		status:   make(map[string]int),
		statuses: make(map[uint32]string),
	}
	a.fr = http2.NewFramer(&a.wbuf, nil)
	a.fr.AllowIllegalWrites = true
	a.enc = hpack.NewEncoder(&a.hbuf)
	a.rfr = http2.NewFramer(nil, bufio.NewReaderSize(conn, 16<<10))
	a.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	t.Cleanup(a.close)
	if err := a.raw([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := a.batch(func(fr *http2.Framer) { fr.WriteSettings(opts.settings...) }); err != nil {
		t.Fatal(err)
	}
	return a
}

// close closes the connection, waits for the reader and drops the
// attacker's buffers, which would otherwise count in the heap until the
// test ends.
func (a *h2Attacker) close() {
	a.conn.Close()
	a.readOnce.Do(func() { close(a.ended) })
	<-a.ended
	a.rfr = nil // the reader is done with it
	a.wmu.Lock()
	a.fr, a.enc, a.wbuf, a.hbuf = nil, nil, bytes.Buffer{}, bytes.Buffer{}
	a.wmu.Unlock()
}

// startReading starts the reader goroutine.
func (a *h2Attacker) startReading() {
	a.readOnce.Do(func() { go a.readLoop() })
}

func (a *h2Attacker) readLoop() {
	defer close(a.ended)
	for {
		f, err := a.rfr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				continue // a response this client cannot parse: not ours to judge here
			}
			a.mu.Lock()
			a.readErr = err
			a.mu.Unlock()
			return
		}
		a.mu.Lock()
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			if !isClosedChan(a.goAway) {
				a.gaCode, a.gaLast = f.ErrCode, f.LastStreamID
				close(a.goAway)
			}
		case *http2.RSTStreamFrame:
			a.rst[f.ErrCode]++
		case *http2.PingFrame:
			if f.IsAck() {
				a.pingAcks++
				k := binary.BigEndian.Uint64(f.Data[:])
				if c := a.pingWait[k]; c != nil {
					delete(a.pingWait, k)
					close(c)
				}
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				a.settingsAck++
			}
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" {
				a.status[s]++
				a.statuses[f.StreamID] = s
			}
		}
		a.mu.Unlock()
		if a.onFrame != nil {
			a.onFrame(f)
		}
	}
}

// gotGoAway reports whether GOAWAY has arrived.
func (a *h2Attacker) gotGoAway() bool { return isClosedChan(a.goAway) }

// isEnded reports whether the connection has ended.
func (a *h2Attacker) isEnded() bool { return isClosedChan(a.ended) }

// rstCount returns the RST_STREAMs received with code.
func (a *h2Attacker) rstCount(code http2.ErrCode) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rst[code]
}

// statusCount returns the responses received with status.
func (a *h2Attacker) statusCount(status string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status[status]
}

// tally describes the responses and resets received so far.
func (a *h2Attacker) tally() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("statuses %v, RST_STREAMs %v", a.status, a.rst)
}

// batch encodes frames with fn into one buffer and writes it in one Write.
// fn may call the attacker's Locked methods.
func (a *h2Attacker) batch(fn func(fr *http2.Framer)) error {
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
func (a *h2Attacker) raw(b []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return a.writeLocked(b)
}

func (a *h2Attacker) writeLocked(b []byte) error {
	a.conn.SetWriteDeadline(time.Now().Add(reactBound))
	_, err := a.conn.Write(b)
	return err
}

// blockLocked encodes fields with the attacker's HPACK encoder, whose
// dynamic table the server's decoder mirrors. The result is valid until
// the next call. Inside batch only.
func (a *h2Attacker) blockLocked(fields []hpack.HeaderField) []byte {
	a.hbuf.Reset()
	for _, f := range fields {
		a.enc.WriteField(f)
	}
	return a.hbuf.Bytes()
}

// headersLocked writes fields as the header block of stream id: HEADERS
// and, past 16 KiB, CONTINUATION frames. Inside batch only.
func (a *h2Attacker) headersLocked(fr *http2.Framer, id uint32, endStream bool, fields []hpack.HeaderField) {
	writeH2Block(fr, id, a.blockLocked(fields), endStream)
}

// writeH2Block writes block as HEADERS and CONTINUATION frames of at most
// the 16 KiB every HTTP/2 endpoint takes.
func writeH2Block(fr *http2.Framer, id uint32, block []byte, endStream bool) {
	first := block[:min(len(block), h2MinFrame)]
	rest := block[len(first):]
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(rest) == 0})
	for len(rest) > 0 {
		frag := rest[:min(len(rest), h2MinFrame)]
		rest = rest[len(frag):]
		fr.WriteContinuation(id, len(rest) == 0, frag)
	}
}

// h2Request returns the header fields of a request for path, then extra.
func h2Request(method, path string, extra ...hpack.HeaderField) []hpack.HeaderField {
	return append([]hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "example.com"},
		{Name: ":path", Value: path},
	}, extra...)
}

// The blocks below are made by hand, not by the attacker's encoder: they
// cost nothing to make however many fields they hold, and they change the
// dynamic table in a way the server's decoder follows but the attacker's
// encoder does not know. A connection that sends them sends no block made
// by blockLocked.

// hpackString appends s as an HPACK string literal without Huffman coding
// (RFC 7541 §5.2).
func hpackString(b []byte, s string) []byte {
	return append(appendHpackInt(b, 0, 7, uint64(len(s))), s...)
}

// appendHpackInt appends v as an HPACK integer with an n-bit prefix whose
// other bits are flags (RFC 7541 §5.1).
func appendHpackInt(b []byte, flags byte, n uint, v uint64) []byte {
	k := uint64(1)<<n - 1
	if v < k {
		return append(b, flags|byte(v))
	}
	b = append(b, flags|byte(k))
	for v -= k; v >= 128; v >>= 7 {
		b = append(b, byte(v)|0x80)
	}
	return append(b, byte(v))
}

// literalBlock encodes fields as literals without indexing (RFC 7541
// §6.2.2): a block that leaves the dynamic table as it was.
func literalBlock(fields ...hpack.HeaderField) []byte {
	var b []byte
	for _, f := range fields {
		b = hpackString(hpackString(append(b, 0x00), f.Name), f.Value)
	}
	return b
}

// repeatBlock returns the request for path as literals, then f added to
// the dynamic table (RFC 7541 §6.2.1) and referenced n-1 more times as
// index 62, the newest entry: one byte a field.
func repeatBlock(path string, f hpack.HeaderField, n int) []byte {
	b := literalBlock(h2Request("GET", path)...)
	b = hpackString(hpackString(append(b, 0x40), f.Name), f.Value)
	return append(b, bytes.Repeat([]byte{0x80 | 62}, n-1)...)
}

// h2Frames returns the frames fn writes, to send as they are.
func h2Frames(fn func(fr *http2.Framer)) []byte {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.AllowIllegalWrites = true
	fn(fr)
	return buf.Bytes()
}

// h2SyncBase marks the PINGs of sync, apart from the ones floods send.
const h2SyncBase = 0x5359_4e43 << 32 // "SYNC"

// ping sends a PING and returns a channel closed when it is acknowledged.
func (a *h2Attacker) ping() (chan struct{}, error) {
	k := h2SyncBase | a.pingSeq.Add(1)
	echoed := make(chan struct{})
	a.mu.Lock()
	a.pingWait[k] = echoed
	a.mu.Unlock()
	a.startReading()
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], k)
	return echoed, a.batch(func(fr *http2.Framer) { fr.WritePing(false, data) })
}

// sync sends a PING and waits for its ACK: the server has handled every
// frame sent before it.
func (a *h2Attacker) sync(t *testing.T) {
	t.Helper()
	echoed, err := a.ping()
	if err != nil {
		t.Fatalf("PING: %v", err)
	}
	select {
	case <-echoed:
	case <-a.ended:
		t.Fatalf("the connection ended before the PING was acknowledged")
	case <-time.After(reactBound):
		t.Fatalf("PING not acknowledged within %v", reactBound)
	}
}

// awaitGoAway waits up to d for GOAWAY or the end of the connection, and
// reports whether GOAWAY came.
func (a *h2Attacker) awaitGoAway(d time.Duration) bool {
	a.startReading()
	select {
	case <-a.goAway:
	case <-a.ended:
	case <-time.After(d):
	}
	return a.gotGoAway()
}

// expectGoAway waits up to within for GOAWAY, checks its error code, then
// waits for the server to close the connection. It returns the last
// stream id the GOAWAY names.
func (a *h2Attacker) expectGoAway(t *testing.T, want http2.ErrCode, within time.Duration) uint32 {
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
	code, last := a.gaCode, a.gaLast
	a.mu.Unlock()
	if code != want {
		t.Errorf("GOAWAY %v; want %v", code, want)
	}
	select {
	case <-a.ended:
	case <-time.After(reactBound + closeGrace):
		t.Errorf("the server did not close the connection within %v of GOAWAY", reactBound+closeGrace)
	}
	return last
}

// floodUnread writes batches of perBatch frames made by frames, reading
// nothing, until the server counts a session error (it has cut the client
// off), for at most 2×reactBound. It returns the frames sent and whether
// the server reacted, and then starts reading. The flood runs on a
// goroutine of its own: a write held up by a server that has stopped
// reading does not delay the check, and once the server's answers are read
// the server drains what is left and the write returns.
func (a *h2Attacker) floodUnread(as *attackServer, perBatch int, frames func(fr *http2.Framer)) (sent int, cut bool) {
	before := as.l.Stats().SessionErrors
	stop := make(chan struct{})
	batches := make(chan int, 1)
	go func() {
		batches <- floodUntil(1<<30, 2*reactBound, func() bool { return isClosedChan(stop) }, func(int) error { return a.batch(frames) })
	}()
	cut = waitUntil(2*reactBound, func() bool { return as.l.Stats().SessionErrors > before })
	close(stop)
	a.startReading()
	return perBatch * <-batches, cut
}

// waitUntil polls cond every millisecond for up to d and reports whether it
// came true.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// frameCounter counts, through Config.Trace, the frames of one type each
// session reads, and keeps the most any session read.
type frameCounter struct {
	name string
	mu   sync.Mutex
	n    map[uint64]int
	max  int
}

func newFrameCounter(name string) *frameCounter {
	return &frameCounter{name: name, n: make(map[uint64]int)}
}

func (c *frameCounter) trace(e FrameEvent) {
	if e.Out || e.Name != c.name {
		return
	}
	c.mu.Lock()
	c.n[e.SessionID]++
	c.max = max(c.max, c.n[e.SessionID])
	c.mu.Unlock()
}

func (c *frameCounter) most() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}
