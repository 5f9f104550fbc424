package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// exchange is one request forwarded to the backend and its response
// forwarded back. Up to three goroutines take part:
//
//   - the handler's, which writes the request head, reads the response
//     head, and writes the response to the client;
//   - sendBody's, while there is a request body: it copies the body from
//     the client to the backend;
//   - readAhead's, for a response body of unknown length or longer than
//     the response buffer: it reads the body from the backend into the
//     buffer as fast as the backend sends it, so that a client slower than
//     the backend does not hold the backend connection for long.
type exchange struct {
	g       *Gateway
	w       http.ResponseWriter
	rc      http.ResponseController // held here, not allocated apart
	in      *http.Request           // the client's request
	session string

	start time.Time // when the gateway took the request

	hasBody bool // a request body goes to the backend
	chunked bool // ... in chunks: its length is unknown, or it has trailers

	c *backendConn
	// The watch that closes c when the client goes away: held by the
	// request's context itself (watcher), or a context.AfterFunc's stop.
	watcher doneWatcher
	unwatch func() bool

	// Pipelining with PipelineWait: the key of the request's path in the
	// pool's answer times, 0 if they are not kept; and when its answer
	// began to be the one due on c: its head sent, or its turn come.
	key   uint64
	begun time.Time

	// The response when readResponse parsed it in place, and its body;
	// its fields, in hdr while they fit.
	resp   http.Response
	body   lengthBody
	fields []httpconv.HeaderField
	hdr    [16]httpconv.HeaderField

	bodyDone  chan struct{} // closed when sendBody returns
	bodyState atomic.Int32  // bodySending, then bodySent or bodyFailed
	bodyErr   error         // why the body failed; read after bodyDone

	mu       sync.Mutex
	released bool // c went back to the pool
	closed   bool // c was closed to end the exchange

	// detached: a goroutine of the exchange may outlive its handler
	// (sendBody, discard), so the exchange is not reused.
	detached bool
}

const (
	bodySending int32 = iota
	bodySent
	bodyFailed
)

// errStalled ends an exchange whose client kept the backend waiting for
// longer than StallTimeout: it read too little of the response, or sent
// nothing of its request body.
var errStalled = errors.New("gateway: the client kept the backend connection waiting too long")

// errClientGone ends the reading of a response nobody can send on.
var errClientGone = errors.New("gateway: the client went away")

// backendError is a failure of the backend exchange before the response
// head was forwarded: it becomes 502 or 504.
type backendError struct {
	what string // what failed, for the log
	err  error
	// retryable: nothing came back on a connection that had served
	// before, which the backend may have closed as the request went out.
	retryable bool
}

func (e *backendError) Error() string { return e.what + ": " + e.err.Error() }
func (e *backendError) Unwrap() error { return e.err }

// serve forwards the request and its response.
func (x *exchange) serve() {
	g, r := x.g, x.in
	ctx := r.Context()
	x.hasBody = r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	x.chunked = x.hasBody && (r.ContentLength < 0 || len(r.Trailer) > 0)
	headp := x.head()
	defer putHead(headp)
	head := *headp
	// Waiting for a connection, dialing, writing the head and waiting for
	// the response head all count against the timeout.
	deadline := x.start.Add(g.timeout)
	if g.pool.wait > 0 && x.pipelinable() {
		x.key = g.pool.times.key(r.URL.Path)
	}
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		// A GET or HEAD may queue on a connection its session holds, if
		// the gateway pipelines; a retry takes a new one.
		c, follow, err := g.pool.take(ctx, deadline, x.session, attempt > 0, x.replayable(), x.pipelinable(), x.key)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = &backendError{what: "waiting for a backend connection", err: os.ErrDeadlineExceeded}
			} else {
				err = &backendError{what: "connecting", err: err}
			}
			x.fail(err)
			return
		}
		x.c = c
		resp, err = x.roundTrip(head, deadline, follow)
		if err == nil {
			break
		}
		x.release(false)
		if be := (*backendError)(nil); errors.As(err, &be) && be.retryable && attempt == 0 && x.replayable() && ctx.Err() == nil {
			g.retries.Add(1)
			g.log.Debug("gateway: retrying on a new connection", "backend", g.backend.Host, "path", r.URL.Path, "err", err)
			x.mu.Lock()
			x.released, x.closed = false, false
			x.mu.Unlock()
			continue
		}
		x.stopBody()
		if errors.Is(x.bodyErr, errStalled) {
			g.stalled.Add(1)
			err = x.bodyErr
		}
		if errors.Is(err, errStalled) || ctx.Err() != nil {
			// Kept the backend waiting, or reset the stream before its
			// answer: the session's limit may drop.
			g.pool.annoyed(x.session)
		}
		x.fail(err)
		return
	}
	if g.observe != nil {
		g.observe(x.in, time.Since(x.start), nil)
	}
	x.respond(resp)
}

// fail tells Observe of a failed exchange and answers the client.
func (x *exchange) fail(err error) {
	if x.g.observe != nil {
		x.g.observe(x.in, time.Since(x.start), err)
	}
	x.g.fail(x.w, x.in, err)
}

// replayable reports whether the request may be sent again: an idempotent
// method (RFC 9110 §9.2.2) without a body.
func (x *exchange) replayable() bool {
	if x.hasBody {
		return false
	}
	switch x.in.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// headBufs are the buffers request heads are written into.
var headBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putHead gives a buffer of head back to headBufs, unless a large head
// grew it.
func putHead(bp *[]byte) {
	if cap(*bp) <= 16<<10 {
		headBufs.Put(bp)
	}
}

// head returns the request line and header the backend gets, in a buffer
// of headBufs that the caller gives back: the client's method, target and
// header, less the hop-by-hop and forwarding fields, the target joined to
// the backend's URL, and the gateway's own forwarding fields.
func (x *exchange) head() *[]byte {
	in, g := x.in, x.g
	bp := headBufs.Get().(*[]byte)
	b := append((*bp)[:0], in.Method...)
	b = append(b, ' ')
	b = append(b, g.requestTarget(in)...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	host := in.Host
	if g.rewriteHost || host == "" {
		host = g.backend.Host
	}
	b = append(b, host...)
	b = append(b, "\r\n"...)
	b = appendForwardedHeader(b, in.Header)
	b = g.appendForwarding(b, in)
	switch {
	case x.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		if len(in.Trailer) > 0 {
			b = append(b, "Trailer: "...)
			first := true
			for k := range in.Trailer {
				if !first {
					b = append(b, ", "...)
				}
				b, first = append(b, k...), false
			}
			b = append(b, "\r\n"...)
		}
	case x.hasBody:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, in.ContentLength, 10)
		b = append(b, "\r\n"...)
	case in.Method == "POST" || in.Method == "PUT" || in.Method == "PATCH":
		b = append(b, "Content-Length: 0\r\n"...)
	}
	b = append(b, "\r\n"...)
	*bp = b
	return bp
}

// appendForwardedHeader appends the fields of the client's header h that
// go on to the backend: all but the hop-by-hop ones (RFC 9110 §7.6.1:
// those its Connection fields name, and the usual ones), Expect,
// Content-Length and Host (the gateway writes its own), and Forwarded and
// X-Forwarded-* (replaced by appendForwarding).
func appendForwardedHeader(b []byte, h http.Header) []byte {
	named := connectionNamed(h)
	for k, vv := range h {
		switch k {
		case "Expect", "Content-Length", "Host",
			"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue
		}
		if isHopHeader(k) || slices.Contains(named, k) {
			continue
		}
		b = appendField(b, k, vv)
	}
	return b
}

// appendField appends the lines of field k with values vv, as
// Header.Write writes them (newlines in values turned to spaces,
// surrounding blanks trimmed). A name that is not a token is dropped, as
// Header.Write drops it. A backend reads fields of different names in any
// order; those of one name keep theirs.
func appendField(b []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		b = appendFieldValue(b, v)
		b = append(b, "\r\n"...)
	}
	return b
}

// appendFieldValue appends v with CR and LF replaced by spaces and its
// surrounding spaces and tabs trimmed, as Header.Write does.
func appendFieldValue(b []byte, v string) []byte {
	v = textproto.TrimString(v)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\r', '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// roundTrip sends the request on x.c and returns the response head; 1xx
// responses other than 100 are passed on to the client.
func (x *exchange) roundTrip(head []byte, deadline time.Time, follow bool) (*http.Response, error) {
	c, g := x.c, x.g
	if follow {
		if err := x.queue(head, deadline); err != nil {
			return nil, err
		}
	}
	c.start(deadline)
	x.watchClient()
	// A request that followed others is a GET or HEAD: it may go again
	// (RFC 9112 §9.3.2) if nothing of its answer came.
	fail := func(what string, err error) (*http.Response, error) {
		return nil, &backendError{what: what, err: err, retryable: (follow || c.reused) && c.read.Load() == 0}
	}
	if !follow {
		if _, err := c.bw.Write(head); err != nil {
			return fail("writing the request", err)
		}
		if err := c.bw.Flush(); err != nil {
			return fail("writing the request", err)
		}
		c.wrote.Store(0) // only the body's bytes put the head's deadline off
		if g.pool.depth > 0 && x.pipelinable() {
			g.pool.openPipe(x.session, c, x.key)
		}
	}
	if x.key != 0 {
		x.begun = time.Now()
	}
	if x.hasBody {
		x.bodyDone = make(chan struct{})
		x.detached = true
		go x.sendBody()
	}
	c.limit = int64(g.maxHead)
	for {
		if x.fields == nil {
			x.fields = x.hdr[:0]
		}
		resp, err := readResponse(c.br, x.in, &x.resp, &x.body, &x.fields)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && c.read.Load() == 0 {
				err = io.EOF
			}
			what := "reading the response header"
			var ne net.Error
			switch {
			case errors.Is(err, errHeadTooLarge):
				what = fmt.Sprintf("the response header is over %d bytes", g.maxHead)
			case errors.Is(err, io.EOF):
				what = "the backend closed the connection before answering"
			case errors.As(err, &ne):
			default:
				what = "a malformed response"
			}
			return fail(what, err)
		}
		switch code := resp.StatusCode; {
		case resp.ProtoMajor != 1:
			return fail("a malformed response", fmt.Errorf("%s: not HTTP/1.x", resp.Proto))
		case code == http.StatusSwitchingProtocols:
			// The gateway forwards no Upgrade: a backend that switches
			// anyway speaks what nobody asked for.
			return fail("a malformed response", errors.New("101 Switching Protocols without an Upgrade"))
		case code == http.StatusContinue:
			// Never asked for (Expect is not forwarded): skip it.
			continue
		case code >= 100 && code < 200:
			h := x.w.Header()
			copyResponseHeader(h, resp.Header)
			x.w.WriteHeader(code)
			clear(h)
			continue
		}
		c.limit = -1
		return resp, nil
	}
}

// doneWatcher is a context that runs one function when it ends, set and
// stopped without allocating: the context of a request spdymux serves in
// handler mode. Other contexts take context.AfterFunc, which allocates
// three objects per request.
type doneWatcher interface {
	// WatchDone arranges for f to run in its own goroutine once the
	// context ends; false if the context holds a watch already.
	WatchDone(f func()) bool
	// StopWatch removes the watch; false if f has been started.
	StopWatch() bool
}

// watchClient makes the end of the client's request, a reset stream or
// a closed connection, close x.c: a read or write on it then fails at
// once.
func (x *exchange) watchClient() {
	ctx := x.in.Context()
	if w, ok := ctx.(doneWatcher); ok && w.WatchDone(x.c.closeConn) {
		x.watcher = w
		return
	}
	x.unwatch = context.AfterFunc(ctx, x.c.closeConn)
}

// stopWatch ends watchClient's watch, if any; it reports false if the
// watch has begun to close x.c.
func (x *exchange) stopWatch() bool {
	w, unwatch := x.watcher, x.unwatch
	x.watcher, x.unwatch = nil, nil
	switch {
	case w != nil:
		return w.StopWatch()
	case unwatch != nil:
		return unwatch()
	}
	return true
}

// pipelinable reports whether the request may queue on a connection
// behind others (Config.PipelineDepth): a GET or HEAD without a body,
// which can go again if the connection fails before its answer.
func (x *exchange) pipelinable() bool {
	return !x.hasBody && (x.in.Method == "GET" || x.in.Method == "HEAD")
}

// queue sends the request's head on x.c, behind the requests already
// there, and waits for its turn to read the answer: the answers before it
// read. The wait has no deadline of its own: each answer ahead is bound
// by the timeouts. It fails, retryable, if the connection failed first.
// A head whose write fails closes the connection: the answers ahead fail,
// and with them the requests behind, and so does the read of its own
// answer if its turn comes first. If the client goes away meanwhile,
// queue returns at once and the answer, when its turn comes, is read and
// dropped (discard), so that the requests behind keep their connection.
func (x *exchange) queue(head []byte, deadline time.Time) error {
	c := x.c
	c.wmu.Lock()
	turn, err := c.joinTurns()
	flush := false
	if err == nil {
		c.pending = append(c.pending, head...)
		flush = !c.flushing
		c.flushing = true
	}
	c.wmu.Unlock()
	if flush {
		// Let the other requests of the burst that brought this one add
		// their heads: one write carries them all.
		runtime.Gosched()
		c.flushHeads()
	}
	if err == nil && turn != nil {
		ctx := x.in.Context()
		select {
		case err = <-turn:
			doneTurn(turn)
		case <-ctx.Done():
			x.noRelease()
			x.detached = true
			go x.discard(turn, deadline, x.in.Method)
			return &backendError{what: "waiting for a pipelined answer", err: ctx.Err()}
		}
	}
	if err != nil {
		// c failed before the turn came, and is not this request's to
		// give back.
		x.noRelease()
		return &backendError{what: "waiting for a pipelined answer", err: err, retryable: true}
	}
	return nil
}

// noRelease records that x.c is not the exchange's to give back.
func (x *exchange) noRelease() {
	x.mu.Lock()
	x.released = true
	x.mu.Unlock()
}

// discard reads and drops the answer to a request of method whose client
// went away while the request waited in line on x.c, once its turn comes,
// and gives the connection back: reusable if the answer has at most
// ResponseBuffer bytes of body and the backend keeps the connection. It
// runs after the handler returned, and so does not look at x.in.
func (x *exchange) discard(turn chan error, deadline time.Time, method string) {
	c, g := x.c, x.g
	err := <-turn
	doneTurn(turn)
	if err != nil {
		return
	}
	c.start(deadline)
	c.limit = int64(g.maxHead)
	req := &http.Request{Method: method}
	var resp http.Response
	var body lengthBody
	var fields []httpconv.HeaderField
	keep := false
	for {
		r, err := readResponse(c.br, req, &resp, &body, &fields)
		if err != nil || r.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if r.StatusCode >= 100 && r.StatusCode < 200 {
			continue
		}
		c.limit = -1
		n, err := io.CopyN(io.Discard, r.Body, int64(g.bufSize)+1)
		keep = err == io.EOF && n <= int64(g.bufSize) && !r.Close
		if r.Close {
			g.pool.closedBy(c)
		}
		break
	}
	c.limit = -1
	g.pool.done(x.session, c, keep, 0, 0)
}

// sendBody copies the request body from the client to the backend. Each
// read of the body must bring bytes within StallTimeout; each write to the
// backend must be taken within its timeout.
func (x *exchange) sendBody() {
	defer close(x.bodyDone)
	c, g := x.c, x.g
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	fail := func(err error) {
		x.bodyErr = err
		x.bodyState.Store(bodyFailed)
		c.conn.Close() // the exchange cannot go on
	}
	for {
		x.rc.SetReadDeadline(time.Now().Add(g.stall))
		n, err := x.in.Body.Read(buf)
		if n > 0 {
			if x.chunked {
				fmt.Fprintf(c.bw, "%x\r\n", n)
			}
			c.bw.Write(buf[:n])
			if x.chunked {
				c.bw.WriteString("\r\n")
			}
			if werr := c.bw.Flush(); werr != nil {
				x.bodyErr = werr
				x.bodyState.Store(bodyFailed)
				return // the backend stopped reading; its answer may say why
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w: no request body bytes for %v", errStalled, g.stall)
			}
			fail(err)
			return
		}
	}
	x.rc.SetReadDeadline(time.Time{})
	if x.chunked {
		c.bw.WriteString("0\r\n")
		for k, vv := range x.in.Trailer {
			for _, v := range vv {
				c.bw.WriteString(k + ": " + v + "\r\n")
			}
		}
		c.bw.WriteString("\r\n")
		if err := c.bw.Flush(); err != nil {
			x.bodyErr = err
			x.bodyState.Store(bodyFailed)
			return
		}
	}
	x.bodyState.Store(bodySent)
}

// stopBody ends sendBody, if it runs, and waits for it.
func (x *exchange) stopBody() {
	if x.bodyDone == nil {
		return
	}
	select {
	case <-x.bodyDone:
		return
	default:
	}
	x.rc.SetReadDeadline(time.Now())
	x.closeConn()
	<-x.bodyDone
}

// closeConn closes x.c to end the exchange, unless it has gone back to
// the pool already (and may serve another request).
func (x *exchange) closeConn() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.released {
		x.closed = true
		x.c.conn.Close()
	}
}

// release gives x.c back to the pool, for reuse if reusable and nothing
// stands in the way: the client went away, the request body was not all
// sent, or the backend said it would close. It is done once.
func (x *exchange) release(reusable bool) {
	x.mu.Lock()
	done := x.released
	x.released = true
	if x.closed {
		reusable = false
	}
	x.mu.Unlock()
	if done {
		return
	}
	if !x.stopWatch() {
		reusable = false // the watch is closing the connection
	}
	if x.hasBody && x.bodyState.Load() != bodySent {
		reusable = false
	}
	var key uint64
	var took time.Duration
	if reusable && x.key != 0 && !x.begun.IsZero() {
		key, took = x.key, time.Since(x.begun)
	}
	x.g.pool.done(x.session, x.c, reusable, key, took)
}

// respond forwards the response head and body to the client.
func (x *exchange) respond(resp *http.Response) {
	g, w, c := x.g, x.w, x.c
	fast := resp == &x.resp // parsed in place: its fields in x.fields
	announced := len(resp.Trailer)
	header := func() {
		h := w.Header()
		if fast {
			fieldsInto(h, x.fields)
		} else {
			copyResponseHeader(h, resp.Header)
		}
		if announced > 0 {
			names := make([]string, 0, announced)
			for k := range resp.Trailer {
				names = append(names, k)
			}
			h.Add("Trailer", strings.Join(names, ", "))
		}
	}

	n := resp.ContentLength
	if resp.Body == http.NoBody {
		n = 0
	}
	if n >= 0 && n <= int64(c.br.Buffered()) && n <= copyBufSize {
		// Short, of known length and already here (it came with the
		// head), or empty: take it, free the connection, then send it
		// at the client's pace. A response parsed in place goes whole
		// where w takes it so, its header block made straight from its
		// fields; the body is sent from a copy buffer (no writer keeps
		// it).
		var buf []byte
		if n > 0 {
			bufp := copyBufs.Get().(*[]byte)
			defer copyBufs.Put(bufp)
			buf = (*bufp)[:n]
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				x.release(false)
				x.stopBody()
				x.abort(fmt.Errorf("reading the response body: %w", err))
			}
		}
		x.finishBody(!resp.Close)
		var werr error
		if ww, ok := w.(httpconv.WholeResponseWriter); !fast || !ok || !ww.WriteWholeResponse(resp.StatusCode, x.fields, buf) {
			header()
			w.WriteHeader(resp.StatusCode)
			if n > 0 {
				_, werr = w.Write(buf)
			}
		}
		x.stopBody()
		if werr == nil {
			g.pool.happy(x.session, x.start)
		}
		return
	}

	header()
	h := w.Header()
	w.WriteHeader(resp.StatusCode)
	x.rc.Flush()
	ra := newReadAhead(g.bufSize)
	go x.readAhead(resp, ra)
	written, werr := ra.writeTo(w, &x.rc)
	if werr != nil {
		// The client is gone, or stalled: stop reading the backend.
		close(ra.quit)
		x.closeConn()
	}
	rerr := ra.wait()
	ra.free()
	x.stopBody()
	if werr == nil && rerr == nil {
		g.pool.happy(x.session, x.start)
		if len(resp.Trailer) > 0 {
			x.rc.Flush() // trailers force chunking on HTTP/1.1
		}
		if len(resp.Trailer) == announced {
			copyHeaderInto(h, resp.Trailer)
		} else {
			for k, vv := range resp.Trailer {
				for _, v := range vv {
					h.Add(http.TrailerPrefix+k, v)
				}
			}
		}
		return
	}
	if errors.Is(rerr, errStalled) || werr != nil && written == 0 {
		// Kept the backend waiting, or reset the stream before its
		// body began: the session's limit may drop.
		g.pool.annoyed(x.session)
	}
	if errors.Is(rerr, errStalled) {
		// Logged before counted: whoever sees the count sees the line.
		g.log.Info("gateway: client too slow; backend connection released, stream reset",
			"backend", g.backend.Host, "path", x.in.URL.Path, "session", x.session, "err", rerr)
		g.stalled.Add(1)
	}
	if werr != nil {
		// The client's side failed (it went away, reset the stream, or
		// stalled and its write was made to fail): the stream is over.
		return
	}
	// Even with the request's context cancelled: net/http cancels it when
	// a read of the body fails, and a response that returned would end
	// cleanly.
	x.abort(rerr)
}

// finishBody ends the exchange once the whole response is read: the
// connection goes back to the pool, kept if keep is set and the request
// body was all sent.
func (x *exchange) finishBody(keep bool) {
	if !keep {
		x.g.pool.closedBy(x.c)
	}
	if x.hasBody {
		select {
		case <-x.bodyDone:
		default:
			keep = false // the backend answered before taking the whole body
		}
	}
	x.release(keep)
}

// abort ends a response whose body cannot be completed: the client must
// see it fail (RST_STREAM; on HTTP/1.1 a cut connection), never a short
// body that looks whole.
func (x *exchange) abort(err error) {
	x.g.log.Warn("gateway: response cut short", "backend", x.g.backend.Host, "path", x.in.URL.Path, "err", err)
	panic(http.ErrAbortHandler)
}

// readAhead reads the response body into ra as fast as the backend sends
// it and as ra has room, then gives the connection back. When ra is full
// and the client does not take half of it within StallTimeout, it gives
// up: the connection is closed and the client's write made to fail.
func (x *exchange) readAhead(resp *http.Response, ra *readAhead) {
	g := x.g
	var err error
	for {
		p, ok := ra.space(g.stall)
		if !ok && isClosed(ra.quit) {
			err = errClientGone
			break
		}
		if !ok {
			err = fmt.Errorf("%w: it took less than %d bytes of the response in %v", errStalled, g.bufSize/2, g.stall)
			x.closeConn()
			x.rc.SetWriteDeadline(time.Now()) // the client's write fails: the stream is reset
			break
		}
		n, rerr := resp.Body.Read(p)
		ra.filled(n)
		if rerr == io.EOF {
			x.finishBody(!resp.Close)
			break
		}
		if rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) {
				rerr = fmt.Errorf("the backend closed the connection in the middle of the body: %w", rerr)
			}
			err = rerr
			break
		}
	}
	if err != nil {
		x.release(false)
	}
	ra.end(err)
}

// copyResponseHeader copies src into dst less the hop-by-hop fields (RFC
// 9110 §7.6.1): those Connection names, and the usual ones.
func copyResponseHeader(dst, src http.Header) {
	named := connectionNamed(src)
	for k, vv := range src {
		if isHopHeader(k) || slices.Contains(named, k) {
			continue
		}
		if old := dst[k]; len(old) > 0 {
			dst[k] = append(old, vv...)
		} else {
			// src is the backend's response header, read for this
			// exchange and dropped after: its values need no copy.
			dst[k] = vv
		}
	}
}

// connectionNamed returns the field names h's Connection fields list, in
// canonical form: hop-by-hop fields of this connection only.
func connectionNamed(h http.Header) []string {
	var named []string
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
	return named
}

func copyHeaderInto(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k], vv...)
	}
}

// isHopHeader reports whether the canonical name k is one of the usual
// hop-by-hop fields, as httputil.ReverseProxy lists them.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// copyBufs are the buffers request bodies are copied through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

const copyBufSize = 32 << 10

// readAhead is the ring buffer between the goroutine that reads a
// response body from the backend (the producer) and the handler that
// writes it to the client (the consumer).
type readAhead struct {
	buf []byte

	mu     sync.Mutex
	r, w   int64 // bytes taken by the consumer, put by the producer
	err    error // set by end: nil for the whole body
	ended  bool
	toCons chan struct{} // producer → consumer: bytes or the end; room for one
	toProd chan struct{} // consumer → producer: room; room for one
	quit   chan struct{} // closed by the consumer when it gives up
	done   chan struct{} // closed by end
}

// ringBufs holds the rings of the default size.
var ringBufs = sync.Pool{New: func() any { b := make([]byte, DefaultResponseBuffer); return &b }}

func newReadAhead(size int) *readAhead {
	ra := &readAhead{toCons: make(chan struct{}, 1), toProd: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if size == DefaultResponseBuffer {
		ra.buf = *ringBufs.Get().(*[]byte)
	} else {
		ra.buf = make([]byte, size)
	}
	return ra
}

func (ra *readAhead) free() {
	if len(ra.buf) == DefaultResponseBuffer {
		b := ra.buf
		ringBufs.Put(&b)
	}
	ra.buf = nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// space returns the free bytes the producer may read into next. When the
// ring is full it waits until the consumer has taken half of it, for at
// most stall; ok is false if it did not, or if the consumer gave up.
func (ra *readAhead) space(stall time.Duration) (p []byte, ok bool) {
	size := int64(len(ra.buf))
	ra.mu.Lock()
	used := ra.w - ra.r
	ra.mu.Unlock()
	if used == size {
		t := time.NewTimer(stall)
		defer t.Stop()
		for used > size/2 {
			select {
			case <-ra.toProd:
			case <-t.C:
				return nil, false
			case <-ra.quit:
				return nil, false
			}
			ra.mu.Lock()
			used = ra.w - ra.r
			ra.mu.Unlock()
		}
	}
	ra.mu.Lock()
	start := ra.w % size
	end := min(size, start+size-(ra.w-ra.r))
	ra.mu.Unlock()
	return ra.buf[start:end], true
}

// filled records n bytes put by the producer.
func (ra *readAhead) filled(n int) {
	if n == 0 {
		return
	}
	ra.mu.Lock()
	ra.w += int64(n)
	ra.mu.Unlock()
	signal(ra.toCons)
}

// end records the producer's end: err nil for the whole body.
func (ra *readAhead) end(err error) {
	ra.mu.Lock()
	ra.err, ra.ended = err, true
	ra.mu.Unlock()
	close(ra.done)
	signal(ra.toCons)
}

// wait waits for the producer's end and returns its error.
func (ra *readAhead) wait() error {
	<-ra.done
	return ra.err
}

// writeTo writes the bytes put into the ring to w as they come, flushing
// whenever it has written all there is, until the producer ends. It
// returns the bytes written and the first write error.
func (ra *readAhead) writeTo(w io.Writer, rc *http.ResponseController) (written int64, err error) {
	size := int64(len(ra.buf))
	for {
		ra.mu.Lock()
		r, avail, ended := ra.r, ra.w-ra.r, ra.ended
		ra.mu.Unlock()
		if avail == 0 {
			if ended {
				return written, nil
			}
			<-ra.toCons
			continue
		}
		start := r % size
		chunk := ra.buf[start:min(size, start+avail)]
		n, err := w.Write(chunk)
		written += int64(n)
		ra.mu.Lock()
		ra.r += int64(n)
		more := ra.w > ra.r
		ra.mu.Unlock()
		signal(ra.toProd)
		if err != nil {
			return written, err
		}
		if !more {
			if err := rc.Flush(); err != nil {
				return written, err
			}
		}
	}
}
