package spdymux

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
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
	case st.pushed() && !st.push.promised:
		// Nothing of a push goes before the frame that tells the peer
		// of it, which goes through headQueue (push.go).
		return false
	case len(st.interim) > 0:
		return true
	case st.headQueued:
		// The opening head of a stream this side opened goes out through
		// headQueue, in id order.
		return !st.local
	case !st.sentHead:
		return false // data waits for the head
	case st.outLen > 0:
		return (!s.streamFlow || st.sendFlow.n > 0) && (!s.sessionFlow || s.sendFlow.n > 0) &&
			(!st.pushed() || s.pushBudgetLocked(st) > 0)
	default:
		// The FIN waits for the opening frames of the stream's pushes.
		return st.finQueued && !finHeldLocked(st)
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
	s.wakeWriterLocked()
}

// writerLinger is how long the writer of a session with no open stream
// waits for something to write before its goroutine stops: an idle
// session then costs one goroutine, its reader's, and a session that
// serves a request now and then starts its writer again at most this
// often.
const writerLinger = time.Second

// wakeWriterLocked tells the writer there is something to write, and
// starts its goroutine if it stopped for want of work.
func (s *session) wakeWriterLocked() {
	if s.writerParked && !s.writerStopped {
		s.writerParked = false
		s.writerWG.Add(1)
		go s.writeLoop()
		return
	}
	signal(s.writeWake)
}

// parkWriterLocked reports whether the writer may stop: the session has
// no open stream (so no head, data or window wait of one), and nothing to
// write came since the writer last found nothing (every producer queues
// and wakes the writer under s.mu, leaving a token in writeWake).
func (s *session) parkWriterLocked() bool {
	if len(s.streams) > 0 || len(s.writeWake) > 0 || s.closeAfterFlush || s.writerStopped {
		return false
	}
	s.writerParked = true
	return true
}

// writeLoop writes frames until the session ends: control frames first,
// then streams by priority, round robin within one priority, each DATA
// frame within the stream and session send windows. It returns early,
// parked, when an idle session has nothing to write for writerLinger.
func (s *session) writeLoop() {
	defer s.writerWG.Done()
	var busySince time.Time // the start of this run of turns without a wait
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for {
		// Let the goroutines that are ready to run (handlers about to
		// finish their responses, the reader with more requests) go
		// first, so that this turn's write carries what they queue
		// rather than one response per system call.
		runtime.Gosched()
		s.mu.Lock()
		s.holdLevel, s.holdWait = s.holdLevelLocked(time.Now())
		for len(s.wbuf.b) < writeBatch && s.nextFrameLocked() {
		}
		closing := s.closeAfterFlush && len(s.ctrl) == 0
		s.mu.Unlock()
		if len(s.wbuf.b) > 0 {
			if err := s.flush(); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					s.log.Warn("spdymux: the client does not read; closing session", "timeout", s.cfg.writeTimeout)
					s.stats.sessionErrors.Add(1)
					s.stats.limitHit(limitWriteTimeout)
				}
				s.close(err)
				return
			}
			if s.waker != nil {
				// A writer with no pause for writerBusyFor is the sign
				// of a busy process, where readers may not hear of
				// their input in time (wake.go).
				if now := time.Now(); busySince.IsZero() {
					busySince = now
				} else if now.Sub(busySince) >= writerBusyFor {
					s.waker.check(now)
				}
			}
			continue
		}
		busySince = time.Time{}
		if closing {
			s.wbuf.release()
			s.halfClose()
			return
		}
		s.wbuf.release()
		s.mu.Lock()
		wait := s.nextWindowDeadlineLocked(time.Now())
		if s.holdWait > 0 && s.heldLocked() && (wait == 0 || s.holdWait < wait) {
			wait = s.holdWait // held output goes when the hold ends
		}
		idle := len(s.streams) == 0
		s.mu.Unlock()
		var timer *time.Timer
		var timeout, lingered <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			timeout = timer.C
		} else if idle {
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			lingered = linger.C
		}
		select {
		case <-s.writeWake:
		case <-s.done:
		case now := <-timeout:
			s.mu.Lock()
			s.resetStalledLocked(now)
			s.mu.Unlock()
		case <-lingered:
			s.mu.Lock()
			park := s.parkWriterLocked()
			s.mu.Unlock()
			if park {
				return
			}
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
		if err := s.w.writeCtrl(f); err != nil {
			s.writeFailedLocked(nil, err)
		}
		return true
	}
	if s.closeAfterFlush && s.err != nil {
		return false
	}
	// The opening frames of streams opened here go out in the order
	// their ids were given (SPDY/3 §2.3.2, RFC 9113 §5.1.1), before any
	// of their DATA: a client's heads, a server's pushes (push.go). A
	// SPDY push waits for its response head, and those after it wait with
	// it (pushOpenWait bounds that).
	for len(s.headQueue) > 0 {
		st := s.headQueue[0]
		if st.err == nil && st.pushed() && !s.pushOpeningReadyLocked(st) {
			break
		}
		s.headQueue[0] = nil
		s.headQueue = s.headQueue[1:]
		if len(s.headQueue) == 0 {
			s.headQueue = nil
		}
		if st.err != nil {
			continue // reset before it went out; its id is skipped
		}
		if st.pushed() {
			s.writePushLocked(st)
		} else {
			s.writeHeadLocked(st)
		}
		s.scheduleLocked(st)
		return true
	}
	for p := range s.holdLevel + 1 {
		q := &s.sched[p]
		for st := q.pop(); st != nil; st = q.pop() {
			st.inSched = false
			if !s.canSendLocked(st) {
				s.windowBlockedLocked(st) // e.g. the session window ran out
				continue
			}
			s.writeStreamFrameLocked(st)
			if c := st.conn; c != nil && c.respDone && st.outLen == 0 && !st.headQueued {
				// The response is complete and taken: its connection
				// is free for the session's next stream.
				c.offerLocked(st)
			}
			s.scheduleLocked(st)
			return true
		}
	}
	return false
}

// heldLocked reports whether output of a priority below the hold level
// is waiting.
func (s *session) heldLocked() bool {
	for p := s.holdLevel + 1; p < len(s.sched); p++ {
		if q := &s.sched[p]; q.head < len(q.q) {
			return true
		}
	}
	return false
}

// writeHeadLocked writes st's queued head, with FIN when nothing follows.
func (s *session) writeHeadLocked(st *stream) {
	fin := st.finQueued && st.outLen == 0 && st.trailers == nil && !finHeldLocked(st)
	if err := s.w.writeHead(st, st.head, fin); err != nil {
		s.writeFailedLocked(st, err)
		return
	}
	if !s.client && s.dialect == httpconv.H2 {
		// A response head is made for the stream alone, and is encoded
		// now: its slice can take the HTTP/2 reader's next blocks.
		s.recycleFieldsLocked(st.head)
	}
	st.head, st.headQueued, st.sentHead = nil, false, true
	s.startedLocked(st)
	if fin {
		s.sentFinLocked(st)
	}
}

// writeStreamFrameLocked writes one frame of st: its head, one DATA
// frame, or what ends it (trailers, or an empty DATA frame with FIN).
func (s *session) writeStreamFrameLocked(st *stream) {
	if len(st.interim) > 0 {
		h := st.interim[0]
		st.interim[0] = nil
		st.interim = st.interim[1:]
		if err := s.w.writeHead(st, h, false); err != nil {
			s.writeFailedLocked(st, err)
		}
		return
	}
	if st.headQueued {
		s.writeHeadLocked(st)
		return
	}
	if st.outLen == 0 { // finQueued
		var err error
		if st.trailers != nil {
			err = s.w.writeTrailers(st, st.trailers)
		} else {
			err = s.w.writeData(st, nil, true)
		}
		if err != nil {
			s.writeFailedLocked(st, err)
			return
		}
		st.trailers = nil
		s.sentFinLocked(st)
		return
	}
	n := min(len(st.out[0]), s.maxSendFrame)
	if s.streamFlow {
		n = min(n, int(st.sendFlow.n))
	}
	if s.sessionFlow {
		n = min(n, int(s.sendFlow.n))
	}
	pushed := st.pushed()
	if pushed {
		n = min(n, s.pushBudgetLocked(st))
	}
	p := st.out[0][:n]
	last := n == st.outLen && st.finQueued && st.trailers == nil && !finHeldLocked(st)
	if err := s.w.writeData(st, p, last); err != nil {
		s.writeFailedLocked(st, err)
		return
	}
	s.unblockedLocked(st)
	// The client's window forcing a tiny frame, over and over, is the
	// "data dribble" attack (CVE-2019-9511): counted once the frame is
	// accounted for, since the count may end the session.
	dribble := n < minUsefulData && n < len(st.out[0])
	st.sendFlow.take(int32(n))
	s.sendFlow.take(int32(n))
	if pushed {
		s.pushSentLocked(st, n)
	}
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
	if st.resetAfterFin && !st.recvFin && st.err == nil {
		s.stopRequestLocked(st) // see requestDoneLocked
		return
	}
	s.maybeDoneLocked(st)
}

// errFrameRejected marks a frame the protocol's encoder refused whole
// (too large for the protocol, a bad id): the connection and the
// compression context are as they were, and only the stream fails.
var errFrameRejected = errors.New("spdymux: frame cannot be sent")

// writeFailedLocked handles a frame the protocol would not write. A
// rejected frame (an error matching errFrameRejected) fails the stream it
// belongs to: reset if the peer knows of it, failed here alone if it is a
// stream this side opened whose head never went out (its id is skipped).
// Any other failure is a broken encoder: the session ends.
func (s *session) writeFailedLocked(st *stream, err error) {
	if st == nil || !errors.Is(err, errFrameRejected) {
		s.log.Error("spdymux: frame write failed; closing session", "err", err)
		s.err = fmt.Errorf("spdymux: frame write failed: %w", err)
		s.closeAfterFlush = true
		s.failAllLocked()
		return
	}
	s.log.Warn("spdymux: frame not sendable; resetting stream", "stream", st.id, "err", err)
	if !st.sentHead && st.local || st.pushed() && !st.push.promised {
		st.failLocked(fmt.Errorf("spdymux: stream %d: %w", st.id, err))
		s.removeLocked(st)
		return
	}
	s.resetLocked(st, codeInternal)
}
