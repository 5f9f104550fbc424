package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/httpconv"
)

// clfTime is the time format of the Common Log Format.
const clfTime = "02/Jan/2006:15:04:05 -0700"

// accessLog writes one line per request to its output, when the handler
// has returned (including when it panics), in the Combined Log Format
// with the protocol the request came over in the request line, followed
// by key=value fields:
//
//	127.0.0.1 - - [28/Nov/2026:08:00:00 +0000] "GET /hello HTTP/2.0" 200 13 "-" "curl/8.5.0" proto=h2 session=1 stream=3 duration_ms=0.412
//
// The request line's protocol is "HTTP/2.0" for an HTTP/2 stream (h2 or
// h2c), "SPDY/3.1", "SPDY/3" or "SPDY/2" for a SPDY stream, else the
// request's own ("HTTP/1.1"). The time is when the request arrived. proto
// is the negotiated protocol (h2, h2c, spdy/3.1, spdy/3, spdy/2, or
// http/1.1 and http/1.0); session and stream are the ids of an HTTP/2 or
// SPDY stream ("-" over HTTP/1.x); duration_ms is the time from the
// request to the handler's return, the response body written; in gateway
// mode backend_ms is the time the backend took to send its response
// header ("-" when it sent none).
//
// With -log-format json each line is instead a JSON object with the same
// facts, written through slog: time (the request's arrival), level, msg
// ("access"), remote_addr, method, uri, request_proto, status, bytes,
// referer, user_agent, proto, session and stream (0 over HTTP/1.x),
// duration_ms and, in gateway mode, backend_ms (-1 when none).
//
// Lines are written whole, one Write each, so the output may be shared. It
// is safe for concurrent use.
type accessLog struct {
	json    bool
	gateway bool // log backend_ms

	mu   sync.Mutex // guards out and h; serializes the text lines
	out  io.Writer
	h    slog.Handler // json only
	line []byte       // scratch of write, guarded by mu
}

func newAccessLog(out io.Writer, format string, gateway bool) *accessLog {
	l := &accessLog{json: format == logJSON, gateway: gateway}
	l.setOutput(out)
	return l
}

// setOutput makes w the log's output from the next line on (SIGHUP's
// reopened file).
func (l *accessLog) setOutput(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = w
	if l.json {
		l.h = slog.NewJSONHandler(w, nil)
	}
}

// record is what the access log and the metrics learn of one request. It
// travels in the request's context, so that the gateway can note the
// backend's time.
type record struct {
	start time.Time
	// backend is the time to the backend's response header; written by
	// the gateway's Observe on the handler's goroutine, read when the
	// handler has returned.
	backend time.Duration
	backed  bool // backend is set
}

type recordKey struct{}

// recordOf returns the record of a request's context, nil if none.
func recordOf(ctx context.Context) *record {
	r, _ := ctx.Value(recordKey{}).(*record)
	return r
}

// observe wraps h: each request is logged by al and counted by m, either
// of which may be nil.
func observe(h http.Handler, al *accessLog, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw := &loggingWriter{ResponseWriter: w, rec: record{start: time.Now()}}
		rec := &lw.rec
		if al != nil {
			// Only the access log reads the backend's time from it.
			r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
		}
		si, _ := spdymux.StreamInfoFromContext(r.Context())
		var pm *protoMetrics
		if m != nil {
			pm = m.streamStarted(protoOf(r, si))
		}
		defer func() {
			status := lw.status
			if status == 0 {
				status = http.StatusOK // the handler wrote nothing
			}
			d := time.Since(rec.start)
			if pm != nil {
				streamEnded(pm, d, status)
			}
			if al != nil {
				al.write(r, si, rec, status, lw.bytes, d)
			}
		}()
		h.ServeHTTP(lw, r)
	})
}

// protoOf is the protocol a request came over: the stream's, or
// "http/1.1" or "http/1.0".
func protoOf(r *http.Request, si *spdymux.StreamInfo) string {
	if si != nil {
		return si.Protocol
	}
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return "http/1.0"
	}
	return spdymux.ProtoHTTP11
}

func (l *accessLog) write(r *http.Request, si *spdymux.StreamInfo, rec *record, status int, bytes int64, d time.Duration) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	reqProto := r.Proto
	var session uint64
	var stream uint32
	if si != nil {
		reqProto = si.HTTPProto()
		session, stream = si.SessionID, si.StreamID
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if l.json {
		attrs := []slog.Attr{
			slog.String("remote_addr", host),
			slog.String("method", r.Method),
			slog.String("uri", r.RequestURI),
			slog.String("request_proto", reqProto),
			slog.Int("status", status),
			slog.Int64("bytes", bytes),
			slog.String("referer", r.Referer()),
			slog.String("user_agent", r.UserAgent()),
			slog.String("proto", protoOf(r, si)),
			slog.Uint64("session", session),
			slog.Uint64("stream", uint64(stream)),
			slog.Float64("duration_ms", ms(d)),
		}
		if l.gateway {
			b := -1.0
			if rec.backed {
				b = ms(rec.backend)
			}
			attrs = append(attrs, slog.Float64("backend_ms", b))
		}
		sr := slog.NewRecord(rec.start, slog.LevelInfo, "access", 0)
		sr.AddAttrs(attrs...)
		l.mu.Lock()
		h := l.h
		l.mu.Unlock()
		_ = h.Handle(context.Background(), sr)
		return
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.line[:0]
	b = append(b, host...)
	b = append(b, " - - ["...)
	b = rec.start.AppendFormat(b, clfTime)
	b = append(b, "] \""...)
	b = appendEscaped(b, r.Method)
	b = append(b, ' ')
	b = appendEscaped(b, r.RequestURI)
	b = append(b, ' ')
	b = appendEscaped(b, reqProto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, bytes, 10)
	}
	b = appendQuoted(b, r.Referer())
	b = appendQuoted(b, r.UserAgent())
	b = append(b, " proto="...)
	b = append(b, protoOf(r, si)...)
	if si != nil {
		b = append(b, " session="...)
		b = strconv.AppendUint(b, session, 10)
		b = append(b, " stream="...)
		b = strconv.AppendUint(b, uint64(stream), 10)
	} else {
		b = append(b, " session=- stream=-"...)
	}
	b = append(b, " duration_ms="...)
	b = strconv.AppendFloat(b, ms(d), 'f', 3, 64)
	if l.gateway {
		b = append(b, " backend_ms="...)
		if rec.backed {
			b = strconv.AppendFloat(b, ms(rec.backend), 'f', 3, 64)
		} else {
			b = append(b, '-')
		}
	}
	b = append(b, '\n')
	l.line = b
	_, _ = l.out.Write(b)
}

// appendQuoted appends a space and s quoted as the Combined Log Format
// writes the referer and user agent: "-" when empty.
func appendQuoted(b []byte, s string) []byte {
	if s == "" {
		return append(b, ` "-"`...)
	}
	b = append(b, ' ', '"')
	b = appendEscaped(b, s)
	return append(b, '"')
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
	rec    record // the request's, in its context: one allocation for both
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

// WriteWholeResponse passes a whole response on to a writer that takes
// one (httpconv.WholeResponseWriter), recording it.
func (w *loggingWriter) WriteWholeResponse(code int, fields []httpconv.HeaderField, body []byte) bool {
	ww, ok := w.ResponseWriter.(httpconv.WholeResponseWriter)
	if !ok || w.status != 0 || !ww.WriteWholeResponse(code, fields, body) {
		return false
	}
	w.status, w.bytes = code, int64(len(body))
	return true
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
