package gateway

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/internal/sockpeek"
)

// backendConn is one HTTP/1.1 connection to the backend. It is used by one
// exchange at a time: the goroutine that reads the response owns br and
// limit; the one that writes the request owns bw.
type backendConn struct {
	conn      net.Conn
	br        *bufio.Reader // reads conn through the backendConn
	bw        *bufio.Writer // writes conn through the backendConn
	timeout   time.Duration // the longest the backend may keep silent
	reused    bool          // taken idle from the pool
	closeConn func()        // closes conn: made once, for every exchange's watch of its client
	idleSince time.Time     // set by the pool under its mu; read by the exchange that took c

	// Owned by the reader of the response:
	limit        int64     // bytes Read may still take (the response head's limit), or -1 once the head is read
	headDeadline time.Time // when the response head is due, unless the request body goes on

	// Pipelining (Config.PipelineDepth). pipeOf is the session whose
	// requests may queue on c behind the one being answered, nil while c
	// takes none; queued counts the requests chosen for c whose turn to
	// read has not come. These and served are guarded by the pool's mu.
	pipeOf *poolSession
	queued int
	// ahead holds the times expected of the answers to the requests on
	// c, the one being answered first (answerTimes), while pipeOf is set.
	ahead  []time.Duration
	served int // exchanges ended on c
	// wmu orders the queued requests' heads on the wire as they join the
	// order of turns: they are added to pending, which one of them, the
	// flusher while flushing is set, writes.
	wmu      sync.Mutex
	pending  []byte
	writing  []byte // the flusher's: what it writes, pending's other buffer
	flushing bool
	// tmu guards the turns: the queued requests waiting to read their
	// response, in the order their heads went out; handoff counts turns
	// passed on before the request they belong to joined turns; broken
	// is set once c failed, and fails every turn after it.
	tmu     sync.Mutex
	turns   []chan error // turns[turn0:] wait, in order
	turn0   int
	handoff int
	broken  bool

	progress atomic.Int64 // when a byte last went to or came from the backend, in Unix nanoseconds
	wrote    atomic.Int64 // when a byte last went to the backend, in Unix nanoseconds
	read     atomic.Int64 // bytes read from the backend in this exchange
}

func newBackendConn(conn net.Conn, timeout time.Duration) *backendConn {
	c := &backendConn{conn: conn, timeout: timeout, limit: -1}
	c.closeConn = func() { c.conn.Close() }
	c.br = bufio.NewReaderSize(backendReader{c}, 16<<10)
	c.bw = bufio.NewWriterSize(backendWriter{c}, 16<<10)
	return c
}

// errHeadTooLarge is what reading the response head returns past the
// gateway's MaxResponseHeaderBytes.
var errHeadTooLarge = errors.New("gateway: the backend's response header is too large")

// start readies the connection for a new exchange whose response head is
// due by headDeadline, or within the timeout of the last byte of request
// sent, whichever is later.
func (c *backendConn) start(headDeadline time.Time) {
	c.read.Store(0)
	now := time.Now().UnixNano()
	c.progress.Store(now)
	c.wrote.Store(0)
	c.headDeadline = headDeadline
	c.conn.SetReadDeadline(headDeadline)
}

func (c *backendConn) touch() { c.progress.Store(time.Now().UnixNano()) }

// backendReader reads the connection for br. Until the response head is
// read, a read fails with a timeout at the head's deadline, or later if the
// request body is still going out (the backend is at work taking it);
// after the head, only once the backend has been silent for the
// connection's timeout: neither sent a byte nor taken one.
type backendReader struct{ c *backendConn }

func (r backendReader) Read(p []byte) (int, error) {
	c := r.c
	if c.limit == 0 {
		return 0, errHeadTooLarge
	}
	if c.limit > 0 && int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	for {
		n, err := c.conn.Read(p)
		if n > 0 {
			c.touch()
			c.read.Add(int64(n))
			if c.limit > 0 {
				c.limit -= int64(n)
			}
			return n, err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The deadline is moved lazily, when it passes.
			next := time.Unix(0, c.progress.Load()).Add(c.timeout)
			if c.limit >= 0 {
				next = c.headDeadline
				if w := c.wrote.Load(); w != 0 {
					next = later(next, time.Unix(0, w).Add(c.timeout))
				}
			}
			if time.Until(next) > 0 {
				c.conn.SetReadDeadline(next)
				continue
			}
		}
		return n, err
	}
}

// backendWriter writes the connection for bw; the backend must take every
// write within the connection's timeout.
type backendWriter struct{ c *backendConn }

func (w backendWriter) Write(p []byte) (int, error) {
	c := w.c
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.conn.Write(p)
	if n > 0 {
		now := time.Now().UnixNano()
		c.progress.Store(now)
		c.wrote.Store(now)
	}
	return n, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// alive reports whether an idle connection is still open: the backend
// has neither closed it nor sent anything unasked.
func (c *backendConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	conn := c.conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = nc.NetConn() // TLS: a close_notify is bytes on the socket
	}
	// Where the socket cannot be looked at, a connection the backend
	// closed is found when a request fails on it, and retried if it may be.
	switch sockpeek.Conn(conn) {
	case sockpeek.Empty, sockpeek.Unknown:
		return true
	}
	return false
}

// errPipelineBroken fails a request queued on a connection that failed,
// or that the backend closed, before the request's turn came: the
// request, a GET or HEAD, goes again on a new connection.
var errPipelineBroken = errors.New("gateway: the connection failed before the answer to a pipelined request")

// joinTurns puts a request whose head goes out next in the order of
// turns, and returns the channel its turn comes on, or nil if its turn
// has come already; it fails if c failed. The caller holds wmu.
func (c *backendConn) joinTurns() (chan error, error) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	switch {
	case c.broken:
		return nil, errPipelineBroken
	case c.handoff > 0:
		c.handoff--
		return nil, nil
	}
	if c.turn0 > 0 && len(c.turns) == cap(c.turns) {
		// Full up to its end: move the waiting turns to the front
		// rather than grow.
		n := copy(c.turns, c.turns[c.turn0:])
		clear(c.turns[n:])
		c.turns, c.turn0 = c.turns[:n], 0
	}
	t := turnChans.Get().(chan error)
	c.turns = append(c.turns, t)
	return t, nil
}

// turnChans are the channels turns come on, each given back by the one
// that received its turn (doneTurn).
var turnChans = sync.Pool{New: func() any { return make(chan error, 1) }}

// doneTurn gives back t, the channel of a turn once received.
func doneTurn(t chan error) { turnChans.Put(t) }

// passTurn gives the turn to read to the next request in line, or keeps
// it for the request that is yet to join turns.
func (c *backendConn) passTurn() {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.turn0 == len(c.turns) {
		c.handoff++
		return
	}
	t := c.turns[c.turn0]
	c.turns[c.turn0] = nil
	if c.turn0++; c.turn0 == len(c.turns) {
		c.turns, c.turn0 = c.turns[:0], 0
	}
	t <- nil
}

// breakTurns fails every request waiting for a turn, and those yet to
// join.
func (c *backendConn) breakTurns() {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	c.broken = true
	for _, t := range c.turns[c.turn0:] {
		t <- errPipelineBroken
	}
	c.turns, c.turn0 = nil, 0
}

// flushHeads writes the pending request heads until none are left. A
// write that fails closes c.
func (c *backendConn) flushHeads() {
	for {
		c.wmu.Lock()
		if len(c.pending) == 0 {
			c.flushing = false
			c.wmu.Unlock()
			return
		}
		c.pending, c.writing = c.writing[:0], c.pending
		c.wmu.Unlock()
		if _, err := (backendWriter{c}).Write(c.writing); err != nil {
			c.conn.Close()
		}
		c.wrote.Store(0) // heads put no answer's deadline off
		if cap(c.writing) > maxKeptHeads {
			c.writing = nil // large heads went out: keep no buffer for them
		}
	}
}

// maxKeptHeads is the largest buffer of request heads a connection keeps
// between writes.
const maxKeptHeads = 16 << 10
