package spdymux

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// streamQueue is a FIFO of streams ready to write, one per priority.
type streamQueue struct {
	q    []*stream
	head int
}

func (q *streamQueue) push(st *stream) { q.q = append(q.q, st) }

func (q *streamQueue) pop() *stream {
	if q.head == len(q.q) {
		return nil
	}
	st := q.q[q.head]
	q.q[q.head] = nil
	q.head++
	if q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
	}
	return st
}

// canSendLocked reports whether the writer can write a frame for st now.
func (s *session) canSendLocked(st *stream) bool {
	switch {
	case st.err != nil || st.sentFin:
		return false
	case st.headQueued:
		return true
	case !st.sentHead:
		return false // data waits for SYN_STREAM or SYN_REPLY
	case st.outLen > 0:
		return (!s.flow || st.sendWindow > 0) && (!s.flow31 || s.sendWindow > 0)
	default:
		return st.finQueued
	}
}

// scheduleLocked puts st in the writer's schedule if it has something it
// can write and is not there yet.
func (s *session) scheduleLocked(st *stream) {
	if st.inSched {
		return
	}
	if !s.canSendLocked(st) {
		s.windowBlockedLocked(st)
		return
	}
	st.inSched = true
	s.sched[min(st.priority, 7)].push(st)
	signal(s.writeWake)
}

// writeLoop writes frames until the session ends: control frames first,
// then streams by priority, round robin within one priority, each DATA
// frame within the stream and session send windows.
func (s *session) writeLoop() {
	defer s.writerWG.Done()
	for {
		s.mu.Lock()
		for len(s.wbuf.b) < writeBatch && s.nextFrameLocked() {
		}
		closing := s.closeAfterFlush && len(s.ctrl) == 0
		s.mu.Unlock()
		if len(s.wbuf.b) > 0 {
			if err := s.flush(); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					s.log.Warn("spdymux: the client does not read; closing session", "timeout", s.cfg.writeTimeout)
					s.stats.sessionErrors.Add(1)
				}
				s.close(err)
				return
			}
			continue
		}
		if closing {
			s.wbuf.release()
			s.halfClose()
			return
		}
		s.wbuf.release()
		s.mu.Lock()
		wait := s.nextWindowDeadlineLocked(time.Now())
		s.mu.Unlock()
		var timer *time.Timer
		var timeout <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			timeout = timer.C
		}
		select {
		case <-s.writeWake:
		case <-s.done:
		case now := <-timeout:
			s.mu.Lock()
			s.resetStalledLocked(now)
			s.mu.Unlock()
		}
		if timer != nil {
			timer.Stop()
		}
		if isClosedChan(s.done) {
			return
		}
	}
}

// halfClose ends the session's output once GOAWAY and everything before
// it are written: the peer gets FIN while the session goes on reading what
// it still sends, so that closing the connection later does not reset it
// and destroy frames the peer has yet to read (as net/http's
// closeWriteAndWait). The reader closes the session at the peer's end of
// file; lingerTime bounds the wait.
func (s *session) halfClose() {
	cw, ok := s.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		// No half-close here (net.Pipe): nothing to linger for.
		s.close(s.cause())
		return
	}
	close(s.flushed)
	t := time.NewTimer(lingerTime)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.close(s.cause())
	}
}

func (s *session) flush() error {
	if s.cfg.writeTimeout > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout))
	}
	_, err := s.conn.Write(s.wbuf.b)
	s.wbuf.b = s.wbuf.b[:0]
	return err
}

// nextFrameLocked encodes the next frame into the write buffer. It
// reports false when there is nothing to write.
func (s *session) nextFrameLocked() bool {
	if len(s.ctrl) > 0 {
		f := s.ctrl[0]
		s.ctrl[0] = ctrlFrame{}
		s.ctrl = s.ctrl[1:]
		if len(s.ctrl) == 0 {
			s.ctrl = nil
		}
		signal(s.ctrlTaken)
		s.writeCtrlLocked(f)
		return true
	}
	if s.closeAfterFlush && s.err != nil {
		return false
	}
	// SYN_STREAMs go out in the order their ids were given (SPDY/3
	// §2.3.2), before any DATA.
	for len(s.synQueue) > 0 {
		st := s.synQueue[0]
		s.synQueue[0] = nil
		s.synQueue = s.synQueue[1:]
		if len(s.synQueue) == 0 {
			s.synQueue = nil
		}
		if st.err != nil {
			continue // reset before it went out; its id is skipped
		}
		var flags spdy.Flags
		if st.synFin {
			flags = spdy.FlagFin
		}
		before := len(s.wbuf.b)
		err := s.fr.WriteSynStream(&spdy.SynStreamFrame{Version: s.version, StreamID: st.id, Priority: st.priority, Flags: flags, Header: st.synHeader})
		if err != nil {
			// Checked when queued, so this is a broken invariant or a
			// failed writer; the frame was not written and the peer
			// never learns of the id, which is skipped.
			s.writeFailedLocked(st, err)
			return true
		}
		s.traceOut(before, spdy.TypeSynStream, st.id, flags)
		st.synHeader = nil
		st.sentHead = true
		if st.synFin {
			s.sentFinLocked(st)
		}
		s.scheduleLocked(st)
		return true
	}
	for p := range s.sched {
		q := &s.sched[p]
		for st := q.pop(); st != nil; st = q.pop() {
			st.inSched = false
			if !s.canSendLocked(st) {
				s.windowBlockedLocked(st) // e.g. the 3.1 session window ran out
				continue
			}
			s.writeStreamFrameLocked(st)
			s.scheduleLocked(st)
			return true
		}
	}
	return false
}

// traceOut reports the frame the writer just encoded at wbuf[before:].
func (s *session) traceOut(before int, typ spdy.FrameType, id spdy.StreamID, flags spdy.Flags) {
	if s.cfg.trace != nil && len(s.wbuf.b) >= before+8 {
		s.cfg.trace(FrameEvent{SessionID: s.id, Out: true, Type: typ, StreamID: uint32(id), Flags: flags, Length: len(s.wbuf.b) - before - 8})
	}
}

func (s *session) writeCtrlLocked(f ctrlFrame) {
	before := len(s.wbuf.b)
	var err error
	switch f.typ {
	case spdy.TypeRstStream:
		err = s.fr.WriteRstStream(f.streamID, spdy.RstStatus(f.value))
	case spdy.TypePing:
		err = s.fr.WritePing(f.value)
	case spdy.TypeWindowUpdate:
		err = s.fr.WriteWindowUpdate(f.streamID, f.value)
	case spdy.TypeGoAway:
		err = s.fr.WriteGoAway(f.streamID, spdy.GoAwayStatus(f.value))
	}
	if err != nil {
		s.writeFailedLocked(nil, err)
		return
	}
	s.traceOut(before, f.typ, f.streamID, 0)
}

// writeFailedLocked handles a frame the framer would not write. The
// framer checks a frame whole before it writes any of it, so a rejected
// frame leaves the connection and the compression context as they were:
// the stream it belongs to fails (reset, if the peer knows of it), and the
// session goes on. A failure of the writer itself ends the session.
func (s *session) writeFailedLocked(st *stream, err error) {
	if st == nil || !errors.Is(err, spdy.ErrHeaderTooLarge) && !errors.Is(err, spdy.ErrFrameTooLarge) && !errors.Is(err, spdy.ErrBadStreamID) {
		s.log.Error("spdymux: frame write failed; closing session", "err", err)
		s.err = fmt.Errorf("spdymux: frame write failed: %w", err)
		s.closeAfterFlush = true
		for _, st := range s.streams {
			st.failLocked(&sessionClosedError{cause: s.err})
			s.removeLocked(st)
		}
		return
	}
	s.log.Warn("spdymux: frame not sendable; resetting stream", "stream", st.id, "err", err)
	if !st.sentHead && s.client {
		// Our SYN_STREAM never went out: fail it here alone.
		st.failLocked(fmt.Errorf("spdymux: stream %d: %w", st.id, err))
		s.removeLocked(st)
		return
	}
	s.resetLocked(st, spdy.InternalError)
}

// writeStreamFrameLocked writes one frame of st: its SYN_REPLY, one DATA
// frame, or an empty DATA frame with FIN.
func (s *session) writeStreamFrameLocked(st *stream) {
	if st.headQueued {
		fin := st.finQueued && st.outLen == 0
		var flags spdy.Flags
		if fin {
			flags = spdy.FlagFin
		}
		before := len(s.wbuf.b)
		if err := s.fr.WriteSynReply(&spdy.SynReplyFrame{Version: s.version, StreamID: st.id, Flags: flags, Header: st.head}); err != nil {
			s.writeFailedLocked(st, err)
			return
		}
		s.traceOut(before, spdy.TypeSynReply, st.id, flags)
		st.head, st.headQueued, st.sentHead = nil, false, true
		if fin {
			s.sentFinLocked(st)
		}
		return
	}
	if st.outLen == 0 { // finQueued
		if err := s.fr.WriteData(st.id, spdy.FlagFin, nil); err != nil {
			s.writeFailedLocked(st, err)
			return
		}
		s.traceOut(len(s.wbuf.b)-8, 0, st.id, spdy.FlagFin)
		s.sentFinLocked(st)
		return
	}
	n := min(len(st.out[0]), DefaultMaxDataFrame)
	if s.flow {
		n = min(n, int(st.sendWindow))
	}
	if s.flow31 {
		n = min(n, int(s.sendWindow))
	}
	p := st.out[0][:n]
	var flags spdy.Flags
	last := n == st.outLen && st.finQueued
	if last {
		flags = spdy.FlagFin
	}
	if err := s.fr.WriteData(st.id, flags, p); err != nil {
		s.writeFailedLocked(st, err)
		return
	}
	s.traceOut(len(s.wbuf.b)-8-n, 0, st.id, flags)
	s.unblockedLocked(st)
	// The client's window forcing a tiny frame, over and over, is the
	// "data dribble" attack (CVE-2019-9511): counted once the frame is
	// accounted for, since the count may end the session.
	dribble := n < minUsefulData && n < len(st.out[0])
	st.sendWindow -= int32(n)
	s.sendWindow -= int32(n)
	st.outLen -= n
	if n == len(st.out[0]) {
		copy(st.out, st.out[1:])
		st.out[len(st.out)-1] = nil
		st.out = st.out[:len(st.out)-1]
	} else {
		st.out[0] = st.out[0][n:]
	}
	if st.outLen == 0 {
		signal(st.writeWake)
	}
	if last {
		s.sentFinLocked(st)
	}
	if dribble {
		s.glitchLocked("window kept under 64 bytes")
	}
}

// minUsefulData is the smallest DATA frame not counted as a glitch when
// the client's window is what kept it small.
const minUsefulData = 64

func (s *session) sentFinLocked(st *stream) {
	st.sentFin = true
	st.finQueued = false
	s.maybeDoneLocked(st)
}

// errorReplyHeader is the SYN_REPLY header block of an error response the
// session makes itself.
func errorReplyHeader(v spdy.Version, status, contentLength int) []spdy.HeaderField {
	st := strconv.Itoa(status) + " " + http.StatusText(status)
	statusName, versionName := ":status", ":version"
	if v == spdy.V2 {
		statusName, versionName = "status", "version"
	}
	return []spdy.HeaderField{
		{Name: statusName, Value: st},
		{Name: versionName, Value: "HTTP/1.1"},
		{Name: "content-length", Value: strconv.Itoa(contentLength)},
		{Name: "content-type", Value: "text/plain; charset=utf-8"},
	}
}
