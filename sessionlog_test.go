package spdymux

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recordHandler keeps the records it is given, with the attributes added
// by With.
type recordHandler struct {
	mu    *sync.Mutex
	recs  *[]slog.Record
	attrs []slog.Attr
	level slog.Level
}

func (h recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	h.mu.Lock()
	*h.recs = append(*h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}
func (h recordHandler) WithGroup(string) slog.Handler { return h }

// A session's log lines carry its id, protocol and remote address and
// the source of the line that logged them; a session that logs nothing
// the handler takes makes no logger of its own.
func TestSessionLog(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var mu sync.Mutex
		var recs []slog.Record
		h := recordHandler{mu: &mu, recs: &recs, level: slog.LevelInfo}
		ts := newTestServer(t, ProtoH2C, &Config{Logger: slog.New(h)})
		p := ts.dialH2(t)
		p.request(1, "GET", "/hello", true)
		p.response(1)
		if ts.theSession(t).log.l.Load() != nil {
			t.Error("a session that logged nothing at Info made a logger")
		}
		// An uppercase field name makes the request malformed: a stream
		// error, logged at Info.
		p.request(3, "GET", "/hello", true, hpack.HeaderField{Name: "X-Upper", Value: "1"})
		p.expect("RST_STREAM", func(f h2frame) bool { return f.typ == http2.FrameRSTStream && f.id == 3 })

		mu.Lock()
		defer mu.Unlock()
		var found bool
		for _, r := range recs {
			if r.Message != "spdymux: stream error" {
				continue
			}
			found = true
			got := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { got[a.Key] = a.Value.String(); return true })
			if got["proto"] != ProtoH2C || got["session"] == "" || got["remote"] == "" || got["stream"] != "3" {
				t.Errorf("attributes %v; want session, proto %s, remote and stream 3", got, ProtoH2C)
			}
			fn := runtime.FuncForPC(r.PC).Name()
			if !strings.HasSuffix(fn, ".(*session).act") {
				t.Errorf("source %s; want the session's act", fn)
			}
		}
		if !found {
			t.Errorf("no stream error logged; records: %v", recs)
		}
	})
}
