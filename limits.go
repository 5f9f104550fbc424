package spdymux

import (
	"errors"
	"time"
)

// budget is a token bucket: up to burst tokens, refilled at rate per
// second. It is owned by whoever holds the session's lock.
type budget struct {
	tokens, burst, rate float64
	last                time.Time
	off                 bool
}

func newBudget(burst int, rate float64) budget {
	return budget{tokens: float64(burst), burst: float64(burst), rate: rate, off: burst < 0}
}

// spend takes one token; false means the budget is spent.
func (b *budget) spend(now time.Time) bool {
	if b.off {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limit is one of the Config limits a client can run into, counted in
// Stats.LimitHits under the name of the Config field that sets it.
// MaxConcurrentStreams and WindowTimeout have counters of their own.
type limit uint8

const (
	limitHandshakeTimeout limit = iota
	limitMaxHeaderBytes
	limitMaxHeaderFields
	limitMaxContinuationFrames
	limitMaxControlFrameSize
	limitMaxDataFrameSize
	limitMaxSettingsEntries
	limitMaxQueuedControlFrames
	limitResetBurst
	limitGlitchBurst
	limitWriteTimeout
	limitIdleTimeout
	limitMaxPushesPerStream
	limitMaxPushesPerSession
	limitMaxPushBytes
	numLimits
)

var limitNames = [numLimits]string{
	limitHandshakeTimeout:       "HandshakeTimeout",
	limitMaxHeaderBytes:         "MaxHeaderBytes",
	limitMaxHeaderFields:        "MaxHeaderFields",
	limitMaxContinuationFrames:  "MaxContinuationFrames",
	limitMaxControlFrameSize:    "MaxControlFrameSize",
	limitMaxDataFrameSize:       "MaxDataFrameSize",
	limitMaxSettingsEntries:     "MaxSettingsEntries",
	limitMaxQueuedControlFrames: "MaxQueuedControlFrames",
	limitResetBurst:             "ResetBurst",
	limitGlitchBurst:            "GlitchBurst",
	limitWriteTimeout:           "WriteTimeout",
	limitIdleTimeout:            "IdleTimeout",
	limitMaxPushesPerStream:     "MaxPushesPerStream",
	limitMaxPushesPerSession:    "MaxPushesPerSession",
	limitMaxPushBytes:           "MaxPushBytes",
}

// spdyFramerLimits maps the spdy.Framer limit a SPDY frame ran into to
// the Config limit that set it.
var spdyFramerLimits = map[string]limit{
	"MaxHeaderBytes":      limitMaxHeaderBytes,
	"MaxHeaderFields":     limitMaxHeaderFields,
	"MaxControlFrameSize": limitMaxControlFrameSize,
	"MaxDataFrameSize":    limitMaxDataFrameSize,
	"MaxSettings":         limitMaxSettingsEntries,
}

var (
	errTooManyResets   = errors.New("spdymux: the client reset streams faster than allowed (Config.ResetBurst, ResetRate)")
	errTooManyGlitches = errors.New("spdymux: the client sent too many frames that do nothing (Config.GlitchBurst, GlitchRate)")
)

// glitchLocked counts one frame of the peer's that did nothing useful.
// When the budget is spent the session ends with GOAWAY.
func (s *session) glitchLocked(what string) {
	s.stats.glitches.Add(1)
	if s.glitches.spend(time.Now()) || s.err != nil {
		return
	}
	s.log.Warn("spdymux: too many useless frames; closing session", "last", what,
		"burst", s.cfg.glitchBurst, "rate", s.cfg.glitchRate)
	s.stats.limitHit(limitGlitchBurst)
	s.abuseLocked(errTooManyGlitches)
}

// spendResetLocked counts one stream reset by the peer.
func (s *session) spendResetLocked() {
	if s.resets.spend(time.Now()) || s.err != nil {
		return
	}
	s.log.Warn("spdymux: too many streams reset by the client; closing session",
		"burst", s.cfg.resetBurst, "rate", s.cfg.resetRate)
	s.stats.limitHit(limitResetBurst)
	s.abuseLocked(errTooManyResets)
}

// abuseLocked ends the session of an abusive peer.
func (s *session) abuseLocked(err error) {
	s.stats.rateLimited.Add(1)
	s.stats.sessionErrors.Add(1)
	s.goAwayLocked(codeCalm, err)
	s.fatal.Store(true)
}

// windowBlockedLocked notes when st started waiting for window to send
// queued data. The first such stream wakes the writer, which times the
// wait: a handler's write into a window the writer already spent finds
// the writer idle, with no timer running.
func (s *session) windowBlockedLocked(st *stream) {
	if st.blockedAt.IsZero() && st.outLen > 0 && st.sentHead && st.err == nil {
		st.blockedAt = time.Now()
		s.blocked++
		if s.blocked == 1 && s.cfg.windowTimeout > 0 {
			s.wakeWriterLocked()
		}
	}
}

// unblockedLocked notes that st no longer waits for window.
func (s *session) unblockedLocked(st *stream) {
	if !st.blockedAt.IsZero() {
		st.blockedAt = time.Time{}
		s.blocked--
	}
}

// nextWindowDeadlineLocked returns how long until the first stream that
// waits for window has waited WindowTimeout, or 0 when none waits.
func (s *session) nextWindowDeadlineLocked(now time.Time) time.Duration {
	if s.cfg.windowTimeout <= 0 || s.blocked == 0 {
		return 0
	}
	var first time.Time
	for _, st := range s.streams {
		if !st.blockedAt.IsZero() && (first.IsZero() || st.blockedAt.Before(first)) {
			first = st.blockedAt
		}
	}
	if first.IsZero() {
		return 0
	}
	return max(first.Add(s.cfg.windowTimeout).Sub(now), time.Millisecond)
}

// resetStalledLocked resets the streams that have waited WindowTimeout
// for a window the client does not open: a zero-window hold would
// otherwise keep their handlers forever.
func (s *session) resetStalledLocked(now time.Time) {
	for _, st := range s.streams {
		if !st.blockedAt.IsZero() && st.outLen > 0 && now.Sub(st.blockedAt) >= s.cfg.windowTimeout {
			s.log.Info("spdymux: client kept a stream's window shut; resetting it",
				"stream", st.id, "timeout", s.cfg.windowTimeout)
			s.stats.windowTimeouts.Add(1)
			s.resetLocked(st, codeCancel)
		}
	}
}
