package gateway

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// connPool holds the connections to the backend and hands them out
// fairly between client sessions, as spdymux's worker pool hands out its
// slots, and as Apache mod_http2 hands its workers to a connection:
//
//   - at most maxConns connections are open at once, idle ones included;
//   - one session holds at most its limit of them at once. The limit
//     starts at sessionStartConns and moves with the session's conduct,
//     as mod_http2's "mood" moves a connection's worker limit: it doubles,
//     up to perSession, when an exchange that began after the last change
//     delivers its whole response (at most every moodInterval); it drops
//     to 16, 8, 4, then 2 when the session keeps the backend waiting (a
//     stalled exchange) or resets a stream whose response is under way;
//   - a request that finds none it may take waits; a connection that comes
//     free goes to the waiting request whose session holds the fewest,
//     then to the one that has waited longest.
//
// A session's state lives while it holds or waits for a connection. The
// pool runs no goroutine: an idle connection is checked when it is taken,
// and idle connections are closed past idleTimeout by a timer. Idle
// connections beyond maxIdle are closed, least recently used first, once
// they have been idle for idleGrace: demand that swings around maxIdle
// from one moment to the next (more requests in flight than maxIdle,
// coming and going) reuses them rather than closing and dialing
// connections, each leaving a socket in TIME_WAIT.
type connPool struct {
	dial        func(ctx context.Context) (*backendConn, error)
	maxConns    int
	maxIdle     int
	perSession  int
	idleTimeout time.Duration
	idleGrace   time.Duration // how long a connection beyond maxIdle may stay idle
	// expirySlack is how much later than its deadline a wait may end: under
	// a steady run of expiring waits the pool's timer fires at most this
	// often, each time looking at every waiting request. A hundredth of
	// the waits' timeout, at least minExpirySlack.
	expirySlack time.Duration

	// depth is how many requests of a session may queue on a connection
	// it holds behind the one being answered (Config.PipelineDepth).
	depth int
	// wait is how long the answers ahead of a request may be expected to
	// take for it to queue on a connection of its session when it could
	// have one of its own (Config.PipelineWait); 0: it queues only
	// instead of waiting. times says how long answers take, by path.
	wait  time.Duration
	times *answerTimes
	// keepMax is the most answers the backend has given on a connection
	// before it announced its close (Apache's MaxKeepAliveRequests,
	// nginx's keepalive_requests), 0 until it has: no request queues on a
	// connection to be answered after it, to be lost with the connection
	// and sent again. Guarded by mu.
	keepMax int

	dials, reuses, stale, pipelined, joined atomic.Uint64

	mu       sync.Mutex
	open     int                     // connections open or being dialed, idle ones included
	idle     []*backendConn          // least recently used first
	sessions map[string]*poolSession // sessions holding or waiting for connections
	taken    int                     // connections taken, in all
	// queued holds the sessions with requests waiting for a connection;
	// each keeps its own in arrival order, so that choosing the next
	// grant looks at sessions, not at every waiting request.
	queued   map[*poolSession]struct{}
	nwaiting int         // requests waiting, in all
	seq      uint64      // arrival order of waiters
	prune    *time.Timer // closes idle connections past idleTimeout, or closed by the backend
	trim     *time.Timer // closes idle connections beyond maxIdle past idleGrace; nil while not set
	// expiry ends the waits whose deadline has passed: one timer for the
	// pool, set for the earliest deadline of a waiting request (expiryAt,
	// zero while it is not set), rather than a timer for each.
	expiry   *time.Timer
	expiryAt time.Time
	closed   bool
}

// sessionStartConns is a session's limit at first: the parallel
// connections of an HTTP/1.1 browser, as mod_http2 starts a connection.
const sessionStartConns = 6

// moodInterval is the least time between two raises of a session's limit,
// or two cuts, unless the session insists (mod_http2's 100 ms).
const moodInterval = 100 * time.Millisecond

// poolSession is what the pool knows of one client session.
type poolSession struct {
	name        string
	held        int           // connections taken
	waiting     int           // requests waiting
	queue       []*poolWaiter // the waiting requests, first come first
	limit       int           // connections it may hold at once
	changed     time.Time     // when limit last changed
	irritations int           // annoyances since, less happy ends
	// pipes are the connections it holds that its GET and HEAD requests
	// may queue on (pipelining): those whose request being answered, and
	// every request queued, is one.
	pipes []*backendConn
}

// poolWaiter is a request waiting for a connection. Waiters are reused
// (poolWaiters): one leaves getBy out of every queue, its grant taken.
type poolWaiter struct {
	session  string
	seq      uint64
	deadline time.Time     // when the wait ends with context.DeadlineExceeded, unless zero
	fresh    bool          // a new connection only: the request is a retry
	pipe     bool          // may queue on a connection its session holds
	key      uint64        // its path's key in the pool's times
	grant    chan poolGive // sent one grant; has room for it
	queued   bool          // still in its session's queue
}

var poolWaiters = sync.Pool{New: func() any { return &poolWaiter{grant: make(chan poolGive, 1)} }}

// poolGive grants a connection: an idle one, or when c is nil leave to
// dial one, already counted in open; or with follow set a place in line
// on a connection the session holds; or, with expired set, nothing: the
// waiter's deadline has passed.
type poolGive struct {
	c       *backendConn
	expired bool
	follow  bool // c is the session's, and the request queues on it
}

// minExpirySlack is the least of a pool's expirySlack.
const minExpirySlack = 2 * time.Millisecond

// aliveCheckAfter is how long a connection must have been idle for use to
// check that the backend has not closed it, a system call. Backends close
// idle connections after a keep-alive timeout of seconds (Apache's
// KeepAliveTimeout 5 s, nginx's keepalive_timeout 75 s) and announce any
// other close with Connection: close; for a request that can go again on
// a new connection if this one turns out closed (exchange.serve), a
// connection back from its last exchange a moment ago, as under load, is
// not worth the look. A request that cannot (one with a body) always
// gets the look.
const aliveCheckAfter = 100 * time.Millisecond

func newConnPool(dial func(context.Context) (*backendConn, error), maxConns, maxIdle, perSession int, idleTimeout time.Duration) *connPool {
	return &connPool{
		dial:        dial,
		maxConns:    maxConns,
		maxIdle:     min(maxIdle, maxConns),
		perSession:  min(perSession, maxConns),
		idleTimeout: idleTimeout,
		idleGrace:   idleGrace,
		expirySlack: minExpirySlack,
		sessions:    make(map[string]*poolSession),
		queued:      make(map[*poolSession]struct{}),
		times:       newAnswerTimes(),
	}
}

// idleGrace is how long an idle connection beyond the pool's maxIdle is
// kept before it is closed.
const idleGrace = time.Second

// errPoolClosed is what get returns once the pool is closed.
var errPoolClosed = errors.New("gateway: closed")

// get returns a connection to the backend for a request of session: an
// idle one still open, or a new one (always a new one with fresh set). It
// waits while the pool or the session has none to give, until ctx is done.
// The caller gives the connection back with put.
func (p *connPool) get(ctx context.Context, session string, fresh bool) (*backendConn, error) {
	return p.getBy(ctx, time.Time{}, session, fresh, false)
}

// getBy is get that also gives up at deadline, unless it is zero, with
// context.DeadlineExceeded. A connection at hand costs no timer. With
// replayable set (the request may go again on a new connection), an idle
// connection back from its last exchange a moment ago is not checked.
func (p *connPool) getBy(ctx context.Context, deadline time.Time, session string, fresh, replayable bool) (*backendConn, error) {
	c, _, err := p.take(ctx, deadline, session, fresh, replayable, false, 0)
	return c, err
}

// take is getBy for a request that may queue behind others on a
// connection its session holds, if pipe is set and the pool pipelines
// (follow): on one whose answers ahead are expected within the pool's
// wait, even with a connection of its own at hand (join); else, rather
// than wait for a connection of its own, on one with room at once, else
// on the first that opens to it or has room while it waits, unless a
// connection of its own comes first. key is the request's path's key in
// the pool's times. A request that follows gives nothing back: the
// connection is the session's, given back by the exchange that reads
// last (done).
func (p *connPool) take(ctx context.Context, deadline time.Time, session string, fresh, replayable, pipe bool, key uint64) (c *backendConn, follow bool, err error) {
	pipe = pipe && !fresh && p.depth > 0
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	if pipe && p.wait > 0 {
		if c := p.joinLocked(session, key); c != nil {
			p.mu.Unlock()
			return c, true, nil
		}
	}
	if g, ok := p.giveLocked(session, fresh); ok {
		p.mu.Unlock()
		c, err := p.use(ctx, deadline, session, g, replayable)
		return c, false, err
	}
	if pipe {
		if c := p.followLocked(session, key); c != nil {
			p.mu.Unlock()
			return c, true, nil
		}
	}
	w := poolWaiters.Get().(*poolWaiter)
	w.session, w.seq, w.deadline, w.fresh, w.pipe, w.key, w.queued = session, p.seq, deadline, fresh, pipe, key, true
	p.seq++
	ps := p.sessionLocked(session)
	ps.waiting++
	ps.queue = append(ps.queue, w)
	p.queued[ps] = struct{}{}
	p.nwaiting++
	if !deadline.IsZero() && (p.expiryAt.IsZero() || deadline.Before(p.expiryAt)) {
		p.armExpiryLocked(deadline)
	}
	p.mu.Unlock()

	var g poolGive
	select {
	case g = <-w.grant:
	case <-ctx.Done():
		p.mu.Lock()
		still := w.queued
		if still {
			p.unqueueLocked(w)
			p.unwaitLocked(session)
		}
		p.mu.Unlock()
		if still {
			poolWaiters.Put(w)
			return nil, false, ctx.Err()
		}
		// Granted, or expired, as the wait ended: give a grant back.
		g = <-w.grant
		poolWaiters.Put(w)
		switch {
		case g.follow:
			// Its place in line is taken: the exchange goes on, and
			// drops the answer (exchange.queue).
			return g.c, true, nil
		case g.expired:
		case g.c != nil:
			p.put(session, g.c, true)
		default:
			p.abandon(session)
		}
		return nil, false, ctx.Err()
	}
	poolWaiters.Put(w)
	switch {
	case g.expired:
		return nil, false, context.DeadlineExceeded
	case g.follow:
		return g.c, true, nil
	}
	c, err = p.use(ctx, deadline, session, g, replayable)
	return c, false, err
}

// unqueueLocked takes w, still queued, out of its session's queue.
func (p *connPool) unqueueLocked(w *poolWaiter) {
	ps := p.sessions[w.session]
	if i := slices.Index(ps.queue, w); i >= 0 {
		ps.queue = slices.Delete(ps.queue, i, i+1)
	}
	if len(ps.queue) == 0 {
		ps.queue = nil
		delete(p.queued, ps)
	}
	w.queued = false
	p.nwaiting--
}

// armExpiryLocked sets the pool's timer for at, the earliest deadline of
// a waiting request.
func (p *connPool) armExpiryLocked(at time.Time) {
	p.expiryAt = at
	d := time.Until(at)
	if p.expiry == nil {
		p.expiry = time.AfterFunc(d, p.expire)
	} else {
		p.expiry.Reset(d)
	}
}

// expire ends the waits whose deadline has passed and sets the timer for
// the earliest of the others.
func (p *connPool) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	due := now.Add(p.expirySlack)
	var next time.Time
	for ps := range p.queued {
		keep := ps.queue[:0]
		for _, w := range ps.queue {
			switch {
			case w.deadline.IsZero():
			case !w.deadline.After(due):
				w.queued = false
				p.nwaiting--
				ps.waiting--
				w.grant <- poolGive{expired: true}
				continue
			case next.IsZero() || w.deadline.Before(next):
				next = w.deadline
			}
			keep = append(keep, w)
		}
		clear(ps.queue[len(keep):])
		if len(keep) == 0 {
			ps.queue = nil
			delete(p.queued, ps)
			p.forgetLocked(ps.name, ps)
		} else {
			ps.queue = keep
		}
	}
	p.expiryAt = time.Time{}
	if !next.IsZero() {
		p.armExpiryLocked(later(next, now.Add(p.expirySlack)))
	}
}

// use turns a grant into a connection: an idle one if it is still open
// (taken as open, for a replayable request, if it came back a moment ago),
// else a new one dialed under the same grant, by deadline if it is set.
func (p *connPool) use(ctx context.Context, deadline time.Time, session string, g poolGive, replayable bool) (*backendConn, error) {
	if c := g.c; c != nil {
		recent := time.Since(c.idleSince) < aliveCheckAfter
		if replayable && recent && c.br.Buffered() == 0 || c.alive() {
			p.reuses.Add(1)
			c.reused = true
			return c, nil
		}
		// The backend closed it while it was idle (its keep-alive
		// timeout): dial instead, under the same grant.
		p.stale.Add(1)
		c.conn.Close()
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		p.abandon(session)
		return nil, err
	}
	p.dials.Add(1)
	c, err := p.dial(ctx)
	if err != nil {
		p.abandon(session)
		return nil, err
	}
	return c, nil
}

// sessionLocked returns the state of session, made if need be.
func (p *connPool) sessionLocked(session string) *poolSession {
	ps := p.sessions[session]
	if ps == nil {
		ps = &poolSession{name: session, limit: min(sessionStartConns, p.perSession), changed: time.Now()}
		p.sessions[session] = ps
	}
	return ps
}

// forgetLocked drops the state of a session that neither holds nor waits.
func (p *connPool) forgetLocked(session string, ps *poolSession) {
	if ps.held == 0 && ps.waiting == 0 {
		delete(p.sessions, session)
	}
}

func (p *connPool) unwaitLocked(session string) {
	ps := p.sessions[session]
	ps.waiting--
	p.forgetLocked(session, ps)
}

// happy records an exchange of session, begun at start, that delivered
// its whole response: the session's limit may double.
func (p *connPool) happy(session string, start time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.sessions[session]
	if ps == nil || ps.limit >= p.perSession || !start.After(ps.changed) {
		return
	}
	ps.irritations--
	if now := time.Now(); now.Sub(ps.changed) >= moodInterval || ps.irritations < -ps.limit {
		ps.limit = min(2*ps.limit, p.perSession)
		ps.changed, ps.irritations = now, 0
		p.serveWaitersLocked()
	}
}

// annoyed records an exchange of session that kept the backend waiting
// on its client, or that its client cut short: the session's limit may
// drop.
func (p *connPool) annoyed(session string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.sessions[session]
	if ps == nil || ps.limit <= 2 {
		return
	}
	ps.irritations++
	if now := time.Now(); now.Sub(ps.changed) >= moodInterval || ps.irritations >= ps.limit {
		switch {
		case ps.limit > 16:
			ps.limit = 16
		case ps.limit > 8:
			ps.limit = 8
		case ps.limit > 4:
			ps.limit = 4
		default:
			ps.limit = 2
		}
		ps.changed, ps.irritations = now, 0
	}
}

// giveLocked grants session a connection if it may have one now.
func (p *connPool) giveLocked(session string, fresh bool) (poolGive, bool) {
	ps := p.sessionLocked(session)
	if ps.held >= ps.limit {
		p.forgetLocked(session, ps)
		return poolGive{}, false
	}
	var g poolGive
	switch {
	case !fresh && len(p.idle) > 0:
		// The most recently used: the least likely to have been closed.
		g.c = p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
	case p.open < p.maxConns:
		p.open++
	case len(p.idle) > 0:
		// Full, and a retry wants a new connection: close an idle one
		// for it.
		old := p.idle[0]
		p.idle = p.idle[1:]
		go old.conn.Close()
	default:
		p.forgetLocked(session, ps)
		return poolGive{}, false
	}
	ps.held++
	p.taken++
	return g, true
}

// followLocked returns a connection that session holds and that requests
// may queue on, with fewer than depth queued: the one whose answers ahead
// are expected soonest when the pool keeps answer times, else the one
// with the fewest queued. The caller's request, of the path of key, is
// counted queued on it. It returns nil if there is none, or if another
// connection is expected to be done with its answers sooner by more than
// the pool's wait (quickestOtherLocked): the request waits for a place
// behind those quicker answers, or for a connection of its own.
func (p *connPool) followLocked(session string, key uint64) *backendConn {
	c, ahead := p.soonestLocked(session)
	if c == nil || ahead-p.wait > p.quickestOtherLocked(p.sessions[session], c) {
		return nil
	}
	p.queueLocked(c, key)
	return c
}

// joinLocked is followLocked for a request that could have a connection
// of its own: it returns nil unless the answers ahead on the connection
// are expected within the pool's wait.
func (p *connPool) joinLocked(session string, key uint64) *backendConn {
	c, ahead := p.soonestLocked(session)
	if c == nil || ahead > p.wait {
		return nil
	}
	p.queueLocked(c, key)
	p.joined.Add(1)
	return c
}

// soonestLocked returns the connection of session with room for a
// request whose answers ahead are expected soonest, with that time, or,
// when the pool keeps no answer times, the one with the fewest queued,
// with their number.
func (p *connPool) soonestLocked(session string) (*backendConn, time.Duration) {
	ps := p.sessions[session]
	if ps == nil {
		return nil, 0
	}
	var best *backendConn
	var soonest time.Duration
	for _, c := range ps.pipes {
		if !p.roomLocked(c) {
			continue
		}
		if ahead := p.aheadLocked(c); best == nil || ahead < soonest {
			best, soonest = c, ahead
		}
	}
	return best, soonest
}

// aheadLocked is the time the answers ahead of a request that would
// queue on c are expected to take, or, when the pool keeps no answer
// times, their number.
func (p *connPool) aheadLocked(c *backendConn) time.Duration {
	if p.wait == 0 {
		return time.Duration(c.queued)
	}
	var ahead time.Duration
	for _, d := range c.ahead {
		ahead += d
	}
	return ahead
}

// quickestOtherLocked is, when the pool keeps answer times, the least
// time the answers on a connection of ps other than c are expected to
// take, full or not; else, or if ps has no other, the most a time can be.
// A request that would wait for a connection does not queue on c when
// the answers ahead on it are expected to take longer than that by more
// than the pool's wait: a place behind those quicker answers opens with
// each answer given (fillPipeLocked).
func (p *connPool) quickestOtherLocked(ps *poolSession, c *backendConn) time.Duration {
	quickest := time.Duration(math.MaxInt64)
	if p.wait == 0 {
		return quickest
	}
	for _, o := range ps.pipes {
		if o != c {
			quickest = min(quickest, p.aheadLocked(o))
		}
	}
	return quickest
}

// queueLocked counts a request, of the path of key, queued on c.
func (p *connPool) queueLocked(c *backendConn, key uint64) {
	c.queued++
	c.ahead = append(c.ahead, p.times.expect(key))
	p.pipelined.Add(1)
}

// roomLocked reports whether one more request may queue on c: fewer
// than depth are, and the backend is not known to close c before it
// would answer it.
func (p *connPool) roomLocked(c *backendConn) bool {
	return c.queued < p.depth && (p.keepMax == 0 || c.served+c.queued+2 <= p.keepMax)
}

// closedBy records that the backend announced it closes c after the
// answer being read.
func (p *connPool) closedBy(c *backendConn) {
	p.mu.Lock()
	p.keepMax = max(p.keepMax, c.served+1)
	p.mu.Unlock()
}

// openPipe lets requests of session queue on c, which it holds and whose
// request, a GET or HEAD of the path of key, has just gone out; the
// session's requests waiting for a connection that may queue do.
func (p *connPool) openPipe(session string, c *backendConn, key uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.sessions[session]
	c.pipeOf = ps
	c.ahead = append(c.ahead[:0], p.times.expect(key))
	ps.pipes = append(ps.pipes, c)
	p.fillPipeLocked(ps, c)
}

// fillPipeLocked gives places in line on c, up to depth, to requests of
// ps waiting for a connection that may queue, first come first, while
// no other connection of ps is expected to be done with its answers
// sooner by more than the pool's wait (quickestOtherLocked).
func (p *connPool) fillPipeLocked(ps *poolSession, c *backendConn) {
	if ps.waiting == 0 {
		return
	}
	ahead, quickest := p.aheadLocked(c), p.quickestOtherLocked(ps, c)
	keep := ps.queue[:0]
	for _, w := range ps.queue {
		if !w.pipe || !p.roomLocked(c) || ahead-p.wait > quickest {
			keep = append(keep, w)
			continue
		}
		p.queueLocked(c, w.key)
		ahead = p.aheadLocked(c)
		w.queued = false
		p.nwaiting--
		ps.waiting--
		w.grant <- poolGive{c: c, follow: true}
	}
	clear(ps.queue[len(keep):])
	ps.queue = keep
	if len(keep) == 0 {
		ps.queue = nil
		delete(p.queued, ps)
	}
}

// done gives back c, taken by session, at the end of an exchange: to the
// next request queued on it if reusable and there is one; else to the
// pool (put), after failing the requests queued on it, if any. A
// connection with bytes nobody asked for is not reused. An exchange
// whose answer was read whole passes its path's key and the time the
// answer took (answerTimes); others pass a zero key.
func (p *connPool) done(session string, c *backendConn, reusable bool, key uint64, took time.Duration) {
	p.mu.Lock()
	c.served++
	if key != 0 && p.wait > 0 {
		p.times.add(key, took)
	}
	broken := false
	if ps := c.pipeOf; ps != nil {
		if reusable && c.queued > 0 {
			c.queued--
			c.ahead = c.ahead[:copy(c.ahead, c.ahead[1:])]
			p.fillPipeLocked(ps, c)
			p.mu.Unlock()
			c.passTurn()
			return
		}
		c.pipeOf = nil
		ps.pipes = slices.DeleteFunc(ps.pipes, func(x *backendConn) bool { return x == c })
		if len(ps.pipes) == 0 {
			ps.pipes = nil
		}
		broken = c.queued > 0
		c.queued = 0
		c.ahead = c.ahead[:0]
	}
	closeIt := p.putLocked(session, c, reusable && !broken && c.br.Buffered() == 0)
	p.mu.Unlock()
	if closeIt != nil {
		closeIt.conn.Close()
	}
	if broken {
		c.breakTurns()
	}
}

// put gives back a connection taken by session: kept for reuse if
// reusable and the pool has room, else closed.
func (p *connPool) put(session string, c *backendConn, reusable bool) {
	p.mu.Lock()
	closeIt := p.putLocked(session, c, reusable)
	p.mu.Unlock()
	if closeIt != nil {
		closeIt.conn.Close()
	}
}

// putLocked is put under mu; it returns the connection to close, if any.
func (p *connPool) putLocked(session string, c *backendConn, reusable bool) *backendConn {
	p.dropLocked(session)
	var closeIt *backendConn
	if reusable && !p.closed {
		c.idleSince = time.Now()
		p.idle = append(p.idle, c)
		if len(p.idle) > p.maxIdle && p.trim == nil {
			p.trim = time.AfterFunc(p.idleGrace, p.trimIdle)
		}
		if p.prune == nil && p.idleTimeout > 0 {
			p.prune = time.AfterFunc(min(p.idleTimeout, idleCheck), p.pruneIdle)
		}
	} else {
		closeIt = c
		p.open--
	}
	p.serveWaitersLocked()
	return closeIt
}

// trimIdle closes the least recently used idle connections beyond
// maxIdle that have been idle for idleGrace, and comes again for the
// next while there are more than maxIdle.
func (p *connPool) trimIdle() {
	now := time.Now()
	p.mu.Lock()
	p.trim = nil
	n := 0
	for len(p.idle)-n > p.maxIdle && now.Sub(p.idle[n].idleSince) >= p.idleGrace {
		n++
	}
	old := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	p.open -= n
	if len(p.idle) > p.maxIdle && !p.closed {
		p.trim = time.AfterFunc(p.idle[0].idleSince.Add(p.idleGrace).Sub(now), p.trimIdle)
	}
	p.serveWaitersLocked()
	p.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
}

// abandon gives back a grant that got no connection: the dial failed, or
// the request ended first.
func (p *connPool) abandon(session string) {
	p.mu.Lock()
	p.dropLocked(session)
	p.open--
	p.serveWaitersLocked()
	p.mu.Unlock()
}

func (p *connPool) dropLocked(session string) {
	p.taken--
	ps := p.sessions[session]
	ps.held--
	p.forgetLocked(session, ps)
}

// serveWaitersLocked grants connections to waiting requests while there
// are connections to grant: first to the request whose session holds the
// fewest, then to the one that has waited longest.
func (p *connPool) serveWaitersLocked() {
	for p.nwaiting > 0 && (p.open < p.maxConns || len(p.idle) > 0) {
		var best *poolSession
		for ps := range p.queued {
			if ps.held >= ps.limit {
				continue
			}
			if best == nil || ps.held < best.held || ps.held == best.held && ps.queue[0].seq < best.queue[0].seq {
				best = ps
			}
		}
		if best == nil {
			return
		}
		w := best.queue[0]
		g, ok := p.giveLocked(best.name, w.fresh)
		if !ok {
			return
		}
		best.queue[0] = nil
		best.queue = best.queue[1:]
		if len(best.queue) == 0 {
			best.queue = nil
			delete(p.queued, best)
		}
		w.queued = false
		p.nwaiting--
		best.waiting--
		w.grant <- g
	}
}

// idleCheck is how often idle connections are looked at: one the backend
// closed (its keep-alive timeout) is closed here too rather than kept
// until it is taken or idleTimeout passes.
const idleCheck = 5 * time.Second

// pruneIdle closes the connections idle for longer than idleTimeout and
// those the backend has closed, and comes again while any are idle.
func (p *connPool) pruneIdle() {
	now := time.Now()
	p.mu.Lock()
	var old []*backendConn
	keep := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.idleSince) >= p.idleTimeout || !c.alive() {
			old = append(old, c)
			p.open--
			continue
		}
		keep = append(keep, c)
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.prune = nil
	if len(p.idle) > 0 && !p.closed {
		p.prune = time.AfterFunc(min(p.idleTimeout, idleCheck), p.pruneIdle)
	}
	p.serveWaitersLocked()
	p.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
}

// closeIdle closes the idle connections. With shut set, the pool is
// closed for good: no connection is kept or granted after it, and waiting
// requests fail when their context ends.
func (p *connPool) closeIdle(shut bool) {
	p.mu.Lock()
	old := p.idle
	p.idle = nil
	p.open -= len(old)
	if shut {
		p.closed = true
	}
	p.serveWaitersLocked()
	p.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
}

// PoolStats is a snapshot of the connections to the backend.
type PoolStats struct {
	Open     int // connections open or being dialed, idle ones included
	Idle     int // connections kept for reuse
	Busy     int // connections taken by requests
	Waiting  int // requests waiting for a connection
	Sessions int // sessions holding or waiting for connections

	Dials  uint64 // connections dialed
	Reuses uint64 // idle connections reused
	Stale  uint64 // idle connections found closed by the backend when taken

	Pipelined uint64 // requests queued on a connection behind another (Config.PipelineDepth)
	Joined    uint64 // of those, the ones that could have had a connection of their own (Config.PipelineWait)
}

func (p *connPool) stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{
		Open: p.open, Idle: len(p.idle), Busy: p.taken, Waiting: p.nwaiting, Sessions: len(p.sessions),
		Dials: p.dials.Load(), Reuses: p.reuses.Load(), Stale: p.stale.Load(), Pipelined: p.pipelined.Load(), Joined: p.joined.Load(),
	}
}
