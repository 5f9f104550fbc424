package spdymux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
	"github.com/spdymux/spdymux/internal/interop"
	"github.com/spdymux/spdymux/spdy"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Tests of handler mode (Config.Handler, direct.go). The whole suite also
// runs in handler mode with go test -args -handler-mode.

// seenRequest is what a handler saw of its request.
type seenRequest struct {
	method, proto, host, uri, remote string
	major                            int
	header                           http.Header
	trailer                          http.Header
	length                           int64
	body                             []byte
	bodyErr                          error
	info                             *StreamInfo
	tls                              bool
}

// recordingHandler answers "ok\n" and sends what it saw on seen.
func recordingHandler(seen chan<- seenRequest) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		info, _ := StreamInfoFromContext(r.Context())
		seen <- seenRequest{
			method: r.Method, proto: r.Proto, host: r.Host, uri: r.RequestURI, remote: r.RemoteAddr,
			major: r.ProtoMajor, header: r.Header, trailer: r.Trailer, length: r.ContentLength,
			body: body, bodyErr: err, info: info, tls: r.TLS != nil,
		}
		io.WriteString(w, "ok\n")
	})
}

func TestDirectRequestH2(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seen := make(chan seenRequest, 1)
		ts := newDirectServer(t, ProtoH2C, nil, recordingHandler(seen))
		p := ts.dialH2(t)
		p.request(1, "POST", "/path?q=1", false,
			hpack.HeaderField{Name: "cookie", Value: "a=1"},
			hpack.HeaderField{Name: "x-multi", Value: "x"},
			hpack.HeaderField{Name: "cookie", Value: "b=2"},
			hpack.HeaderField{Name: "x-multi", Value: "y"},
			hpack.HeaderField{Name: "te", Value: "trailers"},
			hpack.HeaderField{Name: "content-length", Value: "5"},
			hpack.HeaderField{Name: "trailer", Value: "x-check"},
		)
		p.write(func() error { return p.fr.WriteData(1, false, []byte("hello")) })
		p.headers(1, true, hpack.HeaderField{Name: "x-check", Value: "42"})
		head, body, _ := p.response(1)
		if s := head.field(":status"); s != "200" || string(body) != "ok\n" {
			t.Fatalf("response %s %q; want 200 \"ok\\n\"", s, body)
		}
		r := <-seen
		if r.method != "POST" || r.proto != "HTTP/2.0" || r.major != 2 || r.host != "example.com" || r.uri != "/path?q=1" || r.remote != "pipe" {
			t.Errorf("request %s %s %s (major %d) host %q remote %q", r.method, r.uri, r.proto, r.major, r.host, r.remote)
		}
		if got := r.header["Cookie"]; len(got) != 1 || got[0] != "a=1; b=2" {
			t.Errorf("Cookie %q; want one value \"a=1; b=2\"", got)
		}
		if got := r.header["X-Multi"]; strings.Join(got, ",") != "x,y" {
			t.Errorf("X-Multi %q; want [x y]", got)
		}
		for _, k := range []string{"Te", "Host", ":path", "Trailer"} {
			if _, ok := r.header[k]; ok {
				t.Errorf("the handler saw header %s", k)
			}
		}
		if r.length != 5 || string(r.body) != "hello" || r.bodyErr != nil {
			t.Errorf("body %q (ContentLength %d, err %v); want \"hello\"", r.body, r.length, r.bodyErr)
		}
		if r.trailer.Get("X-Check") != "42" {
			t.Errorf("trailer %v; want X-Check: 42", r.trailer)
		}
		if r.info == nil || r.info.StreamID != 1 || r.info.Protocol != ProtoH2C || r.info.ConnID == 0 {
			t.Errorf("StreamInfo %+v", r.info)
		}
	})
}

func TestDirectRequestSPDY(t *testing.T) {
	forEachBubble(t, []string{ProtoSPDY31, ProtoSPDY3, ProtoSPDY2}, func(t *testing.T, proto string) {
		seen := make(chan seenRequest, 2)
		ts := newDirectServer(t, proto, nil, recordingHandler(seen))
		p := ts.dial(t)
		h := p.request("PUT", "/up", spdy.HeaderField{Name: "x-multi", Value: "x\x00y"}, spdy.HeaderField{Name: "content-length", Value: "3"})
		p.send(t, p.syn(1, 2, false, h))
		p.sendBody(t, 1, []byte("abc"), true)
		if r := p.readResponse(t, 1); r.status != "200 OK" || string(r.body) != "ok\n" {
			t.Errorf("response %q %q", r.status, r.body)
		}
		r := <-seen
		if r.method != "PUT" || r.proto != "HTTP/1.1" || r.major != 1 || r.host != "example.com" || string(r.body) != "abc" || r.length != 3 {
			t.Errorf("request %s %s host %q body %q length %d", r.method, r.proto, r.host, r.body, r.length)
		}
		if got := r.header["X-Multi"]; strings.Join(got, ",") != "x,y" {
			t.Errorf("X-Multi %q; want [x y]", got)
		}
		if got := r.header.Get("Accept-Encoding"); got != "gzip, deflate" {
			t.Errorf("Accept-Encoding %q; want the SPDY default", got)
		}
		if r.info == nil || r.info.Protocol != proto || r.info.Priority != 2 {
			t.Errorf("StreamInfo %+v", r.info)
		}
		// A second stream is a new fake connection.
		p.get(t, 3, "/")
		p.readResponse(t, 3)
		if r2 := <-seen; r2.info == nil || r2.info.ConnID == r.info.ConnID {
			t.Errorf("streams 1 and 3 share ConnID %d", r.info.ConnID)
		}
	})
}

// The response head: a short body gets content-length and a sniffed
// content-type, connection-specific fields are dropped, and a field
// given twice stays two fields in HTTP/2.
func TestDirectResponseHead(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Connection", "x-hop")
			h.Set("X-Hop", "1")
			h.Set("Keep-Alive", "timeout=5")
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			io.WriteString(w, "<html><body>hi</body></html>")
		}))
		p := ts.dialH2(t)
		p.request(1, "GET", "/", true)
		head, body, _ := p.response(1)
		if got := head.field("content-length"); got != strconv.Itoa(len(body)) {
			t.Errorf("content-length %q for %d bytes", got, len(body))
		}
		if got := head.field("content-type"); got != "text/html; charset=utf-8" {
			t.Errorf("content-type %q; want sniffed text/html", got)
		}
		if head.field("date") == "" {
			t.Error("no date")
		}
		var cookies int
		for _, f := range head.fields {
			switch f.Name {
			case "connection", "x-hop", "keep-alive":
				t.Errorf("connection-specific field %s sent", f.Name)
			case "set-cookie":
				cookies++
			}
		}
		if cookies != 2 {
			t.Errorf("%d set-cookie fields; want 2", cookies)
		}
	})
}

// HEAD: the handler's writes are dropped, but give the head its
// content-length; a 204 refuses a body.
func TestDirectHeadAndNoContent(t *testing.T) {
	bubble(t, func(t *testing.T) {
		errs := make(chan error, 1)
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/204" {
				w.WriteHeader(http.StatusNoContent)
				_, err := w.Write([]byte("x"))
				errs <- err
				return
			}
			io.WriteString(w, "hello")
		}))
		p := ts.dialH2(t)
		p.request(1, "HEAD", "/", true)
		head, body, _ := p.response(1)
		if !head.flags.Has(http2.FlagHeadersEndStream) || len(body) != 0 {
			t.Errorf("HEAD: %v with body %q; want HEADERS with END_STREAM", head, body)
		}
		if got := head.field("content-length"); got != "5" {
			t.Errorf("HEAD: content-length %q; want 5", got)
		}
		p.request(3, "GET", "/204", true)
		head, _, _ = p.response(3)
		if head.field(":status") != "204" || !head.flags.Has(http2.FlagHeadersEndStream) {
			t.Errorf("204: %v", head)
		}
		if err := <-errs; !errors.Is(err, http.ErrBodyNotAllowed) {
			t.Errorf("Write after 204: %v; want ErrBodyNotAllowed", err)
		}
	})
}

// A response the handler cannot finish is reset, never ended: a panic
// (logged, with its stack, unless it is http.ErrAbortHandler), or fewer
// bytes than its Content-Length. The session goes on.
func TestDirectBrokenResponses(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var logs interop.SyncBuffer
		cfg := &Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		ts := newDirectServer(t, ProtoH2C, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/panic":
				panic("boom")
			case "/panic-after":
				w.Write(pattern(10000))
				http.NewResponseController(w).Flush()
				panic(http.ErrAbortHandler)
			case "/short":
				w.Header().Set("Content-Length", "10000")
				w.Write(pattern(100))
			case "/long":
				w.Header().Set("Content-Length", "10")
				if _, err := w.Write(pattern(11)); !errors.Is(err, http.ErrContentLength) {
					t.Errorf("writing past Content-Length: %v", err)
				}
				w.Write(pattern(10))
			default:
				io.WriteString(w, "fine\n")
			}
		}))
		p := ts.dialH2(t)
		for i, path := range []string{"/panic", "/panic-after", "/short"} {
			id := uint32(1 + 2*i)
			p.request(id, "GET", path, true)
			f := p.expect("RST_STREAM "+path, func(f h2frame) bool { return f.typ == http2.FrameRSTStream && f.id == id })
			if f.code != http2.ErrCodeInternal {
				t.Errorf("%s: RST_STREAM %v; want INTERNAL_ERROR", path, f.code)
			}
		}
		p.sync()
		for _, f := range p.pending {
			if f.flags.Has(http2.FlagDataEndStream) && (f.typ == http2.FrameData || f.typ == http2.FrameHeaders) {
				t.Errorf("a broken response ended cleanly: %v", f)
			}
		}
		p.pending = nil
		p.request(7, "GET", "/long", true)
		if _, body, _ := p.response(7); !bytes.Equal(body, pattern(10)) {
			t.Errorf("/long: %q", body)
		}
		p.request(9, "GET", "/", true)
		if _, body, _ := p.response(9); string(body) != "fine\n" {
			t.Errorf("after the broken responses: %q", body)
		}
		out := logs.String()
		if !strings.Contains(out, "handler panic") || !strings.Contains(out, "boom") || !strings.Contains(out, "direct_test.go") {
			t.Errorf("the panic was not logged with its stack:\n%s", out)
		}
		if strings.Count(out, "handler panic") != 1 {
			t.Errorf("want one panic logged (ErrAbortHandler is not):\n%s", out)
		}
	})
}

// A handler that calls runtime.Goexit ends its worker: the stream is
// reset and the slot freed, so that a pool of one slot serves the next
// request.
func TestDirectHandlerGoexit(t *testing.T) {
	bubble(t, func(t *testing.T) {
		pool := NewPool(1)
		ts := newDirectServer(t, ProtoH2C, &Config{Pool: pool}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/goexit" {
				runtime.Goexit()
			}
			io.WriteString(w, "fine\n")
		}))
		p := ts.dialH2(t)
		p.request(1, "GET", "/goexit", true)
		if f := p.expect("RST_STREAM", func(f h2frame) bool { return f.typ == http2.FrameRSTStream && f.id == 1 }); f.code != http2.ErrCodeInternal {
			t.Errorf("RST_STREAM %v; want INTERNAL_ERROR", f.code)
		}
		p.request(3, "GET", "/", true)
		if _, body, _ := p.response(3); string(body) != "fine\n" {
			t.Errorf("after Goexit: %q", body)
		}
		synctest.Wait()
		if busy, waiting := pool.Stats(); busy != 0 || waiting != 0 {
			t.Errorf("pool: %d busy, %d waiting; want none", busy, waiting)
		}
	})
}

// Interim responses over HTTP/2: 103 Early Hints as the handler sends it,
// and 100 Continue when the handler first reads a body the client holds
// back for it. SPDY has no interim responses.
func TestDirectInterim(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hints" {
				w.Header().Set("Link", "</a.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				io.WriteString(w, "page\n")
				return
			}
			time.Sleep(100 * time.Millisecond)
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}))
		p := ts.dialH2(t)
		p.request(1, "GET", "/hints", true)
		f := p.expect("103", func(f h2frame) bool { return f.typ == http2.FrameHeaders && f.id == 1 })
		if f.field(":status") != "103" || f.field("link") == "" {
			t.Errorf("first HEADERS %v; want 103 with the link", f)
		}
		if _, body, _ := p.response(1); string(body) != "page\n" {
			t.Errorf("after hints: %q", body)
		}

		p.request(3, "POST", "/", false, hpack.HeaderField{Name: "expect", Value: "100-continue"})
		time.Sleep(50 * time.Millisecond)
		p.sync()
		for _, f := range p.pending {
			if f.id == 3 {
				t.Errorf("%v before the handler read the body", f)
			}
		}
		f = p.expect("100", func(f h2frame) bool { return f.typ == http2.FrameHeaders && f.id == 3 })
		if f.field(":status") != "100" {
			t.Errorf("first HEADERS %v; want 100", f)
		}
		p.write(func() error { return p.fr.WriteData(3, true, []byte("body")) })
		if _, body, _ := p.response(3); string(body) != "body" {
			t.Errorf("echo %q", body)
		}
	})
}

// A client's RST_STREAM cancels the handler's context; the handler's
// writes then fail.
func TestDirectCancel(t *testing.T) {
	bubble(t, func(t *testing.T) {
		started := make(chan struct{})
		done := make(chan error, 1)
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-r.Context().Done()
			_, err := w.Write([]byte("late"))
			if err == nil {
				err = http.NewResponseController(w).Flush()
			}
			done <- errors.Join(r.Context().Err(), err)
		}))
		p := ts.dialH2(t)
		p.request(1, "GET", "/", true)
		<-started
		p.write(func() error { return p.fr.WriteRSTStream(1, http2.ErrCodeCancel) })
		err := <-done
		if !errors.Is(err, context.Canceled) {
			t.Errorf("context: %v; want Canceled", err)
		}
		if err == context.Canceled {
			t.Error("a write after the reset succeeded")
		}
		ts.waitNoStreams(t)
	})
}

// A write deadline set through http.ResponseController that passes while
// the client's window is shut resets the stream.
func TestDirectWriteDeadline(t *testing.T) {
	bubble(t, func(t *testing.T) {
		werr := make(chan error, 1)
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			w.Header().Set("Content-Length", "20000")
			_, err := w.Write(pattern(20000))
			werr <- err
		}))
		p := ts.dialH2(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		p.request(1, "GET", "/", true)
		f := p.expect("RST_STREAM", func(f h2frame) bool { return f.typ == http2.FrameRSTStream && f.id == 1 })
		if f.code != http2.ErrCodeInternal {
			t.Errorf("RST_STREAM %v; want INTERNAL_ERROR", f.code)
		}
		if err := <-werr; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Write: %v; want a deadline error", err)
		}
		ts.waitNoStreams(t)
	})
}

// A large body goes out under flow control, intact, on every protocol.
func TestDirectLargeBody(t *testing.T) {
	const n = 1 << 20
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := pattern(n)
		for len(b) > 0 {
			k := min(len(b), 3000)
			w.Write(b[:k])
			b = b[k:]
		}
	})
	forEachBubble(t, []string{ProtoSPDY31, ProtoSPDY3, ProtoSPDY2}, func(t *testing.T, proto string) {
		ts := newDirectServer(t, proto, nil, h)
		p := ts.dial(t)
		p.get(t, 1, "/")
		r := p.readResponse(t, 1)
		if !bytes.Equal(r.body, pattern(n)) {
			t.Errorf("got %d bytes, not the pattern", len(r.body))
		}
		if _, ok := r.header["content-length"]; ok {
			t.Error("content-length on a streamed body")
		}
	})
	bubble(t, func(t *testing.T) {
		ts := newDirectServer(t, ProtoH2C, nil, h)
		p := ts.dialH2(t)
		p.request(1, "GET", "/", true)
		var got int
		var body []byte
		head := p.expect("HEADERS", func(f h2frame) bool { return f.typ == http2.FrameHeaders && f.id == 1 })
		if head.field(":status") != "200" {
			t.Fatalf("head %v", head)
		}
		for {
			f := p.expect("DATA", func(f h2frame) bool { return f.id == 1 })
			if f.typ != http2.FrameData {
				t.Fatalf("got %v", f)
			}
			body = append(body, f.data...)
			got += len(f.data)
			if len(f.data) > 0 {
				p.write(func() error {
					p.fr.WriteWindowUpdate(0, uint32(len(f.data)))
					return p.fr.WriteWindowUpdate(1, uint32(len(f.data)))
				})
			}
			if f.flags.Has(http2.FlagDataEndStream) {
				break
			}
		}
		if !bytes.Equal(body, pattern(n)) {
			t.Errorf("got %d bytes, not the pattern", got)
		}
	})
}

// Trailers: the names the Trailer field announces, and those set with
// http.TrailerPrefix, go after the body, not in the head, and a response
// with trailers gets no content-length of spdymux's.
func TestDirectResponseTrailers(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-One")
			w.Header().Set("X-One", "early")
			io.WriteString(w, "body\n")
			w.Header().Set("X-One", "one")
			w.Header().Set(http.TrailerPrefix+"X-Two", "two")
		}))
		p := ts.dialH2(t)
		p.request(1, "GET", "/", true)
		head, body, trailers := p.response(1)
		if string(body) != "body\n" {
			t.Errorf("body %q", body)
		}
		for _, f := range head.fields {
			if f.Name == "content-length" || f.Name == "x-one" || strings.Contains(f.Name, "x-two") {
				t.Errorf("head field %s", f)
			}
		}
		if trailers.field("x-one") != "one" || trailers.field("x-two") != "two" {
			t.Errorf("trailers %v; want x-one: one, x-two: two", trailers.fields)
		}
	})
}

type ctxKey string

// Config.BaseContext and Config.ConnContext give handler mode what
// http.Server's fields of the same names give a connection: a base for
// every request's context, called once per Listener, and a base per
// session, called once per session with the connection accepted (the
// *tls.Conn over TLS); cancelling the base cancels requests under way.
func TestDirectBaseAndConnContext(t *testing.T) {
	bubble(t, func(t *testing.T) {
		base, cancelBase := context.WithCancel(context.WithValue(context.Background(), ctxKey("base"), "b"))
		var baseCalls, connCalls int
		var connType string
		started := make(chan struct{}, 1)
		ended := make(chan error, 1)
		cfg := &Config{
			BaseContext: func(l net.Listener) context.Context {
				baseCalls++
				if _, ok := l.(*Listener); !ok {
					t.Errorf("BaseContext got a %T; want the *Listener", l)
				}
				return base
			},
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				connCalls++
				connType = fmt.Sprintf("%T", c)
				return context.WithValue(ctx, ctxKey("conn"), connCalls)
			},
		}
		ts := newDirectServer(t, ProtoH2C, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			fmt.Fprintf(w, "%v %v", ctx.Value(ctxKey("base")), ctx.Value(ctxKey("conn")))
			if r.URL.Path == "/wait" {
				started <- struct{}{}
				<-ctx.Done()
				ended <- ctx.Err()
			}
		}))
		p := ts.dialH2(t)
		for id := uint32(1); id <= 5; id += 2 {
			p.request(id, "GET", "/", true)
			if _, body, _ := p.response(id); string(body) != "b 1" {
				t.Errorf("stream %d: %q; want %q", id, body, "b 1")
			}
		}
		q := ts.dialH2(t)
		q.request(1, "GET", "/", true)
		if _, body, _ := q.response(1); string(body) != "b 2" {
			t.Errorf("second session: %q; want %q", body, "b 2")
		}
		if baseCalls != 1 || connCalls != 2 {
			t.Errorf("BaseContext called %d times, ConnContext %d; want 1 and 2", baseCalls, connCalls)
		}
		if connType != "*net.pipe" {
			t.Errorf("ConnContext got a %s; want the accepted connection (*net.pipe)", connType)
		}
		q.request(3, "GET", "/wait", true)
		<-started
		cancelBase()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Errorf("after BaseContext's cancel: %v; want Canceled", err)
		}
	})
}

// goroutineID returns the id of the calling goroutine, from its stack.
func goroutineID() string {
	var buf [64]byte
	f := strings.Fields(string(buf[:runtime.Stack(buf[:], false)]))
	return f[1] // "goroutine N [running]:"
}

// Handler goroutines are reused: one after the other, streams run on the
// same goroutine; streams at once on as many; and the idle ones exit
// within twice directWorkerIdle, with the one that ends them.
func TestDirectWorkersReuse(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var mu sync.Mutex
		ids := map[string]int{}
		hold := make(chan struct{})
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ids[goroutineID()]++
			mu.Unlock()
			if r.URL.Path == "/hold" {
				<-hold
			}
			io.WriteString(w, "ok")
		}))
		p := ts.dialH2(t)
		synctest.Wait()
		base := ts.goroutines()
		for id := uint32(1); id <= 9; id += 2 {
			p.request(id, "GET", "/", true)
			if _, body, _ := p.response(id); string(body) != "ok" {
				t.Fatalf("stream %d: %q", id, body)
			}
			synctest.Wait()
		}
		if len(ids) != 1 {
			t.Errorf("5 streams one after the other ran on %d goroutines; want 1", len(ids))
		}
		for id := uint32(11); id <= 15; id += 2 {
			p.request(id, "GET", "/hold", true)
		}
		synctest.Wait()
		close(hold)
		for id := uint32(11); id <= 15; id += 2 {
			p.response(id)
		}
		synctest.Wait()
		if len(ids) != 3 {
			t.Errorf("3 streams at once ran on %d goroutines in all; want 3, the first reused", len(ids))
		}
		if n := ts.goroutines(); n != base+4 {
			t.Errorf("%d goroutines with 3 workers idle; want %d: the session's, 3 workers and the janitor", n, base+4)
		}
		time.Sleep(directWorkerIdle / 2)
		synctest.Wait()
		if n := ts.goroutines(); n != base+4 {
			t.Errorf("%d goroutines before directWorkerIdle; want %d", n, base+4)
		}
		time.Sleep(2 * directWorkerIdle)
		synctest.Wait()
		if n := ts.goroutines(); n != base {
			t.Errorf("%d goroutines after twice directWorkerIdle idle; want %d", n, base)
		}
		// A stream after they exited gets a new worker.
		p.request(17, "GET", "/", true)
		if _, body, _ := p.response(17); string(body) != "ok" {
			t.Errorf("stream 17: %q", body)
		}
	})
}

// wholeHandler answers /whole through httpconv.WholeResponseWriter and
// /usual with the same response through the header map; /empty whole
// with no body. /refused tries the whole form where the writer must
// refuse it, reporting each answer on refusals, then answers the usual
// way.
func wholeHandler(refusals chan<- []bool, writes chan<- error) http.Handler {
	fields := []httpconv.HeaderField{
		{Name: "Set-Cookie", Value: "a=1"},
		{Name: "Keep-Alive", Value: "timeout=5"},
		{Name: "Set-Cookie", Value: "b=2"},
		{Name: "Content-Length", Value: "28"},
		{Name: "X-A", Value: "1"},
	}
	body := "<html><body>hi</body></html>"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := w.(httpconv.WholeResponseWriter)
		switch r.URL.Path {
		case "/whole":
			b := []byte(body)
			if !ww.WriteWholeResponse(201, fields, b) {
				panic("refused")
			}
			copy(b, "overwritten after the call: ")
			_, err := io.WriteString(w, "more")
			w.WriteHeader(500)
			writes <- err
		case "/usual":
			h := w.Header()
			for _, f := range fields {
				if f.Name != "Keep-Alive" {
					h.Add(f.Name, f.Value)
				}
			}
			w.WriteHeader(201)
			io.WriteString(w, body)
		case "/empty":
			if !ww.WriteWholeResponse(200, []httpconv.HeaderField{{Name: "Content-Length", Value: "0"}}, nil) {
				panic("refused")
			}
		case "/refused":
			var got []bool
			for _, fs := range [][]httpconv.HeaderField{
				{{Name: "Content-Length", Value: "3"}},          // not the body's length
				{{Name: "Transfer-Encoding", Value: "chunked"}}, // framing of its own
				{{Name: "Trailer", Value: "X-Sum"}},
			} {
				got = append(got, ww.WriteWholeResponse(200, fs, []byte("ok\n!")))
			}
			got = append(got, ww.WriteWholeResponse(http.StatusNotModified, nil, nil))
			w.Header().Set("X-Set", "1") // a header in the map already
			got = append(got, ww.WriteWholeResponse(200, nil, []byte("ok\n")))
			w.WriteHeader(200)
			got = append(got, ww.WriteWholeResponse(200, nil, []byte("ok\n")))
			refusals <- got
			io.WriteString(w, "ok\n")
		case "/head":
			refusals <- []bool{ww.WriteWholeResponse(200, nil, []byte("ok\n"))}
			io.WriteString(w, "ok\n")
		}
	})
}

// A response written whole gets the head the same response written
// through the header map gets (less its hop-by-hop fields), then its
// body and the end of the stream; the writer takes nothing after it, and
// refuses it where it cannot send it so.
func TestDirectWholeResponse(t *testing.T) {
	forEachBubble(t, []string{ProtoH2C, ProtoSPDY31, ProtoSPDY2}, func(t *testing.T, proto string) {
		refusals, writes := make(chan []bool, 1), make(chan error, 1)
		ts := newDirectServer(t, proto, nil, wholeHandler(refusals, writes))
		type answer struct {
			head []string // name=value, less date
			fin  bool     // the stream ended with the head
			body string
		}
		var get func(id uint32, method, path string) answer
		if proto == ProtoH2C {
			p := ts.dialH2(t)
			get = func(id uint32, method, path string) answer {
				p.request(id, method, path, true)
				head, body, _ := p.response(id)
				var a answer
				for _, f := range head.fields {
					if f.Name != "date" {
						a.head = append(a.head, f.Name+"="+f.Value)
					} else if f.Value == "" {
						t.Errorf("%s: empty date", path)
					}
				}
				a.fin, a.body = head.flags.Has(http2.FlagHeadersEndStream), string(body)
				return a
			}
		} else {
			p := ts.dial(t)
			get = func(id uint32, method, path string) answer {
				p.send(t, p.syn(spdy.StreamID(id), 0, true, p.request(method, path)))
				r := p.readResponse(t, spdy.StreamID(id))
				var a answer
				for _, n := range r.names {
					if n != "date" {
						a.head = append(a.head, n+"="+r.header[n])
					} else if r.header[n] == "" {
						t.Errorf("%s: empty date", path)
					}
				}
				a.fin, a.body = r.finOnReply, string(r.body)
				return a
			}
		}
		whole := get(1, "GET", "/whole")
		if err := <-writes; !errors.Is(err, errWholeWritten) {
			t.Errorf("Write after the whole response: %v; want errWholeWritten", err)
		}
		usual := get(3, "GET", "/usual")
		if fmt.Sprint(whole.head) != fmt.Sprint(usual.head) || whole.body != usual.body || whole.fin {
			t.Errorf("whole: %q %q (fin on head %v)\nusual: %q %q", whole.head, whole.body, whole.fin, usual.head, usual.body)
		}
		if !slices.Contains(whole.head, "content-type=text/html; charset=utf-8") || slices.ContainsFunc(whole.head, func(s string) bool { return strings.HasPrefix(s, "keep-alive") }) {
			t.Errorf("whole head %q: want a sniffed content-type and no keep-alive", whole.head)
		}
		if e := get(5, "GET", "/empty"); !e.fin || e.body != "" || !slices.Contains(e.head, "content-length=0") {
			t.Errorf("empty: %q %q (fin on head %v); want content-length 0 and the end with the head", e.head, e.body, e.fin)
		}
		if r := get(7, "GET", "/refused"); r.body != "ok\n" {
			t.Errorf("refused: body %q; want the usual answer", r.body)
		}
		if got := <-refusals; slices.Contains(got, true) {
			t.Errorf("refusals %v; want all false", got)
		}
		get(9, "HEAD", "/head")
		if got := <-refusals; got[0] {
			t.Error("a response to HEAD was taken whole")
		}
	})
}

// An HTTP/2 request's field slice carries the response head once the
// request is built, and goes back to the session when that head is
// written; the reader decodes later blocks into it. Each handler still
// sees its own header while later requests arrive and are answered.
func TestDirectFieldsReused(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const n = 20
		var started sync.WaitGroup
		started.Add(n)
		release := make(chan struct{})
		errs := make(chan error, n)
		ts := newDirectServer(t, ProtoH2C, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			want := strings.TrimPrefix(r.URL.Path, "/")
			if strings.HasPrefix(want, "fast") {
				io.WriteString(w, want) // its head's slice goes back to the session
				return
			}
			check := func(when string) {
				if got := r.Header.Get("X-N"); got != want || r.Header.Get("X-Pad") != strings.Repeat(want, 3) {
					errs <- fmt.Errorf("request %s %s: header %q", want, when, r.Header)
				}
			}
			check("at first")
			started.Done()
			<-release
			check("after the later blocks")
			io.WriteString(w, want)
		}))
		p := ts.dialH2(t)
		for i := range n {
			id := uint32(2*(n+i) + 1)
			p.request(id, "GET", "/fast"+strconv.Itoa(i), true,
				hpack.HeaderField{Name: "x-n", Value: "fast"},
				hpack.HeaderField{Name: "x-pad", Value: "fast"},
				hpack.HeaderField{Name: "x-more", Value: "fast"})
			if _, body, _ := p.response(id); string(body) != "fast"+strconv.Itoa(i) {
				t.Fatalf("stream %d: body %q", id, body)
			}
		}
		for i := range n {
			v := strconv.Itoa(i)
			p.request(uint32(2*(2*n+i)+1), "GET", "/"+v, true,
				hpack.HeaderField{Name: "x-n", Value: v},
				hpack.HeaderField{Name: "x-pad", Value: strings.Repeat(v, 3)})
		}
		started.Wait()
		close(release)
		for i := range n {
			if _, body, _ := p.response(uint32(2*(2*n+i) + 1)); string(body) != strconv.Itoa(i) {
				t.Errorf("stream %d: body %q", 2*(2*n+i)+1, body)
			}
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// The spare field slices are bounded in number and size, and cleared.
func TestSpareFields(t *testing.T) {
	s := &session{}
	big := make([]httpconv.HeaderField, 1, maxSpareFieldCap+1)
	s.recycleFieldsLocked(big)
	if len(s.spareFields) != 0 {
		t.Fatalf("a slice of cap %d was kept", cap(big))
	}
	var kept []httpconv.HeaderField
	for i := range maxSpareFields + 2 {
		f := make([]httpconv.HeaderField, 2, 8)
		f[0] = httpconv.HeaderField{Name: "a", Value: strconv.Itoa(i)}
		s.recycleFieldsLocked(f)
		if i == 0 {
			kept = f
		}
	}
	if len(s.spareFields) != maxSpareFields {
		t.Fatalf("%d spare slices; want %d", len(s.spareFields), maxSpareFields)
	}
	if kept[0] != (httpconv.HeaderField{}) {
		t.Errorf("a spare slice still holds %q", kept[0])
	}
	if f := s.fieldsLocked(9); cap(f) != 9 || len(s.spareFields) != maxSpareFields {
		t.Errorf("fields of 9: cap %d, %d spare; want a new slice", cap(f), len(s.spareFields))
	}
	if f := s.fieldsLocked(3); len(f) != 3 || cap(f) != 8 || len(s.spareFields) != maxSpareFields-1 {
		t.Errorf("fields of 3: len %d cap %d, %d spare; want a spare slice", len(f), cap(f), len(s.spareFields))
	}
}
