package spdymux

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
)

// sessionLog is a session's logger: the Listener's, with the session's
// id, protocol and remote address. The logger with those attributes is
// made when the session first logs a line the Listener's logger takes:
// slog's With copies the handler's state and formats the attributes
// (11 allocations, 584 bytes and 0.6 µs with a text handler), which a
// session that never logs need not pay for or hold.
type sessionLog struct {
	base *slog.Logger
	s    *session
	l    atomic.Pointer[slog.Logger]
}

func (g *sessionLog) logger() *slog.Logger {
	if l := g.l.Load(); l != nil {
		return l
	}
	l := g.base.With("session", g.s.id, "proto", g.s.proto, "remote", g.s.remote)
	if !g.l.CompareAndSwap(nil, l) {
		l = g.l.Load()
	}
	return l
}

// log is slog.Logger's log: the record's source is the caller of Debug,
// Info, Warn or Error.
func (g *sessionLog) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !g.base.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // runtime.Callers, log, and Debug/Info/Warn/Error
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.Add(args...)
	_ = g.logger().Handler().Handle(ctx, r)
}

func (g *sessionLog) Debug(msg string, args ...any) { g.log(slog.LevelDebug, msg, args...) }
func (g *sessionLog) Info(msg string, args ...any)  { g.log(slog.LevelInfo, msg, args...) }
func (g *sessionLog) Warn(msg string, args ...any)  { g.log(slog.LevelWarn, msg, args...) }
func (g *sessionLog) Error(msg string, args ...any) { g.log(slog.LevelError, msg, args...) }
