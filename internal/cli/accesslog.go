package cli

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spdymux/spdymux"
)

// clfTime is the time format of the Common Log Format.
const clfTime = "02/Jan/2006:15:04:05 -0700"

// accessLog writes one line per request to out in the Common Log Format,
// with the protocol the request came over in the request line:
//
//	127.0.0.1 - - [28/Nov/2026:08:00:00 +0000] "GET /hello SPDY/3.1" 200 13
//
// The protocol is "HTTP/2.0" for an HTTP/2 stream (h2 or h2c), "SPDY/3.1",
// "SPDY/3" or "SPDY/2" for a SPDY stream, else the request's own
// ("HTTP/1.1"). The time is when the request arrived; the
// line is written when the handler returns, including when it panics. Lines
// are written whole, one Write each, so out may be shared.
type accessLog struct {
	mu  sync.Mutex // serializes writes to out
	out io.Writer
}

// wrap returns h with every request logged.
func (l *accessLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &loggingWriter{ResponseWriter: w}
		defer func() { l.write(r, start, lw.status, lw.bytes) }()
		h.ServeHTTP(lw, r)
	})
}

func (l *accessLog) write(r *http.Request, start time.Time, status int, bytes int64) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	proto := r.Proto
	if si, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
		proto = si.HTTPProto()
	}
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing
	}
	b := make([]byte, 0, 128)
	b = append(b, host...)
	b = append(b, " - - ["...)
	b = start.AppendFormat(b, clfTime)
	b = append(b, "] \""...)
	b = appendEscaped(b, r.Method)
	b = append(b, ' ')
	b = appendEscaped(b, r.RequestURI)
	b = append(b, ' ')
	b = appendEscaped(b, proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, bytes, 10)
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.out.Write(b)
	l.mu.Unlock()
}

// appendEscaped appends s with quotes, backslashes and control bytes
// escaped, as Apache's mod_log_config does, so that a line stays one line.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// loggingWriter records the status and the body bytes of a response. It
// keeps the wrapped writer reachable through Unwrap, so that
// http.ResponseController (Flush, EnableFullDuplex, deadlines) still works.
type loggingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *loggingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush is here for handlers that test for http.Flusher, such as
// httputil.ReverseProxy.
func (w *loggingWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
