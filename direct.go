package spdymux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// This file serves streams by calling Config.Handler directly (handler
// mode): the request is built from the stream's header block and the
// handler's response goes to the session as a header block and DATA,
// with no HTTP/1.1 exchange and no secondary connection in between. The
// session, the pool, priorities, flow control, limits and push are the
// same as for a secondary connection; only the last step differs.

// directWorkerIdle is how long a handler goroutine waits for the next
// stream before it exits, give or take as much again. Reusing goroutines
// keeps the stacks they grew.
const directWorkerIdle = 100 * time.Millisecond

// directWorkers runs handlers on reused goroutines. An idle worker waits
// on a channel of its own, with no timer: the most recently idle is given
// the next stream, and one janitor goroutine, while any worker is idle,
// ends every directWorkerIdle the workers that were idle already at its
// previous round, and all of them once done is closed.
type directWorkers struct {
	done <-chan struct{} // closed when the listener closes: idle workers exit

	mu      sync.Mutex
	idle    []*directWorker // oldest first
	round   uint64          // the janitor's rounds so far
	janitor bool            // the janitor runs
	closed  bool            // done was seen closed: no worker parks again
}

// directWorker is one handler goroutine; work brings its next stream, or
// nil to make it exit.
type directWorker struct {
	work   chan *stream // cap 1
	parked uint64       // the janitor's round when it last became idle
}

func newDirectWorkers(done <-chan struct{}) *directWorkers {
	return &directWorkers{done: done}
}

// run serves st, which holds a worker slot, on an idle goroutine or a
// new one.
func (w *directWorkers) run(st *stream) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wk := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		wk.work <- st // an idle worker's channel is empty
		return
	}
	w.mu.Unlock()
	go w.loop(&directWorker{work: make(chan *stream, 1)}, st)
}

func (w *directWorkers) loop(wk *directWorker, st *stream) {
	for st != nil {
		s := st.s
		release := s.serveDirect(st)
		// Idle before the slot is freed: a stream the pool gives the
		// slot to comes to this worker, not to a new goroutine. Freed
		// first, under a flood of short streams on a busy core, every
		// slot could pass to a new goroutine while the workers that
		// freed them wait to park: several goroutines per slot.
		parked := w.park(wk)
		s.releaseSlot(release)
		if !parked {
			return
		}
		st = <-wk.work
	}
}

// park makes wk idle; it reports false if the listener closed, when wk
// is to exit.
func (w *directWorkers) park(wk *directWorker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	wk.parked = w.round
	w.idle = append(w.idle, wk)
	if !w.janitor {
		w.janitor = true
		go w.sweep()
	}
	return true
}

// sweep is the janitor: every directWorkerIdle it ends the workers idle
// since before its previous round, so that a worker exits after between
// one and two directWorkerIdle idle, until none is idle; and all of them
// once done is closed.
func (w *directWorkers) sweep() {
	t := time.NewTicker(directWorkerIdle)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.done:
			w.mu.Lock()
			w.closed, w.janitor = true, false
			idle := w.idle
			w.idle = nil
			w.mu.Unlock()
			for _, wk := range idle {
				wk.work <- nil
			}
			return
		}
		w.mu.Lock()
		n := 0
		for n < len(w.idle) && w.idle[n].parked < w.round {
			w.idle[n].work <- nil
			n++
		}
		w.idle = append(w.idle[:0], w.idle[n:]...)
		clear(w.idle[len(w.idle) : len(w.idle)+n])
		w.round++
		if len(w.idle) == 0 {
			w.janitor = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// directExchange is one stream served by the handler: the request's
// context, body and response writer in one allocation.
type directExchange struct {
	s   *session
	st  *stream
	req *http.Request

	// ctx is the request's context: the stream's facts, cancelled when
	// the stream dies or the handler returns.
	ctx streamContext

	body directBody
	w    directWriter

	// url is the request's URL (one allocation with the exchange).
	url url.URL

	// spare is the request's field slice once the request is built,
	// cleared: the response's header block is made in it (block).
	spare []httpconv.HeaderField
}

// block returns a slice for a header block of up to n fields: the spare
// one when it is large enough.
func (x *directExchange) block(n int) []httpconv.HeaderField {
	if f := x.spare; cap(f) >= n {
		x.spare = nil
		return f
	}
	return make([]httpconv.HeaderField, 0, n)
}

// directBufSize is the response bytes a handler's writes gather before
// the head goes out: a response that ends within it gets a
// content-length, as from net/http.
const directBufSize = 4 << 10

var directBufs = sync.Pool{New: func() any { b := make([]byte, 0, directBufSize); return &b }}

// serveDirect runs the handler for st, which holds a worker slot; it
// reports whether the caller is to free the slot (releaseSlot), which a
// handler that calls runtime.Goexit leaves to serveDirect: its worker
// ends there.
func (s *session) serveDirect(st *stream) (release bool) {
	x := &directExchange{s: s, st: st}
	s.mu.Lock()
	st.info = StreamInfo{
		Protocol:   s.proto,
		SessionID:  s.id,
		StreamID:   st.id,
		ConnID:     connIDs.Add(1),
		Priority:   st.priority,
		TLS:        s.tls,
		RemoteAddr: s.conn.RemoteAddr(),

		AssociatedStreamID: st.associatedID(),
	}
	fields := st.reqFields
	st.reqFields = nil
	x.ctx.init(s.baseContext, &st.info, s.conn.LocalAddr())
	st.ctx = &x.ctx
	dead := st.err != nil
	s.mu.Unlock()
	exited := true // until serve returns
	defer func() {
		release = x.release()
		if exited {
			s.releaseSlot(release)
		}
	}()
	if !dead {
		x.serve(fields)
	}
	exited = false
	return
}

// serve builds the request from fields and runs the handler.
func (x *directExchange) serve(fields []httpconv.HeaderField) {
	s, st := x.s, x.st
	req, err := x.request(&x.ctx, fields)
	if err != nil {
		s.log.Info("spdymux: bad request", "stream", st.id, "err", err)
		s.mu.Lock()
		s.replyErrorLocked(st, http.StatusBadRequest, err.Error())
		s.mu.Unlock()
		return
	}
	x.req = req
	x.w.init(x)
	if !x.runHandler() {
		return
	}
	x.w.finish()
}

// runHandler calls the handler; it reports false if the handler
// panicked, once the stream is reset.
func (x *directExchange) runHandler() (ok bool) {
	defer func() {
		if ok {
			return
		}
		switch v := recover(); {
		case v == nil:
			x.s.log.Info("spdymux: handler called runtime.Goexit", "stream", x.st.id)
		case v != http.ErrAbortHandler:
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			x.s.log.Error("spdymux: handler panic", "stream", x.st.id, "panic", fmt.Sprint(v), "stack", string(buf))
		}
		x.s.mu.Lock()
		if x.st.err == nil {
			x.s.resetLocked(x.st, codeInternal)
		}
		x.s.mu.Unlock()
		x.w.abandon()
	}()
	x.s.cfg.handler.ServeHTTP(&x.w, x.req)
	return true
}

// release ends the exchange: the rest of the request body is dropped
// and the context cancelled. It reports whether the worker slot is to be
// freed (releaseSlot), which the worker does once idle.
func (x *directExchange) release() bool {
	s, st := x.s, x.st
	s.mu.Lock()
	s.requestDoneLocked(st)
	st.ctx = nil
	release := st.takeSlotLocked()
	s.mu.Unlock()
	x.ctx.cancel(context.Canceled)
	return release
}

// request builds the handler's request.
func (x *directExchange) request(ctx context.Context, fields []httpconv.HeaderField) (*http.Request, error) {
	s, st := x.s, x.st
	r := st.req
	if err := httpconv.ParseRequestURI(&x.url, r.Path); err != nil {
		return nil, fmt.Errorf("invalid path %q", r.Path)
	}
	// WithContext on the blank request makes the request and sets its
	// context in one allocation; on a request of its own it would copy
	// that into a second.
	req := blankRequest.WithContext(ctx)
	req.Method = r.Method
	req.URL = &x.url
	req.Proto, req.ProtoMajor, req.ProtoMinor = r.Proto, 1, 1
	req.Header = httpconv.RequestHeader(s.dialect, fields, r)
	req.Host = r.Host
	req.RemoteAddr = s.remote
	req.RequestURI = r.Path
	req.TLS = s.tls
	if s.dialect == httpconv.H2 {
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/2.0", 2, 0
	} else if r.Proto == "HTTP/1.0" {
		req.ProtoMinor = 0
	}
	if vv, ok := req.Header["Trailer"]; ok {
		req.Trailer = httpconv.AnnouncedTrailers(vv)
		delete(req.Header, "Trailer")
	}
	if vv := req.Header["Expect"]; len(vv) == 1 && strings.EqualFold(vv[0], "100-continue") {
		delete(req.Header, "Expect")
		x.body.expectContinue = s.dialect == httpconv.H2
	}
	if !st.pushed() {
		// The header holds the fields' strings, not the slice, which
		// was made for this request alone (onStream): the response's
		// block can go in it. A push's fields are also its promise,
		// which may not be written yet.
		clear(fields)
		x.spare = fields[:0]
	}
	s.mu.Lock()
	noBody := st.recvFin && st.unread() == 0 && r.ContentLength <= 0
	s.mu.Unlock()
	if noBody {
		req.Body = http.NoBody
		req.ContentLength = 0
	} else {
		x.body.x = x
		x.body.left = r.ContentLength
		if req.Trailer != nil {
			x.body.left = -1
		}
		req.Body = &x.body
		req.ContentLength = r.ContentLength
	}
	return req, nil
}

// blankRequest is the zero request that request copies; it is never
// written.
var blankRequest http.Request

// directBody is a request body read straight from the stream's DATA.
type directBody struct {
	x              *directExchange
	expectContinue bool // send 100 Continue before the first read (HTTP/2)
	eof            bool
	// left is what remains of a body of known length, or -1. Once it is
	// read the body ends, without waiting for the client's FIN: a client
	// may hold that back (nghttp2 sends no DATA, even empty, into a shut
	// window, and no credit is given past a known length), as net/http's
	// HTTP/1.1 server stops at Content-Length. With trailers announced,
	// the body ends with the client's FIN, which brings them.
	left   int64
	closed atomic.Bool
}

var errDirectBodyClosed = errors.New("http: invalid Read on closed Body")

// Read reads the body; like net/http's, it is not for concurrent use.
func (b *directBody) Read(p []byte) (int, error) {
	switch {
	case b.closed.Load():
		return 0, errDirectBodyClosed
	case b.eof, b.left == 0:
		b.eof = true
		return 0, io.EOF
	}
	x := b.x
	if b.expectContinue {
		b.expectContinue = false
		x.w.interim(http.StatusContinue)
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := x.st.readPayload(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if err == io.EOF {
		b.eof = true
		// As net/http's HTTP/1.1 server does with a chunked body's
		// trailers: every field the client sent, announced or not.
		if fields := x.st.takeTrailers(); len(fields) > 0 {
			t := x.req.Trailer
			if t == nil {
				t = make(http.Header, len(fields))
				x.req.Trailer = t
			}
			for _, f := range fields {
				if httpconv.ForbiddenTrailer(f.Name) {
					continue
				}
				k := http.CanonicalHeaderKey(f.Name)
				t[k] = append(t[k], strings.Split(f.Value, "\x00")...)
			}
		}
	}
	return n, err
}

// Close marks the body closed; what the client still sends is dropped
// once the handler returns.
func (b *directBody) Close() error {
	b.closed.Store(true)
	return nil
}

// directWriter is the handler's http.ResponseWriter. It is used by the
// handler's goroutine (and those it starts, one at a time, as with
// net/http).
type directWriter struct {
	x      *directExchange
	header http.Header

	status      int   // the final status, once chosen
	length      int64 // the Content-Length the handler set, or -1
	written     int64 // body bytes the handler wrote
	err         error // the stream's failure, once seen
	trailerKeys []string
	buf         *[]byte // gathered body bytes until the head is sent

	head   bool
	noBody bool // HEAD, or a status without a body
	sent   bool // the head went to the session
	done   bool // the handler returned
	ended  bool // the whole response is queued (WriteWholeResponse)
}

func (w *directWriter) init(x *directExchange) {
	w.x = x
	w.head = x.req.Method == http.MethodHead
	w.length = -1
}

// Header returns the response header, made on the first call: a response
// written whole (WriteWholeResponse) needs none.
func (w *directWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// WriteHeader sends an interim (1xx) response over HTTP/2 (SPDY has
// none), or chooses the final status.
func (w *directWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 || w.done {
		w.x.s.log.Debug("spdymux: superfluous WriteHeader", "stream", w.x.st.id, "code", code)
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.interim(code)
		}
		return
	}
	w.status = code
	w.noBody = w.head || code == http.StatusNoContent || code == http.StatusNotModified
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, ok := httpconv.ParseContentLength(cl); ok {
			w.length = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

// interim queues a 1xx response with the header as it is now; HTTP/2
// only, as on a secondary connection.
func (w *directWriter) interim(code int) {
	x := w.x
	if x.s.dialect != httpconv.H2 || w.sent {
		return
	}
	fields := httpconv.AppendResponseFields(nil, x.s.dialect, code, w.header, -1)
	(*responseSink)(x.st).Interim(code, fields)
}

// Write sends body bytes; the first bytes wait in a buffer so that a short
// response goes out with a content-length.
func (w *directWriter) Write(p []byte) (int, error) { return write(w, p) }

// WriteString is Write for a string, without converting one that fits
// in the buffer.
func (w *directWriter) WriteString(s string) (int, error) { return write(w, s) }

func write[T string | []byte](w *directWriter, p T) (int, error) {
	if w.done {
		return 0, http.ErrHandlerTimeout
	}
	if w.ended {
		return 0, errWholeWritten
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	fits := !w.sent && w.written+int64(len(p)) <= directBufSize
	if w.noBody {
		if !w.head {
			return 0, http.ErrBodyNotAllowed
		}
		// HEAD: the bytes are not sent, but those that fit in the
		// buffer give the head a content-length and a sniffed
		// content-type, as the GET's would have (net/http does the same).
		if fits {
			gather(w, p)
		}
		w.written += int64(len(p))
		return len(p), nil
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	switch {
	case fits:
		gather(w, p)
		return len(p), nil
	case !w.sent:
		if err := w.sendHead(false); err != nil {
			return 0, err
		}
		// The gathered bytes and p in one wait for the writer.
		var err error
		if w.buf != nil {
			err = w.send(*w.buf, []byte(p))
			w.putBuf()
		} else {
			err = w.send([]byte(p))
		}
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := w.send([]byte(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// gather adds p to the buffer of bytes not yet sent.
func gather[T string | []byte](w *directWriter, p T) {
	if w.buf == nil {
		w.buf = directBufs.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
}

// sendHead queues the response head; end says the handler is done, so
// the buffered bytes are the whole body.
func (w *directWriter) sendHead(end bool) error {
	x := w.x
	w.sent = true
	var body []byte
	if w.buf != nil {
		body = *w.buf
	}
	if _, ok := w.header["Content-Type"]; !ok && len(body) > 0 && w.header.Get("Transfer-Encoding") == "" {
		w.Header().Set("Content-Type", http.DetectContentType(body))
	}
	for k := range httpconv.AnnouncedTrailers(w.header["Trailer"]) {
		w.trailerKeys = append(w.trailerKeys, k)
	}
	// A response with trailers gets no content-length of ours, and the
	// fields it announced as trailers go after the body, not in the head,
	// as from net/http.
	length := int64(-1)
	if end && w.length < 0 && len(w.trailerKeys) == 0 && w.header.Get("Transfer-Encoding") == "" {
		switch {
		case !w.noBody:
			length = int64(len(body))
		case w.head && w.written > 0 && w.written == int64(len(body)):
			length = w.written
		}
	}
	h := w.header
	if len(w.trailerKeys) > 0 {
		h = h.Clone()
		for _, k := range w.trailerKeys {
			delete(h, k)
		}
	}
	fields := httpconv.AppendResponseFields(x.block(len(h)+4), x.s.dialect, w.status, h, length)
	if _, ok := w.header["Date"]; !ok {
		fields = append(fields, httpconv.HeaderField{Name: "date", Value: httpDate()})
	}
	noBody := w.noBody || end && len(body) == 0 && len(w.trailers()) == 0
	if err := (*responseSink)(x.st).Head(fields, noBody); err != nil {
		w.fail(err)
		return w.err
	}
	return nil
}

// WriteWholeResponse queues the head, the body and the end of the stream
// at once, the head made straight from fields
// (httpconv.WholeResponseWriter). The head gets what sendHead would give
// the same response written through Header, WriteHeader and Write: a
// content-length, a sniffed content-type if it has none, and a date.
func (w *directWriter) WriteWholeResponse(code int, fields []httpconv.HeaderField, body []byte) bool {
	if w.status != 0 || w.done || w.err != nil || w.buf != nil || len(w.header) > 0 || w.head ||
		code < 200 || code > 999 || code == http.StatusNoContent || code == http.StatusNotModified {
		return false
	}
	hasLength, hasType, hasDate := false, false, false
	for i := range fields {
		name := fields[i].Name
		switch {
		case strings.EqualFold(name, "Transfer-Encoding"), strings.EqualFold(name, "Trailer"):
			return false
		case strings.EqualFold(name, "Content-Length"):
			if n, ok := httpconv.ParseContentLength(fields[i].Value); !ok || n != int64(len(body)) {
				return false
			}
			hasLength = true
		case strings.EqualFold(name, "Content-Type"):
			hasType = true
		case strings.EqualFold(name, "Date"):
			hasDate = true
		}
	}
	x := w.x
	w.status, w.written, w.sent, w.ended = code, int64(len(body)), true, true
	// The most fields the block can have: status (and version), the
	// fields, and those added below.
	n := 2 + len(fields)
	if !hasLength {
		n++
	}
	if !hasType && len(body) > 0 {
		n++
	}
	if !hasDate {
		n++
	}
	head := httpconv.AppendResponseFieldList(x.block(n), x.s.dialect, code, fields, int64(len(body)))
	if !hasType && len(body) > 0 {
		head = httpconv.InsertField(head, x.s.dialect, httpconv.HeaderField{Name: "content-type", Value: http.DetectContentType(body)})
	}
	if !hasDate {
		head = append(head, httpconv.HeaderField{Name: "date", Value: httpDate()})
	}
	sink := (*responseSink)(x.st)
	err := sink.Head(head, len(body) == 0)
	if err == nil && len(body) > 0 {
		err = sink.Body(bytes.Clone(body))
	}
	if err == nil {
		err = sink.End(nil)
	}
	if err != nil {
		w.fail(err)
	}
	return true
}

// errWholeWritten fails a write after WriteWholeResponse.
var errWholeWritten = errors.New("spdymux: the whole response was written already")

// flushBuf sends the gathered body bytes (a HEAD response's are
// dropped).
func (w *directWriter) flushBuf() error {
	if w.buf == nil {
		return nil
	}
	var err error
	if !w.noBody {
		err = w.send(*w.buf)
	}
	w.putBuf()
	return err
}

// putBuf gives the buffer back.
func (w *directWriter) putBuf() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		directBufs.Put(w.buf)
		w.buf = nil
	}
}

// send queues ps as DATA and waits until the writer took them.
func (w *directWriter) send(ps ...[]byte) error {
	n := 0
	for _, p := range ps {
		n += len(p)
	}
	if n == 0 {
		return nil
	}
	st := w.x.st
	s := st.s
	s.mu.Lock()
	if st.err != nil {
		s.mu.Unlock()
		w.fail(st.err)
		return w.err
	}
	if st.wdl.expired() {
		s.mu.Unlock()
		w.fail(os.ErrDeadlineExceeded)
		return w.err
	}
	for _, p := range ps {
		st.queueDataLocked(p)
	}
	s.mu.Unlock()
	if _, err := st.waitTaken(true); err != nil {
		w.fail(err)
		return w.err
	}
	return nil
}

// fail records that the response cannot go on, and resets the stream if
// it lives: a response cut short must never end with FIN.
func (w *directWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	st := w.x.st
	s := st.s
	s.mu.Lock()
	if st.err == nil {
		s.log.Info("spdymux: response failed; resetting stream", "stream", st.id, "err", err)
		s.resetLocked(st, codeInternal)
	}
	s.mu.Unlock()
}

// Flush sends the head and what is gathered.
func (w *directWriter) Flush() { w.FlushError() }

// FlushError is Flush, reporting a failed stream (http.ResponseController).
func (w *directWriter) FlushError() error {
	if w.done {
		return http.ErrHandlerTimeout
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.sent {
		if err := w.sendHead(false); err != nil {
			return err
		}
	}
	return w.flushBuf()
}

// SetReadDeadline sets the deadline for reading the request body
// (http.ResponseController).
func (w *directWriter) SetReadDeadline(t time.Time) error {
	w.x.st.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for writing the response
// (http.ResponseController).
func (w *directWriter) SetWriteDeadline(t time.Time) error {
	w.x.st.wdl.set(t)
	return nil
}

// EnableFullDuplex is a no-op: a stream's request body can always be read
// while the response is written (http.ResponseController).
func (w *directWriter) EnableFullDuplex() error { return nil }

// finish ends the response once the handler returned.
func (w *directWriter) finish() {
	x := w.x
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.done = true
	if w.err != nil {
		w.abandon()
		return
	}
	if w.ended {
		return
	}
	short := w.length >= 0 && w.written < w.length && !w.noBody
	if short && !w.sent {
		// Nothing went out yet: the stream is reset with no head.
		w.abandon()
		w.resetShort()
		return
	}
	if !w.sent {
		// The whole response is in hand: head, body and end are queued
		// together, and the handler's goroutine does not wait for the
		// writer. The body is copied out of the pooled buffer.
		if w.sendHead(true) != nil {
			w.abandon()
			return
		}
		if w.buf != nil && !w.noBody && len(*w.buf) > 0 {
			if err := (*responseSink)(x.st).Body(bytes.Clone(*w.buf)); err != nil {
				w.abandon()
				return
			}
		}
		w.putBuf()
	} else if w.flushBuf() != nil {
		return
	}
	if short {
		w.resetShort()
		return
	}
	var trailers []httpconv.HeaderField
	if t := w.trailers(); len(t) > 0 {
		trailers = httpconv.TrailerFields(nil, x.s.dialect, t)
	}
	(*responseSink)(x.st).End(trailers)
}

// resetShort resets the stream of a handler that returned having written
// less than its Content-Length.
func (w *directWriter) resetShort() {
	x := w.x
	x.s.log.Info("spdymux: handler wrote less than its Content-Length; resetting stream", "stream", x.st.id, "wrote", w.written, "content-length", w.length)
	x.s.mu.Lock()
	if x.st.err == nil {
		x.s.resetLocked(x.st, codeInternal)
	}
	x.s.mu.Unlock()
}

// trailers returns the handler's trailers.
func (w *directWriter) trailers() http.Header {
	var t http.Header
	for _, k := range w.trailerKeys {
		if vv, ok := w.header[k]; ok {
			if t == nil {
				t = make(http.Header)
			}
			t[k] = vv
		}
	}
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if t == nil {
				t = make(http.Header)
			}
			t[strings.TrimPrefix(k, http.TrailerPrefix)] = vv
		}
	}
	return t
}

// abandon gives back the buffer of a response that will not be sent.
func (w *directWriter) abandon() {
	w.done = true
	w.putBuf()
}

// httpDate returns the current time as a Date field, formatted once per
// second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &cachedDate{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]
