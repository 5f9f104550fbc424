package spdymux

import (
	"errors"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spdymux/spdymux/internal/httpconv"
	"github.com/spdymux/spdymux/internal/push"
)

// Server push, shared by SPDY/3, SPDY/3.1, SPDY/2 and HTTP/2 (docs/push.md
// lists every rule and where it comes from).
//
// The unmodified server asks for pushes in its response: mod_spdy's
// X-Associated-Content, or Link rel=preload as mod_http2 reads it. When
// responseSink.Head sees the response head of a GET the client sent, it
// removes X-Associated-Content from what the client will see and, within
// the bounds below, opens a pushed stream for each URL: a stream of this
// side's (an even id) whose request, a GET made from the associated
// request, goes to the pool and a secondary connection like any other.
// The client learns of it from its opening frame, which the writer sends
// through headQueue, in id order:
//
//   - HTTP/2: PUSH_PROMISE on the associated stream, with the promised
//     request, at once (RFC 9113 §8.4); the response follows as HEADERS
//     and DATA on the promised stream.
//   - SPDY: a unidirectional SYN_STREAM associated to the stream (SPDY/3
//     §3.3.1; SPDY/2's draft 2 alike, with the full URL in "url"),
//     written once the pushed response's head is known, since it carries
//     it (the form Chromium and node's spdy-transport read; the latter
//     rejects a SYN_STREAM without :status). A push whose head takes
//     longer than pushOpenWait is dropped before the client hears of it.
//
// The associated stream does not send its FIN before the opening frames
// of its pushes (SPDY/3 §3.3.1: pushes go on an open stream; RFC 9113
// §8.4: PUSH_PROMISE before the frames that refer to the promise), so a
// client that has read a whole page knows all its pushes. A pushed stream
// is half-closed on the client's side from the start.

// pushState is a session's push bookkeeping, guarded by s.mu.
type pushState struct {
	on            bool // the protocol pushes and Config lets it
	opensWithHead bool // SPDY: the opening frame carries the response head
	peerOff       bool // HTTP/2 SETTINGS_ENABLE_PUSH = 0
	peerMaxSet    bool // the peer's MAX_CONCURRENT_STREAMS (s.peerMaxStreams) came

	open         int    // pushed streams open
	total        int    // pushes started on the session (MaxPushesPerSession)
	inFlight     int    // pushed DATA bytes written and not yet credited (MaxPushBytes)
	blocked      bool   // a push waits for inFlight to go down
	lastPromised uint32 // the last pushed stream the client was told of

	// pushed holds the URLs pushed on the session, hashed: none is pushed
	// twice (mod_http2's push diary). At most MaxPushesPerSession.
	pushed map[uint64]struct{}
}

// streamPush is what push adds to a stream, allocated only where it is
// used: on a GET the client opened on a session that pushes (what its
// pushes copy from it, how many it started and how many it waits for),
// and on a pushed stream (its promise).
type streamPush struct {
	// The associated side:
	origin  *http.Request          // a client's: the request, for Push.Associated
	fields  []httpconv.HeaderField // the request fields a pushed request copies (pushCopied)
	started int                    // pushes started (MaxPushesPerStream)
	pending int                    // pushes whose opening frame is not out: the FIN waits for them

	// The pushed side (assoc != nil):
	assoc     *stream
	promise   []httpconv.HeaderField // the promised request, in the session's dialect
	promised  bool                   // the opening frame is written: the client knows the stream
	settled   bool                   // counted out of assoc.push.pending
	inFlight  int                    // DATA written and not yet credited
	budgetHit bool                   // counted once in Stats.LimitHits["MaxPushBytes"]
	timer     *time.Timer            // SPDY: drops the push if its head is late
}

// pushed reports whether st is a pushed stream (of either side).
func (st *stream) pushed() bool { return st.push != nil && st.push.assoc != nil }

// associatedID returns the stream a push is associated with, or 0 for a
// stream that is not a push.
func (st *stream) associatedID() uint32 {
	if !st.pushed() {
		return 0
	}
	return st.push.assoc.id
}

// statusEarlyHints is 103 Early Hints (RFC 8297), whose Link fields push.
const statusEarlyHints = http.StatusEarlyHints

// pushOpenWait is how long a SPDY push may wait for its response head,
// which its SYN_STREAM carries, before it is dropped unannounced: a push
// that slow saves the client nothing, and it holds the associated
// stream's FIN and the pushes after it.
const pushOpenWait = time.Second

// pushCopied lists the request fields a pushed request takes from the
// associated one: mod_spdy's (accept, accept-charset, accept-datetime,
// accept-encoding, accept-language, authorization, user-agent),
// mod_http2's cache-control, and cookie, so that the server answers the
// push as it would answer the client's own request for the resource.
// Host and scheme are the associated request's (a push is same-origin);
// referer is set to the associated request's URL, as mod_spdy did.
var pushCopied = map[string]bool{
	"accept": true, "accept-charset": true, "accept-datetime": true, "accept-encoding": true,
	"accept-language": true, "authorization": true, "cache-control": true, "cookie": true,
	"user-agent": true,
}

var (
	errPushAbandoned = errors.New("spdymux: push dropped: its response head came too late")
	errPushCancelled = errors.New("spdymux: push cancelled with its associated stream")
)

// notePushSourceLocked keeps what st, a request the client opened, would
// give its pushes, if the session may push and st is a GET (mod_http2
// pushes for GET alone).
func (s *session) notePushSourceLocked(st *stream, fields []httpconv.HeaderField) {
	if !s.push.on || st.req.Method != "GET" {
		return
	}
	n := 0
	for _, f := range fields {
		if pushCopied[f.Name] {
			n++
		}
	}
	p := &streamPush{}
	if n > 0 {
		p.fields = make([]httpconv.HeaderField, 0, n)
		for _, f := range fields {
			if pushCopied[f.Name] {
				p.fields = append(p.fields, f)
			}
		}
	}
	st.push = p
}

// startPushesLocked opens the pushes that a response head of st asks
// for, within the bounds, and returns them for startPushes: the URLs in
// xac, the values of its X-Associated-Content fields (which
// takeAssociatedContent took out of it), and those its Link fields name.
// status is the response's (103 for early hints).
func (s *session) startPushesLocked(st *stream, status int, xac []string, head []httpconv.HeaderField) []*stream {
	links := false
	for _, f := range head {
		links = links || f.Name == "link"
	}
	switch {
	case len(xac) == 0 && !links:
		return nil
	case st.push == nil || st.push.assoc != nil:
		// Not a GET the client opened on a session that pushes; or a
		// push itself: pushes do not push (mod_spdy's
		// SpdyMaxServerPushDepth 1, mod_http2).
		return nil
	case status < 200 && status != statusEarlyHints || status >= 400 || status == 304:
		// mod_http2: no pushes with an error, nor with a 304 (the client
		// has the page cached, and likely what it links to); early hints
		// push.
		return nil
	}
	base, err := url.Parse(st.req.Scheme + "://" + st.req.Host + st.req.Path)
	if err != nil {
		return nil
	}
	var targets []push.Target
	for _, v := range xac {
		targets = push.ParseAssociatedContent(targets, base, v)
	}
	for _, f := range head {
		if f.Name == "link" {
			for v := range strings.SplitSeq(f.Value, "\x00") {
				targets = push.ParseLink(targets, base, v)
			}
		}
	}
	var started []*stream
	for _, t := range targets {
		if !sameOrigin(base, t.URL) {
			// mod_http2's same_authority: this server answers for its own
			// origin only (mod_spdy left the check to the client).
			continue
		}
		pst, stop := s.pushLocked(st, base, t)
		if stop {
			break
		}
		if pst != nil {
			started = append(started, pst)
		}
	}
	return started
}

// pushLocked opens one push of st for t, or reports with stop that no
// more pushes can be made for st now (mod_spdy stops reading the header
// at the first push refused for a bound).
func (s *session) pushLocked(st *stream, base *url.URL, t push.Target) (pst *stream, stop bool) {
	cfg := s.cfg
	switch {
	case s.err != nil || s.goingAway || s.peerGoneAway || s.push.peerOff:
		// No new stream after a GOAWAY either way (SPDY/3 §2.6.6, mod_spdy:
		// CANNOT_PUSH_EVER_AGAIN; RFC 9113 §6.8); none when the client
		// said SETTINGS_ENABLE_PUSH 0 (RFC 9113 §8.4).
		return nil, true
	case s.nextStreamID > maxWindow:
		return nil, true // push ids exhausted (SPDY/3 §2.3.2)
	case st.push.started >= cfg.maxPushesPerStream:
		s.stats.limitHit(limitMaxPushesPerStream)
		return nil, true
	case s.push.total >= cfg.maxPushesPerSession:
		s.stats.limitHit(limitMaxPushesPerSession)
		return nil, true
	case s.push.open >= s.maxPushStreamsLocked():
		// mod_spdy's TOO_MANY_CONCURRENT_PUSHES; RFC 9113 §5.1.2.
		return nil, true
	}
	key := pushKey(t.URL)
	if _, dup := s.push.pushed[key]; dup {
		// Already pushed on this session (mod_http2's push diary): the
		// client has it, or refused it.
		return nil, false
	}
	prio := st.priority
	if t.Priority >= 0 {
		prio = uint8(t.Priority)
		if s.dialect == httpconv.SPDY2 {
			prio /= 2 // SPDY/2 has 2 bits of priority, 0 to 3
		}
	}
	fields := s.pushRequestLocked(st, base, t)
	head, req, err := httpconv.AppendRequestHead(nil, s.dialect, fields, true)
	if err != nil {
		s.log.Info("spdymux: push request refused", "stream", st.id, "url", t.URL.String(), "err", err)
		return nil, false
	}

	pst = newStream(s, s.nextStreamID, prio)
	s.nextStreamID += 2
	pst.recvFin = true // half-closed on the client's side from the start
	pst.push = &streamPush{assoc: st, promise: fields}
	pst.reqHead, pst.req, pst.wantLength = head, req, -1
	if s.cfg.handler != nil {
		pst.reqHead, pst.reqFields = nil, fields
	}
	pst.entry = poolEntry{owner: s.poolOwner, priority: prio, index: -1, grant: pst}
	s.addStreamLocked(pst)
	s.headQueue = append(s.headQueue, pst)
	s.wakeWriterLocked()
	if s.push.pushed == nil {
		s.push.pushed = make(map[uint64]struct{})
	}
	s.push.pushed[key] = struct{}{}
	s.push.open++
	s.push.total++
	st.push.started++
	st.push.pending++
	s.stats.pushes.Add(1)
	if s.push.opensWithHead {
		pst.push.timer = time.AfterFunc(pushOpenWait, func() { s.pushLate(pst) })
	}
	s.log.Debug("spdymux: push", "stream", st.id, "promised", pst.id, "url", t.URL.String(), "priority", prio)
	return pst, false
}

// maxPushStreamsLocked is how many pushes may be open at once: as many
// streams as the client lets the server open (its MAX_CONCURRENT_STREAMS,
// mod_spdy's max_concurrent_pushes), and never more than the session
// takes from the client (Config.MaxConcurrentStreams).
func (s *session) maxPushStreamsLocked() int {
	n := int(s.cfg.maxConcurrentStreams)
	if s.push.peerMaxSet {
		n = min(n, int(s.peerMaxStreams))
	}
	return n
}

// pushRequestLocked returns the request of a push of st for t, in the
// session's dialect: a GET of t's path on st's origin, with the fields
// pushCopied names and a referer.
func (s *session) pushRequestLocked(st *stream, base *url.URL, t push.Target) []httpconv.HeaderField {
	path := t.Path()
	referer := base.Scheme + "://" + base.Host + st.req.Path
	fields := make([]httpconv.HeaderField, 0, 6+len(st.push.fields))
	switch s.dialect {
	case httpconv.H2:
		fields = append(fields,
			httpconv.HeaderField{Name: ":method", Value: "GET"},
			httpconv.HeaderField{Name: ":scheme", Value: st.req.Scheme},
			httpconv.HeaderField{Name: ":authority", Value: st.req.Host},
			httpconv.HeaderField{Name: ":path", Value: path})
	case httpconv.SPDY2:
		// SPDY/2's names; url is the full URL of the pushed resource
		// (draft 2, "Server Push Transactions"; writePush says why). The
		// server gets the same request as on SPDY/3: the url's path, and
		// the host field as Host.
		fields = append(fields,
			httpconv.HeaderField{Name: "method", Value: "GET"},
			httpconv.HeaderField{Name: "url", Value: st.req.Scheme + "://" + st.req.Host + path},
			httpconv.HeaderField{Name: "version", Value: "HTTP/1.1"},
			httpconv.HeaderField{Name: "host", Value: st.req.Host},
			httpconv.HeaderField{Name: "scheme", Value: st.req.Scheme})
	default:
		fields = append(fields,
			httpconv.HeaderField{Name: ":method", Value: "GET"},
			httpconv.HeaderField{Name: ":path", Value: path},
			httpconv.HeaderField{Name: ":version", Value: "HTTP/1.1"},
			httpconv.HeaderField{Name: ":host", Value: st.req.Host},
			httpconv.HeaderField{Name: ":scheme", Value: st.req.Scheme})
	}
	fields = append(fields, st.push.fields...)
	return append(fields, httpconv.HeaderField{Name: "referer", Value: referer})
}

// startPushes hands the pushes startPushesLocked opened to the pool, as
// startRequest does for the client's streams. s.mu must not be held.
func (s *session) startPushes(pushes []*stream) {
	for _, pst := range pushes {
		s.mu.Lock()
		dead := pst.err != nil
		s.mu.Unlock()
		if !dead {
			s.cfg.pool.acquire(&pst.entry)
		}
	}
}

// pushOpeningReadyLocked reports whether the opening frame of pst, a
// pushed stream first in headQueue, can be written: on SPDY once its
// response head is known.
func (s *session) pushOpeningReadyLocked(pst *stream) bool {
	return !s.push.opensWithHead || pst.headQueued
}

// writePushLocked writes the opening frame of pst: SPDY's SYN_STREAM
// with its response head, HTTP/2's PUSH_PROMISE on the associated stream.
// The associated stream must still be open (SPDY/3 §3.3.1, RFC 9113
// §8.4); if it is not, the push is dropped unannounced.
func (s *session) writePushLocked(pst *stream) {
	a := pst.push.assoc
	if a.err != nil || a.sentFin {
		pst.failLocked(errPushCancelled)
		s.removeLocked(pst)
		return
	}
	fin := s.push.opensWithHead && pst.finQueued && pst.outLen == 0 && pst.trailers == nil
	if err := s.w.writePush(pst, fin); err != nil {
		s.writeFailedLocked(pst, err)
		return
	}
	pst.push.promised = true
	s.push.lastPromised = pst.id
	s.pushSettledLocked(pst)
	if s.push.opensWithHead {
		pst.head, pst.headQueued, pst.sentHead = nil, false, true
		if fin {
			s.sentFinLocked(pst)
		}
	}
}

// pushSettledLocked counts pst, a push, out of those its associated
// stream's FIN waits for: its opening frame is out, or it is gone.
func (s *session) pushSettledLocked(pst *stream) {
	p := pst.push
	if p.settled {
		return
	}
	p.settled = true
	if p.timer != nil {
		p.timer.Stop()
	}
	a := p.assoc
	if a.push.pending--; a.push.pending == 0 {
		s.scheduleLocked(a)
	}
}

// finHeldLocked reports whether st must not send its FIN yet: the opening
// frames of some of its pushes are not out.
func finHeldLocked(st *stream) bool { return st.push != nil && st.push.pending > 0 }

// pushEndedLocked updates the session when st, a stream with push state,
// ends: as a push, it frees its share of the bounds; as an associated
// stream reset by the client on SPDY, it cancels its pushes (SPDY/3
// §3.3.2: a CANCEL of the associated stream cancels all its pushes).
func (s *session) pushEndedLocked(st *stream) {
	p := st.push
	if s.client {
		if p.assoc != nil {
			s.push.open-- // a push taken (onPushStream)
		}
		return
	}
	if p.assoc == nil {
		if p.started > 0 && s.push.opensWithHead && st.err != nil {
			var se *streamError
			if errors.As(st.err, &se) && se.remote {
				s.cancelPushesLocked(st)
			}
		}
		return
	}
	s.pushSettledLocked(st)
	s.push.open--
	s.creditPushLocked(st, p.inFlight)
}

// cancelPushesLocked ends the pushes of st, whose client reset it; the
// client has forgotten them, so no RST_STREAM goes out.
func (s *session) cancelPushesLocked(st *stream) {
	for _, pst := range s.streams {
		if pst.push != nil && pst.push.assoc == st {
			pst.failLocked(errPushCancelled)
			s.removeLocked(pst)
		}
	}
}

// pushLate drops pst if its opening frame is not out yet: its head came
// too late (pushOpenWait). The client never heard of it.
func (s *session) pushLate(pst *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pst.push.promised || pst.err != nil || pst.removed {
		return
	}
	s.log.Info("spdymux: push dropped: no response head in time", "stream", pst.id, "wait", pushOpenWait)
	pst.failLocked(errPushAbandoned)
	s.removeLocked(pst)
}

// pushBudgetLocked returns how many DATA bytes pst, a pushed stream, may
// send now under MaxPushBytes; 0 blocks it until the client credits
// pushed data or a push ends.
func (s *session) pushBudgetLocked(pst *stream) int {
	n := s.cfg.maxPushBytes - s.push.inFlight
	if n <= 0 {
		s.push.blocked = true
		if !pst.push.budgetHit {
			pst.push.budgetHit = true
			s.stats.limitHit(limitMaxPushBytes)
		}
		return 0
	}
	return n
}

// pushSentLocked counts n DATA bytes written on pst, a pushed stream.
// SPDY/2 has no flow control, so nothing would ever credit them back: a
// SPDY/2 push is not counted, and MaxPushBytes does not hold it (the
// connection's back-pressure and the push's priority do).
func (s *session) pushSentLocked(pst *stream, n int) {
	if !s.streamFlow {
		return
	}
	pst.push.inFlight += n
	s.push.inFlight += n
}

// creditPushLocked takes n bytes of pst, a pushed stream, out of the
// pushed bytes in flight: the client credited them, or the stream ended.
// Pushes held back by MaxPushBytes go on once there is room.
func (s *session) creditPushLocked(pst *stream, n int) {
	n = min(n, pst.push.inFlight)
	if n <= 0 {
		return
	}
	pst.push.inFlight -= n
	s.push.inFlight -= n
	if s.push.blocked && s.push.inFlight < s.cfg.maxPushBytes {
		s.push.blocked = false
		for _, st := range s.streams {
			if st.pushed() {
				s.scheduleLocked(st)
			}
		}
	}
}

// takeAssociatedContent removes the X-Associated-Content fields from a
// response head and returns their values (SPDY's NUL-joined values
// split): the header is for spdymux, never for the client, pushes or not
// (mod_spdy purged it in every case).
func takeAssociatedContent(head []httpconv.HeaderField) ([]httpconv.HeaderField, []string) {
	var values []string
	out := head[:0]
	for _, f := range head {
		if f.Name == "x-associated-content" {
			values = append(values, strings.Split(f.Value, "\x00")...)
			continue
		}
		out = append(out, f)
	}
	clear(head[len(out):])
	return out, values
}

// responseStatus returns the status code of a response head: the first
// three digits of :status (SPDY/3, HTTP/2) or status (SPDY/2).
func responseStatus(head []httpconv.HeaderField) int {
	for _, f := range head {
		if f.Name == ":status" || f.Name == "status" {
			if len(f.Value) >= 3 {
				n, err := strconv.Atoi(f.Value[:3])
				if err == nil {
					return n
				}
			}
			return 0
		}
	}
	return 0
}

// sameOrigin reports whether u is on base's origin: the same scheme, and
// the same host and port, the scheme's default port written or not.
func sameOrigin(base, u *url.URL) bool {
	return base.Scheme == u.Scheme && strings.EqualFold(hostPort(base), hostPort(u))
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// pushKey hashes a pushed URL for the session's diary.
func pushKey(u *url.URL) uint64 {
	h := fnv.New64a()
	h.Write([]byte(u.Scheme))
	h.Write([]byte("://"))
	h.Write([]byte(strings.ToLower(hostPort(u))))
	h.Write([]byte(push.Target{URL: u}.Path()))
	return h.Sum64()
}
